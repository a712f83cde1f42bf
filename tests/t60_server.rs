//! Server commands against Redis 7 semantics (DBSIZE, FLUSH*, TIME, COMMAND, CONFIG,
//! INFO), graceful stop through SHUTDOWN and SIGTERM, and the `--config` file.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;
use support::cmds::{bulk, v};
use support::{err_of, info_field, read_to_close, Server, BIN};

fn dbsize(con: &mut redis::Connection) -> i64 {
    redis::cmd("DBSIZE").query(con).expect("dbsize")
}

fn fill(con: &mut redis::Connection, n: usize) {
    let mut c = redis::cmd("MSET");
    for i in 0..n {
        c.arg(format!("k{i}")).arg("v");
    }
    let _: () = c.query(con).expect("mset");
}

/// Text of a bulk or verbatim string reply.
fn text_of(val: &Value) -> String {
    match val {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        other => panic!("expected a string reply, got {other:?}"),
    }
}

/// `CONFIG GET` as (name, value) pairs from a RESP2 flat array.
fn config_get(con: &mut redis::Connection, pattern: &str) -> Vec<(String, String)> {
    match v(con, redis::cmd("CONFIG").arg("GET").arg(pattern)) {
        Value::Array(items) => {
            assert!(items.len() % 2 == 0, "odd CONFIG GET reply {items:?}");
            items
                .chunks(2)
                .map(|p| (text_of(&p[0]), text_of(&p[1])))
                .collect()
        }
        other => panic!("CONFIG GET in RESP2 must be an array, got {other:?}"),
    }
}

/// Look up `key` in a RESP3 map.
fn map_get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Map(pairs) => pairs.iter().find_map(|(k, val)| match k {
            Value::BulkString(b) if b == key.as_bytes() => Some(val),
            Value::SimpleString(s) if s == key => Some(val),
            _ => None,
        }),
        _ => None,
    }
}

/// A unique temp file path for this test process.
fn temp_path(name: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "sessiond-t60-{}-{nanos}-{name}",
        std::process::id()
    ))
}

/// DBSIZE counts keys of every type.
#[test]
fn dbsize_counts_keys() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(v(&mut con, &redis::cmd("DBSIZE")), Value::Int(0));
    fill(&mut con, 10);
    let _: i64 = redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .query(&mut con)
        .expect("hset");
    assert_eq!(dbsize(&mut con), 11);
    let _: i64 = redis::cmd("DEL").arg("k0").query(&mut con).expect("del");
    assert_eq!(dbsize(&mut con), 10);
}

/// FLUSHDB and FLUSHALL, plain or with ASYNC/SYNC, empty the database and reply OK.
#[test]
fn flushdb_flushall_modes() {
    let srv = Server::start();
    let mut con = srv.conn();
    let cases: &[(&str, Option<&str>)] = &[
        ("FLUSHDB", None),
        ("FLUSHDB", Some("ASYNC")),
        ("FLUSHDB", Some("sync")),
        ("FLUSHALL", None),
        ("FLUSHALL", Some("async")),
        ("FLUSHALL", Some("SYNC")),
    ];
    for (cmd, mode) in cases {
        fill(&mut con, 50);
        let _: () = redis::cmd("SET")
            .arg("ttl")
            .arg("v")
            .arg("EX")
            .arg(100)
            .query(&mut con)
            .expect("set");
        let mut c = redis::cmd(cmd);
        if let Some(m) = mode {
            c.arg(*m);
        }
        assert_eq!(v(&mut con, &c), Value::Okay, "{cmd} {mode:?}");
        assert_eq!(dbsize(&mut con), 0, "{cmd} {mode:?}");
        let g: Option<String> = redis::cmd("GET").arg("k1").query(&mut con).expect("get");
        assert_eq!(g, None);
    }
}

/// FLUSHDB/FLUSHALL with another argument is `ERR syntax error` and flushes nothing.
#[test]
fn flush_bad_argument() {
    let srv = Server::start();
    let mut con = srv.conn();
    fill(&mut con, 5);
    assert_eq!(
        err_of(&mut con, redis::cmd("FLUSHDB").arg("NOW")),
        "ERR syntax error"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("FLUSHALL").arg("x")),
        "ERR syntax error"
    );
    assert_eq!(dbsize(&mut con), 5);
}

