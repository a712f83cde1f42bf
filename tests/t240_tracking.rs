//! Client-side caching (`CLIENT TRACKING`): the command surface answered as a real
//! `redis-server` answers it; every kind of change invalidates a tracked key (writes,
//! expiry, RENAME, MOVE, RESTORE, scripts, hashes, flushes); the modes (RESP3 push,
//! RESP2 redirect, BCAST with prefixes, OPTIN, NOLOOP); the table's limit; a closed
//! connection leaves nothing behind; and in a cluster a client on any node is
//! invalidated when a write through any node is applied, with the delay measured.
//! Needs `redis-server`.

mod support;

use std::time::{Duration, Instant};

use support::cluster::Cluster;
use support::diff::{b, Conn, RedisServer, Reply};
use support::{wait_until, Server};

fn cmd(line: &str) -> Vec<Vec<u8>> {
    line.split(' ').map(b).collect()
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Some(s.as_bytes().to_vec()))
}

/// A RESP3 invalidation push for `keys`.
fn invalidate(keys: &[&str]) -> Reply {
    Reply::Push(vec![
        bulk("invalidate"),
        Reply::Array(Some(keys.iter().map(|k| bulk(k)).collect())),
    ])
}

/// The next push on `c`, skipping nothing: it must be an invalidation.
fn next_invalidated(c: &mut Conn) -> Vec<String> {
    match c.read() {
        Reply::Push(items) if items.first() == Some(&bulk("invalidate")) => match &items[1] {
            Reply::Array(Some(keys)) => keys
                .iter()
                .map(|k| match k {
                    Reply::Bulk(Some(v)) => String::from_utf8_lossy(v).into_owned(),
                    other => panic!("key {other:?}"),
                })
                .collect(),
            Reply::Null => vec!["<all>".into()],
            other => panic!("payload {other:?}"),
        },
        other => panic!("expected an invalidation, got {other:?}"),
    }
}

/// Whether something has arrived on `c` (without waiting).
fn readable(c: &mut Conn) -> bool {
    if !c.r.buffer().is_empty() {
        return true;
    }
    let s = c.r.get_mut();
    s.set_nonblocking(true).expect("nonblocking");
    let mut one = [0u8; 1];
    let got = matches!(s.peek(&mut one), Ok(n) if n > 0);
    s.set_nonblocking(false).expect("blocking");
    got
}

