//! Cluster tests: real `sessiond` processes on loopback forming one raft group.
//!
//! They run one at a time (`support::cluster::serial`), since each starts three or four
//! processes and elections are timing-sensitive on a busy two-core machine. Snapshots
//! and the in-memory log are `t104_cluster_snapshots`'.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::cluster::{conn, get, serial, try_get, Cluster, LEADER_WAIT};
use support::wait_until;

/// Writes sent to the leader and to followers (which propose them through raft) are
/// visible on every node with their TTLs; a transaction sent to a follower is atomic;
/// counters incremented through every node add up; ROLE names the leader.
#[test]
fn t101_writes_replicate_and_followers_proxy() {
    let _g = serial();
    let c = Cluster::start(3, &[]);
    let l = c.wait_leader(LEADER_WAIT);
    for i in 0..3 {
        let mut con = conn(&c, i);
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(format!("v{i}"))
            .arg("EX")
            .arg(100)
            .query(&mut con)
            .expect("SET");
    }
    for i in 0..3 {
        let mut con = conn(&c, i);
        for j in 0..3 {
            assert_eq!(get(&mut con, &format!("k{j}")), Some(format!("v{j}")));
            let ttl: i64 = redis::cmd("TTL")
                .arg(format!("k{j}"))
                .query(&mut con)
                .expect("TTL");
            assert!((95..=100).contains(&ttl), "ttl {ttl} on node {i}");
        }
    }
    let f = (l + 1) % 3;
    let mut fc = conn(&c, f);
    let (_, n, v): ((), i64, String) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("t")
        .arg(1)
        .cmd("INCR")
        .arg("t")
        .cmd("GET")
        .arg("t")
        .query(&mut fc)
        .expect("MULTI/EXEC through a follower");
    assert_eq!((n, v.as_str()), (2, "2"));
    for i in 0..3 {
        let mut con = conn(&c, i);
        for _ in 0..50 {
            let _: i64 = redis::cmd("INCR").arg("ctr").query(&mut con).expect("INCR");
        }
    }
    for i in 0..3 {
        let mut con = conn(&c, i);
        assert_eq!(get(&mut con, "ctr").as_deref(), Some("150"), "node {i}");
        assert_eq!(get(&mut con, "t").as_deref(), Some("2"), "node {i}");
        let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut con).expect("ROLE");
        let want = if i == l { "master" } else { "slave" };
        assert_eq!(
            role.first(),
            Some(&redis::Value::BulkString(want.as_bytes().to_vec())),
            "ROLE on node {i}"
        );
    }
    // A pipeline of writes through a follower: one proposal, replies in order.
    let mut p = redis::pipe();
    for i in 0..100 {
        p.cmd("SET").arg(format!("p{i}")).arg(i).ignore();
    }
    p.cmd("INCRBY").arg("p99").arg(1);
    let (last,): (i64,) = p.query(&mut fc).expect("pipeline");
    assert_eq!(last, 100);
    let mut lc = conn(&c, l);
    assert_eq!(get(&mut lc, "p42").as_deref(), Some("42"));
    // WATCH through a follower: a write from another client in between aborts the EXEC
    // (on every replica alike); with no write in between it runs.
    for (key, exists) in [("w:set", true), ("w:new", false)] {
        if exists {
            let _: () = redis::cmd("SET")
                .arg(key)
                .arg("0")
                .query(&mut lc)
                .expect("SET");
        }
        let _: () = redis::cmd("WATCH").arg(key).query(&mut fc).expect("WATCH");
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg("other")
            .query(&mut lc)
            .expect("SET");
        let r: Option<(String,)> = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(key)
            .arg("mine")
            .query(&mut fc)
            .expect("EXEC");
        assert_eq!(r, None, "EXEC after a conflicting write must abort ({key})");
        let _: () = redis::cmd("WATCH").arg(key).query(&mut fc).expect("WATCH");
        let r: Option<(String,)> = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(key)
            .arg("mine")
            .query(&mut fc)
            .expect("EXEC");
        assert_eq!(r, Some(("OK".to_string(),)), "{key}");
        for i in 0..3 {
            let mut con = conn(&c, i);
            assert_eq!(get(&mut con, key).as_deref(), Some("mine"), "node {i}");
        }
    }
}

