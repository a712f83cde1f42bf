//! Connection commands: PING, ECHO, HELLO, SELECT, CLIENT, RESET, QUIT, inline commands
//! and the exact error texts Redis 7 gives for arity and unknown commands.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use redis::{ConnectionLike, Value};
use support::{err_of, read_to_close, resp, roundtrip, Server};

/// Send one command and return the raw reply value, nested errors included.
fn raw_value(con: &mut redis::Connection, cmd: &redis::Cmd) -> Value {
    con.req_command(cmd).expect("reply")
}

/// Read from `s` until the bytes read so far end with `suffix` (or 10 s pass).
fn read_until_suffix(s: &mut TcpStream, suffix: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while !out.ends_with(suffix) && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

/// Look up `key` in a map reply (RESP3 map, or RESP2 flat array of pairs).
fn map_get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Map(pairs) => pairs.iter().find_map(|(k, val)| match k {
            Value::BulkString(b) if b == key.as_bytes() => Some(val),
            Value::SimpleString(s) if s == key => Some(val),
            _ => None,
        }),
        Value::Array(items) => items.chunks(2).find_map(|kv| match &kv[0] {
            Value::BulkString(b) if b == key.as_bytes() => kv.get(1),
            Value::SimpleString(s) if s == key => kv.get(1),
            _ => None,
        }),
        _ => None,
    }
}

fn client_id(con: &mut redis::Connection) -> i64 {
    redis::cmd("CLIENT")
        .arg("ID")
        .query(con)
        .expect("client id")
}

/// PING without an argument is the status reply PONG; with one it echoes it as a bulk
/// string; with two it is an arity error.
#[test]
fn ping_status_and_bulk() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        raw_value(&mut con, &redis::cmd("PING")),
        Value::SimpleString("PONG".into())
    );
    assert_eq!(
        raw_value(&mut con, redis::cmd("PING").arg("hello world")),
        Value::BulkString(b"hello world".to_vec())
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("PING").arg("a").arg("b")),
        "ERR wrong number of arguments for 'ping' command"
    );
    // On the wire: a status line, then a bulk string.
    let mut s = srv.raw();
    assert_eq!(roundtrip(&mut s, b"*1\r\n$4\r\nPING\r\n", 7), b"+PONG\r\n");
    assert_eq!(
        roundtrip(&mut s, b"*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n", 8),
        b"$2\r\nhi\r\n"
    );
}

/// ECHO returns its argument as a bulk string (binary-safe, empty allowed).
#[test]
fn echo_returns_bulk() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        raw_value(&mut con, redis::cmd("ECHO").arg("hi there")),
        Value::BulkString(b"hi there".to_vec())
    );
    assert_eq!(
        raw_value(&mut con, redis::cmd("ECHO").arg("")),
        Value::BulkString(Vec::new())
    );
    let bin: Vec<u8> = vec![0, 13, 10, 255];
    assert_eq!(
        raw_value(&mut con, redis::cmd("ECHO").arg(&bin)),
        Value::BulkString(bin)
    );
}

/// Wrong arity gives `ERR wrong number of arguments for '<cmd>' command` with the command
/// name in lower case whatever case it was sent in.
#[test]
fn wrong_arity_error_text() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        err_of(&mut con, &redis::cmd("ECHO")),
        "ERR wrong number of arguments for 'echo' command"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("ECHO").arg("a").arg("b")),
        "ERR wrong number of arguments for 'echo' command"
    );
    assert_eq!(
        err_of(&mut con, &redis::cmd("EcHo")),
        "ERR wrong number of arguments for 'echo' command"
    );
    assert_eq!(
        err_of(&mut con, &redis::cmd("GET")),
        "ERR wrong number of arguments for 'get' command"
    );
    // The connection is still usable after errors.
    assert_eq!(
        raw_value(&mut con, &redis::cmd("PING")),
        Value::SimpleString("PONG".into())
    );
}

