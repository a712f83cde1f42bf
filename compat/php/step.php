<?php
// One web request of PHP's native sessions, stored by phpredis in sessiond
// (session.save_handler=redis; see compat/php/sessions.py, which runs these).
//   php step.php ACTION SESSION_ID [ARG]
// Prints one JSON line: the session data the request saw, and what it did.
[$_, $action, $sid] = $argv + [null, null, null];
$arg = $argv[3] ?? null;
session_id($sid);
if (!session_start()) {
    fwrite(STDERR, "session_start failed\n");
    exit(2);
}
$seen = $_SESSION;
switch ($action) {
    case 'create':
        $_SESSION['user'] = 'alice';
        $_SESSION['n'] = 1;
        break;
    case 'read':
        break;
    case 'incr':
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
        break;
    case 'slow-write':
        // Holds the session (and its lock) for ARG ms, then writes.
        usleep((int)$arg * 1000);
        $_SESSION['slow'] = 'done';
        break;
    case 'quick-write':
        $_SESSION['quick'] = 'done';
        break;
    case 'regenerate':
        session_regenerate_id(true);
        $_SESSION['regenerated'] = true;
        break;
    case 'destroy':
        session_destroy();
        echo json_encode(['seen' => $seen, 'id' => $sid]), "\n";
        exit(0);
    default:
        fwrite(STDERR, "unknown action $action\n");
        exit(2);
}
$id = session_id();
$ok = session_write_close();
echo json_encode(['seen' => $seen, 'id' => $id, 'written' => $ok]), "\n";
