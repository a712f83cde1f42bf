//! MULTI/EXEC/DISCARD/WATCH against Redis 7 semantics: QUEUED replies, EXECABORT after
//! queue-time errors, runtime errors as array elements, optimistic locking, and that
//! another client never observes a transaction half applied.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use redis::Value;
use support::cmds::{bulk, get, v};
use support::{err_of, roundtrip, Server};

fn queued() -> Value {
    Value::SimpleString("QUEUED".into())
}

/// Assert `val` is a server error with exactly `text`.
fn assert_err_value(val: &Value, text: &str) {
    match val {
        Value::ServerError(e) => {
            let got = match e.details() {
                Some(d) => format!("{} {}", e.code(), d),
                None => e.code().to_string(),
            };
            assert_eq!(got, text);
        }
        other => panic!("expected error {text:?}, got {other:?}"),
    }
}

/// MULTI replies OK, each command replies QUEUED without running, and EXEC replies an
/// array with each command's reply in order.
#[test]
fn multi_exec_returns_replies() {
    let srv = Server::start();
    let mut con = srv.conn();
    let mut other = srv.conn();
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("SET").arg("a").arg("1")), queued());
    assert_eq!(v(&mut con, redis::cmd("INCR").arg("a")), queued());
    assert_eq!(v(&mut con, redis::cmd("GET").arg("a")), queued());
    assert_eq!(v(&mut con, redis::cmd("GET").arg("missing")), queued());
    assert_eq!(v(&mut con, &redis::cmd("PING")), queued());
    assert_eq!(
        get(&mut other, "a"),
        None,
        "queued commands have not run yet"
    );
    assert_eq!(
        v(&mut con, &redis::cmd("EXEC")),
        Value::Array(vec![
            Value::Okay,
            Value::Int(2),
            bulk("2"),
            Value::Nil,
            Value::SimpleString("PONG".into()),
        ])
    );
    assert_eq!(get(&mut other, "a").as_deref(), Some("2"));
    // An empty transaction replies an empty array.
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, &redis::cmd("EXEC")), Value::Array(vec![]));
}

/// DISCARD drops the queued commands, replies OK and leaves the MULTI state.
#[test]
fn discard_drops_queue() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("SET").arg("a").arg("1")), queued());
    assert_eq!(v(&mut con, &redis::cmd("DISCARD")), Value::Okay);
    assert_eq!(get(&mut con, "a"), None);
    assert_eq!(
        v(&mut con, &redis::cmd("PING")),
        Value::SimpleString("PONG".into()),
        "not in MULTI any more"
    );
    assert_eq!(
        err_of(&mut con, &redis::cmd("EXEC")),
        "ERR EXEC without MULTI"
    );
}

/// EXEC and DISCARD outside MULTI are errors with Redis's texts.
#[test]
fn exec_discard_without_multi() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        err_of(&mut con, &redis::cmd("EXEC")),
        "ERR EXEC without MULTI"
    );
    assert_eq!(
        err_of(&mut con, &redis::cmd("DISCARD")),
        "ERR DISCARD without MULTI"
    );
}

/// MULTI inside MULTI is `ERR MULTI calls can not be nested`; the transaction stays open
/// and EXEC still runs what was queued.
#[test]
fn nested_multi() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("SET").arg("a").arg("1")), queued());
    assert_eq!(
        err_of(&mut con, &redis::cmd("MULTI")),
        "ERR MULTI calls can not be nested"
    );
    assert_eq!(
        v(&mut con, &redis::cmd("EXEC")),
        Value::Array(vec![Value::Okay])
    );
    assert_eq!(get(&mut con, "a").as_deref(), Some("1"));
}

/// WATCH inside MULTI is `ERR WATCH inside MULTI is not allowed`.
#[test]
fn watch_inside_multi() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(
        err_of(&mut con, redis::cmd("WATCH").arg("k")),
        "ERR WATCH inside MULTI is not allowed"
    );
    assert_eq!(v(&mut con, &redis::cmd("DISCARD")), Value::Okay);
}

