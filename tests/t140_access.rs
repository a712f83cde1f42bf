//! Access control: `--requirepass`, users with rules, Redis's NOAUTH / WRONGPASS / NOPERM
//! texts, HELLO AUTH, secrets kept out of CONFIG GET, INFO, CLIENT LIST and the log,
//! `--maxclients`, `--timeout`, and permissions enforced in a cluster before proposing.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::cluster::Cluster;
use support::{err_of, Server};

const PASS: &str = "s3cret-pa55";

/// Send raw lines, read one reply line.
fn say(s: &mut BufReader<TcpStream>, cmd: &str) -> String {
    s.get_mut().write_all(cmd.as_bytes()).expect("write");
    let mut line = String::new();
    s.read_line(&mut line).expect("read");
    line.trim_end().to_string()
}

fn raw(srv: &Server) -> BufReader<TcpStream> {
    BufReader::new(srv.raw())
}

#[test]
fn requirepass_gates_every_command_until_auth() {
    let srv = Server::start_with(&["--requirepass", PASS]);
    let mut s = raw(&srv);
    assert_eq!(say(&mut s, "GET k\r\n"), "-NOAUTH Authentication required.");
    assert_eq!(say(&mut s, "PING\r\n"), "-NOAUTH Authentication required.");
    // Unknown commands and wrong arity are reported first, as Redis does.
    assert!(say(&mut s, "NOSUCH\r\n").starts_with("-ERR unknown command 'NOSUCH'"));
    assert_eq!(
        say(&mut s, "HELLO 3\r\n"),
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
    );
    assert_eq!(
        say(&mut s, "AUTH wrong\r\n"),
        "-WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(
        say(&mut s, "AUTH nobody x\r\n"),
        "-WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(say(&mut s, &format!("AUTH {PASS}\r\n")), "+OK");
    assert_eq!(say(&mut s, "SET k v\r\n"), "+OK");
    // RESET logs the connection out again.
    assert_eq!(say(&mut s, "RESET\r\n"), "+RESET");
    assert_eq!(say(&mut s, "GET k\r\n"), "-NOAUTH Authentication required.");
    assert_eq!(say(&mut s, &format!("AUTH default {PASS}\r\n")), "+OK");
    assert_eq!(say(&mut s, "GET k\r\n"), "$1");

    // HELLO AUTH authenticates and switches protocol at once (redis-py, node-redis).
    let mut h = raw(&srv);
    assert_eq!(
        say(&mut h, &format!("HELLO 3 AUTH default {PASS}\r\n")),
        "%7"
    );
    // A MULTI with an unauthenticated command fails as a whole.
    let mut m = raw(&srv);
    assert_eq!(say(&mut m, "MULTI\r\n"), "-NOAUTH Authentication required.");

    // The redis crate with the password in the URL.
    let url = format!("redis://:{PASS}@127.0.0.1:{}/", srv.port);
    let mut con = redis::Client::open(url)
        .expect("url")
        .get_connection()
        .expect("connect with a password");
    let v: String = redis::cmd("GET").arg("k").query(&mut con).expect("GET");
    assert_eq!(v, "v");
}

#[test]
fn users_have_rules_and_secrets_stay_hidden() {
    let srv = Server::start_with(&[
        "--requirepass",
        PASS,
        "--user",
        "reader:rpass-123:readonly",
        "--user",
        "app:apass-456:noadmin",
    ]);
    let mut s = raw(&srv);
    assert_eq!(say(&mut s, "AUTH reader rpass-123\r\n"), "+OK");
    assert_eq!(say(&mut s, "GET k\r\n"), "$-1");
    assert_eq!(
        say(&mut s, "SET k v\r\n"),
        "-NOPERM User reader has no permissions to run the 'set' command"
    );
    assert_eq!(
        say(&mut s, "CONFIG GET maxclients\r\n"),
        "-NOPERM User reader has no permissions to run the 'config|get' command"
    );
    assert_eq!(say(&mut s, "AUTH app apass-456\r\n"), "+OK");
    assert_eq!(say(&mut s, "SET k v\r\n"), "+OK");
    assert_eq!(
        say(&mut s, "FLUSHALL\r\n"),
        "-NOPERM User app has no permissions to run the 'flushall' command"
    );
    assert_eq!(
        say(&mut s, "SHUTDOWN\r\n"),
        "-NOPERM User app has no permissions to run the 'shutdown' command"
    );
    // The default user (all rules) sees no secret anywhere.
    let url = format!("redis://:{PASS}@127.0.0.1:{}/", srv.port);
    let mut con = redis::Client::open(url)
        .expect("url")
        .get_connection()
        .expect("connect");
    let all: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("*")
        .query(&mut con)
        .expect("CONFIG GET *");
    let info: String = redis::cmd("INFO")
        .arg("everything")
        .query(&mut con)
        .expect("INFO");
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut con)
        .expect("CLIENT LIST");
    let log = srv.log_text();
    for secret in [PASS, "rpass-123", "apass-456"] {
        assert!(
            !all.iter().any(|v| v.contains(secret)),
            "CONFIG GET shows {secret}"
        );
        assert!(!info.contains(secret), "INFO shows {secret}");
        assert!(!clients.contains(secret), "CLIENT LIST shows {secret}");
        assert!(!log.contains(secret), "the log shows {secret}");
    }
    let e = err_of(&mut con, redis::cmd("AUTH").arg("app").arg("wrong"));
    assert_eq!(
        e,
        "WRONGPASS invalid username-password pair or user is disabled."
    );
}