/// `kill -9` the leader while clients write through every node. A new leader takes
/// writes quickly, and every write that was acknowledged is on every surviving node,
/// with its TTL.
#[test]
fn t102_leader_kill_loses_no_acknowledged_write() {
    let _g = serial();
    let mut c = Cluster::start(3, &[]);
    let l = c.wait_leader(LEADER_WAIT);
    let stop = Arc::new(AtomicBool::new(false));
    // (key, value, time sent, time acknowledged).
    type Acked = Vec<(String, String, Instant, Instant)>;
    let acked: Arc<Mutex<Acked>> = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for i in 0..3 {
        let url = c.node(i).url();
        let stop = stop.clone();
        let acked = acked.clone();
        writers.push(std::thread::spawn(move || {
            let client = redis::Client::open(url).expect("url");
            let mut n = 0u64;
            let mut con = None;
            while !stop.load(Ordering::Relaxed) {
                if con.is_none() {
                    match client.get_connection_with_timeout(Duration::from_millis(500)) {
                        Ok(c) => {
                            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                            con = Some(c);
                        }
                        Err(_) => return,
                    }
                }
                let Some(cn) = con.as_mut() else { return };
                let key = format!("w{i}:{n}");
                let val = format!("{n}");
                n += 1;
                let sent = Instant::now();
                let r: redis::RedisResult<()> =
                    redis::cmd("SETEX").arg(&key).arg(600).arg(&val).query(cn);
                match r {
                    Ok(()) => acked.lock().unwrap_or_else(|e| e.into_inner()).push((
                        key,
                        val,
                        sent,
                        Instant::now(),
                    )),
                    Err(e) if e.is_io_error() => con = None,
                    // CLUSTERDOWN / TIMEOUT during the election: not acknowledged.
                    Err(_) => {}
                }
            }
        }));
    }
    let count = || acked.lock().unwrap_or_else(|e| e.into_inner()).len();
    assert!(wait_until(Duration::from_secs(20), || count() >= 300));
    let killed_at = Instant::now();
    c.kill9(l);
    let after = || {
        acked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, _, sent, _)| *sent > killed_at)
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(20), || after() >= 200),
        "writes did not resume after the leader died\n{}",
        c.logs()
    );
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.join();
    }
    let acked = acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // The first write sent after the kill that was acknowledged: that is when the
    // cluster took writes again.
    let first_after = acked
        .iter()
        .filter(|(_, _, sent, _)| *sent > killed_at)
        .map(|(_, _, _, done)| *done)
        .min()
        .expect("writes after the kill");
    let failover = first_after - killed_at;
    eprintln!(
        "leader kill -> first acknowledged write: {} ms ({} writes acknowledged)",
        failover.as_millis(),
        acked.len()
    );
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}"
    );
    let new_leader = c.wait_leader(LEADER_WAIT);
    assert_ne!(new_leader, l);
    for i in c.up() {
        let mut con = conn(&c, i);
        for chunk in acked.chunks(500) {
            let keys: Vec<&str> = chunk.iter().map(|(k, _, _, _)| k.as_str()).collect();
            let vals: Vec<Option<String>> =
                redis::cmd("MGET").arg(&keys).query(&mut con).expect("MGET");
            let mut p = redis::pipe();
            for k in &keys {
                p.cmd("TTL").arg(*k);
            }
            let ttls: Vec<i64> = p.query(&mut con).expect("TTLs");
            for (((k, v, _, _), got), ttl) in chunk.iter().zip(vals).zip(ttls) {
                assert_eq!(
                    got.as_deref(),
                    Some(v.as_str()),
                    "{k} lost on node {}",
                    i + 1
                );
                assert!(ttl > 500, "{k} lost its TTL on node {} ({ttl})", i + 1);
            }
        }
    }
}