/// A queue-time error (wrong arity, unknown command) is reported at once and makes EXEC
/// fail with `EXECABORT Transaction discarded because of previous errors.`; nothing runs.
#[test]
fn queue_error_aborts_exec() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("SET").arg("a").arg("1")), queued());
    assert_eq!(
        err_of(&mut con, &redis::cmd("GET")),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(v(&mut con, redis::cmd("SET").arg("b").arg("2")), queued());
    assert_eq!(
        err_of(&mut con, &redis::cmd("EXEC")),
        "EXECABORT Transaction discarded because of previous errors."
    );
    assert_eq!(get(&mut con, "a"), None);
    assert_eq!(get(&mut con, "b"), None);
    // The connection left MULTI.
    assert_eq!(
        err_of(&mut con, &redis::cmd("EXEC")),
        "ERR EXEC without MULTI"
    );

    // The same for an unknown command.
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("SET").arg("a").arg("1")), queued());
    assert_eq!(
        err_of(&mut con, redis::cmd("NOSUCHCMD").arg("x")),
        "ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' "
    );
    assert_eq!(
        err_of(&mut con, &redis::cmd("EXEC")),
        "EXECABORT Transaction discarded because of previous errors."
    );
    assert_eq!(get(&mut con, "a"), None);
}

/// A runtime error inside EXEC (INCR on a non-integer) is one error element of the reply;
/// the other commands still run.
#[test]
fn runtime_error_is_one_element() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("SET").arg("a").arg("abc")), queued());
    assert_eq!(v(&mut con, redis::cmd("INCR").arg("a")), queued());
    assert_eq!(v(&mut con, redis::cmd("SET").arg("b").arg("2")), queued());
    assert_eq!(
        v(&mut con, redis::cmd("HSET").arg("b").arg("f").arg("v")),
        queued()
    );
    assert_eq!(v(&mut con, redis::cmd("INCR").arg("b")), queued());
    let reply = v(&mut con, &redis::cmd("EXEC"));
    let Value::Array(items) = reply else {
        panic!("EXEC must reply an array, got {reply:?}");
    };
    assert_eq!(items.len(), 5, "{items:?}");
    assert_eq!(items[0], Value::Okay);
    assert_err_value(&items[1], "ERR value is not an integer or out of range");
    assert_eq!(items[2], Value::Okay);
    assert_err_value(
        &items[3],
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    );
    assert_eq!(items[4], Value::Int(3));
    assert_eq!(get(&mut con, "a").as_deref(), Some("abc"));
    assert_eq!(get(&mut con, "b").as_deref(), Some("3"));
}

/// WATCH, then another connection changes the key: EXEC replies the null array (`*-1` in
/// RESP2) and the queued commands do not run.
#[test]
fn watch_aborts_on_change() {
    let srv = Server::start();
    let mut con = srv.conn();
    let mut other = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("w")
        .arg("0")
        .query(&mut con)
        .expect("set");
    assert_eq!(v(&mut con, redis::cmd("WATCH").arg("w")), Value::Okay);
    let _: () = redis::cmd("SET")
        .arg("w")
        .arg("9")
        .query(&mut other)
        .expect("set");
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("SET").arg("w").arg("1")), queued());
    assert_eq!(v(&mut con, redis::cmd("SET").arg("x").arg("1")), queued());
    assert_eq!(v(&mut con, &redis::cmd("EXEC")), Value::Nil);
    assert_eq!(get(&mut con, "w").as_deref(), Some("9"));
    assert_eq!(get(&mut con, "x"), None);

    // On the wire the aborted EXEC is exactly `*-1\r\n`.
    let mut s = srv.raw();
    assert_eq!(roundtrip(&mut s, b"WATCH w\r\n", 5), b"+OK\r\n");
    let _: () = redis::cmd("DEL").arg("w").query(&mut other).expect("del");
    assert_eq!(roundtrip(&mut s, b"MULTI\r\n", 5), b"+OK\r\n");
    assert_eq!(roundtrip(&mut s, b"SET w 1\r\n", 9), b"+QUEUED\r\n");
    assert_eq!(roundtrip(&mut s, b"EXEC\r\n", 5), b"*-1\r\n");
    assert_eq!(get(&mut con, "w"), None);
}

/// WATCH on a missing key is broken when another client creates it.
#[test]
fn watch_missing_key_then_created() {
    let srv = Server::start();
    let mut con = srv.conn();
    let mut other = srv.conn();
    assert_eq!(v(&mut con, redis::cmd("WATCH").arg("new")), Value::Okay);
    let _: () = redis::cmd("SET")
        .arg("new")
        .arg("x")
        .query(&mut other)
        .expect("set");
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(
        v(&mut con, redis::cmd("SET").arg("new").arg("mine")),
        queued()
    );
    assert_eq!(v(&mut con, &redis::cmd("EXEC")), Value::Nil);
    assert_eq!(get(&mut con, "new").as_deref(), Some("x"));
}