/// TIME replies two bulk strings, unix seconds (close to the system clock) and
/// microseconds (below one million).
#[test]
fn time_matches_clock() {
    let srv = Server::start();
    let mut con = srv.conn();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let reply = v(&mut con, &redis::cmd("TIME"));
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let Value::Array(items) = &reply else {
        panic!("TIME must be an array, got {reply:?}");
    };
    assert_eq!(items.len(), 2, "{reply:?}");
    let (Value::BulkString(s), Value::BulkString(us)) = (&items[0], &items[1]) else {
        panic!("TIME elements must be bulk strings: {reply:?}");
    };
    let secs: i64 = std::str::from_utf8(s)
        .expect("utf8")
        .parse()
        .expect("integer seconds");
    let micros: i64 = std::str::from_utf8(us)
        .expect("utf8")
        .parse()
        .expect("integer microseconds");
    assert!(
        (before - 1..=after + 1).contains(&secs),
        "TIME {secs} vs clock {before}..{after}"
    );
    assert!((0..1_000_000).contains(&micros), "microseconds {micros}");
}

/// COMMAND COUNT is an integer above 50.
#[test]
fn command_count() {
    let srv = Server::start();
    let mut con = srv.conn();
    match v(&mut con, redis::cmd("COMMAND").arg("COUNT")) {
        Value::Int(n) => assert!(n > 50, "COMMAND COUNT {n}"),
        other => panic!("COMMAND COUNT must be an integer, got {other:?}"),
    }
}

/// COMMAND INFO get describes `get`: name, arity 2, flags (status strings) containing
/// readonly, first/last key 1 and step 1; an unknown command gets a nil entry.
#[test]
fn command_info_get() {
    let srv = Server::start();
    let mut con = srv.conn();
    let reply = v(
        &mut con,
        redis::cmd("COMMAND")
            .arg("INFO")
            .arg("get")
            .arg("nosuchcommand"),
    );
    let Value::Array(entries) = &reply else {
        panic!("COMMAND INFO must be an array, got {reply:?}");
    };
    assert_eq!(entries.len(), 2, "{reply:?}");
    assert_eq!(entries[1], Value::Nil, "unknown command");
    let Value::Array(info) = &entries[0] else {
        panic!("entry must be an array: {reply:?}");
    };
    assert!(info.len() >= 6, "{info:?}");
    assert_eq!(info[0], bulk("get"));
    assert_eq!(info[1], Value::Int(2));
    let Value::Array(flags) = &info[2] else {
        panic!("flags must be an array: {info:?}");
    };
    assert!(
        flags.contains(&Value::SimpleString("readonly".into())),
        "flags {flags:?}"
    );
    assert!(
        !flags.contains(&Value::SimpleString("write".into())),
        "flags {flags:?}"
    );
    assert_eq!(&info[3..6], &[Value::Int(1), Value::Int(1), Value::Int(1)]);
    // SET is a write command with arity -3.
    let reply = v(&mut con, redis::cmd("COMMAND").arg("INFO").arg("SET"));
    let Value::Array(entries) = &reply else {
        panic!("{reply:?}");
    };
    let Value::Array(info) = &entries[0] else {
        panic!("{reply:?}");
    };
    assert_eq!(info[0], bulk("set"));
    assert_eq!(info[1], Value::Int(-3));
    let Value::Array(flags) = &info[2] else {
        panic!("{info:?}");
    };
    assert!(
        flags.contains(&Value::SimpleString("write".into())),
        "flags {flags:?}"
    );
}

/// COMMAND DOCS get (RESP3) is a map from "get" to a map that contains a summary.
#[test]
fn command_docs_get() {
    let srv = Server::start();
    let mut con = srv.conn3();
    let reply = v(&mut con, redis::cmd("COMMAND").arg("DOCS").arg("get"));
    assert!(matches!(reply, Value::Map(_)), "COMMAND DOCS: {reply:?}");
    let doc = map_get(&reply, "get").unwrap_or_else(|| panic!("no 'get' in {reply:?}"));
    assert!(matches!(doc, Value::Map(_)), "doc of get: {doc:?}");
    let summary = map_get(doc, "summary").unwrap_or_else(|| panic!("no summary in {doc:?}"));
    assert!(!text_of(summary).is_empty());
}

