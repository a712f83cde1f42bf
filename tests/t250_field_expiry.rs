//! Hash-field expiry (Redis 7.4's `HEXPIRE` family): replies and error texts as Redis
//! 7.4's `t_hash.c` gives them; fields expire through the timing wheel as promptly as
//! keys, raising `hexpired` (and `del` with the last field); `HSET` clears a field's
//! deadline and `HINCRBY` keeps it; deadlines survive `DUMP`/`RESTORE`, `COPY` and
//! `RENAME`, and `WATCH` sees them; in a cluster a field expires on every node, and a
//! deadline removed before it fires is not applied.

mod support;

use std::time::{Duration, Instant};

use support::cluster::Cluster;
use support::diff::{b, Conn, Reply};
use support::{wait_until, Server};

fn cmd(line: &str) -> Vec<Vec<u8>> {
    line.split(' ').map(b).collect()
}

fn ints(v: &[i64]) -> Reply {
    Reply::Array(Some(v.iter().map(|&n| Reply::Int(n)).collect()))
}

fn err(s: &str) -> Reply {
    Reply::Error(s.into())
}

#[test]
fn replies_and_errors_follow_redis_7_4() {
    let s = Server::start();
    let mut c = Conn::open(s.port, false);
    c.call(&cmd("HSET h a 1 b 2 c 3"));
    c.call(&cmd("SET str x"));
    let cases: &[(&str, Reply)] = &[
        ("HEXPIRE h 100 FIELDS 2 a nofield", ints(&[1, -2])),
        ("HTTL h FIELDS 3 a b nofield", ints(&[100, -1, -2])),
        ("HEXPIRE h 50 NX FIELDS 2 a b", ints(&[0, 1])),
        ("HEXPIRE h 200 XX FIELDS 2 a c", ints(&[1, 0])),
        ("HEXPIRE h 100 GT FIELDS 2 a c", ints(&[0, 0])),
        ("HEXPIRE h 100 LT FIELDS 2 a c", ints(&[1, 1])),
        ("HEXPIRETIME h FIELDS 1 nofield", ints(&[-2])),
        ("HPERSIST h FIELDS 3 a b nofield", ints(&[1, 1, -2])),
        ("HPERSIST h FIELDS 1 a", ints(&[-1])),
        ("HTTL missing FIELDS 2 a b", ints(&[-2, -2])),
        ("HEXPIRE missing 10 FIELDS 1 a", ints(&[-2])),
        ("HPERSIST missing FIELDS 1 a", ints(&[-2])),
        ("HEXPIRE h 0 FIELDS 1 c", ints(&[2])),
        ("HEXISTS h c", Reply::Int(0)),
        ("HEXPIREAT h 1 FIELDS 1 b", ints(&[2])),
        ("HLEN h", Reply::Int(1)),
        (
            "HEXPIRE str 10 FIELDS 1 a",
            err("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ),
        (
            "HTTL str FIELDS 1 a",
            err("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ),
        (
            "HEXPIRE h x FIELDS 1 a",
            err("ERR value is not an integer or out of range"),
        ),
        (
            "HEXPIRE h -1 FIELDS 1 a",
            err("ERR invalid expire time, must be >= 0"),
        ),
        (
            "HEXPIRE h 70368744177664 FIELDS 1 a",
            err("ERR invalid expire time in 'hexpire' command"),
        ),
        (
            "HPEXPIREAT h 70368744177664 FIELDS 1 a",
            err("ERR invalid expire time in 'hpexpireat' command"),
        ),
        (
            "HEXPIRE h 10 FIELDS 0 a",
            err("ERR Parameter `numFields` should be greater than 0"),
        ),
        (
            "HEXPIRE h 10 FIELDS x a",
            err("ERR Parameter `numFields` should be greater than 0"),
        ),
        (
            "HEXPIRE h 10 FIELDS 2 a",
            err("ERR The `numfields` parameter must match the number of arguments"),
        ),
        (
            "HEXPIRE h 10 NX NX 1 a",
            err("ERR Mandatory argument FIELDS is missing or not at the right position"),
        ),
        (
            "HEXPIRE h 10 FOO 1 a",
            err("ERR Mandatory argument FIELDS is missing or not at the right position"),
        ),
        (
            "HTTL h FIELDS 0 a",
            err("ERR Number of fields must be a positive integer"),
        ),
        (
            "HPERSIST h FOO 1 a",
            err("ERR Mandatory argument FIELDS is missing or not at the right position"),
        ),
        (
            "HTTL h FIELDS",
            err("ERR wrong number of arguments for 'httl' command"),
        ),
    ];
    let mut bad = Vec::new();
    for (line, want) in cases {
        let got = c.call(&cmd(line));
        if got != *want {
            bad.push(format!("{line}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // Milliseconds and absolute forms agree with each other.
    c.call(&cmd("HSET t f v"));
    c.call(&cmd("HPEXPIRE t 100000 FIELDS 1 f"));
    let (Reply::Array(Some(pt)), Reply::Array(Some(at))) = (
        c.call(&cmd("HPTTL t FIELDS 1 f")),
        c.call(&cmd("HPEXPIRETIME t FIELDS 1 f")),
    ) else {
        panic!("HPTTL / HPEXPIRETIME");
    };
    let (Reply::Int(pt), Reply::Int(at)) = (&pt[0], &at[0]) else {
        panic!("ints");
    };
    assert!((99_000..=100_000).contains(pt), "HPTTL {pt}");
    let Reply::Array(Some(secs)) = c.call(&cmd("HEXPIRETIME t FIELDS 1 f")) else {
        panic!("HEXPIRETIME");
    };
    assert_eq!(secs[0], Reply::Int((at + 999) / 1000));
}

/// Fields expire on time through the timing wheel, with `hexpired` (and `del` when the
/// last goes); HSET clears a deadline, HINCRBY keeps it; the deadlines travel with
/// DUMP/RESTORE, COPY and RENAME; WATCH sees HEXPIRE.
#[test]
fn fields_expire_on_time_and_deadlines_travel() {
    let s = Server::start();
    let mut c = Conn::open(s.port, false);
    c.call(&cmd("CONFIG SET notify-keyspace-events Khg"));
    let mut sub = Conn::open(s.port, false);
    sub.call(&cmd("PSUBSCRIBE __keyspace@0__:sess*"));

    c.call(&cmd("HSET sess user u1 csrf t1 flash hi"));
    c.call(&cmd("HPEXPIRE sess 80 FIELDS 2 csrf flash"));
    let start = Instant::now();
    let mut events = Vec::new();
    while events.len() < 3 {
        if let Reply::Array(Some(m)) = sub.read() {
            events.push(format!("{:?}", m[3]));
        }
    }
    let late = start.elapsed();
    assert_eq!(events[..2], ["\"hset\"", "\"hexpire\""]);
    assert_eq!(events[2], "\"hexpired\"");
    assert!(late >= Duration::from_millis(75), "expired early: {late:?}");
    assert!(late < Duration::from_millis(600), "expired late: {late:?}");
    println!("a field with an 80 ms deadline expired after {late:?}");
    assert_eq!(
        c.call(&cmd("HGETALL sess")),
        Reply::Array(Some(vec![
            Reply::Bulk(Some(b("user"))),
            Reply::Bulk(Some(b("u1")))
        ]))
    );
    // The last field's expiry removes the key.
    c.call(&cmd("HPEXPIRE sess 20 FIELDS 1 user"));
    assert!(wait_until(Duration::from_secs(2), || {
        c.call(&cmd("EXISTS sess")) == Reply::Int(0)
    }));
    let mut tail = Vec::new();
    while tail.last().map(String::as_str) != Some("\"del\"") {
        if let Reply::Array(Some(m)) = sub.read() {
            tail.push(format!("{:?}", m[3]));
        }
    }
    assert_eq!(tail, ["\"hexpire\"", "\"hexpired\"", "\"del\""]);

    // HSET clears a field's deadline; HINCRBY keeps it.
    c.call(&cmd("HSET x a 1 n 1"));
    c.call(&cmd("HEXPIRE x 100 FIELDS 2 a n"));
    c.call(&cmd("HSET x a 2"));
    c.call(&cmd("HINCRBY x n 5"));
    assert_eq!(c.call(&cmd("HTTL x FIELDS 2 a n")), ints(&[-1, 100]));

    // DUMP/RESTORE, COPY and RENAME keep the deadlines, and they still fire.
    c.call(&cmd("HSET d keep 1 go 2"));
    c.call(&cmd("HPEXPIRE d 150 FIELDS 1 go"));
    let Reply::Bulk(Some(payload)) = c.call(&cmd("DUMP d")) else {
        panic!("DUMP");
    };
    c.call(&[b("RESTORE"), b("d2"), b("0"), payload]);
    c.call(&cmd("COPY d d3"));
    c.call(&cmd("RENAME d d4"));
    for k in ["d2", "d3", "d4"] {
        let Reply::Array(Some(t)) = c.call(&cmd(&format!("HPTTL {k} FIELDS 2 keep go"))) else {
            panic!("HPTTL {k}");
        };
        assert_eq!(t[0], Reply::Int(-1), "{k}");
        assert!(
            matches!(t[1], Reply::Int(n) if n > 0 && n <= 150),
            "{k}: {t:?}"
        );
    }
    assert!(wait_until(Duration::from_secs(2), || {
        ["d2", "d3", "d4"]
            .iter()
            .all(|k| c.call(&cmd(&format!("HLEN {k}"))) == Reply::Int(1))
    }));

    // WATCH: an HEXPIRE on the watched key aborts the transaction.
    let mut other = Conn::open(s.port, false);
    c.call(&cmd("HSET w f v"));
    c.call(&cmd("WATCH w"));
    other.call(&cmd("HEXPIRE w 100 FIELDS 1 f"));
    c.call(&cmd("MULTI"));
    c.call(&cmd("HGET w f"));
    assert_eq!(c.call(&cmd("EXEC")), Reply::Array(None));

    // INFO keyspace counts the hashes with field deadlines.
    let Reply::Bulk(Some(info)) = c.call(&cmd("INFO keyspace")) else {
        panic!("INFO");
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    assert!(info.contains(",subexpiry=2"), "{info}");
}

/// In a cluster: a field's deadline expires it on every node; a deadline removed before
/// it fires (HPERSIST) leaves the field on every node.
#[test]
fn cluster_expires_fields_on_every_node() {
    let c = Cluster::start(3, &[]);
    let l = c.wait_leader(Duration::from_secs(15));
    let f = (l + 1) % 3;
    let mut w = Conn::open(c.node(f).port, false);
    w.call(&cmd("HSET s user u1 csrf t1 keep k"));
    w.call(&cmd("HPEXPIRE s 100 FIELDS 2 csrf keep"));
    w.call(&cmd("HPERSIST s FIELDS 1 keep"));
    let mut conns: Vec<Conn> = (0..3).map(|i| Conn::open(c.node(i).port, false)).collect();
    for (i, n) in conns.iter_mut().enumerate() {
        assert!(
            wait_until(Duration::from_secs(5), || {
                n.call(&cmd("HLEN s")) == Reply::Int(2)
            }),
            "node {i}: csrf did not expire"
        );
        assert_eq!(n.call(&cmd("HEXISTS s keep")), Reply::Int(1), "node {i}");
        assert_eq!(
            n.call(&cmd("HTTL s FIELDS 1 keep")),
            ints(&[-1]),
            "node {i}"
        );
    }
    // The last fields going take the key with them everywhere.
    w.call(&cmd("HPEXPIRE s 30 FIELDS 2 user keep"));
    for (i, n) in conns.iter_mut().enumerate() {
        assert!(
            wait_until(Duration::from_secs(5), || {
                n.call(&cmd("EXISTS s")) == Reply::Int(0)
            }),
            "node {i}: the key outlived its fields"
        );
    }
}
