//! `maxmemory` in a cluster. The node over its limit picks victims and proposes their
//! eviction through the log; every replica evicts the same keys. Under `volatile-ttl` a
//! write load far past the limit, with the leader killed in the middle, sees no `-OOM`,
//! and every replica ends with the same keys. A follower's limit is enforced too: its
//! evictions go through the leader, which evicts the same keys though it has no limit.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::cluster::Cluster;
use support::faults::assert_replicas_equal;
use support::{error_text, info_field, used_memory, wait_until};

const MB: u64 = 1 << 20;

/// What the writers saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    oom: AtomicU64,
    /// Errors other than `-OOM` (a killed node, an outcome unknown), by text.
    other: AtomicU64,
    errors: Mutex<std::collections::BTreeMap<String, u64>>,
}

/// `writers` clients, client `t` starting at node `t % n` and moving to the next node
/// when its node is gone, each writing `per` keys `{prefix}:{t}:{i}` of `bytes` bytes
/// with `write` (which builds the command for key number `i`).
fn write_load(
    addrs: &[String],
    writers: usize,
    per: u64,
    bytes: usize,
    write: fn(String, Vec<u8>, u64) -> redis::Cmd,
    tally: &Arc<Tally>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..writers)
        .map(|t| {
            let addrs = addrs.to_vec();
            let tally = tally.clone();
            std::thread::spawn(move || {
                let mut at = t % addrs.len();
                let mut con: Option<redis::Connection> = None;
                let mut i = 0;
                let mut attempts = 0;
                while i < per && attempts < 10 * per {
                    attempts += 1;
                    let c = match con.as_mut() {
                        Some(c) => c,
                        None => {
                            let url = format!("redis://{}/", addrs[at]);
                            match redis::Client::open(url).and_then(|c| c.get_connection()) {
                                Ok(c) => con.insert(c),
                                Err(_) => {
                                    at = (at + 1) % addrs.len();
                                    continue;
                                }
                            }
                        }
                    };
                    let _ = c.set_read_timeout(Some(Duration::from_secs(15)));
                    let key = format!("sess:{t}:{i}");
                    let value = vec![b'a' + (i % 26) as u8; bytes];
                    match write(key, value, i).query::<()>(c) {
                        Ok(()) => {
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                            i += 1;
                        }
                        Err(e) if error_text(&e).starts_with("OOM") => {
                            tally.oom.fetch_add(1, Ordering::Relaxed);
                            i += 1;
                        }
                        Err(e) => {
                            tally.other.fetch_add(1, Ordering::Relaxed);
                            let text = error_text(&e);
                            *tally
                                .errors
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .entry(format!("node {}: {text}", at + 1))
                                .or_default() += 1;
                            if e.is_io_error() || e.is_connection_dropped() {
                                con = None;
                                at = (at + 1) % addrs.len();
                            }
                        }
                    }
                }
            })
        })
        .collect()
}

fn evicted(c: &Cluster, i: usize) -> u64 {
    info_field(&mut c.node(i).conn(), "stats", "evicted_keys")
        .and_then(|v| v.parse().ok())
        .expect("evicted_keys")
}

/// Used memory as eviction counts it: less the in-memory raft log.
fn counted_memory(c: &Cluster, i: usize) -> u64 {
    let used = used_memory(&mut c.node(i).conn());
    used.saturating_sub(c.raft_index(i, "raft_log_memory_bytes"))
}

fn setex(key: String, value: Vec<u8>, i: u64) -> redis::Cmd {
    // Distinct TTLs, so that volatile-ttl has an order to follow.
    let mut cmd = redis::cmd("SETEX");
    cmd.arg(key).arg(3_600 + i % 1_000).arg(value);
    cmd
}

fn set(key: String, value: Vec<u8>, _i: u64) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    cmd
}