#[test]
fn without_a_password_auth_is_refused_like_redis() {
    let srv = Server::start();
    let mut con = srv.conn();
    let e = err_of(&mut con, redis::cmd("AUTH").arg("x"));
    assert!(e.contains("without any password configured"), "{e}");
    // The default user has no password: any password is accepted for it.
    let _: () = redis::cmd("AUTH")
        .arg("default")
        .arg("x")
        .query(&mut con)
        .expect("AUTH");
}

#[test]
fn maxclients_refuses_with_redis_error() {
    let srv = Server::start_with(&["--maxclients", "2"]);
    let _a = srv.conn();
    let _b = srv.conn();
    let mut c = srv.raw();
    let mut buf = String::new();
    c.read_to_string(&mut buf).expect("read until closed");
    assert_eq!(buf, "-ERR max number of clients reached\r\n");
    let rejected: u64 = {
        let mut con = _a;
        support::info_field(&mut con, "stats", "rejected_connections")
            .and_then(|v| v.parse().ok())
            .expect("rejected_connections")
    };
    assert_eq!(rejected, 1);
}

#[test]
fn idle_clients_are_closed_after_timeout() {
    let srv = Server::start_with(&["--timeout", "1"]);
    let mut idle = srv.raw();
    let start = Instant::now();
    let mut buf = [0u8; 16];
    // The server closes the connection: read returns 0 (bounded by the 10 s read timeout).
    let n = idle.read(&mut buf).expect("read");
    assert_eq!(n, 0, "expected the server to close the idle connection");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
    // A client that keeps talking stays.
    let mut busy = raw(&srv);
    let until = Instant::now() + Duration::from_millis(1600);
    while Instant::now() < until {
        assert_eq!(say(&mut busy, "PING\r\n"), "+PONG");
    }
}

#[test]
fn a_cluster_checks_permissions_before_proposing() {
    // The default user keeps no password here, so that the harness can find the leader.
    let c = Cluster::start(3, &["--user", "reader:rpw-789:readonly"]);
    let l = c.wait_leader(Duration::from_secs(15));
    let f = (l + 1) % 3;
    let mut s = raw(c.node(f));
    assert_eq!(say(&mut s, "AUTH reader rpw-789\r\n"), "+OK");
    assert_eq!(
        say(&mut s, "SET k v\r\n"),
        "-NOPERM User reader has no permissions to run the 'set' command"
    );
    assert_eq!(
        say(&mut s, "RAFT.SNAPSHOT\r\n"),
        "-NOPERM User reader has no permissions to run the 'raft.snapshot' command"
    );
    assert_eq!(say(&mut s, "GET k\r\n"), "$-1", "nothing was written");
    assert_eq!(say(&mut s, "AUTH default any\r\n"), "+OK");
    assert_eq!(say(&mut s, "SET k v\r\n"), "+OK");
}

fn stat(con: &mut redis::Connection, field: &str) -> u64 {
    support::info_field(con, "stats", field)
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX)
}