/// An unknown command names itself as sent and quotes each argument followed by a space:
/// `ERR unknown command 'foo', with args beginning with: 'a' 'b' ` (exact bytes, trailing
/// space included); with no args the text ends right after the colon and a space.
#[test]
fn unknown_command_exact_text() {
    let srv = Server::start();
    let mut s = srv.raw();
    let expect = b"-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n";
    assert_eq!(
        roundtrip(&mut s, &resp(&[b"foo", b"a", b"b"]), expect.len()),
        expect.to_vec()
    );
    let expect = b"-ERR unknown command 'foo', with args beginning with: \r\n";
    assert_eq!(
        roundtrip(&mut s, &resp(&[b"foo"]), expect.len()),
        expect.to_vec()
    );
    // Case is preserved in the message.
    let expect = b"-ERR unknown command 'FoO', with args beginning with: 'x' \r\n";
    assert_eq!(
        roundtrip(&mut s, &resp(&[b"FoO", b"x"]), expect.len()),
        expect.to_vec()
    );
    // The connection stays open and usable.
    assert_eq!(roundtrip(&mut s, &resp(&[b"PING"]), 7), b"+PONG\r\n");
}

/// HELLO 3 replies with a map holding server, version, proto=3, id (the CLIENT ID),
/// mode, role and modules.
#[test]
fn hello3_returns_map() {
    let srv = Server::start();
    let mut con = srv.conn();
    let id = client_id(&mut con);
    let v = raw_value(&mut con, redis::cmd("HELLO").arg(3));
    let Value::Map(pairs) = &v else {
        panic!("HELLO 3 must reply with a RESP3 map, got {v:?}");
    };
    let keys: Vec<String> = pairs
        .iter()
        .map(|(k, _)| match k {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("map key must be a bulk string, got {other:?}"),
        })
        .collect();
    for k in [
        "server", "version", "proto", "id", "mode", "role", "modules",
    ] {
        assert!(keys.iter().any(|x| x == k), "HELLO map lacks {k}: {keys:?}");
    }
    assert_eq!(map_get(&v, "proto"), Some(&Value::Int(3)));
    assert_eq!(map_get(&v, "id"), Some(&Value::Int(id)));
    assert_eq!(
        map_get(&v, "mode"),
        Some(&Value::BulkString(b"standalone".to_vec()))
    );
    assert_eq!(
        map_get(&v, "role"),
        Some(&Value::BulkString(b"master".to_vec()))
    );
    assert_eq!(map_get(&v, "modules"), Some(&Value::Array(vec![])));
    match map_get(&v, "server") {
        Some(Value::BulkString(b)) => assert!(!b.is_empty()),
        other => panic!("server must be a bulk string, got {other:?}"),
    }
    match map_get(&v, "version") {
        Some(Value::BulkString(b)) => assert!(!b.is_empty()),
        other => panic!("version must be a bulk string, got {other:?}"),
    }
}

/// HELLO 2 replies in RESP2, where the map is a flat array with proto 2.
#[test]
fn hello2_returns_flat_array() {
    let srv = Server::start();
    let mut con = srv.conn();
    let v = raw_value(&mut con, redis::cmd("HELLO").arg(2));
    let Value::Array(items) = &v else {
        panic!("HELLO 2 must reply with a flat array, got {v:?}");
    };
    assert_eq!(items.len(), 14, "7 key/value pairs: {v:?}");
    assert_eq!(map_get(&v, "proto"), Some(&Value::Int(2)));
}

/// HELLO with an unsupported version is `NOPROTO unsupported protocol version`; a
/// non-integer version is `ERR Protocol version is not an integer or out of range`.
#[test]
fn hello_bad_versions() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        err_of(&mut con, redis::cmd("HELLO").arg(4)),
        "NOPROTO unsupported protocol version"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("HELLO").arg(1)),
        "NOPROTO unsupported protocol version"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("HELLO").arg("abc")),
        "ERR Protocol version is not an integer or out of range"
    );
    // The failed HELLO left the connection in RESP2.
    let mut s = srv.raw();
    let expect = b"-NOPROTO unsupported protocol version\r\n";
    assert_eq!(
        roundtrip(&mut s, b"HELLO 4\r\n", expect.len()),
        expect.to_vec()
    );
    assert_eq!(roundtrip(&mut s, &resp(&[b"GET", b"nokey"]), 5), b"$-1\r\n");
}

