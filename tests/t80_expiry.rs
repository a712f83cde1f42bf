//! Expiry: TTL precision, an expired key is never visible, a million keys expiring at
//! once are reclaimed (DBSIZE and INFO memory return to baseline), and re-set / persist
//! races leave neither stale timers nor wrongly expired keys.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sessiond_client::{Client, Reply};
use support::{dbsize, info_field, used_memory, wait_until, Server};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A key set with PX 200 is visible until 200 ms have passed and gone shortly after.
#[test]
fn ttl_precision() {
    let srv = Server::start();
    let mut con = srv.conn();
    let start = Instant::now();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("PX")
        .arg(200)
        .query(&mut con)
        .expect("set");
    // The server read its clock for the deadline somewhere between `start` and now.
    let set_done = start.elapsed();
    let mut last_seen = Duration::ZERO;
    let gone = wait_until(Duration::from_secs(5), || {
        let t = start.elapsed();
        let v: Option<String> = redis::cmd("GET").arg("k").query(&mut con).expect("get");
        if v.is_some() {
            last_seen = t;
            false
        } else {
            true
        }
    });
    assert!(gone, "key never expired");
    let gone_at = start.elapsed();
    assert!(
        gone_at >= Duration::from_millis(199),
        "expired early, at {gone_at:?}"
    );
    assert!(
        last_seen < set_done + Duration::from_millis(201),
        "visible at {last_seen:?} (SET acknowledged at {set_done:?})"
    );
    // PTTL counts down in milliseconds and TTL rounds.
    let _: () = redis::cmd("SET")
        .arg("t")
        .arg("v")
        .arg("EX")
        .arg(100)
        .query(&mut con)
        .expect("set");
    let pttl: i64 = redis::cmd("PTTL").arg("t").query(&mut con).expect("pttl");
    assert!((99_000..=100_000).contains(&pttl), "pttl {pttl}");
    let ttl: i64 = redis::cmd("TTL").arg("t").query(&mut con).expect("ttl");
    assert_eq!(ttl, 100);
}

/// Once the clock passes a key's absolute deadline, no read returns it, not even for a
/// millisecond: every GET sent after the deadline gets nil.
#[test]
fn expired_key_is_never_visible() {
    let srv = Server::start();
    let mut con = srv.conn();
    for round in 0..5 {
        let deadline = now_ms() + 30;
        let key = format!("k{round}");
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg("v")
            .arg("PXAT")
            .arg(deadline)
            .query(&mut con)
            .expect("set");
        let done = wait_until(Duration::from_secs(5), || {
            let sent_at = now_ms();
            let v: Option<String> = redis::cmd("GET").arg(&key).query(&mut con).expect("get");
            if sent_at > deadline {
                assert!(
                    v.is_none(),
                    "key visible {} ms after its deadline",
                    sent_at - deadline
                );
                return true;
            }
            false
        });
        assert!(done);
    }
}

