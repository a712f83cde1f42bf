//! Protocol-level tests on raw sockets: malformed input gets Redis's error and a closed
//! connection, the server stays healthy with its data intact, inline commands, limits,
//! pipelining and byte-by-byte delivery.

mod support;

use std::io::Write;
use std::time::Duration;

use support::{read_at_least, read_to_close, roundtrip, Server};

/// Send `bad` on a fresh connection; expect exactly `-ERR Protocol error: <what>` and EOF.
fn assert_protocol_error(srv: &Server, bad: &[u8], what: &str) {
    let mut s = srv.raw();
    s.write_all(bad).expect("write");
    let (got, closed) = read_to_close(&mut s);
    let text = String::from_utf8_lossy(&got);
    assert_eq!(
        text,
        format!("-ERR Protocol error: {what}\r\n"),
        "input {:?}",
        String::from_utf8_lossy(&bad[..bad.len().min(60)])
    );
    assert!(closed, "connection must be closed after a protocol error");
}

/// Each malformed frame gets Redis's exact message, the connection closes, and the server
/// keeps serving with its data intact.
#[test]
fn malformed_frames_get_redis_errors_and_close() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("keep")
        .arg("me")
        .query(&mut con)
        .expect("set");

    assert_protocol_error(&srv, b"*1\r\n$x\r\n", "invalid bulk length");
    assert_protocol_error(&srv, b"*1\r\n$-5\r\nabc\r\n", "invalid bulk length");
    assert_protocol_error(&srv, b"*abc\r\n", "invalid multibulk length");
    assert_protocol_error(&srv, b"*1\r\n+foo\r\n", "expected '$', got '+'");
    assert_protocol_error(&srv, b"*1\r\n$536870913\r\n", "invalid bulk length");
    assert_protocol_error(&srv, b"*1048577\r\n", "invalid multibulk length");
    assert_protocol_error(&srv, b"SET \"abc\r\n", "unbalanced quotes in request");
    assert_protocol_error(&srv, b"SET \"a\"b c\r\n", "unbalanced quotes in request");
    let mut long = vec![b'a'; 64 * 1024 + 10];
    long[0] = b'G';
    assert_protocol_error(&srv, &long, "too big inline request");

    // A good command before the bad frame in the same write is answered first.
    let mut s = srv.raw();
    s.write_all(b"PING\r\n*1\r\n$x\r\n").expect("write");
    let (got, closed) = read_to_close(&mut s);
    assert_eq!(
        got,
        b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(closed);

    let v: String = redis::cmd("GET").arg("keep").query(&mut con).expect("get");
    assert_eq!(v, "me");
    let pong: String = redis::cmd("PING").query(&mut srv.conn()).expect("ping");
    assert_eq!(pong, "PONG");
}

/// Invalid UTF-8 and binary bytes in inline commands and keys are fine: RESP is
/// binary-safe and inline arguments are plain bytes.
#[test]
fn binary_and_invalid_utf8_inline() {
    let srv = Server::start();
    let mut s = srv.raw();
    let got = roundtrip(&mut s, b"SET \xff\xfe \xc3\x28\r\nGET \xff\xfe\r\n", 13);
    assert_eq!(got, b"+OK\r\n$2\r\n\xc3\x28\r\n");
    // Escapes in double quotes.
    let got = roundtrip(&mut s, b"SET k \"\\x41\\n\\t\"\r\nSTRLEN k\r\n", 9);
    assert_eq!(got, b"+OK\r\n:3\r\n");
}

/// Blank inline lines and empty multibulks (`*0`, `*-1`) are skipped silently.
#[test]
fn empty_requests_are_ignored() {
    let srv = Server::start();
    let mut s = srv.raw();
    let got = roundtrip(&mut s, b"\r\n\n   \r\n*0\r\n*-1\r\nPING\r\n", 7);
    assert_eq!(got, b"+PONG\r\n");
}

/// A command delivered one byte per write is decoded correctly.
#[test]
fn byte_by_byte_delivery() {
    let srv = Server::start();
    let mut s = srv.raw();
    let req = b"*3\r\n$3\r\nSET\r\n$5\r\nk\r\nk2\r\n$6\r\nv\x00\r\nv2\r\n*2\r\n$3\r\nGET\r\n$5\r\nk\r\nk2\r\n";
    for b in req.iter() {
        s.write_all(&[*b]).expect("write");
        s.flush().expect("flush");
    }
    let got = read_at_least(&mut s, 5 + 12);
    assert_eq!(got, b"+OK\r\n$6\r\nv\x00\r\nv2\r\n");
}