/// On the wire a missing key's null is `$-1\r\n` in RESP2 and `_\r\n` after HELLO 3.
#[test]
fn null_encoding_resp2_vs_resp3() {
    let srv = Server::start();
    let mut s = srv.raw();
    assert_eq!(
        roundtrip(&mut s, &resp(&[b"GET", b"missing"]), 5),
        b"$-1\r\n"
    );
    s.write_all(&resp(&[b"HELLO", b"3"])).expect("write");
    s.write_all(&resp(&[b"PING"])).expect("write");
    let hello = read_until_suffix(&mut s, b"+PONG\r\n");
    assert!(hello.starts_with(b"%"), "HELLO 3 reply is a map: {hello:?}");
    assert_eq!(roundtrip(&mut s, &resp(&[b"GET", b"missing"]), 3), b"_\r\n");
}

/// HELLO 3 SETNAME x names the connection (CLIENT GETNAME returns x).
#[test]
fn hello_setname() {
    let srv = Server::start();
    let mut con = srv.conn();
    let v = raw_value(&mut con, redis::cmd("HELLO").arg(3).arg("SETNAME").arg("x"));
    assert!(matches!(v, Value::Map(_)), "got {v:?}");
    assert_eq!(
        raw_value(&mut con, redis::cmd("CLIENT").arg("GETNAME")),
        Value::BulkString(b"x".to_vec())
    );
}

/// SELECT 0..15 are OK; SELECT 16 is out of range; a non-number is not an integer.
#[test]
fn select_database() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        raw_value(&mut con, redis::cmd("SELECT").arg(0)),
        Value::Okay
    );
    assert_eq!(
        raw_value(&mut con, redis::cmd("SELECT").arg(15)),
        Value::Okay
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("SELECT").arg(16)),
        "ERR DB index is out of range"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("SELECT").arg("x")),
        "ERR value is not an integer or out of range"
    );
}

/// CLIENT GETNAME is nil until CLIENT SETNAME sets it; an empty name clears it.
#[test]
fn client_setname_getname() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        raw_value(&mut con, redis::cmd("CLIENT").arg("GETNAME")),
        Value::Nil
    );
    assert_eq!(
        raw_value(&mut con, redis::cmd("CLIENT").arg("SETNAME").arg("web-1")),
        Value::Okay
    );
    assert_eq!(
        raw_value(&mut con, redis::cmd("CLIENT").arg("GETNAME")),
        Value::BulkString(b"web-1".to_vec())
    );
    // The name shows in CLIENT LIST and CLIENT INFO.
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query(&mut con)
        .expect("info");
    assert!(info.contains(" name=web-1 "), "CLIENT INFO: {info}");
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut con)
        .expect("list");
    assert!(list.contains(" name=web-1 "), "CLIENT LIST: {list}");
    assert_eq!(
        raw_value(&mut con, redis::cmd("CLIENT").arg("SETNAME").arg("")),
        Value::Okay
    );
    assert_eq!(
        raw_value(&mut con, redis::cmd("CLIENT").arg("GETNAME")),
        Value::Nil
    );
}

/// Names with spaces or newlines are rejected with Redis's exact message, and the old name
/// is kept.
#[test]
fn client_setname_rejects_spaces() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("good")
        .query(&mut con)
        .expect("setname");
    for bad in ["a b", "a\nb", "tab\there", "caf\u{e9}", "bell\u{7}"] {
        assert_eq!(
            err_of(&mut con, redis::cmd("CLIENT").arg("SETNAME").arg(bad)),
            "ERR Client names cannot contain spaces, newlines or special characters.",
            "name {bad:?}"
        );
    }
    assert_eq!(
        raw_value(&mut con, redis::cmd("CLIENT").arg("GETNAME")),
        Value::BulkString(b"good".to_vec())
    );
}