/// One million keys with the same deadline are all reclaimed by active expiry: DBSIZE
/// reaches 0, `expired_keys` counts them, and `used_memory` returns near its baseline,
/// without anyone reading the keys.
#[test]
fn a_million_keys_expire_at_once_and_memory_returns() {
    const N: usize = 1_000_000;
    let srv = Server::start();
    let mut con = srv.conn();
    let baseline = used_memory(&mut con);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let load_start = Instant::now();
    let deadline = rt.block_on(async {
        let mut c = Client::connect(srv.addr()).await.expect("connect");
        let deadline = now_ms() + 60_000;
        let at = deadline.to_string();
        let value = vec![b'x'; 100];
        for chunk in 0..(N / 10_000) {
            for i in 0..10_000 {
                let key = format!("sess:{:08}", chunk * 10_000 + i);
                c.send(&[
                    b"SET".as_slice(),
                    key.as_bytes(),
                    &value,
                    b"PXAT",
                    at.as_bytes(),
                ]);
            }
            for _ in 0..10_000 {
                let r = c.recv().await.expect("reply");
                assert_eq!(r, Reply::Simple("OK".into()));
            }
        }
        deadline
    });
    assert_eq!(dbsize(&mut con), N as u64);
    let loaded = used_memory(&mut con);
    assert!(
        loaded > baseline + 100 * N as u64,
        "used_memory did not grow: {baseline} -> {loaded}"
    );
    // Move the deadline of every key to one shared instant through PEXPIREAT, far enough
    // ahead that the second pass finishes before it, so they expire in the same ms.
    let load_ms = load_start.elapsed().as_millis() as u64;
    let new_deadline = now_ms() + 2 * load_ms + 500;
    rt.block_on(async {
        let mut c = Client::connect(srv.addr()).await.expect("connect");
        let at = new_deadline.to_string();
        for chunk in 0..(N / 10_000) {
            for i in 0..10_000 {
                let key = format!("sess:{:08}", chunk * 10_000 + i);
                c.send(&[b"PEXPIREAT".as_slice(), key.as_bytes(), at.as_bytes()]);
            }
            for _ in 0..10_000 {
                let r = c.recv().await.expect("reply");
                assert_eq!(r, Reply::Integer(1));
            }
        }
    });
    assert!(new_deadline < deadline);
    // Reclaimed means unlinked and freed: no keys, and nothing left for the free thread.
    let reclaimed = wait_until(Duration::from_secs(60), || {
        dbsize(&mut con) == 0
            && info_field(&mut con, "memory", "lazyfree_pending_objects").as_deref() == Some("0")
    });
    let lag = now_ms().saturating_sub(new_deadline);
    assert!(reclaimed, "keys left: {}", dbsize(&mut con));
    let server_lag = info_field(&mut con, "stats", "expiry_max_lag_ms").unwrap_or_default();
    eprintln!("1M keys reclaimed {lag} ms after their deadline (server: {server_lag} ms)");
    let expired: u64 = info_field(&mut con, "stats", "expired_keys")
        .and_then(|v| v.parse().ok())
        .expect("expired_keys");
    assert_eq!(expired, N as u64);
    let after = used_memory(&mut con);
    assert!(
        after < baseline + 4 * 1024 * 1024,
        "used_memory did not return to baseline: baseline {baseline}, loaded {loaded}, after {after}"
    );
    let keyspace: String = redis::cmd("INFO")
        .arg("keyspace")
        .query(&mut con)
        .expect("info");
    assert!(!keyspace.contains("db0:"), "{keyspace}");
}

/// Re-setting a key with a TTL many times keeps exactly one timer (no stale wheel
/// entries), and the key expires by its last deadline.
#[test]
fn reset_keeps_one_timer() {
    let srv = Server::start();
    let mut con = srv.conn();
    for _ in 0..10_000 {
        let _: () = redis::cmd("SET")
            .arg("s")
            .arg("v")
            .arg("EX")
            .arg(1000)
            .query(&mut con)
            .expect("set");
    }
    for _ in 0..1000 {
        let _: bool = redis::cmd("EXPIRE")
            .arg("s")
            .arg(2000)
            .query(&mut con)
            .expect("expire");
        let _: bool = redis::cmd("PERSIST")
            .arg("s")
            .query(&mut con)
            .expect("persist");
        let _: bool = redis::cmd("PEXPIRE")
            .arg("s")
            .arg(3000)
            .query(&mut con)
            .expect("pexpire");
    }
    let ks: String = redis::cmd("INFO")
        .arg("keyspace")
        .query(&mut con)
        .expect("info");
    assert!(ks.contains("db0:keys=1,expires=1,"), "{ks}");
    // Overwrite without TTL: the timer goes away.
    let _: () = redis::cmd("SET")
        .arg("s")
        .arg("v")
        .query(&mut con)
        .expect("set");
    let ks: String = redis::cmd("INFO")
        .arg("keyspace")
        .query(&mut con)
        .expect("info");
    assert!(ks.contains("db0:keys=1,expires=0,"), "{ks}");
    // Deleting removes the timer too.
    let _: () = redis::cmd("SET")
        .arg("d")
        .arg("v")
        .arg("EX")
        .arg(100)
        .query(&mut con)
        .expect("set");
    let _: i64 = redis::cmd("DEL").arg("d").query(&mut con).expect("del");
    let ks: String = redis::cmd("INFO")
        .arg("keyspace")
        .query(&mut con)
        .expect("info");
    assert!(ks.contains("db0:keys=1,expires=0,"), "{ks}");
}