/// WATCH without any change lets EXEC run; EXEC also clears the watch, so a later change
/// does not affect the next transaction.
#[test]
fn watch_without_change_runs() {
    let srv = Server::start();
    let mut con = srv.conn();
    let mut other = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("w")
        .arg("0")
        .query(&mut con)
        .expect("set");
    assert_eq!(v(&mut con, redis::cmd("WATCH").arg("w")), Value::Okay);
    // Reads by others do not break the watch.
    let _ = get(&mut other, "w");
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("INCR").arg("w")), queued());
    assert_eq!(
        v(&mut con, &redis::cmd("EXEC")),
        Value::Array(vec![Value::Int(1)])
    );
    let _: () = redis::cmd("SET")
        .arg("w")
        .arg("5")
        .query(&mut other)
        .expect("set");
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("INCR").arg("w")), queued());
    assert_eq!(
        v(&mut con, &redis::cmd("EXEC")),
        Value::Array(vec![Value::Int(6)]),
        "the previous EXEC unwatched the key"
    );
}

/// UNWATCH forgets watched keys, so a later change does not abort EXEC.
#[test]
fn unwatch_forgets() {
    let srv = Server::start();
    let mut con = srv.conn();
    let mut other = srv.conn();
    assert_eq!(v(&mut con, redis::cmd("WATCH").arg("w")), Value::Okay);
    assert_eq!(v(&mut con, &redis::cmd("UNWATCH")), Value::Okay);
    let _: () = redis::cmd("SET")
        .arg("w")
        .arg("x")
        .query(&mut other)
        .expect("set");
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("SET").arg("w").arg("y")), queued());
    assert_eq!(
        v(&mut con, &redis::cmd("EXEC")),
        Value::Array(vec![Value::Okay])
    );
    assert_eq!(get(&mut con, "w").as_deref(), Some("y"));
}

/// A watched key that the watching client itself modifies before MULTI also aborts EXEC.
#[test]
fn watch_own_write_aborts() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("w")
        .arg("0")
        .query(&mut con)
        .expect("set");
    assert_eq!(v(&mut con, redis::cmd("WATCH").arg("w")), Value::Okay);
    let _: () = redis::cmd("SET")
        .arg("w")
        .arg("1")
        .query(&mut con)
        .expect("set");
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("SET").arg("w").arg("2")), queued());
    assert_eq!(v(&mut con, &redis::cmd("EXEC")), Value::Nil);
    assert_eq!(get(&mut con, "w").as_deref(), Some("1"));
}

/// The redis crate's atomic pipeline (MULTI ... EXEC) works and returns the replies.
#[test]
fn redis_crate_atomic_pipeline() {
    let srv = Server::start();
    let mut con = srv.conn();
    let (n, s, missing): (i64, String, Option<String>) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("p")
        .arg("41")
        .ignore()
        .cmd("INCR")
        .arg("p")
        .cmd("GET")
        .arg("p")
        .cmd("GET")
        .arg("nothing")
        .query(&mut con)
        .expect("atomic pipeline");
    assert_eq!((n, s.as_str(), missing), (42, "42", None));
    // A WATCH + atomic pipeline retry loop of the kind clients use.
    let mut other = srv.conn();
    let _: () = redis::cmd("WATCH").arg("p").query(&mut con).expect("watch");
    let _: () = redis::cmd("SET")
        .arg("p")
        .arg("100")
        .query(&mut other)
        .expect("set");
    let r: Option<(i64,)> = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("p")
        .query(&mut con)
        .expect("pipeline");
    assert_eq!(r, None, "aborted transaction reads as None");
    assert_eq!(get(&mut con, "p").as_deref(), Some("100"));
}