/// CLIENT ID is an integer, stable for a connection and different between connections.
#[test]
fn client_id_unique_per_connection() {
    let srv = Server::start();
    let mut a = srv.conn();
    let mut b = srv.conn();
    let va = raw_value(&mut a, redis::cmd("CLIENT").arg("ID"));
    let vb = raw_value(&mut b, redis::cmd("CLIENT").arg("ID"));
    let (Value::Int(ia), Value::Int(ib)) = (&va, &vb) else {
        panic!("CLIENT ID must be an integer: {va:?} {vb:?}");
    };
    assert_ne!(ia, ib);
    assert_eq!(client_id(&mut a), *ia, "stable for the connection");
    // CLIENT INFO shows the same id.
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query(&mut a)
        .expect("info");
    assert!(
        info.starts_with(&format!("id={ia} ")),
        "CLIENT INFO: {info}"
    );
}

/// CLIENT SETINFO LIB-NAME / LIB-VER reply OK and show as lib-name= / lib-ver= in CLIENT
/// INFO and in this connection's CLIENT LIST line.
#[test]
fn client_setinfo_visible() {
    let srv = Server::start();
    let mut con = srv.conn();
    let id = client_id(&mut con);
    assert_eq!(
        raw_value(
            &mut con,
            redis::cmd("CLIENT")
                .arg("SETINFO")
                .arg("LIB-NAME")
                .arg("mylib")
        ),
        Value::Okay
    );
    assert_eq!(
        raw_value(
            &mut con,
            redis::cmd("CLIENT")
                .arg("SETINFO")
                .arg("lib-ver")
                .arg("1.2.3")
        ),
        Value::Okay
    );
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query(&mut con)
        .expect("info");
    assert!(info.contains(" lib-name=mylib "), "CLIENT INFO: {info}");
    assert!(info.contains(" lib-ver=1.2.3"), "CLIENT INFO: {info}");
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut con)
        .expect("list");
    let line = list
        .lines()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .unwrap_or_else(|| panic!("no line for id={id} in {list}"));
    assert!(line.contains(" lib-name=mylib "), "line: {line}");
    assert!(line.contains(" lib-ver=1.2.3"), "line: {line}");
}

/// CLIENT LIST has exactly one `id=` line per open connection, each ending in a newline.
#[test]
fn client_list_one_line_per_connection() {
    let srv = Server::start();
    let mut cons: Vec<redis::Connection> = (0..3).map(|_| srv.conn()).collect();
    let ids: Vec<i64> = cons.iter_mut().map(client_id).collect();
    let v = raw_value(&mut cons[0], redis::cmd("CLIENT").arg("LIST"));
    let Value::BulkString(bytes) = v else {
        panic!("CLIENT LIST must be a bulk string, got {v:?}");
    };
    let list = String::from_utf8(bytes).expect("utf8");
    assert!(
        list.ends_with('\n'),
        "each line ends in a newline: {list:?}"
    );
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    for id in ids {
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with(&format!("id={id} ")))
                .count(),
            1,
            "id={id} in {list}"
        );
    }
    for l in &lines {
        assert!(l.contains(" addr=127.0.0.1:"), "line {l}");
    }
}

/// An unknown CLIENT subcommand: `ERR unknown subcommand 'bogus'. Try CLIENT HELP.`
#[test]
fn client_unknown_subcommand() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        err_of(&mut con, redis::cmd("CLIENT").arg("bogus")),
        "ERR unknown subcommand 'bogus'. Try CLIENT HELP."
    );
}

/// RESET replies with the status RESET, switches a RESP3 connection back to RESP2 and
/// clears the client name.
#[test]
fn reset_back_to_resp2() {
    let srv = Server::start();
    let mut s = srv.raw();
    s.write_all(&resp(&[b"HELLO", b"3", b"SETNAME", b"named"]))
        .expect("write");
    s.write_all(&resp(&[b"PING"])).expect("write");
    let _ = read_until_suffix(&mut s, b"+PONG\r\n");
    assert_eq!(roundtrip(&mut s, &resp(&[b"GET", b"missing"]), 3), b"_\r\n");
    assert_eq!(roundtrip(&mut s, &resp(&[b"RESET"]), 8), b"+RESET\r\n");
    assert_eq!(
        roundtrip(&mut s, &resp(&[b"GET", b"missing"]), 5),
        b"$-1\r\n"
    );
    assert_eq!(
        roundtrip(&mut s, &resp(&[b"CLIENT", b"GETNAME"]), 5),
        b"$-1\r\n"
    );
}

