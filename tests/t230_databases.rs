//! Numbered databases: a script of commands across databases answered as a real
//! `redis-server` answers it (SELECT, MOVE, SWAPDB, FLUSHDB, FLUSHALL, DBSIZE, KEYS,
//! `INFO keyspace`, keyspace events on `__keyevent@<db>__`, CLIENT LIST's `db=`); and in
//! a cluster, writes through a follower land in their database on every node, and a key
//! that expires in database 1 expires there on every node. Needs `redis-server`.

mod support;

use std::time::Duration;

use support::cluster::Cluster;
use support::diff::{b, Conn, RedisServer, Reply};
use support::{wait_until, Server};

fn cmd(line: &str) -> Vec<Vec<u8>> {
    line.split(' ').map(b).collect()
}

#[test]
fn databases_answer_as_redis_does() {
    let redis = RedisServer::start();
    let ours = Server::start();
    let script = [
        "SELECT 0",
        "SET k zero",
        "SELECT 1",
        "GET k",
        "SET k one",
        "SADD s a b",
        "SET t x PX 600000",
        "DBSIZE",
        "KEYS *",
        "INFO keyspace",
        "MOVE k 0",
        "MOVE t 2",
        "MOVE s 2",
        "MOVE nokey 2",
        "MOVE s 1",
        "MOVE s 16",
        "MOVE s x",
        "SELECT 2",
        "SMEMBERS s",
        "EXISTS t",
        "SWAPDB 2 3",
        "DBSIZE",
        "SELECT 3",
        "DBSIZE",
        "SWAPDB 3 3",
        "SWAPDB 0 16",
        "SWAPDB x 1",
        "SWAPDB 1 x",
        "SELECT 16",
        "SELECT -1",
        "SELECT x",
        "COPY s s2 DB 16",
        "FLUSHDB",
        "DBSIZE",
        "SELECT 1",
        "GET k",
        "INFO keyspace",
        "MULTI",
        "SET m 1",
        "SELECT 4",
        "SET m 4",
        "EXEC",
        "GET m",
        "SELECT 1",
        "GET m",
        "FLUSHALL",
        "INFO keyspace",
        "SELECT 0",
        "DBSIZE",
    ];
    let mut a = Conn::open(redis.port, false);
    let mut o = Conn::open(ours.port, false);
    let mut diffs = Vec::new();
    for line in script {
        let (mut x, mut y) = (a.call(&cmd(line)), o.call(&cmd(line)));
        // sessiond reports Redis 7.4's `subexpiry` (hashes with field deadlines), which
        // the 7.0 reference lacks.
        if let Reply::Bulk(Some(text)) = &mut y {
            let t = String::from_utf8_lossy(text).replace(",subexpiry=0", "");
            *text = t.into_bytes();
        }
        if line.starts_with("KEYS") || line.starts_with("SMEMBERS") {
            for r in [&mut x, &mut y] {
                if let Reply::Array(Some(items)) = r {
                    items.sort();
                }
            }
        }
        if x != y {
            diffs.push(format!("{line}\n  redis:    {x:?}\n  sessiond: {y:?}"));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));

    // A WATCH in one database and an EXEC in another abort (a listed false conflict;
    // Redis would run it); WATCH and EXEC in one database run as Redis does.
    for (watch_db, exec_db, want_null) in [("1", "0", true), ("1", "1", false)] {
        for line in ["SELECT X", "WATCH w"] {
            o.call(&cmd(&line.replace('X', watch_db)));
        }
        for line in ["SELECT X", "MULTI", "SET w 1"] {
            o.call(&cmd(&line.replace('X', exec_db)));
        }
        let r = o.call(&cmd("EXEC"));
        assert_eq!(
            r == Reply::Array(None),
            want_null,
            "WATCH in {watch_db}, EXEC in {exec_db}: {r:?}"
        );
    }

    // Keyspace events name their database; CLIENT LIST shows the selected one.
    for port in [redis.port, ours.port] {
        let mut c = Conn::open(port, false);
        c.call(&cmd("CONFIG SET notify-keyspace-events Exg"));
        let mut sub = Conn::open(port, false);
        sub.call(&cmd("PSUBSCRIBE __keyevent@*__:*"));
        c.call(&cmd("SELECT 5"));
        c.call(&cmd("SET e v PX 20"));
        c.call(&cmd("DEL nothing"));
        c.call(&cmd("SET d v"));
        c.call(&cmd("DEL d"));
        // SET ... PX also raises `expire`; only `del` and `expired` are compared.
        let mut seen = Vec::new();
        for _ in 0..10 {
            if let Reply::Array(Some(m)) = sub.read() {
                let text = format!("{:?} {:?}", m[2], m[3]);
                if text.contains(":del\"") || text.contains(":expired\"") {
                    seen.push(text);
                }
            }
            if seen.len() == 2 {
                break;
            }
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                "\"__keyevent@5__:del\" \"d\"",
                "\"__keyevent@5__:expired\" \"e\""
            ],
            "port {port}"
        );
        let Reply::Bulk(Some(list)) = c.call(&cmd("CLIENT INFO")) else {
            panic!("CLIENT INFO");
        };
        assert!(
            String::from_utf8_lossy(&list).contains(" db=5 "),
            "{}",
            String::from_utf8_lossy(&list)
        );
    }
}