/// 20,000 pipelined commands in one write get 20,000 replies in order.
#[test]
fn deep_pipeline_in_order() {
    let srv = Server::start();
    let mut s = srv.raw();
    let mut req = Vec::new();
    let mut expect = Vec::new();
    for i in 0..20_000 {
        let v = i.to_string();
        req.extend_from_slice(
            format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n{}\r\n", v.len(), v).as_bytes(),
        );
        req.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        expect.extend_from_slice(b"+OK\r\n");
        expect.extend_from_slice(format!("${}\r\n{}\r\n", v.len(), v).as_bytes());
    }
    let got = roundtrip(&mut s, &req, expect.len());
    assert_eq!(got.len(), expect.len());
    assert!(got == expect, "replies out of order or wrong");
}

/// A 20 MB value round-trips, and `proto-max-bulk-len` set at run time rejects a bulk
/// above it.
#[test]
fn big_values_and_runtime_bulk_limit() {
    let srv = Server::start();
    let mut con = srv.conn();
    let big = vec![7u8; 20 * 1024 * 1024];
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&big[..])
        .query(&mut con)
        .expect("set");
    let back: Vec<u8> = redis::cmd("GET").arg("big").query(&mut con).expect("get");
    assert!(back == big);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("proto-max-bulk-len")
        .arg("2mb")
        .query(&mut con)
        .expect("config set");
    assert_protocol_error(
        &srv,
        b"*2\r\n$3\r\nGET\r\n$2097153\r\n",
        "invalid bulk length",
    );
    let mut s = srv.raw();
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let ok = format!(
        "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2097152\r\n{}\r\n",
        "y".repeat(2097152)
    );
    let got = roundtrip(&mut s, ok.as_bytes(), 5);
    assert_eq!(got, b"+OK\r\n");
}

/// `--proto-max-bulk-len` on the command line sets the limit from the start.
#[test]
fn bulk_limit_flag() {
    let srv = Server::start_with(&["--proto-max-bulk-len", "1048576"]);
    assert_protocol_error(&srv, b"*1\r\n$1048577\r\n", "invalid bulk length");
    let mut s = srv.raw();
    let got = roundtrip(&mut s, b"*1\r\n$4\r\nPING\r\n", 7);
    assert_eq!(got, b"+PONG\r\n");
}

/// A corpus of adversarial inputs, each on its own connection: none crashes the server,
/// and afterwards it still answers with its data intact.
#[test]
fn adversarial_corpus_leaves_server_healthy() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("canary")
        .arg("alive")
        .query(&mut con)
        .expect("set");
    let corpus: Vec<Vec<u8>> = vec![
        b"*".to_vec(),
        b"*\r\n".to_vec(),
        b"$\r\n".to_vec(),
        b"*1\r\n$\r\n".to_vec(),
        b"*1\r\n$3\r\nabcXY".to_vec(),
        b"*2\r\n$3\r\nGET\r\n*1\r\n".to_vec(),
        b"*9223372036854775807\r\n".to_vec(),
        b"*-9223372036854775808\r\n".to_vec(),
        b"*1\r\n$9223372036854775807\r\n".to_vec(),
        b"*1\r\n$99999999999999999999999\r\n".to_vec(),
        vec![0u8; 1000],
        vec![b'*'; 70_000],
        b"\"\"\"\r\n".to_vec(),
        b"'\r\n".to_vec(),
        b"GET \"\\xZZ\"\r\n".to_vec(),
        [b"*2\r\n$3\r\nGET\r\n$".as_slice(), &[b'9'; 70_000]].concat(),
        b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$-1\r\n".to_vec(),
        // A null array (ignored, as Redis does) and a binary key.
        b"*-1\r\n".to_vec(),
        b"*3\r\n$3\r\nSET\r\n$4\r\n\x00\xff\r\n\r\n$1\r\nb\r\n".to_vec(),
        // Invalid UTF-8 in an inline command, and nesting a command may not have.
        b"GET \xc3\x28\xff\r\n".to_vec(),
        b"*1\r\n*1\r\n*1\r\n$4\r\nPING\r\n".to_vec(),
    ];
    for input in &corpus {
        let mut s = srv.raw();
        let _ = s.write_all(input);
        // End the request: the server must answer (or not) and close, never hang.
        let _ = s.shutdown(std::net::Shutdown::Write);
        let (_, closed) = read_to_close(&mut s);
        assert!(closed, "server kept the connection open after EOF");
    }
    let v: String = redis::cmd("GET")
        .arg("canary")
        .query(&mut srv.conn())
        .expect("get");
    assert_eq!(v, "alive");
    let b: Vec<u8> = redis::cmd("GET")
        .arg(&b"\x00\xff\r\n"[..])
        .query(&mut srv.conn())
        .expect("get binary key");
    assert_eq!(b, b"b");
}