/// RESET inside MULTI discards the transaction: the queued command never runs and EXEC
/// afterwards is `EXEC without MULTI`.
#[test]
fn reset_exits_multi() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(raw_value(&mut con, &redis::cmd("MULTI")), Value::Okay);
    assert_eq!(
        raw_value(&mut con, redis::cmd("SET").arg("a").arg("1")),
        Value::SimpleString("QUEUED".into())
    );
    assert_eq!(
        raw_value(&mut con, &redis::cmd("RESET")),
        Value::SimpleString("RESET".into())
    );
    assert_eq!(
        err_of(&mut con, &redis::cmd("EXEC")),
        "ERR EXEC without MULTI"
    );
    assert_eq!(raw_value(&mut con, redis::cmd("GET").arg("a")), Value::Nil);
}

/// QUIT replies +OK and then the server closes the connection.
#[test]
fn quit_closes_connection() {
    let srv = Server::start();
    let mut s = srv.raw();
    s.write_all(&resp(&[b"QUIT"])).expect("write");
    let (got, closed) = read_to_close(&mut s);
    assert_eq!(got, b"+OK\r\n");
    assert!(closed, "connection must be closed after QUIT");
    // The server keeps serving others.
    let mut con = srv.conn();
    assert_eq!(
        raw_value(&mut con, &redis::cmd("PING")),
        Value::SimpleString("PONG".into())
    );
}

/// Inline commands: `PING\r\n` is `+PONG\r\n`, a bare `\n` terminator works, and double
/// quotes group words (`SET k "a b"` stores `a b`).
#[test]
fn inline_commands() {
    let srv = Server::start();
    let mut s = srv.raw();
    assert_eq!(roundtrip(&mut s, b"PING\r\n", 7), b"+PONG\r\n");
    assert_eq!(roundtrip(&mut s, b"PING\n", 7), b"+PONG\r\n");
    assert_eq!(roundtrip(&mut s, b"SET k \"a b\"\r\n", 5), b"+OK\r\n");
    assert_eq!(roundtrip(&mut s, b"GET k\r\n", 9), b"$3\r\na b\r\n");
    assert_eq!(roundtrip(&mut s, b"ECHO hello\r\n", 11), b"$5\r\nhello\r\n");
    let mut con = srv.conn();
    let v: String = redis::cmd("GET").arg("k").query(&mut con).expect("get");
    assert_eq!(v, "a b");
}

/// The unknown-command message quotes arguments only until 128 bytes of them are used:
/// each argument is cut to what remains of that budget.
#[test]
fn unknown_command_args_truncated() {
    let srv = Server::start();
    let mut s = srv.raw();
    let a = vec![b'a'; 100];
    let b = vec![b'b'; 100];
    let expect = format!(
        "-ERR unknown command 'foo', with args beginning with: '{}' '{}' \r\n",
        "a".repeat(100),
        "b".repeat(25)
    );
    s.write_all(&resp(&[b"foo", &a, &b, b"c"])).expect("write");
    let got = read_until_suffix(&mut s, b"\r\n");
    assert_eq!(String::from_utf8_lossy(&got), expect);
}

/// A subcommand with the wrong number of arguments names it as `client|setname`.
#[test]
fn subcommand_arity_error_text() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        err_of(&mut con, redis::cmd("CLIENT").arg("SETNAME")),
        "ERR wrong number of arguments for 'client|setname' command"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("CLIENT").arg("GETNAME").arg("x")),
        "ERR wrong number of arguments for 'client|getname' command"
    );
}

/// HELLO without a version replies the handshake map for the current protocol (proto 2
/// as a flat array on a fresh connection, a map with proto 3 after HELLO 3).
#[test]
fn hello_without_version() {
    let srv = Server::start();
    let mut con = srv.conn();
    let v = raw_value(&mut con, &redis::cmd("HELLO"));
    assert!(matches!(v, Value::Array(_)), "RESP2 HELLO: {v:?}");
    assert_eq!(map_get(&v, "proto"), Some(&Value::Int(2)));
    let _ = raw_value(&mut con, redis::cmd("HELLO").arg(3));
    let v = raw_value(&mut con, &redis::cmd("HELLO"));
    assert!(matches!(v, Value::Map(_)), "RESP3 HELLO: {v:?}");
    assert_eq!(map_get(&v, "proto"), Some(&Value::Int(3)));
}