/// Run `rounds` × `MULTI; INCR a; INCR b; EXEC` on one connection while another connection
/// reads `MGET a b` in a loop; panics if the reader ever sees a != b.
fn check_transactions_atomic(srv: &Server, rounds: i64) {
    let mut writer = srv.conn();
    let mut reader = srv.conn();
    let done = Arc::new(AtomicBool::new(false));
    let reader_done = done.clone();
    // The reader reports (reads, reads that saw a transaction in progress, last a, first
    // torn read) instead of panicking, so the writer always finishes cleanly.
    let reader_thread = std::thread::spawn(move || {
        let mut reads = 0u64;
        let mut mid_run = 0u64;
        loop {
            let finished = reader_done.load(Ordering::Acquire);
            let (a, b): (Option<i64>, Option<i64>) = redis::cmd("MGET")
                .arg("a")
                .arg("b")
                .query(&mut reader)
                .expect("mget");
            let (a, b) = (a.unwrap_or(0), b.unwrap_or(0));
            reads += 1;
            if a != b {
                return (reads, mid_run, a, Some((a, b)));
            }
            if a > 0 && a < rounds {
                mid_run += 1;
            }
            if finished {
                return (reads, mid_run, a, None);
            }
        }
    });
    for i in 0..rounds {
        assert_eq!(v(&mut writer, &redis::cmd("MULTI")), Value::Okay);
        assert_eq!(v(&mut writer, redis::cmd("INCR").arg("a")), queued());
        assert_eq!(v(&mut writer, redis::cmd("INCR").arg("b")), queued());
        assert_eq!(
            v(&mut writer, &redis::cmd("EXEC")),
            Value::Array(vec![Value::Int(i + 1), Value::Int(i + 1)])
        );
        if reader_thread.is_finished() {
            break;
        }
    }
    done.store(true, Ordering::Release);
    let (reads, mid_run, last, torn) = reader_thread.join().expect("reader thread");
    if let Some((a, b)) = torn {
        panic!("MGET a b saw a half-applied MULTI/INCR a/INCR b/EXEC: a={a} b={b} (read {reads})");
    }
    assert_eq!(last, rounds, "final read sees every transaction");
    assert!(
        mid_run > 0,
        "the reader never overlapped the writer ({reads} reads), so nothing was tested"
    );
}

/// Atomicity (default single-threaded runtime): while one client runs many
/// `MULTI; INCR a; INCR b; EXEC`, another reading `MGET a b` never sees a != b.
#[test]
fn transactions_are_atomic_to_readers() {
    let srv = Server::start();
    check_transactions_atomic(&srv, 3000);
}

/// Atomicity with `--threads 2`, where the two connections are served in parallel: a
/// reader's `MGET a b` never sees a != b while another client runs
/// `MULTI; INCR a; INCR b; EXEC`.
#[test]
fn transactions_are_atomic_to_readers_multithreaded() {
    let srv = Server::start_with(&["--threads", "2"]);
    check_transactions_atomic(&srv, 10_000);
}

/// The same atomicity check on tokio's work-stealing runtime with two workers.
#[test]
fn transactions_are_atomic_to_readers_work_stealing() {
    let srv = Server::start_with(&["--threads", "2", "--runtime", "work-stealing"]);
    check_transactions_atomic(&srv, 10_000);
}

/// DISCARD also forgets WATCHed keys.
#[test]
fn discard_unwatches() {
    let srv = Server::start();
    let mut con = srv.conn();
    let mut other = srv.conn();
    assert_eq!(v(&mut con, redis::cmd("WATCH").arg("w")), Value::Okay);
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, &redis::cmd("DISCARD")), Value::Okay);
    let _: () = redis::cmd("SET")
        .arg("w")
        .arg("x")
        .query(&mut other)
        .expect("set");
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("SET").arg("w").arg("y")), queued());
    assert_eq!(
        v(&mut con, &redis::cmd("EXEC")),
        Value::Array(vec![Value::Okay])
    );
}

/// A syntax error found by the command itself (SET k v NX XX) is not a queue-time error:
/// it is queued and becomes an error element of EXEC's reply.
#[test]
fn syntax_error_is_runtime_error() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(
        v(
            &mut con,
            redis::cmd("SET").arg("k").arg("v").arg("NX").arg("XX")
        ),
        queued()
    );
    assert_eq!(v(&mut con, redis::cmd("SET").arg("j").arg("1")), queued());
    let reply = v(&mut con, &redis::cmd("EXEC"));
    let Value::Array(items) = reply else {
        panic!("EXEC must reply an array, got {reply:?}");
    };
    assert_eq!(items.len(), 2);
    assert_err_value(&items[0], "ERR syntax error");
    assert_eq!(items[1], Value::Okay);
    assert_eq!(get(&mut con, "j").as_deref(), Some("1"));
}