fn info_field(c: &mut Conn, field: &str) -> String {
    let Reply::Bulk(Some(text)) = c.call(&cmd("INFO")) else {
        panic!("INFO");
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .to_string()
}

/// The command surface, its checks and error texts, as redis-server gives them.
#[test]
fn tracking_commands_answer_as_redis_does() {
    let redis = RedisServer::start();
    let ours = Server::start();
    let script = [
        "CLIENT GETREDIR",
        "CLIENT TRACKINGINFO",
        "CLIENT CACHING yes",
        "CLIENT TRACKING on PREFIX a",
        "CLIENT TRACKING on BCAST OPTIN",
        "CLIENT TRACKING on OPTIN OPTOUT",
        "CLIENT TRACKING on REDIRECT 999999",
        "CLIENT TRACKING on REDIRECT x",
        "CLIENT TRACKING on BOGUS",
        "CLIENT TRACKING maybe",
        "CLIENT TRACKING on OPTIN",
        "CLIENT TRACKINGINFO",
        "CLIENT CACHING no",
        "CLIENT CACHING yes",
        "CLIENT TRACKINGINFO",
        "CLIENT CACHING maybe",
        "CLIENT TRACKING on OPTOUT",
        "CLIENT TRACKING on BCAST",
        "CLIENT GETREDIR",
        "CLIENT TRACKING off",
        "CLIENT TRACKING on BCAST PREFIX ab PREFIX a",
        "CLIENT TRACKING on BCAST PREFIX a PREFIX b NOLOOP",
        "CLIENT TRACKING on BCAST PREFIX b",
        "CLIENT TRACKING on BCAST PREFIX c",
        "CLIENT TRACKINGINFO",
        // RESET turns tracking off (and the protocol back to RESP2).
        "RESET",
        "CLIENT TRACKINGINFO",
        "CLIENT TRACKING on OPTIN",
        "CLIENT CACHING yes",
        "RESET",
        "CLIENT CACHING yes",
        "CLIENT TRACKINGINFO",
        "CLIENT TRACKING off",
        "CLIENT TRACKINGINFO",
        "CONFIG GET tracking-table-max-keys",
        "CONFIG SET tracking-table-max-keys -1",
        "CONFIG SET tracking-table-max-keys x",
    ];
    let mut diffs = Vec::new();
    for resp3 in [false, true] {
        let mut a = Conn::open(redis.port, resp3);
        let mut o = Conn::open(ours.port, resp3);
        for line in script {
            let (x, y) = (a.call(&cmd(line)), o.call(&cmd(line)));
            if x != y {
                diffs.push(format!(
                    "resp3={resp3} {line}\n  redis:    {x:?}\n  sessiond: {y:?}"
                ));
            }
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// Every kind of change to a tracked key sends one invalidation, after the reply of
/// the command that made it when the tracking client made it itself.
#[test]
fn every_change_invalidates_a_tracked_key() {
    let s = Server::start();
    let mut w = Conn::open(s.port, false);
    let mut t = Conn::open(s.port, true);
    assert_eq!(
        t.call(&cmd("CLIENT TRACKING on")),
        Reply::Simple("OK".into())
    );
    let changes: &[(&str, &str, &str)] = &[
        // (setup, read to track, change)
        ("SET k1 v", "GET k1", "SET k1 w"),
        ("SET k2 v", "GET k2", "DEL k2"),
        ("SET k3 v", "GET k3", "EXPIRE k3 100"),
        ("SET k4 v", "GET k4", "RENAME k4 k4b"),
        ("SET k5 v", "GET k5", "MOVE k5 3"),
        ("HSET k6 f v", "HGET k6 f", "HSET k6 f w"),
        ("SADD k7 a", "SMEMBERS k7", "SREM k7 a"),
        ("SET k8 v", "STRLEN k8", "APPEND k8 x"),
        (
            "SET k9 v",
            "GET k9",
            "EVAL redis.call('set',KEYS[1],'z') 1 k9",
        ),
        (
            "HSET k10 f v g w",
            "HGETALL k10",
            "HPEXPIRE k10 30 FIELDS 1 f",
        ),
    ];
    for (setup, read, change) in changes {
        w.call(&cmd(setup));
        t.call(&cmd(read));
        let key = read.split(' ').nth(1).unwrap_or_default();
        assert!(t.quiet(Duration::from_millis(20)), "push before {change}");
        w.call(&cmd(change));
        assert_eq!(next_invalidated(&mut t), [key], "after {change}");
    }
    // A field that expires changes the hash again (k10's f, 30 ms after the HPEXPIRE).
    t.call(&cmd("HGETALL k10"));
    assert_eq!(next_invalidated(&mut t), ["k10"], "field expiry");

    // RESTORE over a tracked key, and expiry by the timing wheel.
    w.call(&cmd("SET r v"));
    let Reply::Bulk(Some(payload)) = w.call(&cmd("DUMP r")) else {
        panic!("DUMP");
    };
    t.call(&cmd("GET r"));
    w.call(&[b("RESTORE"), b("r"), b("0"), payload, b("REPLACE")]);
    assert_eq!(next_invalidated(&mut t), ["r"]);
    w.call(&cmd("SET e v PX 30"));
    t.call(&cmd("GET e"));
    assert_eq!(next_invalidated(&mut t), ["e"], "expiry");

    // The tracking client's own write: the reply first, then the push.
    t.call(&cmd("GET own"));
    t.send(&cmd("SET own 1"));
    assert_eq!(t.read(), Reply::Simple("OK".into()));
    assert_eq!(t.read(), invalidate(&["own"]));

    // A key in another database is the same key to the table, as in Redis.
    t.call(&cmd("GET shared"));
    w.call(&cmd("SELECT 2"));
    w.call(&cmd("SET shared x"));
    assert_eq!(next_invalidated(&mut t), ["shared"]);

    // FLUSHDB and FLUSHALL: one null invalidation, whatever was tracked.
    t.call(&cmd("GET f"));
    w.call(&cmd("FLUSHALL"));
    assert_eq!(next_invalidated(&mut t), ["<all>"]);
    assert!(t.quiet(Duration::from_millis(30)), "one message per flush");
}

/// RESP2 through a redirect, BCAST prefixes, OPTIN, NOLOOP, the table's limit, and a
/// closed connection leaving nothing behind.
#[test]
fn tracking_modes_and_bounds() {
    let s = Server::start();
    let mut w = Conn::open(s.port, false);

    // RESP2: invalidations reach a subscriber of __redis__:invalidate by REDIRECT.
    let mut sub = Conn::open(s.port, false);
    let Reply::Int(sub_id) = sub.call(&cmd("CLIENT ID")) else {
        panic!("CLIENT ID");
    };
    sub.call(&cmd("SUBSCRIBE __redis__:invalidate"));
    let mut c2 = Conn::open(s.port, false);
    let on = format!("CLIENT TRACKING on REDIRECT {sub_id}");
    assert_eq!(c2.call(&cmd(&on)), Reply::Simple("OK".into()));
    c2.call(&cmd("MGET a b"));
    w.call(&cmd("MSET a 1 b 2"));
    let mut got = Vec::new();
    for _ in 0..2 {
        match sub.read() {
            Reply::Array(Some(m)) => {
                assert_eq!(m[..2], [bulk("message"), bulk("__redis__:invalidate")]);
                got.push(format!("{:?}", m[2]));
            }
            other => panic!("message {other:?}"),
        }
    }
    got.sort();
    assert_eq!(got, ["[\"a\"]", "[\"b\"]"]);

    // BCAST: one message per prefix per command, only for matching keys.
    let mut bc = Conn::open(s.port, true);
    bc.call(&cmd("CLIENT TRACKING on BCAST PREFIX s: PREFIX u:"));
    w.call(&cmd("MSET s:1 a s:2 b x 1"));
    let mut keys = next_invalidated(&mut bc);
    keys.sort();
    assert_eq!(keys, ["s:1", "s:2"]);
    assert!(bc.quiet(Duration::from_millis(30)), "x is under no prefix");

    // OPTIN: only reads after CLIENT CACHING yes are remembered.
    let mut oi = Conn::open(s.port, true);
    oi.call(&cmd("CLIENT TRACKING on OPTIN"));
    oi.call(&cmd("GET o1"));
    oi.call(&cmd("CLIENT CACHING yes"));
    oi.call(&cmd("GET o2"));
    oi.call(&cmd("GET o3"));
    w.call(&cmd("MSET o1 1 o2 2 o3 3"));
    assert_eq!(next_invalidated(&mut oi), ["o2"]);
    assert!(
        oi.quiet(Duration::from_millis(30)),
        "o1 and o3 were not cached"
    );

    // NOLOOP: the client's own writes are not reported back.
    let mut nl = Conn::open(s.port, true);
    nl.call(&cmd("CLIENT TRACKING on NOLOOP"));
    nl.call(&cmd("MGET n1 n2"));
    nl.call(&cmd("SET n1 mine"));
    w.call(&cmd("SET n2 theirs"));
    assert_eq!(next_invalidated(&mut nl), ["n2"]);
    assert!(nl.quiet(Duration::from_millis(30)));

    // The table's limit: keys over it are invalidated as if changed.
    let mut lim = Conn::open(s.port, true);
    lim.call(&cmd("CLIENT TRACKING on"));
    lim.call(&cmd("MGET l1 l2 l3 l4"));
    w.call(&cmd("CONFIG SET tracking-table-max-keys 1"));
    let mut dropped = 0;
    assert!(wait_until(Duration::from_secs(5), || {
        info_field(&mut w, "tracking_total_keys") == "1"
    }));
    while !lim.quiet(Duration::from_millis(50)) {
        dropped += next_invalidated(&mut lim).len();
    }
    assert!(dropped >= 3, "{dropped} keys dropped to meet the limit");
    assert_eq!(info_field(&mut w, "tracking_total_keys"), "1");
    w.call(&cmd("CONFIG SET tracking-table-max-keys 1000000"));

    // Closing every tracking connection leaves no client, key or prefix behind.
    assert_eq!(info_field(&mut w, "tracking_clients"), "5");
    drop((c2, bc, oi, nl, lim, sub));
    assert!(wait_until(Duration::from_secs(5), || {
        info_field(&mut w, "tracking_clients") == "0"
    }));
    for f in [
        "tracking_total_keys",
        "tracking_total_items",
        "tracking_total_prefixes",
    ] {
        assert_eq!(info_field(&mut w, f), "0", "{f}");
    }
}

/// In a cluster, a client tracking on any node is invalidated when a write through any
/// node is applied there, before the write's reply reaches the writer (the fence).
#[test]
fn cluster_invalidates_clients_on_every_node() {
    let c = Cluster::start(3, &[]);
    let l = c.wait_leader(Duration::from_secs(15));
    let f = (l + 1) % 3;
    let mut trackers: Vec<Conn> = (0..3)
        .map(|i| {
            let mut t = Conn::open(c.node(i).port, true);
            t.call(&cmd("CLIENT TRACKING on"));
            t
        })
        .collect();
    let mut writer = Conn::open(c.node(f).port, false);
    // Every node has heard that clients cache keys: the fence is up.
    for i in 0..3 {
        assert!(
            wait_until(Duration::from_secs(5), || {
                c.raft_field(i, "raft_invalidation_fence").as_deref() == Some("on")
            }),
            "node {i}: the invalidation fence did not go up"
        );
    }
    let (mut ready_at_ack, mut delays) = (0, Vec::new());
    for round in 0..40 {
        let key = format!("sess:{round}");
        writer.call(&cmd(&format!("SET {key} v0")));
        for t in trackers.iter_mut() {
            t.call(&cmd(&format!("GET {key}")));
        }
        writer.call(&cmd(&format!("SET {key} v1")));
        let acked = Instant::now();
        // Where the push stands the moment the writer has its reply.
        for (i, t) in trackers.iter_mut().enumerate() {
            if i == l {
                continue;
            }
            if readable(t) {
                ready_at_ack += 1;
                delays.push(Duration::ZERO);
            } else {
                assert!(
                    wait_until(Duration::from_secs(5), || readable(t)),
                    "node {i}: no push"
                );
                delays.push(acked.elapsed());
            }
        }
        for (i, t) in trackers.iter_mut().enumerate() {
            assert_eq!(next_invalidated(t), std::slice::from_ref(&key), "node {i}");
        }
    }
    delays.sort();
    let p = |q: f64| delays[((delays.len() - 1) as f64 * q) as usize];
    println!(
        "cluster invalidation, followers' trackers: {ready_at_ack} of {} pushes had arrived when the write's reply did; after the reply: p50 {:?}, p99 {:?}, max {:?}",
        delays.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
    // The fence: a write's reply waits until every node with caching clients has
    // applied it and written its invalidations to the sockets.
    assert_eq!(
        ready_at_ack,
        delays.len(),
        "an invalidation came after the write's reply"
    );
    for i in 0..3 {
        assert_eq!(
            c.raft_field(i, "raft_invalidation_fence_timeouts")
                .as_deref(),
            Some("0"),
            "node {i}: a reply left the fence at its time limit"
        );
    }
    // A flush reaches every node's trackers as one null invalidation.
    writer.call(&cmd("FLUSHALL"));
    for t in trackers.iter_mut() {
        assert_eq!(next_invalidated(t), ["<all>"]);
    }
    // Expiry proposed by the leader invalidates on every node.
    writer.call(&cmd("SET gone v PX 50"));
    for t in trackers.iter_mut() {
        t.call(&cmd("GET gone"));
    }
    for (i, t) in trackers.iter_mut().enumerate() {
        assert_eq!(next_invalidated(t), ["gone"], "node {i}");
    }
}