/// CONFIG GET of the settings clients probe: save is "", appendonly is "no", and
/// maxmemory, databases, timeout, notify-keyspace-events and replica-read-only exist.
#[test]
fn config_get_known_settings() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(&mut con, redis::cmd("CONFIG").arg("GET").arg("save")),
        Value::Array(vec![bulk("save"), bulk("")])
    );
    assert_eq!(
        config_get(&mut con, "appendonly"),
        vec![("appendonly".to_string(), "no".to_string())]
    );
    for name in [
        "maxmemory",
        "databases",
        "timeout",
        "notify-keyspace-events",
        "replica-read-only",
    ] {
        let got = config_get(&mut con, name);
        assert_eq!(got.len(), 1, "CONFIG GET {name}: {got:?}");
        assert_eq!(got[0].0, name);
    }
    assert_eq!(config_get(&mut con, "databases")[0].1, "16");
    assert!(config_get(&mut con, "no-such-setting").is_empty());
}

/// CONFIG GET * includes all of those settings, each once.
#[test]
fn config_get_star() {
    let srv = Server::start();
    let mut con = srv.conn();
    let all = config_get(&mut con, "*");
    for name in [
        "save",
        "appendonly",
        "maxmemory",
        "databases",
        "timeout",
        "notify-keyspace-events",
        "replica-read-only",
        "proto-max-bulk-len",
    ] {
        assert_eq!(
            all.iter().filter(|(k, _)| k == name).count(),
            1,
            "{name} in CONFIG GET *: {all:?}"
        );
    }
    // Several patterns in one call (Redis 7).
    let two = config_get(&mut con, "save");
    assert_eq!(two.len(), 1);
    match v(
        &mut con,
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("save")
            .arg("appendonly"),
    ) {
        Value::Array(items) => assert_eq!(items.len(), 4, "{items:?}"),
        other => panic!("{other:?}"),
    }
}

/// CONFIG GET over RESP3 is a map.
#[test]
fn config_get_resp3_map() {
    let srv = Server::start();
    let mut con = srv.conn3();
    let reply = v(&mut con, redis::cmd("CONFIG").arg("GET").arg("appendonly"));
    assert_eq!(reply, Value::Map(vec![(bulk("appendonly"), bulk("no"))]));
}

/// CONFIG SET proto-max-bulk-len 2mb replies OK and CONFIG GET then shows 2097152.
#[test]
fn config_set_proto_max_bulk_len() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(
            &mut con,
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("proto-max-bulk-len")
                .arg("2mb")
        ),
        Value::Okay
    );
    assert_eq!(
        config_get(&mut con, "proto-max-bulk-len"),
        vec![("proto-max-bulk-len".to_string(), "2097152".to_string())]
    );
}

/// CONFIG SET of an unknown parameter: `ERR Unknown option or number of arguments for
/// CONFIG SET - 'bogus'`.
#[test]
fn config_set_unknown() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("CONFIG").arg("SET").arg("bogus").arg("x")
        ),
        "ERR Unknown option or number of arguments for CONFIG SET - 'bogus'"
    );
}