/// Every node killed with -9 at once, then restarted: each recovers from its own log
/// and snapshot, with nothing acknowledged lost (strings, hashes, TTLs).
#[test]
fn t103_full_restart_recovers_from_disk() {
    let _g = serial();
    // Small log segments, so that most of the log is in segments made ahead of time and
    // written with O_DIRECT, which replay reads up to their zeros.
    let mut c = Cluster::start(
        3,
        &["--snapshot-entries", "300", "--wal-segment-bytes", "16384"],
    );
    let l = c.wait_leader(LEADER_WAIT);
    let mut con = conn(&c, l);
    // Enough single writes to cross a snapshot on every node (the leader takes one at
    // twice --snapshot-entries), so recovery uses snapshot + log.
    for i in 0..700 {
        let _: () = redis::cmd("SET")
            .arg(format!("r{i}"))
            .arg(i)
            .query(&mut con)
            .expect("SET");
    }
    let _: () = redis::cmd("HSET")
        .arg("sess:h")
        .arg("user")
        .arg("ada")
        .arg("n")
        .arg(7)
        .query(&mut con)
        .expect("HSET");
    let _: () = redis::cmd("SETEX")
        .arg("sess:t")
        .arg(1000)
        .arg("x")
        .query(&mut con)
        .expect("SETEX");
    drop(con);
    // Segments made ahead of time have their full length from the start: 16 KiB and a
    // sixteenth more, rounded up to 4 KiB blocks (a plain segment is cut where it rolled).
    let prepared = (0..3).any(|i| {
        std::fs::read_dir(c.dir.join(format!("n{}", i + 1)).join("raft"))
            .map(|d| {
                d.flatten().any(|e| {
                    e.file_name().to_string_lossy().ends_with(".wal")
                        && e.metadata().map(|m| m.len()).ok() == Some(20480)
                })
            })
            .unwrap_or(false)
    });
    assert!(prepared, "the log writes into segments made ahead of time");
    for i in 0..3 {
        c.kill9(i);
    }
    for i in 0..3 {
        c.restart(i);
    }
    c.wait_leader(LEADER_WAIT);
    for i in 0..3 {
        let mut con = conn(&c, i);
        for k in (0..700).step_by(7) {
            assert_eq!(
                get(&mut con, &format!("r{k}")),
                Some(k.to_string()),
                "node {}",
                i + 1
            );
        }
        let h: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg("sess:h")
            .query(&mut con)
            .expect("HGETALL");
        assert_eq!(h.get("user").map(String::as_str), Some("ada"));
        let ttl: i64 = redis::cmd("TTL")
            .arg("sess:t")
            .query(&mut con)
            .expect("TTL");
        assert!((900..=1000).contains(&ttl), "ttl {ttl}");
    }
    assert!(
        c.raft_index(0, "raft_snapshot_index") > 1,
        "a snapshot was taken"
    );
}