/// A key whose TTL is removed (PERSIST) or extended just before its deadline survives,
/// while a control key with the original deadline is reclaimed.
#[test]
fn persist_and_extend_races() {
    let srv = Server::start();
    let mut con = srv.conn();
    for round in 0..20 {
        let (p, e, c) = (
            format!("p{round}"),
            format!("e{round}"),
            format!("c{round}"),
        );
        let _: () = redis::pipe()
            .cmd("SET")
            .arg(&p)
            .arg("v")
            .arg("PX")
            .arg(40)
            .ignore()
            .cmd("SET")
            .arg(&e)
            .arg("v")
            .arg("PX")
            .arg(40)
            .ignore()
            .cmd("SET")
            .arg(&c)
            .arg("v")
            .arg("PX")
            .arg(40)
            .ignore()
            .cmd("PERSIST")
            .arg(&p)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&e)
            .arg(60_000)
            .ignore()
            .query(&mut con)
            .expect("pipeline");
        // Wait until active expiry (not a read) has reclaimed the control key.
        let before: u64 = dbsize(&mut con);
        assert!(
            wait_until(Duration::from_secs(5), || dbsize(&mut con) < before),
            "control key never reclaimed"
        );
        let exists: (bool, bool, bool) = redis::pipe()
            .cmd("EXISTS")
            .arg(&p)
            .cmd("EXISTS")
            .arg(&e)
            .cmd("EXISTS")
            .arg(&c)
            .query(&mut con)
            .expect("exists");
        assert_eq!(exists, (true, true, false), "round {round}");
    }
}

/// A key overwritten right at its deadline with a new TTL keeps the new one.
#[test]
fn overwrite_at_deadline_uses_new_ttl() {
    let srv = Server::start();
    let mut con = srv.conn();
    for i in 0..50 {
        let key = format!("r{i}");
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg("old")
            .arg("PX")
            .arg(5)
            .query(&mut con)
            .expect("set");
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg("new")
            .arg("PX")
            .arg(60_000)
            .query(&mut con)
            .expect("set");
    }
    let before = Instant::now();
    // Let active expiry run past every old deadline: wait for a control key to go.
    let _: () = redis::cmd("SET")
        .arg("control")
        .arg("x")
        .arg("PX")
        .arg(20)
        .query(&mut con)
        .expect("set");
    assert!(wait_until(Duration::from_secs(5), || dbsize(&mut con) <= 50));
    // Deadlines have millisecond resolution: PX 20 set at t expires at floor(t) + 20.
    assert!(before.elapsed() >= Duration::from_millis(19));
    assert_eq!(
        dbsize(&mut con),
        50,
        "an overwritten key expired by its old TTL"
    );
    for i in 0..50 {
        let v: Option<String> = redis::cmd("GET")
            .arg(format!("r{i}"))
            .query(&mut con)
            .expect("get");
        assert_eq!(v.as_deref(), Some("new"));
    }
}

/// Keys with TTLs spread over two seconds are reclaimed by active expiry soon after their
/// deadlines; `INFO stats` reports the worst lag (`expiry_max_lag_ms`). The bound here is
/// loose because tests share the machine; scripts/bench-style figures are in the README.
#[test]
fn spread_deadlines_are_reclaimed_promptly() {
    let srv = Server::start();
    let mut con = srv.conn();
    let mut pipe = redis::pipe();
    for i in 0..20_000u64 {
        let ttl = 100 + (i * 7919) % 1900;
        pipe.cmd("SET")
            .arg(format!("s{i}"))
            .arg("v")
            .arg("PX")
            .arg(ttl)
            .ignore();
    }
    let _: () = pipe.query(&mut con).expect("load");
    assert!(
        wait_until(Duration::from_secs(30), || dbsize(&mut con) == 0),
        "keys left: {}",
        dbsize(&mut con)
    );
    let lag: u64 = info_field(&mut con, "stats", "expiry_max_lag_ms")
        .and_then(|v| v.parse().ok())
        .expect("expiry_max_lag_ms");
    eprintln!("worst reclaim lag with spread deadlines: {lag} ms");
    assert!(lag < 1000, "worst lag {lag} ms");
}