/// The settings Redis 7.0 lets CONFIG SET change are changed (and read back as Redis
/// reads them back: `hz` clamped to 1..500); immutable and protected ones are refused
/// in Redis's words, even when set to the value they have. Each reply here was taken
/// from redis-server 7.0.
#[test]
fn config_set_mutable_immutable_protected() {
    let srv = Server::start();
    let mut con = srv.conn();
    let set = |con: &mut redis::Connection, k: &str, val: &str| {
        v(con, redis::cmd("CONFIG").arg("SET").arg(k).arg(val))
    };
    for (k, val, back) in [
        ("hz", "1000", "500"),
        ("hz", "0", "1"),
        ("loglevel", "warning", "warning"),
        ("loglevel", "notice", "notice"),
        ("appendfsync", "no", "no"),
        ("tcp-keepalive", "60", "60"),
        ("slave-read-only", "no", "no"),
        ("protected-mode", "no", "no"),
    ] {
        assert_eq!(set(&mut con, k, val), Value::Okay, "{k} {val}");
        let got = config_get(&mut con, k);
        assert_eq!(got, vec![(k.to_string(), back.to_string())]);
    }
    assert_eq!(config_get(&mut con, "replica-read-only")[0].1, "no");
    let fail = |con: &mut redis::Connection, k: &str, val: &str| {
        err_of(con, redis::cmd("CONFIG").arg("SET").arg(k).arg(val))
    };
    let why = |k: &str, w: &str| {
        format!("ERR CONFIG SET failed (possibly related to argument '{k}') - {w}")
    };
    assert_eq!(
        fail(&mut con, "databases", "16"),
        why("databases", "can't set immutable config")
    );
    let dir = config_get(&mut con, "dir")[0].1.clone();
    assert_eq!(
        fail(&mut con, "dir", &dir),
        why("dir", "can't set protected config")
    );
    assert_eq!(
        fail(&mut con, "loglevel", "loud"),
        why(
            "loglevel",
            "argument(s) must be one of the following: debug, verbose, notice, warning"
        )
    );
    assert_eq!(
        fail(&mut con, "appendfsync", "x"),
        why(
            "appendfsync",
            "argument(s) must be one of the following: everysec, always, no"
        )
    );
    assert_eq!(
        fail(&mut con, "hz", "-1"),
        why("hz", "argument must be between 0 and 2147483647 inclusive")
    );
    assert_eq!(
        fail(&mut con, "protected-mode", "maybe"),
        why("protected-mode", "argument must be 'yes' or 'no'")
    );
}

/// INFO has the Server, Clients, Memory, Stats and Keyspace sections with the fields
/// monitoring tools read.
#[test]
fn info_sections() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _other = srv.conn();
    let info: String = redis::cmd("INFO").query(&mut con).expect("info");
    for needle in [
        "# Server\r\n",
        "\r\nredis_version:",
        "# Clients\r\n",
        "\r\nconnected_clients:",
        "# Memory\r\n",
        "\r\nused_memory:",
        "# Stats\r\n",
        "\r\ntotal_commands_processed:",
        "# Keyspace\r\n",
    ] {
        assert!(info.contains(needle), "INFO lacks {needle:?}:\n{info}");
    }
    let clients: i64 = info_field(&mut con, "clients", "connected_clients")
        .and_then(|s| s.parse().ok())
        .expect("connected_clients");
    assert_eq!(clients, 2);
    let used: u64 = info_field(&mut con, "memory", "used_memory")
        .and_then(|s| s.parse().ok())
        .expect("used_memory");
    assert!(used > 0);
}

/// INFO stats total_commands_processed grows as commands run.
#[test]
fn info_total_commands_increases() {
    let srv = Server::start();
    let mut con = srv.conn();
    let read = |con: &mut redis::Connection| -> u64 {
        info_field(con, "stats", "total_commands_processed")
            .and_then(|s| s.parse().ok())
            .expect("total_commands_processed")
    };
    let before = read(&mut con);
    for _ in 0..10 {
        let _: String = redis::cmd("PING").query(&mut con).expect("ping");
    }
    let after = read(&mut con);
    assert!(
        after >= before + 10,
        "total_commands_processed {before} -> {after}"
    );
}

/// INFO keyspace holds only the Keyspace section, with
/// `db0:keys=N,expires=M,avg_ttl=...` when there are keys and no db line when empty.
#[test]
fn info_keyspace_section() {
    let srv = Server::start();
    let mut con = srv.conn();
    let info: String = redis::cmd("INFO")
        .arg("keyspace")
        .query(&mut con)
        .expect("info");
    assert_eq!(
        info.lines()
            .filter(|l| l.starts_with('#'))
            .collect::<Vec<_>>(),
        vec!["# Keyspace"],
        "{info}"
    );
    assert!(
        !info.contains("db0:"),
        "empty database has no db0 line: {info}"
    );
    fill(&mut con, 3);
    let _: () = redis::cmd("SET")
        .arg("t")
        .arg("v")
        .arg("EX")
        .arg(100)
        .query(&mut con)
        .expect("set");
    let info: String = redis::cmd("INFO")
        .arg("keyspace")
        .query(&mut con)
        .expect("info");
    assert_eq!(
        info.lines()
            .filter(|l| l.starts_with('#'))
            .collect::<Vec<_>>(),
        vec!["# Keyspace"],
        "{info}"
    );
    let line = info
        .lines()
        .find(|l| l.starts_with("db0:"))
        .unwrap_or_else(|| panic!("no db0 line: {info}"));
    assert!(
        line.starts_with("db0:keys=4,expires=1,avg_ttl="),
        "keyspace line {line:?}"
    );
}