/// Add a fourth node online, hand it the leadership, and remove an old member, while a
/// client keeps writing; nothing it was told succeeded is lost.
#[test]
fn t105_membership_changes_while_clients_work() {
    let _g = serial();
    let mut c = Cluster::start(3, &[]);
    let l = c.wait_leader(LEADER_WAIT);
    // The writer talks to a follower that stays in the group throughout.
    let stay = (l + 1) % 3;
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let url = c.node(stay).url();
        let stop = stop.clone();
        let acked = acked.clone();
        std::thread::spawn(move || {
            let client = redis::Client::open(url).expect("url");
            let Ok(mut con) = client.get_connection() else {
                return;
            };
            let _ = con.set_read_timeout(Some(Duration::from_secs(5)));
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("m{n}");
                n += 1;
                if redis::cmd("SET")
                    .arg(&key)
                    .arg(n)
                    .query::<()>(&mut con)
                    .is_ok()
                {
                    acked.lock().unwrap_or_else(|e| e.into_inner()).push(key);
                }
            }
        })
    };
    let count = || acked.lock().unwrap_or_else(|e| e.into_inner()).len();
    assert!(wait_until(Duration::from_secs(10), || count() >= 50));

    let j = c.spawn_joiner();
    let mut lc = conn(&c, l);
    let r: String = redis::cmd("RAFT.NODE")
        .arg("ADD")
        .arg(j + 1)
        .arg(c.raft_addr(j))
        .query(&mut lc)
        .unwrap_or_else(|e| panic!("RAFT.NODE ADD: {e}\n{}", c.logs()));
    assert!(r.contains("added node 4"), "{r}");
    let mut jc = conn(&c, j);
    assert!(
        wait_until(Duration::from_secs(20), || try_get(&mut jc, "m0").is_some()),
        "the new node caught up\n{}",
        c.logs()
    );
    let r: String = redis::cmd("RAFT.TRANSFER-LEADER")
        .arg(j + 1)
        .query(&mut lc)
        .unwrap_or_else(|e| panic!("RAFT.TRANSFER-LEADER: {e}\n{}", c.logs()));
    assert!(r.contains("transferred"), "{r}");
    assert_eq!(c.wait_leader(LEADER_WAIT), j);
    let r: String = redis::cmd("RAFT.NODE")
        .arg("REMOVE")
        .arg(l + 1)
        .query(&mut jc)
        .unwrap_or_else(|e| panic!("RAFT.NODE REMOVE: {e}\n{}", c.logs()));
    assert!(r.contains(&format!("removed node {}", l + 1)), "{r}");
    c.kill9(l);
    let before = count();
    assert!(
        wait_until(Duration::from_secs(10), || count() >= before + 50),
        "writes go on after the removal"
    );
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    let keys = acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for i in c.up() {
        let mut con = conn(&c, i);
        for chunk in keys.chunks(500) {
            let vals: Vec<Option<String>> =
                redis::cmd("MGET").arg(chunk).query(&mut con).expect("MGET");
            for (k, v) in chunk.iter().zip(vals) {
                assert!(v.is_some(), "{k} lost on node {}", i + 1);
            }
        }
    }
}

/// Expiry under raft: the leader's wheel proposes deletions, so keys vanish from every
/// replica (not only hidden); a key re-set before its deletion applies survives.
#[test]
fn t106_expiry_is_replicated_and_guarded() {
    let _g = serial();
    let c = Cluster::start(3, &[]);
    let l = c.wait_leader(LEADER_WAIT);
    let mut con = conn(&c, l);
    for i in 0..200 {
        let _: () = redis::cmd("SET")
            .arg(format!("e{i}"))
            .arg(i)
            .arg("PX")
            .arg(300)
            .query(&mut con)
            .expect("SET PX");
    }
    let _: () = redis::cmd("SET")
        .arg("keep")
        .arg("1")
        .arg("PX")
        .arg(300)
        .query(&mut con)
        .expect("SET");
    let _: () = redis::cmd("SET")
        .arg("keep")
        .arg("2")
        .query(&mut con)
        .expect("SET again, no TTL");
    for i in 0..3 {
        let mut ci = conn(&c, i);
        assert!(
            wait_until(Duration::from_secs(5), || {
                redis::cmd("DBSIZE").query::<i64>(&mut ci).ok() == Some(1)
            }),
            "node {} reclaimed the expired keys",
            i + 1
        );
        assert_eq!(get(&mut ci, "keep").as_deref(), Some("2"));
        assert_eq!(get(&mut ci, "e5"), None);
    }
}

/// `--follower-mode redirect`: a follower answers data commands with -MOVED to the
/// leader, `CLUSTER SLOTS` names the leader as the owner of every slot, and the leader
/// serves as usual.
#[test]
fn t107_redirect_mode_points_at_the_leader() {
    let _g = serial();
    let c = Cluster::start(3, &["--follower-mode", "redirect"]);
    let l = c.wait_leader(LEADER_WAIT);
    let f = (l + 2) % 3;
    let mut fc = conn(&c, f);
    let e = support::err_of(&mut fc, redis::cmd("SET").arg("foo").arg("bar"));
    assert_eq!(e, format!("MOVED 12182 {}", c.node(l).addr()));
    let pong: String = redis::cmd("PING").query(&mut fc).expect("PING is local");
    assert_eq!(pong, "PONG");
    let slots: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(&mut fc)
        .expect("CLUSTER SLOTS");
    assert_eq!(slots.len(), 1);
    assert_eq!(
        &slots[0][..2],
        &[redis::Value::Int(0), redis::Value::Int(16383)]
    );
    let owner: (String, i64, String) = redis::from_redis_value(&slots[0][2]).expect("owner entry");
    assert_eq!(
        owner.1,
        i64::from(c.node(l).port),
        "the leader owns the slots"
    );
    let mut lc = conn(&c, l);
    let _: () = redis::cmd("SET")
        .arg("foo")
        .arg("bar")
        .query(&mut lc)
        .expect("SET");
    assert_eq!(get(&mut lc, "foo").as_deref(), Some("bar"));
}