/// A client that pipelines GETs of large values and never reads is cut once it stops
/// accepting replies, and its unread replies never cost more than a batch.
#[test]
fn a_client_that_never_reads_is_disconnected() {
    let srv = Server::start_with(&["--client-write-timeout", "1"]);
    let mut con = srv.conn();
    let big = vec![b'x'; 256 * 1024];
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&big)
        .query(&mut con)
        .expect("SET");
    let baseline: u64 = support::info_field(&mut con, "memory", "used_memory")
        .and_then(|v| v.parse().ok())
        .expect("used_memory");
    let mut greedy = srv.raw();
    // 2,000 GETs ask for 512 MB of replies; the client reads none of them.
    greedy
        .write_all(&b"GET big\r\n".repeat(2000))
        .expect("send the pipeline");
    assert!(
        support::wait_until(Duration::from_secs(20), || {
            stat(&mut con, "client_output_buffer_limit_disconnections") == 1
        }),
        "the client was not cut"
    );
    let used: u64 = support::info_field(&mut con, "memory", "used_memory")
        .and_then(|v| v.parse().ok())
        .expect("used_memory");
    assert!(
        used < baseline + 64 * 1024 * 1024,
        "unread replies cost {} MB",
        (used - baseline) >> 20
    );
    let n: String = support::info_field(&mut con, "clients", "connected_clients").expect("clients");
    assert_eq!(n, "1");
    drop(greedy);
}

/// One reply over `--client-output-limit` closes the connection instead of being sent.
#[test]
fn a_reply_over_the_output_limit_closes_the_connection() {
    let srv = Server::start_with(&["--client-output-limit", "1048576"]);
    let mut con = srv.conn();
    let half = vec![b'y'; 512 * 1024];
    for k in ["a", "b", "c"] {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg(&half)
            .query(&mut con)
            .expect("SET");
    }
    let mut s = srv.raw();
    s.write_all(b"MGET a b c\r\n").expect("send");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(got.is_empty(), "a {} byte reply was sent", got.len());
    assert_eq!(
        stat(&mut con, "client_output_buffer_limit_disconnections"),
        1
    );
    // Smaller replies are fine.
    let v: Vec<Vec<u8>> = redis::cmd("MGET").arg("a").query(&mut con).expect("MGET");
    assert_eq!(v[0].len(), 512 * 1024);
}

/// A non-loopback address of this machine, to connect from something other than
/// loopback (the route lookup of a UDP "connect" sends nothing).
fn local_non_loopback_ip() -> std::net::IpAddr {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
    s.connect("192.0.2.1:9")
        .expect("this test needs a non-loopback interface with a route");
    let ip = s.local_addr().expect("local addr").ip();
    assert!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "no non-loopback address: {ip}"
    );
    ip
}

fn first_line_from(ip: std::net::IpAddr, port: u16, send: &[u8]) -> String {
    let s = TcpStream::connect((ip, port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut r = BufReader::new(s);
    r.get_mut().write_all(send).expect("write");
    let mut line = String::new();
    let _ = r.read_line(&mut line);
    line.trim_end().to_string()
}

/// Protected mode: bound to all interfaces with no password, clients that are not on
/// loopback get Redis's DENIED text; `--protected-mode no` or a password lifts it.
#[test]
fn protected_mode_refuses_remote_clients_without_a_password() {
    let ip = local_non_loopback_ip();
    let open = Server::start_with(&["--bind", "0.0.0.0"]);
    let denied = first_line_from(ip, open.port, b"PING\r\n");
    assert!(
        denied.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user."),
        "{denied}"
    );
    let mut local = raw(&open);
    assert_eq!(
        say(&mut local, "PING\r\n"),
        "+PONG",
        "loopback clients are served"
    );

    let off = Server::start_with(&["--bind", "0.0.0.0", "--protected-mode", "no"]);
    assert_eq!(first_line_from(ip, off.port, b"PING\r\n"), "+PONG");

    let locked = Server::start_with(&["--bind", "0.0.0.0", "--requirepass", PASS]);
    assert_eq!(
        first_line_from(ip, locked.port, b"PING\r\n"),
        "-NOAUTH Authentication required."
    );
}

/// An unfinished command growing past `--client-query-buffer-limit` closes the
/// connection, and nothing of it stays.
#[test]
fn a_command_over_the_query_buffer_limit_closes_the_connection() {
    let srv = Server::start_with(&["--client-query-buffer-limit", "1mb"]);
    let mut con = srv.conn();
    let mut s = srv.raw();
    let _ = s.write_all(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$5000000\r\n");
    let chunk = vec![b'z'; 64 * 1024];
    for _ in 0..40 {
        if s.write_all(&chunk).is_err() {
            break; // already cut
        }
    }
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "the server answered: {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert_eq!(
        stat(&mut con, "client_query_buffer_limit_disconnections"),
        1
    );
    let exists: i64 = redis::cmd("EXISTS")
        .arg("big")
        .query(&mut con)
        .expect("EXISTS");
    assert_eq!(exists, 0);
}
