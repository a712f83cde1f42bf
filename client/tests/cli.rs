//! The `sessiond-cli` binary: its help, and a clear failure when no member answers.
//! (Its cluster operations are tested against real clusters in tests/t100_cluster.rs.)

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sessiond-cli");

#[test]
fn help_lists_the_commands() {
    let out = Command::new(BIN).arg("--help").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["status", "add", "remove", "transfer-leader", "snapshot"] {
        assert!(text.contains(cmd), "{cmd} missing from:\n{text}");
    }
}

#[test]
fn status_with_no_reachable_member_fails_clearly() {
    // A port nothing listens on: bind one, note it, and close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let out = Command::new(BIN)
        .args(["--nodes", &format!("127.0.0.1:{port}"), "status"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no member answered"), "{err}");
}