#[test]
fn volatile_ttl_evicts_the_same_sessions_everywhere_through_a_leader_kill() {
    let limit = 24 * MB;
    let mut c = Cluster::start(
        3,
        &[
            "--maxmemory",
            &limit.to_string(),
            "--maxmemory-policy",
            "volatile-ttl",
            "--raft-log-memory",
            "2097152",
        ],
    );
    let leader = c.wait_leader(Duration::from_secs(15));
    let addrs: Vec<String> = (0..3).map(|i| c.node(i).addr()).collect();
    let base = (0..3).map(|i| counted_memory(&c, i)).max().unwrap_or(0);
    assert!(base < limit / 2, "a fresh node already uses {base} bytes");
    // 6 writers × 4,000 sessions of 2 KB: 48 MB of sessions into 24 MB.
    let tally = Arc::new(Tally::default());
    let threads = write_load(&addrs, 6, 4_000, 2_048, setex, &tally);
    let halfway = wait_until(Duration::from_secs(120), || {
        tally.ok.load(Ordering::Relaxed) >= 12_000
    });
    assert!(
        halfway,
        "the load stalled at {} writes",
        tally.ok.load(Ordering::Relaxed)
    );
    c.kill9(leader);
    for t in threads {
        t.join().expect("writer");
    }
    c.restart(leader);
    let new_leader = c.wait_leader(Duration::from_secs(15));
    let (ok, oom, other) = (
        tally.ok.load(Ordering::Relaxed),
        tally.oom.load(Ordering::Relaxed),
        tally.other.load(Ordering::Relaxed),
    );
    eprintln!(
        "FIGURE writes ok {ok}, -OOM {oom}, other errors {other}: {:?}",
        tally.errors.lock().unwrap_or_else(|e| e.into_inner())
    );
    assert_eq!(oom, 0, "-OOM while sessions could be evicted");
    // Only the writes in flight when the leader died may fail (with their outcome
    // unknown); those that came later wait for the new leader.
    assert!(other <= 20, "{other} errors around the leader kill");
    assert_replicas_equal(&c, new_leader);
    let keys: u64 = redis::cmd("DBSIZE")
        .query(&mut c.node(new_leader).conn())
        .expect("DBSIZE");
    assert!(
        keys < ok * 3 / 4,
        "{keys} of {ok} sessions kept: nothing evicted?"
    );
    for i in 0..3 {
        let (mem, ev) = (counted_memory(&c, i), evicted(&c, i));
        eprintln!(
            "FIGURE node {}: {keys} keys, {mem} bytes counted, {ev} evicted",
            i + 1
        );
        assert!(
            mem <= limit + limit / 10,
            "node {} holds {mem} bytes",
            i + 1
        );
    }
}

#[test]
fn a_followers_limit_is_enforced_through_the_log() {
    let c = Cluster::start(3, &["--raft-log-memory", "2097152"]);
    let leader = c.wait_leader(Duration::from_secs(15));
    let follower = (leader + 1) % 3;
    let limit = 20 * MB;
    let mut con = c.node(follower).conn();
    for (k, v) in [
        ("maxmemory", limit.to_string()),
        ("maxmemory-policy", "allkeys-lru".into()),
    ] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(k)
            .arg(v)
            .query(&mut con)
            .expect("CONFIG SET");
    }
    // 40 MB of keys without TTLs, through the leader, which has no limit.
    let tally = Arc::new(Tally::default());
    let addrs = vec![c.node(leader).addr()];
    for t in write_load(&addrs, 4, 5_000, 2_048, set, &tally) {
        t.join().expect("writer");
    }
    assert_eq!(tally.oom.load(Ordering::Relaxed), 0);
    assert_eq!(
        tally.other.load(Ordering::Relaxed),
        0,
        "{:?}",
        tally.errors.lock().unwrap_or_else(|e| e.into_inner())
    );
    // The follower's last evictions may still be on their way.
    let settled = wait_until(Duration::from_secs(20), || {
        counted_memory(&c, follower) <= limit + limit / 10
    });
    let mem = counted_memory(&c, follower);
    assert!(settled, "the follower holds {mem} bytes, over {limit}");
    assert_replicas_equal(&c, leader);
    let (on_leader, on_follower) = (evicted(&c, leader), evicted(&c, follower));
    eprintln!("FIGURE follower {mem} bytes; evicted: leader {on_leader}, follower {on_follower}");
    assert!(on_leader > 0 && on_leader == on_follower);
}