/// With two of three nodes gone there is no quorum: writes and reads on the survivor
/// fail with a retryable error within the request timeout instead of hanging.
#[test]
fn t108_no_quorum_is_an_error_not_a_hang() {
    let _g = serial();
    let mut c = Cluster::start(3, &["--request-timeout-ms", "700"]);
    let l = c.wait_leader(LEADER_WAIT);
    let survivor = (l + 1) % 3;
    for i in 0..3 {
        if i != survivor {
            c.kill9(i);
        }
    }
    let mut con = conn(&c, survivor);
    let t = Instant::now();
    let e = support::err_of(&mut con, redis::cmd("SET").arg("a").arg("b"));
    assert!(
        e.starts_with("CLUSTERDOWN") || e.starts_with("TIMEOUT"),
        "{e}"
    );
    let e = support::err_of(&mut con, redis::cmd("GET").arg("a"));
    assert!(
        e.starts_with("CLUSTERDOWN") || e.starts_with("TIMEOUT"),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

/// The cluster-aware Rust client finds the leader from a seed list and keeps writing
/// through a leader kill, retrying idempotent writes; what it wrote is all there.
#[test]
fn t109_cluster_client_follows_the_leader() {
    use sessiond_client::cluster::ClusterClient;
    use sessiond_client::Reply;
    let _g = serial();
    let mut c = Cluster::start(3, &[]);
    let l = c.wait_leader(LEADER_WAIT);
    let seeds: Vec<String> = (0..3).map(|i| c.node(i).addr()).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut cc = ClusterClient::new(seeds);
    rt.block_on(async {
        let r = cc.cmd(&["SET", "before", "1"]).await.expect("SET");
        assert_eq!(r, Reply::Simple("OK".into()));
    });
    let old = c.node(l).addr();
    assert_eq!(cc.current(), Some(old.as_str()), "talks to the leader");
    c.kill9(l);
    rt.block_on(async {
        for i in 0..50 {
            let k = format!("after{i}");
            let r = cc
                .cmd_idempotent(&["SET", k.as_str(), "x"])
                .await
                .expect("SET through the failover");
            assert_eq!(r, Reply::Simple("OK".into()), "{k}");
        }
        let r = cc.cmd(&["GET", "before"]).await.expect("GET");
        assert_eq!(r, Reply::Bulk("1".into()));
    });
    assert_ne!(cc.current(), Some(old.as_str()));
    let mut con = conn(&c, c.wait_leader(LEADER_WAIT));
    assert_eq!(get(&mut con, "after49").as_deref(), Some("x"));
}

/// Sentinel queries, as redis-py `Sentinel`, ioredis and go-redis send them: any node
/// names the raft leader as master `mymaster`, and the other nodes as its replicas.
#[test]
fn t10a_sentinel_queries_name_the_leader() {
    let _g = serial();
    let mut c = Cluster::start(3, &[]);
    let l = c.wait_leader(LEADER_WAIT);
    let f = (l + 1) % 3;
    // Let every node hear from every other (hellos carry client addresses).
    let mut fc = conn(&c, f);
    let want = c.node(l).addr();
    let addr = |con: &mut redis::Connection| -> Option<String> {
        let r: Option<(String, String)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg("mymaster")
            .query(con)
            .ok()?;
        r.map(|(h, p)| format!("{h}:{p}"))
    };
    assert!(wait_until(Duration::from_secs(10), || addr(&mut fc)
        == Some(want.clone())));
    let masters: Vec<BTreeMap<String, String>> = redis::cmd("SENTINEL")
        .arg("MASTERS")
        .query(&mut fc)
        .expect("SENTINEL MASTERS");
    assert_eq!(masters.len(), 1);
    assert_eq!(masters[0].get("flags").map(String::as_str), Some("master"));
    assert_eq!(masters[0].get("port"), Some(&c.node(l).port.to_string()));
    assert!(wait_until(Duration::from_secs(10), || {
        redis::cmd("SENTINEL")
            .arg("REPLICAS")
            .arg("mymaster")
            .query::<Vec<BTreeMap<String, String>>>(&mut fc)
            .is_ok_and(|r| r.len() == 2)
    }));
    let none: Option<(String, String)> = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg("other")
        .query(&mut fc)
        .expect("unknown name");
    assert_eq!(none, None);
    // After a failover the answer moves to the new leader.
    c.kill9(l);
    let nl = c.wait_leader(LEADER_WAIT);
    let want = c.node(nl).addr();
    let mut any = conn(&c, c.up()[0]);
    assert!(wait_until(Duration::from_secs(10), || addr(&mut any)
        == Some(want.clone())));
}

/// The next pub/sub message on `ps` whose channel is `channel`, as its payload.
fn message_on(ps: &mut redis::PubSub<'_>, channel: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match ps.get_message() {
            Ok(m) if m.get_channel_name() == channel => {
                return m.get_payload().expect("text payload");
            }
            Ok(_) => {}
            Err(e) if e.is_timeout() => {}
            Err(e) => panic!("pubsub: {e}"),
        }
    }
    panic!("no message on {channel} within {limit:?}");
}