#[test]
fn a_cluster_keeps_each_database_apart() {
    let c = Cluster::start(3, &[]);
    let l = c.wait_leader(Duration::from_secs(15));
    let f = (l + 1) % 3;
    let mut w = c.node(f).conn();
    let _: () = redis::cmd("SELECT").arg(1).query(&mut w).expect("select");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("one")
        .query(&mut w)
        .expect("set");
    let _: () = redis::cmd("SET")
        .arg("gone")
        .arg("soon")
        .arg("PX")
        .arg(300)
        .query(&mut w)
        .expect("set px");
    let _: i64 = redis::cmd("SADD")
        .arg("s")
        .arg("m")
        .query(&mut w)
        .expect("sadd");
    let _: () = redis::pipe()
        .cmd("MULTI")
        .cmd("SET")
        .arg("t")
        .arg("x")
        .cmd("EXEC")
        .query(&mut w)
        .expect("exec");
    // WATCH in database 1 and EXEC in database 0 abort, as on a single node, even where
    // database 0 holds the same content (the digests alone would agree).
    let run = |w: &mut redis::Connection, line: &str| -> redis::Value {
        let mut c = redis::cmd(line.split(' ').next().unwrap_or_default());
        line.split(' ').skip(1).for_each(|a| {
            c.arg(a);
        });
        c.query(w).expect(line)
    };
    for line in [
        "SET u same",
        "SELECT 0",
        "SET u same",
        "SELECT 1",
        "WATCH u",
        "SELECT 0",
    ] {
        run(&mut w, line);
    }
    run(&mut w, "MULTI");
    run(&mut w, "SET u changed");
    assert_eq!(
        run(&mut w, "EXEC"),
        redis::Value::Nil,
        "EXEC in another database"
    );
    assert_eq!(
        run(&mut w, "GET u"),
        redis::Value::BulkString(b"same".to_vec())
    );
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("zero")
        .query(&mut w)
        .expect("set");
    let read = |n: usize, db: i64, key: &str| -> Option<String> {
        let mut con = c.node(n).conn();
        let _: () = redis::cmd("SELECT")
            .arg(db)
            .query(&mut con)
            .expect("select");
        redis::cmd("GET").arg(key).query(&mut con).expect("get")
    };
    for n in 0..3 {
        assert!(
            wait_until(Duration::from_secs(10), || read(n, 1, "k").as_deref()
                == Some("one")),
            "node {n} has db 1's key\n{}",
            c.logs()
        );
        assert_eq!(read(n, 0, "k").as_deref(), Some("zero"), "node {n} db 0");
        assert_eq!(
            read(n, 1, "t").as_deref(),
            Some("x"),
            "node {n}: EXEC in db 1"
        );
        assert_eq!(read(n, 0, "t"), None, "node {n}: EXEC stayed in db 1");
        assert_eq!(read(n, 2, "k"), None, "node {n} db 2");
    }
    // Expiry in database 1 is replicated into database 1.
    for n in 0..3 {
        assert!(
            wait_until(Duration::from_secs(10), || {
                let mut con = c.node(n).conn();
                let _: () = redis::cmd("SELECT").arg(1).query(&mut con).expect("select");
                let size: i64 = redis::cmd("DBSIZE").query(&mut con).expect("dbsize");
                size == 4
            }),
            "node {n}: the key with a TTL expired in db 1\n{}",
            c.logs()
        );
    }
    let mut con = c.node(l).conn();
    let info: String = redis::cmd("INFO")
        .arg("keyspace")
        .query(&mut con)
        .expect("info");
    assert!(info.contains("db0:keys=2,"), "{info}");
    assert!(info.contains("db1:keys=4,"), "{info}");
}
