//! `DUMP` and `RESTORE` against a real `redis-server`: payloads move both ways for
//! strings, hashes, sets and sorted sets of every encoding Redis writes (integers, raw,
//! LZF-compressed, listpack and hashtable hashes, intset and hashtable sets, listpack and
//! skiplist sorted sets), short payloads are byte for byte Redis's, `RESTORE`'s
//! options and errors answer as Redis's, `MIGRATE` from Redis into sessiond works, and
//! `sessiond-cli import` copies a Redis server's keys with their TTLs, rerunnably. In a
//! cluster a restored key has the same deadline on every node. Needs `redis-server`.

mod support;

use std::time::Duration;

use redis::Value;
use support::cluster::Cluster;
use support::diff::{b, show, Conn, RedisServer};
use support::{wait_until, Server};

fn values() -> Vec<(String, Vec<Vec<u8>>)> {
    // (key, command that makes it)
    let mut v: Vec<(String, Vec<Vec<u8>>)> = vec![];
    let mut s = |k: &str, val: Vec<u8>| {
        v.push((k.to_string(), vec![b("SET"), b(k), val]));
    };
    s("empty", vec![]);
    s("small", b("hello"));
    s("int", b("12345"));
    s("neg", b("-7"));
    s("i32", b("2147483647"));
    s("i64", b("9223372036854775807"));
    s("leading0", b("007"));
    s("binary", vec![0, 1, 2, 255, b'\r', b'\n']);
    s("long", b(&"a".repeat(100)));
    s("text", b(&"session data, user=alice; ".repeat(40)));
    s(
        "random",
        (0..3000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    );
    let mut h = |k: &str, n: usize, width: usize| {
        let mut c = vec![b("HSET"), b(k)];
        for i in 0..n {
            c.push(format!("f{i}").into_bytes());
            c.push(if i % 3 == 0 {
                i.to_string().into_bytes()
            } else {
                "v".repeat(width).into_bytes()
            });
        }
        v.push((k.to_string(), c));
    };
    h("hsmall", 3, 2);
    h("hwide", 5, 100);
    h("hbig", 300, 10);
    let mut members = |k: &str, cmd: &str, n: usize, int: bool| {
        let mut c = vec![b(cmd), b(k)];
        for i in 0..n {
            if cmd == "ZADD" {
                c.push(b(["1.5", "-3", "inf", "0", "1e20"][i % 5]));
            }
            c.push(if int {
                (i as i64 * 7 - 50).to_string().into_bytes()
            } else {
                format!("session-{i}").into_bytes()
            });
        }
        v.push((k.to_string(), c));
    };
    members("sint", "SADD", 20, true);
    members("sbigint", "SADD", 600, true);
    members("stext", "SADD", 10, false);
    members("sbig", "SADD", 300, false);
    members("zsmall", "ZADD", 10, false);
    members("zbig", "ZADD", 300, false);
    v
}

fn content(c: &mut Conn, key: &str) -> String {
    let t = format!("{:?}", c.call(&[b("TYPE"), b(key)]));
    let sorted = |r: support::diff::Reply| match r {
        support::diff::Reply::Array(Some(mut items)) => {
            items.sort();
            format!("{items:?}")
        }
        other => format!("{other:?}"),
    };
    let v = if t.contains("zset") {
        format!(
            "{:?}",
            c.call(&[b("ZRANGE"), b(key), b("0"), b("-1"), b("WITHSCORES")])
        )
    } else if t.contains("set") {
        sorted(c.call(&[b("SMEMBERS"), b(key)]))
    } else if t.contains("hash") {
        // As sorted pairs: a big hash's order is its table's.
        match c.call(&[b("HGETALL"), b(key)]) {
            support::diff::Reply::Array(Some(items)) => {
                let mut pairs: Vec<String> = items.chunks(2).map(|p| format!("{p:?}")).collect();
                pairs.sort();
                pairs.join(",")
            }
            other => format!("{other:?}"),
        }
    } else {
        format!("{:?}", c.call(&[b("GET"), b(key)]))
    };
    format!("{t} {v}")
}

fn payload(c: &mut Conn, key: &str) -> Vec<u8> {
    match c.call(&[b("DUMP"), b(key)]) {
        support::diff::Reply::Bulk(Some(p)) => p,
        other => panic!("DUMP {key}: {other:?}"),
    }
}

#[test]
fn payloads_move_both_ways() {
    let redis = RedisServer::start();
    let ours = Server::start();
    let mut r = Conn::open(redis.port, false);
    let mut o = Conn::open(ours.port, false);
    for (key, make) in values() {
        r.call(&make);
        // Redis → sessiond.
        let p = payload(&mut r, &key);
        assert_eq!(
            o.call(&[b("RESTORE"), b(&key), b("0"), p.clone()]),
            support::diff::Reply::Simple("OK".into()),
            "{key}"
        );
        assert_eq!(content(&mut o, &key), content(&mut r, &key), "{key}");
        // sessiond → Redis.
        let back = payload(&mut o, &key);
        let copy = format!("{key}:back");
        assert_eq!(
            r.call(&[b("RESTORE"), b(&copy), b("0"), back.clone()]),
            support::diff::Reply::Simple("OK".into()),
            "{key} back"
        );
        assert_eq!(content(&mut r, &copy), content(&mut r, &key), "{key} back");
        // Strings Redis does not compress (20 bytes or less) are its exact bytes.
        if make[0] == b("SET") && make[2].len() <= 20 {
            assert_eq!(back, p, "{key}: DUMP differs from Redis's");
        }
    }
}

#[test]
fn restore_answers_as_redis() {
    let redis = RedisServer::start();
    let ours = Server::start();
    let mut r = Conn::open(redis.port, false);
    let mut o = Conn::open(ours.port, false);
    for c in [&mut r, &mut o] {
        c.call(&[b("SET"), b("s"), b("hello")]);
    }
    let p = payload(&mut r, "s");
    let mut bad = p.clone();
    bad[2] ^= 1;
    let forms: Vec<Vec<Vec<u8>>> = vec![
        vec![b("RESTORE"), b("s"), b("0"), p.clone()],
        vec![b("RESTORE"), b("s"), b("0"), b("x")],
        vec![b("RESTORE"), b("n"), b("0"), b("x")],
        vec![b("RESTORE"), b("n"), b("0"), bad],
        vec![b("RESTORE"), b("n"), b("-1"), p.clone()],
        vec![b("RESTORE"), b("n"), b("abc"), p.clone()],
        vec![
            b("RESTORE"),
            b("n"),
            b("0"),
            p.clone(),
            b("IDLETIME"),
            b("-1"),
        ],
        vec![b("RESTORE"), b("n"), b("0"), p.clone(), b("FREQ"), b("300")],
        vec![
            b("RESTORE"),
            b("n"),
            b("0"),
            p.clone(),
            b("IDLETIME"),
            b("1"),
            b("FREQ"),
            b("3"),
        ],
        vec![b("RESTORE"), b("n"), b("0"), p.clone(), b("bogus")],
        vec![b("RESTORE"), b("n"), b("0"), p.clone(), b("IDLETIME")],
        vec![b("RESTORE"), b("n"), b("1"), p.clone(), b("ABSTTL")],
        vec![b("EXISTS"), b("n")],
        vec![
            b("RESTORE"),
            b("s"),
            b("1"),
            p.clone(),
            b("ABSTTL"),
            b("REPLACE"),
        ],
        vec![b("EXISTS"), b("s")],
        vec![
            b("RESTORE"),
            b("n"),
            b("100000"),
            p.clone(),
            b("FREQ"),
            b("5"),
        ],
        vec![b("PTTL"), b("n")],
        vec![
            b("RESTORE"),
            b("n"),
            b("0"),
            p.clone(),
            b("REPLACE"),
            b("IDLETIME"),
            b("10"),
        ],
        vec![b("TTL"), b("n")],
        vec![b("DUMP"), b("nosuch")],
        vec![b("DUMP")],
        vec![b("RESTORE"), b("n"), b("0")],
    ];
    let mut diffs = Vec::new();
    for f in &forms {
        let (a, c) = (r.call(f), o.call(f));
        let same = match (&a, &c) {
            (support::diff::Reply::Int(x), support::diff::Reply::Int(y)) if f[0] == b("PTTL") => {
                (x - y).abs() < 2000
            }
            _ => a == c,
        };
        if !same {
            diffs.push(format!("{}\n  redis:    {a:?}\n  sessiond: {c:?}", show(f)));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

#[test]
fn migrate_from_redis_and_import_with_sessiond_cli() {
    let redis = RedisServer::start();
    let ours = Server::start();
    let mut r = Conn::open(redis.port, false);
    let mut o = Conn::open(ours.port, false);
    r.call(&[b("SET"), b("m1"), b("moved")]);
    r.call(&[b("HSET"), b("m2"), b("f"), b("v")]);
    let port = ours.port.to_string();
    let reply = r.call(&[
        b("MIGRATE"),
        b("127.0.0.1"),
        b(&port),
        b(""),
        b("0"),
        b("5000"),
        b("KEYS"),
        b("m1"),
        b("m2"),
    ]);
    assert_eq!(reply, support::diff::Reply::Simple("OK".into()));
    assert_eq!(content(&mut o, "m1"), "+\"string\" \"moved\"");
    assert_eq!(
        r.call(&[b("EXISTS"), b("m1")]),
        support::diff::Reply::Int(0)
    );

    // Sessions in Redis: 500 with a TTL, 20 without, and a hash.
    for i in 0..500 {
        r.call(&[
            b("SET"),
            format!("sess:{i}").into_bytes(),
            b(&"x".repeat(200)),
            b("EX"),
            b("3600"),
        ]);
    }
    for i in 0..20 {
        r.call(&[b("SET"), format!("keep:{i}").into_bytes(), b("1")]);
    }
    r.call(&[b("HSET"), b("sess:h"), b("user"), b("alice")]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let opts = |pattern: Option<&str>, replace: bool| sessiond_client::import::ImportOptions {
        from: format!("redis://127.0.0.1:{}", redis.port),
        to: format!("127.0.0.1:{}", ours.port),
        pattern: pattern.map(str::to_string),
        batch: 100,
        replace,
    };
    let mut pages = 0;
    let p = rt
        .block_on(sessiond_client::import::import(
            &opts(Some("sess:*"), true),
            |_| pages += 1,
        ))
        .expect("import");
    assert_eq!(
        (p.scanned, p.copied, p.failed.len()),
        (501, 501, 0),
        "{p:?}"
    );
    assert!(pages >= 2, "progress is reported per page");
    assert_eq!(
        o.call(&[b("EXISTS"), b("keep:1")]),
        support::diff::Reply::Int(0)
    );
    match o.call(&[b("TTL"), b("sess:7")]) {
        support::diff::Reply::Int(t) => assert!((3590..=3600).contains(&t), "ttl {t}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(content(&mut o, "sess:h"), content(&mut r, "sess:h"));
    // Rerun: everything again (REPLACE), then without replacing: kept.
    r.call(&[b("SET"), b("sess:7"), b("changed"), b("EX"), b("3600")]);
    let p = rt
        .block_on(sessiond_client::import::import(&opts(None, true), |_| {}))
        .expect("rerun");
    assert_eq!((p.copied, p.failed.len()), (521, 0), "{p:?}");
    assert_eq!(content(&mut o, "sess:7"), "+\"string\" \"changed\"");
    o.call(&[b("SET"), b("sess:8"), b("newer in sessiond")]);
    let p = rt
        .block_on(sessiond_client::import::import(&opts(None, false), |_| {}))
        .expect("keep");
    assert_eq!((p.copied, p.kept), (0, 521), "{p:?}");
    assert_eq!(
        content(&mut o, "sess:8"),
        "+\"string\" \"newer in sessiond\""
    );
}

#[test]
fn a_restored_key_has_one_deadline_on_every_node() {
    let c = Cluster::start(3, &[]);
    let l = c.wait_leader(Duration::from_secs(15));
    let mut con = c.node((l + 1) % 3).conn();
    let _: () = redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .query(&mut con)
        .expect("hset");
    let p: Vec<u8> = redis::cmd("DUMP").arg("h").query(&mut con).expect("dump");
    let _: () = redis::cmd("RESTORE")
        .arg("r")
        .arg(60_000)
        .arg(&p)
        .query(&mut con)
        .expect("restore through a follower");
    let deadline = |n: usize| -> Option<i64> {
        let mut con = c.node(n).conn();
        match redis::cmd("PEXPIRETIME").arg("r").query::<Value>(&mut con) {
            Ok(Value::Int(t)) if t > 0 => Some(t),
            _ => None,
        }
    };
    assert!(wait_until(Duration::from_secs(10), || (0..3)
        .all(|n| deadline(n).is_some())));
    let d: Vec<i64> = (0..3).filter_map(deadline).collect();
    assert!(d.iter().all(|x| *x == d[0]), "deadlines differ: {d:?}");
    for n in 0..3 {
        let mut con = c.node(n).conn();
        let back: Vec<u8> = redis::cmd("DUMP").arg("r").query(&mut con).expect("dump");
        assert_eq!(back, p, "node {n}");
    }
}