/// Pub/sub across the cluster: a follower's subscriber gets the `expired` keyspace event
/// when the leader's timing wheel expires a key nobody reads; `PUBLISH` sent to one node
/// reaches subscribers on another; and after a leader kill a follower's subscriber gets
/// Sentinel's `+switch-master` naming the old and the new leader.
#[test]
fn t10b_pubsub_keyspace_events_and_switch_master() {
    let _g = serial();
    let mut c = Cluster::start(3, &[]);
    let l = c.wait_leader(LEADER_WAIT);
    let (f, g) = ((l + 1) % 3, (l + 2) % 3);
    let mut fc = conn(&c, f);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("Ex")
        .query(&mut fc)
        .expect("CONFIG SET");
    let mut fsub = c.node(f).client().get_connection().expect("connect");
    let mut fps = fsub.as_pubsub();
    fps.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    fps.subscribe("__keyevent@0__:expired").expect("subscribe");
    fps.subscribe("+switch-master").expect("subscribe");
    let mut gsub = c.node(g).client().get_connection().expect("connect");
    let mut gps = gsub.as_pubsub();
    gps.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    gps.subscribe("news").expect("subscribe");

    let mut lc = conn(&c, l);
    let _: () = redis::cmd("SET")
        .arg("sess:gone")
        .arg("v")
        .arg("PX")
        .arg(300)
        .query(&mut lc)
        .expect("SET");
    assert_eq!(
        message_on(&mut fps, "__keyevent@0__:expired", Duration::from_secs(10)),
        "sess:gone"
    );
    // Sent to the follower f, replicated, delivered by g to its subscriber.
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query(&mut fc)
        .expect("PUBLISH");
    assert_eq!(receivers, 0, "f itself has no subscriber to 'news'");
    assert_eq!(
        message_on(&mut gps, "news", Duration::from_secs(10)),
        "hello"
    );

    let old = c.node(l).port;
    c.kill9(l);
    let nl = c.wait_leader(LEADER_WAIT);
    let new = c.node(nl).port;
    assert_eq!(
        message_on(&mut fps, "+switch-master", Duration::from_secs(20)),
        format!("mymaster 127.0.0.1 {old} 127.0.0.1 {new}")
    );
}