/// After HELLO 3 an EXEC aborted by WATCH is the RESP3 null `_\r\n`.
#[test]
fn aborted_exec_resp3_null() {
    let srv = Server::start();
    let mut other = srv.conn();
    let mut s = srv.raw();
    let hello = roundtrip(&mut s, b"HELLO 3\r\n", 1);
    assert!(hello.starts_with(b"%"), "{hello:?}");
    // Drain the rest of the HELLO map with a PING marker.
    let mut got = roundtrip(&mut s, b"PING\r\n", 7);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !got.ends_with(b"+PONG\r\n") && std::time::Instant::now() < deadline {
        got.extend(support::read_at_least(&mut s, 1));
    }
    assert_eq!(roundtrip(&mut s, b"WATCH w\r\n", 5), b"+OK\r\n");
    let _: () = redis::cmd("SET")
        .arg("w")
        .arg("1")
        .query(&mut other)
        .expect("set");
    assert_eq!(roundtrip(&mut s, b"MULTI\r\n", 5), b"+OK\r\n");
    assert_eq!(roundtrip(&mut s, b"GET w\r\n", 9), b"+QUEUED\r\n");
    assert_eq!(roundtrip(&mut s, b"EXEC\r\n", 3), b"_\r\n");
}

/// FLUSHALL by another client aborts a transaction watching a key that existed; a watched
/// key that did not exist (and still does not) is untouched by the flush.
#[test]
fn watch_and_flushall() {
    let srv = Server::start();
    let mut con = srv.conn();
    let mut other = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("w")
        .arg("1")
        .query(&mut con)
        .expect("set");
    assert_eq!(v(&mut con, redis::cmd("WATCH").arg("w")), Value::Okay);
    let _: () = redis::cmd("FLUSHALL").query(&mut other).expect("flushall");
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("SET").arg("w").arg("2")), queued());
    assert_eq!(v(&mut con, &redis::cmd("EXEC")), Value::Nil);
    assert_eq!(get(&mut con, "w"), None);

    assert_eq!(v(&mut con, redis::cmd("WATCH").arg("nokey")), Value::Okay);
    let _: () = redis::cmd("FLUSHALL").query(&mut other).expect("flushall");
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("SET").arg("x").arg("2")), queued());
    assert_eq!(
        v(&mut con, &redis::cmd("EXEC")),
        Value::Array(vec![Value::Okay])
    );
}

/// Changing only the TTL of a watched key (EXPIRE by another client) aborts EXEC, and so
/// does re-setting the same value.
#[test]
fn watch_sees_ttl_change_and_same_value_set() {
    let srv = Server::start();
    let mut con = srv.conn();
    let mut other = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("w")
        .arg("1")
        .query(&mut con)
        .expect("set");
    assert_eq!(v(&mut con, redis::cmd("WATCH").arg("w")), Value::Okay);
    let _: i64 = redis::cmd("EXPIRE")
        .arg("w")
        .arg(100)
        .query(&mut other)
        .expect("expire");
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("GET").arg("w")), queued());
    assert_eq!(v(&mut con, &redis::cmd("EXEC")), Value::Nil);

    assert_eq!(v(&mut con, redis::cmd("WATCH").arg("w")), Value::Okay);
    let _: () = redis::cmd("SET")
        .arg("w")
        .arg("1")
        .query(&mut other)
        .expect("set");
    assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("GET").arg("w")), queued());
    assert_eq!(v(&mut con, &redis::cmd("EXEC")), Value::Nil);
}

/// Commands by another client that change nothing (SETNX on an existing key, DEL of a
/// missing key, PERSIST without TTL, HDEL of a missing field) do not abort EXEC.
#[test]
fn watch_ignores_noop_writes() {
    let srv = Server::start();
    let mut con = srv.conn();
    let mut other = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("w")
        .arg("1")
        .query(&mut con)
        .expect("set");
    let _: i64 = redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("1")
        .query(&mut con)
        .expect("hset");
    let noops: Vec<(&str, redis::Cmd)> = vec![
        ("SETNX w 2", redis::cmd("SETNX").arg("w").arg("2").clone()),
        ("DEL missing", redis::cmd("DEL").arg("missing").clone()),
        ("PERSIST w", redis::cmd("PERSIST").arg("w").clone()),
        (
            "HDEL h nofield",
            redis::cmd("HDEL").arg("h").arg("nofield").clone(),
        ),
    ];
    for (what, cmd) in &noops {
        assert_eq!(
            v(
                &mut con,
                redis::cmd("WATCH").arg("w").arg("h").arg("missing")
            ),
            Value::Okay
        );
        let _: Value = cmd.query(&mut other).expect("noop command");
        assert_eq!(v(&mut con, &redis::cmd("MULTI")), Value::Okay);
        assert_eq!(v(&mut con, &redis::cmd("PING")), queued());
        assert_eq!(
            v(&mut con, &redis::cmd("EXEC")),
            Value::Array(vec![Value::SimpleString("PONG".into())]),
            "after {what} by another client"
        );
    }
}