/// CLIENT INFO describes the calling connection: db=0, resp=2 (resp=3 after HELLO 3) and
/// cmd=client|info.
#[test]
fn client_info_fields() {
    let srv = Server::start();
    let mut con = srv.conn();
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query(&mut con)
        .expect("info");
    assert!(
        info.ends_with('\n'),
        "CLIENT INFO ends with a newline: {info:?}"
    );
    let fields: Vec<&str> = info.split_whitespace().collect();
    for field in ["db=0", "resp=2", "cmd=client|info"] {
        assert!(
            fields.contains(&field),
            "CLIENT INFO lacks {field:?}: {info}"
        );
    }
    let _ = raw_value(&mut con, redis::cmd("HELLO").arg(3));
    let info = match raw_value(&mut con, redis::cmd("CLIENT").arg("INFO")) {
        Value::VerbatimString { text, .. } => text,
        Value::BulkString(b) => String::from_utf8(b).expect("utf8"),
        other => panic!("CLIENT INFO reply {other:?}"),
    };
    assert!(
        info.split_whitespace().any(|f| f == "resp=3"),
        "CLIENT INFO after HELLO 3: {info}"
    );
}

/// RESET also forgets WATCHed keys: a later change by another client does not abort the
/// next transaction.
#[test]
fn reset_clears_watch() {
    let srv = Server::start();
    let mut con = srv.conn();
    let mut other = srv.conn();
    assert_eq!(
        raw_value(&mut con, redis::cmd("WATCH").arg("w")),
        Value::Okay
    );
    assert_eq!(
        raw_value(&mut con, &redis::cmd("RESET")),
        Value::SimpleString("RESET".into())
    );
    let _: () = redis::cmd("SET")
        .arg("w")
        .arg("x")
        .query(&mut other)
        .expect("set");
    assert_eq!(raw_value(&mut con, &redis::cmd("MULTI")), Value::Okay);
    let _ = raw_value(&mut con, redis::cmd("SET").arg("w").arg("y"));
    assert_eq!(
        raw_value(&mut con, &redis::cmd("EXEC")),
        Value::Array(vec![Value::Okay])
    );
}

/// Inline commands split like redis-cli: single quotes group too, and double-quoted
/// strings understand escapes such as `\x41` and `\n`.
#[test]
fn inline_quoting_and_escapes() {
    let srv = Server::start();
    let mut s = srv.raw();
    assert_eq!(roundtrip(&mut s, b"SET k1 'c d'\r\n", 5), b"+OK\r\n");
    assert_eq!(roundtrip(&mut s, b"GET k1\r\n", 9), b"$3\r\nc d\r\n");
    assert_eq!(
        roundtrip(&mut s, b"SET k2 \"a\\x41\\n\"\r\n", 5),
        b"+OK\r\n"
    );
    assert_eq!(roundtrip(&mut s, b"GET k2\r\n", 9), b"$3\r\naA\n\r\n");
}

/// HELLO 3 SETNAME with an invalid name fails as a whole: the error is returned and the
/// connection stays in RESP2 without a name.
#[test]
fn hello_setname_invalid_keeps_protocol() {
    let srv = Server::start();
    let mut s = srv.raw();
    let expect = b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n";
    assert_eq!(
        roundtrip(
            &mut s,
            &resp(&[b"HELLO", b"3", b"SETNAME", b"a b"]),
            expect.len()
        ),
        expect.to_vec()
    );
    assert_eq!(roundtrip(&mut s, &resp(&[b"GET", b"nokey"]), 5), b"$-1\r\n");
    assert_eq!(
        roundtrip(&mut s, &resp(&[b"CLIENT", b"GETNAME"]), 5),
        b"$-1\r\n"
    );
}

/// An unknown HELLO option is `ERR Syntax error in HELLO option '<opt>'`.
#[test]
fn hello_unknown_option() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        err_of(&mut con, redis::cmd("HELLO").arg(3).arg("foo")),
        "ERR Syntax error in HELLO option 'foo'"
    );
}