/// SHUTDOWN closes the connection without a reply and the process exits with success.
#[test]
fn shutdown_exits_success() {
    let mut srv = Server::start();
    let mut s = srv.raw();
    s.write_all(b"*1\r\n$8\r\nSHUTDOWN\r\n").expect("write");
    let (got, closed) = read_to_close(&mut s);
    assert!(closed, "connection closed by SHUTDOWN");
    assert!(
        got.is_empty(),
        "SHUTDOWN sends no reply when it succeeds, got {:?}",
        String::from_utf8_lossy(&got)
    );
    let status = srv
        .wait_exit(Duration::from_secs(20))
        .expect("process exits after SHUTDOWN");
    assert!(status.success(), "exit status {status:?}");
}

/// SIGTERM stops the server with a success status.
#[test]
fn sigterm_exits_success() {
    let mut srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("set");
    let status = srv.terminate();
    assert!(status.success(), "exit status {status:?}");
}

/// A `--config` file provides the port (`port 0`), the shard count (`shards 8`, seen
/// as `sessiond_shards:8` in INFO server) and the coalescing wait (`coalesce-us 35`).
#[test]
fn config_file_is_applied() {
    let path = temp_path("ok.conf");
    std::fs::write(&path, "# test config\nport 0\n\nshards 8\ncoalesce-us 35\n")
        .expect("write config");
    let path_s = path.to_string_lossy().into_owned();
    let srv = Server::start_with(&["--config", &path_s]);
    let mut con = srv.conn();
    assert_eq!(
        info_field(&mut con, "server", "sessiond_shards").as_deref(),
        Some("8")
    );
    assert_eq!(
        info_field(&mut con, "server", "sessiond_coalesce_us").as_deref(),
        Some("35")
    );
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("set");
    assert_eq!(dbsize(&mut con), 1);
    drop(con);
    drop(srv);
    let _ = std::fs::remove_file(&path);
}

/// An unknown directive in the config file makes the process exit non-zero, with a
/// message on stderr naming the line and the directive.
#[test]
fn config_file_unknown_directive_fails() {
    let path = temp_path("bad.conf");
    std::fs::write(&path, "port 0\nbogus-directive 1\n").expect("write config");
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sessiond");
    // Wait for the exit on another thread, so the test waits on the event with a
    // deadline instead of polling.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(Duration::from_secs(20)) else {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        let _ = std::fs::remove_file(&path);
        panic!("sessiond kept running with an unknown directive in its config file");
    };
    let out = out.expect("output");
    let status = out.status;
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !status.success(),
        "exit status {status:?}, stderr: {stderr}"
    );
    assert!(stderr.contains("line 2"), "stderr names the line: {stderr}");
    assert!(
        stderr.contains("bogus-directive"),
        "stderr names the directive: {stderr}"
    );
}

/// Subcommand errors: unknown CONFIG/COMMAND subcommands and CONFIG GET without a pattern.
#[test]
fn server_subcommand_errors() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        err_of(&mut con, redis::cmd("CONFIG").arg("bogus")),
        "ERR unknown subcommand 'bogus'. Try CONFIG HELP."
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("COMMAND").arg("bogus")),
        "ERR unknown subcommand 'bogus'. Try COMMAND HELP."
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("CONFIG").arg("GET")),
        "ERR wrong number of arguments for 'config|get' command"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("DBSIZE").arg("x")),
        "ERR wrong number of arguments for 'dbsize' command"
    );
}

/// CONFIG SET with a value that is not a memory size, or below the 1mb minimum, fails with
/// Redis's message naming the parameter, and the setting is unchanged.
#[test]
fn config_set_bad_memory_value() {
    let srv = Server::start();
    let mut con = srv.conn();
    let before = config_get(&mut con, "proto-max-bulk-len");
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("proto-max-bulk-len")
                .arg("abc")
        ),
        "ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be a memory value"
    );
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("proto-max-bulk-len")
                .arg(1000)
        ),
        "ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1048576 and 9223372036854775807 inclusive"
    );
    assert_eq!(config_get(&mut con, "proto-max-bulk-len"), before);
}

