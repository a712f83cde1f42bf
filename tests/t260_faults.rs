//! Faults that kill and pause do not cover, on real processes over loopback: a busy
//! disk (fsyncs that stall). The network faults, which need namespaces, are in
//! `t270_netfaults`.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::cluster::{free_port, Cluster};
use support::faults::DiskStall;
use support::wait_until;

/// What a load of writers and readers through one node saw.
#[derive(Default)]
struct Load {
    ok: AtomicU64,
    errors: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
    stop: AtomicBool,
}

/// `n` clients, each with one request in flight: SET then GET of its own keys.
fn run_load(
    c: &Cluster,
    node: usize,
    n: usize,
    load: &Arc<Load>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|t| {
            let client = c.node(node).client();
            let load = load.clone();
            std::thread::spawn(move || {
                let mut con = client.get_connection().expect("connect");
                let mut i = 0u64;
                while !load.stop.load(Ordering::Relaxed) && i < 1_000_000 {
                    let key = format!("sess:{t}:{}", i % 500);
                    let r: redis::RedisResult<()> =
                        redis::cmd("SET").arg(&key).arg(i).query(&mut con);
                    let r = r.and_then(|()| {
                        let v: Option<u64> = redis::cmd("GET").arg(&key).query(&mut con)?;
                        assert_eq!(v, Some(i), "a read after an acknowledged write");
                        Ok(())
                    });
                    match r {
                        Ok(()) => {
                            load.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            load.errors.fetch_add(1, Ordering::Relaxed);
                            load.first_error
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e.to_string());
                        }
                    }
                    i += 1;
                }
            })
        })
        .collect()
}

fn field(c: &Cluster, i: usize, f: &str) -> u64 {
    c.raft_index(i, f)
}

/// A slow disk must slow commits, not elections: with every fsync of both followers
/// stalled 800 ms for several seconds, the leader stays leader and no client sees an
/// error. Before heartbeat responses stopped waiting for the follower's fsync, the
/// leader lost its quorum within the first stall and stepped down.
#[test]
fn a_busy_disk_on_both_followers_slows_commits_not_elections() {
    let dir = std::env::temp_dir().join(format!("sessiond-stall-{}", std::process::id()));
    let mut stalls = Vec::new();
    let mut launch = Vec::new();
    for i in 0..3 {
        let (s, l) = DiskStall::new(&dir, &format!("n{i}"));
        stalls.push(s);
        launch.push(l);
    }
    let ports = (0..3).map(|_| free_port()).collect();
    let c = Cluster::start_as(launch, ports, &[]);
    let leader = c.wait_leader(Duration::from_secs(20));
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let term = field(&c, leader, "raft_term");
    let changes: Vec<u64> = (0..3)
        .map(|i| field(&c, i, "raft_leader_changes"))
        .collect();

    let load = Arc::new(Load::default());
    let threads = run_load(&c, leader, 8, &load);
    assert!(wait_until(Duration::from_secs(20), || load
        .ok
        .load(Ordering::Relaxed)
        > 200));

    // Both followers' disks go busy at once.
    let fsyncs: Vec<u64> = followers
        .iter()
        .map(|&f| field(&c, f, "raft_fsyncs"))
        .collect();
    let started = Instant::now();
    for &f in &followers {
        stalls[f].set(800);
    }
    // Each stalled fsync takes at least 800 ms: five of them on each follower is four
    // seconds, more than ten election timeouts.
    let stalled = wait_until(Duration::from_secs(30), || {
        followers
            .iter()
            .zip(&fsyncs)
            .all(|(&f, &before)| field(&c, f, "raft_fsyncs") >= before + 5)
    });
    let during = load.ok.load(Ordering::Relaxed);
    for &f in &followers {
        stalls[f].clear();
    }
    assert!(
        stalled,
        "the followers did not fsync under the stall\n{}",
        c.logs()
    );
    assert!(started.elapsed() >= Duration::from_secs(4));
    // Writes go on once the disks are quick again.
    assert!(wait_until(Duration::from_secs(10), || {
        load.ok.load(Ordering::Relaxed) > during + 200
    }));
    load.stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("load thread");
    }

    let errors = load.errors.load(Ordering::Relaxed);
    assert_eq!(
        errors,
        0,
        "clients saw errors, the first: {:?}\n{}",
        load.first_error.lock().unwrap_or_else(|e| e.into_inner()),
        c.logs()
    );
    for i in 0..3 {
        assert_eq!(
            field(&c, i, "raft_term"),
            term,
            "node {} changed term\n{}",
            i + 1,
            c.logs()
        );
        assert_eq!(
            field(&c, i, "raft_leader_changes"),
            changes[i],
            "node {} saw a leader change\n{}",
            i + 1,
            c.logs()
        );
    }
    assert!(!c.logs().contains("stepped down"), "{}", c.logs());
    let _ = std::fs::remove_dir_all(&dir);
}
