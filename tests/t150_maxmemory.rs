//! `--maxmemory` and its policies: `noeviction` refuses writes with Redis's OOM error
//! and recovers when memory is freed; `volatile-ttl` evicts the sessions nearest to
//! expiry and never keys without a TTL; `allkeys-lru` keeps recently used keys.

mod support;

use std::time::Duration;

use support::{info_field, used_memory as used, wait_until, Server};

fn evicted(con: &mut redis::Connection) -> u64 {
    info_field(con, "stats", "evicted_keys")
        .and_then(|v| v.parse().ok())
        .expect("evicted_keys")
}

fn exists(con: &mut redis::Connection, keys: &[String]) -> usize {
    let mut p = redis::pipe();
    for k in keys {
        p.cmd("EXISTS").arg(k);
    }
    let r: Vec<i64> = p.query(con).expect("EXISTS");
    r.iter().filter(|&&n| n == 1).count()
}

#[test]
fn noeviction_refuses_writes_then_recovers() {
    let srv = Server::start_with(&["--maxmemory", "24mb", "--maxmemory-policy", "noeviction"]);
    let mut con = srv.conn();
    let value = vec![b'v'; 1024];
    let mut refused = None;
    for i in 0..100_000 {
        let r: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(&value)
            .query(&mut con);
        if let Err(e) = r {
            refused = Some(support::error_text(&e));
            break;
        }
    }
    assert_eq!(
        refused.as_deref(),
        Some("OOM command not allowed when used memory > 'maxmemory'.")
    );
    // Reads and deletes still work, and freeing memory lets writes in again.
    let v: Vec<u8> = redis::cmd("GET").arg("k1").query(&mut con).expect("GET");
    assert_eq!(v.len(), 1024);
    let _: () = redis::cmd("FLUSHALL").query(&mut con).expect("FLUSHALL");
    assert!(wait_until(Duration::from_secs(10), || {
        redis::cmd("SET")
            .arg("after")
            .arg("x")
            .query::<()>(&mut con)
            .is_ok()
    }));
    let policy: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query(&mut con)
        .expect("CONFIG GET");
    assert_eq!(policy[1], "noeviction");
}

#[test]
fn volatile_ttl_evicts_sessions_nearest_to_expiry() {
    let srv = Server::start_with(&["--maxmemory", "32mb"]);
    let mut con = srv.conn();
    let value = vec![b's'; 1024];
    // Keys without a TTL are never evicted by volatile-ttl.
    let keep: Vec<String> = (0..2000).map(|i| format!("keep:{i}")).collect();
    let mut p = redis::pipe();
    for k in &keep {
        p.cmd("SET").arg(k).arg(&value).ignore();
    }
    let _: () = p.query(&mut con).expect("SET keep");
    // Sessions with rising TTLs, about twice what fits.
    let n = 60_000;
    for chunk in 0..(n / 1000) {
        let mut p = redis::pipe();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            p.cmd("SETEX")
                .arg(format!("sess:{i}"))
                .arg(10_000 + i)
                .arg(&value)
                .ignore();
        }
        let _: () = p.query(&mut con).expect("SETEX");
    }
    assert!(wait_until(Duration::from_secs(20), || used(&mut con) <= 36 << 20));
    assert!(evicted(&mut con) > 0);
    assert_eq!(
        exists(&mut con, &keep),
        keep.len(),
        "a key without TTL was evicted"
    );
    let first: Vec<String> = (0..5000).map(|i| format!("sess:{i}")).collect();
    let last: Vec<String> = (n - 5000..n).map(|i| format!("sess:{i}")).collect();
    let (a, b) = (exists(&mut con, &first), exists(&mut con, &last));
    assert!(
        a < b,
        "nearest-to-expiry sessions should go first: {a} of the first kept, {b} of the last"
    );
    let policy = info_field(&mut con, "memory", "maxmemory_policy");
    assert_eq!(policy.as_deref(), Some("volatile-ttl"));
}

#[test]
fn allkeys_lru_keeps_recently_used_keys() {
    let srv = Server::start_with(&["--maxmemory", "32mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut con = srv.conn();
    let value = vec![b'l'; 1024];
    let hot: Vec<String> = (0..3000).map(|i| format!("hot:{i}")).collect();
    let mut p = redis::pipe();
    for k in &hot {
        p.cmd("SET").arg(k).arg(&value).ignore();
    }
    let _: () = p.query(&mut con).expect("SET hot");
    for chunk in 0..60 {
        // Use the hot keys between every batch of new cold ones.
        let mut p = redis::pipe();
        for k in &hot {
            p.cmd("EXISTS").arg(k).ignore();
        }
        for i in chunk * 1000..(chunk + 1) * 1000 {
            p.cmd("SET").arg(format!("cold:{i}")).arg(&value).ignore();
        }
        let _: () = p.query(&mut con).expect("batch");
    }
    assert!(wait_until(Duration::from_secs(20), || used(&mut con) <= 36 << 20));
    assert!(evicted(&mut con) > 0);
    let cold: Vec<String> = (0..3000).map(|i| format!("cold:{i}")).collect();
    let (h, c) = (exists(&mut con, &hot), exists(&mut con, &cold));
    assert!(
        h > 2 * c,
        "recently used keys should survive: {h} hot, {c} cold of 3000 each"
    );
}

/// `CONFIG SET maxmemory` and `maxmemory-policy` take effect at once, both ways.
#[test]
fn maxmemory_changes_at_runtime() {
    let srv = Server::start();
    let mut con = srv.conn();
    let set =
        |con: &mut redis::Connection, k: &str| redis::cmd("SET").arg(k).arg("v").query::<()>(con);
    set(&mut con, "before").expect("no limit yet");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .arg("maxmemory")
        .arg("1mb")
        .query(&mut con)
        .expect("CONFIG SET");
    assert!(
        wait_until(Duration::from_secs(10), || set(&mut con, "k").is_err()),
        "writes still accepted over a 1 MB limit"
    );
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory*")
        .query(&mut con)
        .expect("CONFIG GET");
    assert!(v.windows(2).any(|w| w == ["maxmemory", "1048576"]), "{v:?}");
    assert!(
        v.windows(2)
            .any(|w| w == ["maxmemory-policy", "noeviction"]),
        "{v:?}"
    );
    let e = support::err_of(
        &mut con,
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-policy")
            .arg("allkeys-lfu"),
    );
    assert!(
        e.starts_with("ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy')"),
        "{e}"
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("0")
        .query(&mut con)
        .expect("CONFIG SET 0");
    assert!(
        wait_until(Duration::from_secs(10), || set(&mut con, "after").is_ok()),
        "writes still refused with no limit"
    );
}