/// COMMAND (all) has COMMAND COUNT entries; COMMAND LIST names every command once plus
/// the subcommands as `container|sub` (e.g. get, hset, multi, client|info, config|get).
#[test]
fn command_all_and_list() {
    let srv = Server::start();
    let mut con = srv.conn();
    let count: i64 = redis::cmd("COMMAND")
        .arg("COUNT")
        .query(&mut con)
        .expect("count");
    match v(&mut con, &redis::cmd("COMMAND")) {
        Value::Array(items) => assert_eq!(items.len() as i64, count),
        other => panic!("COMMAND must be an array, got {other:?}"),
    }
    let list: Vec<String> = redis::cmd("COMMAND")
        .arg("LIST")
        .query(&mut con)
        .expect("list");
    assert_eq!(
        list.iter().filter(|n| !n.contains('|')).count() as i64,
        count,
        "top-level names in COMMAND LIST"
    );
    for name in [
        "get",
        "hset",
        "multi",
        "scan",
        "client",
        "config",
        "client|info",
        "config|get",
    ] {
        assert_eq!(
            list.iter().filter(|n| *n == name).count(),
            1,
            "{name} once in COMMAND LIST"
        );
    }
}

/// INFO with an unknown section is empty; several sections may be asked at once and the
/// section name is case-insensitive.
#[test]
fn info_section_selection() {
    let srv = Server::start();
    let mut con = srv.conn();
    let none: String = redis::cmd("INFO")
        .arg("nosuchsection")
        .query(&mut con)
        .expect("info");
    assert_eq!(none, "");
    let two: String = redis::cmd("INFO")
        .arg("server")
        .arg("CLIENTS")
        .query(&mut con)
        .expect("info");
    let headers: Vec<&str> = two.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(headers, vec!["# Server", "# Clients"], "{two}");
}

/// Over RESP3, INFO is a verbatim string of format txt.
#[test]
fn info_resp3_verbatim() {
    let srv = Server::start();
    let mut con = srv.conn3();
    match v(&mut con, redis::cmd("INFO").arg("server")) {
        Value::VerbatimString { format, text } => {
            assert_eq!(format, redis::VerbatimFormat::Text);
            assert!(text.starts_with("# Server"), "{text}");
        }
        other => panic!("INFO over RESP3 must be a verbatim string, got {other:?}"),
    }
}

/// CONFIG RESETSTAT replies OK and resets total_commands_processed.
#[test]
fn config_resetstat() {
    let srv = Server::start();
    let mut con = srv.conn();
    for _ in 0..50 {
        let _: String = redis::cmd("PING").query(&mut con).expect("ping");
    }
    let read = |con: &mut redis::Connection| -> u64 {
        info_field(con, "stats", "total_commands_processed")
            .and_then(|s| s.parse().ok())
            .expect("total_commands_processed")
    };
    assert!(read(&mut con) >= 50);
    assert_eq!(
        v(&mut con, redis::cmd("CONFIG").arg("RESETSTAT")),
        Value::Okay
    );
    assert!(read(&mut con) < 5, "after RESETSTAT");
}

/// CONFIG SET takes several parameter/value pairs at once (Redis 7); naming one twice is
/// `duplicate parameter`; the values sessiond supports for save/appendonly are accepted.
#[test]
fn config_set_multiple_and_duplicates() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(
            &mut con,
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("proto-max-bulk-len")
                .arg("2mb")
                .arg("save")
                .arg("")
                .arg("appendonly")
                .arg("no")
        ),
        Value::Okay
    );
    assert_eq!(config_get(&mut con, "proto-max-bulk-len")[0].1, "2097152");
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("proto-max-bulk-len")
                .arg("3mb")
                .arg("proto-max-bulk-len")
                .arg("4mb")
        ),
        "ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - duplicate parameter"
    );
    assert_eq!(config_get(&mut con, "proto-max-bulk-len")[0].1, "2097152");
}

/// FLUSHALL ASYNC with a further argument is a syntax error.
#[test]
fn flushall_extra_argument() {
    let srv = Server::start();
    let mut con = srv.conn();
    fill(&mut con, 2);
    assert_eq!(
        err_of(&mut con, redis::cmd("FLUSHALL").arg("ASYNC").arg("x")),
        "ERR syntax error"
    );
    assert_eq!(dbsize(&mut con), 2);
}