/// `sessiond-cli`'s library side against a real cluster: the status table lists every
/// member with one leader, changes go to the leader, and bad requests get clear errors.
#[test]
fn t10d_admin_status_and_changes() {
    let _g = serial();
    let c = Cluster::start(3, &[]);
    let l = c.wait_leader(LEADER_WAIT);
    let f = (l + 1) % 3;
    let seeds = vec![c.node(f).addr()];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use sessiond_client::admin;
        // Every member has announced its client address once it has heard from the others
        // (each status call is a round of requests, so this polls without sleeping).
        let mut nodes = Vec::new();
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end {
            nodes = admin::status(&seeds).await;
            if nodes.len() == 3 && nodes.iter().all(|n| n.fields.is_some()) {
                break;
            }
        }
        assert_eq!(nodes.len(), 3, "{nodes:?}");
        let leaders = nodes
            .iter()
            .filter(|n| n.get("raft_role") == Some("leader"))
            .count();
        assert_eq!(leaders, 1);
        let table = admin::table(&nodes);
        assert_eq!(table.lines().count(), 4, "{table}");
        assert!(table.starts_with("ADDRESS"), "{table}");
        assert!(table.contains(&c.node(l).addr()), "{table}");
        let e = admin::to_leader(&seeds, &["RAFT.NODE", "REMOVE", "9"]).await;
        assert_eq!(e, Err("ERR node 9 is not a member".to_string()));
        let target = (l + 2) % 3;
        let r = admin::to_leader(&seeds, &["RAFT.TRANSFER-LEADER", &(target + 1).to_string()])
            .await
            .expect("transfer");
        assert!(r.contains("transferred"), "{r}");
    });
    assert!(
        wait_until(LEADER_WAIT, || c.leader() == Some((l + 2) % 3)),
        "leadership did not move to node {}",
        (l + 2) % 3 + 1
    );
}

/// With `--cluster-secret`, peers authenticate each other before any raft message is
/// heard: the cluster works, and a process without the secret is dropped at the
/// handshake, whatever it sends, without disturbing the node.
#[test]
fn t10e_peers_authenticate_and_a_rogue_is_dropped() {
    use std::io::{Read, Write};
    let _g = serial();
    let c = Cluster::start(3, &["--cluster-secret", "correct horse battery"]);
    let l = c.wait_leader(LEADER_WAIT);
    let f = (l + 1) % 3;
    let mut lc = conn(&c, l);
    let _: () = redis::cmd("SET")
        .arg("auth")
        .arg("ok")
        .query(&mut lc)
        .expect("SET");
    let mut fc = conn(&c, f);
    assert!(wait_until(Duration::from_secs(10), || try_get(
        &mut fc, "auth"
    )
    .as_deref()
        == Some("ok")));
    for attempt in [
        vec![0u8; 48],
        b"\x00\x00\x00\x10garbage-frame-data...............".to_vec(),
    ] {
        let mut rogue = std::net::TcpStream::connect(c.raft_addr(f)).expect("connect");
        rogue
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut nonce = [0u8; 16];
        rogue
            .read_exact(&mut nonce)
            .expect("the node sends a challenge first");
        let _ = rogue.write_all(&attempt);
        let mut rest = Vec::new();
        let n = rogue.read_to_end(&mut rest).unwrap_or(0);
        assert_eq!(n, 0, "the node answered a peer without the secret");
    }
    assert!(c.node(f).log_text().contains("rejected a peer connection"));
    // Still one healthy cluster.
    let _: () = redis::cmd("SET")
        .arg("auth")
        .arg("still")
        .query(&mut lc)
        .expect("SET");
    assert!(wait_until(Duration::from_secs(10), || try_get(
        &mut fc, "auth"
    )
    .as_deref()
        == Some("still")));
    assert!(
        !c.node(f).log_text().contains("correct horse"),
        "the secret was logged"
    );
}

/// `--cluster-fd` takes only a socket this process was handed; anything else stops the
/// node with the reason. (Every other cluster test starts its nodes this way.)
#[test]
fn a_cluster_fd_that_is_not_a_bound_socket_is_refused() {
    for (fd, reason) in [("99", "Bad file descriptor"), ("0", "not a socket")] {
        let out = std::process::Command::new(support::bin())
            .args([
                "--node-id",
                "1",
                "--peers",
                "1=127.0.0.1:7001",
                "--port",
                "0",
            ])
            .args(["--cluster-fd", fd])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run sessiond");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains(&format!("--cluster-fd {fd}: {reason}")),
            "{err}"
        );
    }
}
