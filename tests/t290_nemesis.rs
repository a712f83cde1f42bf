//! The nemesis: a 3-node cluster, each node in its own network namespace and under the
//! fsync-stall preload, takes a random sequence of faults while clients work through
//! every node:
//!
//! - symmetric isolation of the leader, and of a follower;
//! - one-way cuts, leader to follower and follower to leader;
//! - a flapping link (cut and restored every 300 ms);
//! - packet loss (20% of what a node receives, iptables' `statistic` match);
//! - slow links on every node: `tc netem` delay (40 ms ± 20 ms), or where the kernel
//!   has no netem, a congested link (`tbf`, 1 Mbit/s, up to 200 ms queued);
//! - a busy disk (every fsync of both followers stalled 800 ms);
//! - a CPU hog on both cores;
//! - `kill -9` of the leader and a restart, and `SIGSTOP` of a follower.
//!
//! Node 3 runs under libfaketime 200 ms ahead, inside `--max-clock-skew`: it may lead, and
//! the others read its deadlines through the measured offset.
//!
//! Afterwards every history must be linearizable (`support/linearizable.rs`), every
//! acknowledged write must be on every node, and all replicas must hold the same data.
//! Each fault's leader changes and client errors are printed as `FIGURE` lines.
//!
//! `NEMESIS_SECS` (default 90) bounds the run and `NEMESIS_SEED` repeats one; the seed is
//! printed. It needs root, iproute2, iptables, gcc and faketime; without them it fails.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::cluster::Cluster;
use support::faults::{assert_replicas_equal, hold, DiskStall};
use support::history::{assert_linearizable, client_loop, Keys, Rng};
use support::netns::Net;
use support::wait_until;

const FAULTS: &[&str] = &[
    "isolate-leader",
    "isolate-follower",
    "cut-leader-to-follower",
    "cut-follower-to-leader",
    "flapping-link",
    "packet-loss",
    "slow-links",
    "busy-disk",
    "cpu-hog",
    "kill-leader",
    "pause-follower",
];

/// Writers of new keys through random nodes; what was acknowledged must survive.
struct Acks {
    acked: Mutex<Vec<String>>,
    errors: AtomicU64,
    last_error: Mutex<String>,
    stop: AtomicBool,
}

fn ack_writer(id: usize, urls: Vec<String>, acks: Arc<Acks>) {
    let mut rng = Rng(0x5151 + id as u64 * 7919);
    let mut con: Option<redis::Connection> = None;
    for i in 0..10_000_000u64 {
        if acks.stop.load(Ordering::Relaxed) {
            return;
        }
        if con.is_none() {
            let url = &urls[rng.below(urls.len() as u64) as usize];
            con = redis::Client::open(url.as_str()).ok().and_then(|c| {
                c.get_connection_with_timeout(Duration::from_millis(300))
                    .ok()
            });
            if let Some(c) = &con {
                let _ = c.set_read_timeout(Some(Duration::from_secs(3)));
            }
            continue;
        }
        let Some(c) = con.as_mut() else { continue };
        let key = format!("ack:{id}:{i}");
        match redis::cmd("SET").arg(&key).arg(i).query::<()>(c) {
            Ok(()) => acks
                .acked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(key),
            Err(e) => {
                acks.errors.fetch_add(1, Ordering::Relaxed);
                *acks.last_error.lock().unwrap_or_else(|e| e.into_inner()) = e.to_string();
                if e.is_io_error() || e.is_timeout() {
                    con = None;
                }
            }
        }
    }
}

/// Spin on every core until `stop`.
fn cpu_hog(stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..10_000 {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    }
                    std::hint::black_box(x);
                }
            })
        })
        .collect()
}

/// The highest term any node has seen: it moves with every election (pre-vote keeps
/// a node that cannot win from moving it).
fn term(c: &Cluster) -> u64 {
    c.up()
        .iter()
        .map(|&i| c.raft_index(i, "raft_term"))
        .max()
        .unwrap_or(0)
}

#[test]
fn the_nemesis_finds_no_lost_write_no_stale_read_and_equal_replicas() {
    let secs: u64 = std::env::var("NEMESIS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(90);
    let seed = support::seed_from_env("NEMESIS_SEED");
    eprintln!("nemesis: NEMESIS_SEED={seed} NEMESIS_SECS={secs}");
    let mut rng = Rng(seed);

    let net = Net::new(3);
    let dir = std::env::temp_dir().join(format!("sessiond-nemesis-{}", std::process::id()));
    let mut stalls = Vec::new();
    let mut launch = Vec::new();
    for i in 0..3 {
        let (s, l) = DiskStall::new(&dir, &format!("n{i}"));
        let mut how = net.launch(i);
        how.env = l.env;
        if i == 2 {
            // A small skew, within --max-clock-skew: node 3 may lead.
            how.wrapper
                .extend(["faketime".into(), "-f".into(), "+0.2".into()]);
            how.env
                .push(("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()));
        }
        stalls.push(s);
        launch.push(how);
    }
    let mut c = Cluster::start_as(
        launch,
        vec![7000; 3],
        &[
            "--protected-mode",
            "no",
            "--request-timeout-ms",
            "1500",
            "--port",
            "6379",
        ],
    );
    c.wait_leader(Duration::from_secs(30));
    let urls: Vec<String> = (0..3).map(|i| c.node(i).url()).collect();

    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let history = Arc::new(Mutex::new(Vec::new()));
    let keys = Arc::new(Keys {
        per_round: 4,
        round: Duration::from_secs(3),
    });
    let mut clients: Vec<_> = (0..4)
        .map(|id| {
            let (urls, stop, history, keys) =
                (urls.clone(), stop.clone(), history.clone(), keys.clone());
            std::thread::spawn(move || client_loop(id, urls, &keys, start, stop, history))
        })
        .collect();
    let acks = Arc::new(Acks {
        acked: Mutex::new(Vec::new()),
        errors: AtomicU64::new(0),
        last_error: Mutex::new(String::new()),
        stop: AtomicBool::new(false),
    });
    for id in 0..2 {
        let (urls, acks) = (urls.clone(), acks.clone());
        clients.push(std::thread::spawn(move || ack_writer(id, urls, acks)));
    }
    let ops = || history.lock().unwrap_or_else(|e| e.into_inner()).len();
    assert!(wait_until(Duration::from_secs(30), || ops() > 100));

    let deadline = start + Duration::from_secs(secs);
    let mut steps = 0;
    while Instant::now() < deadline && steps < 1000 {
        steps += 1;
        let l = c.wait_leader(Duration::from_secs(30));
        let f = (l + 1 + rng.below(2) as usize) % 3;
        let fault = FAULTS[rng.below(FAULTS.len() as u64) as usize];
        let dur = Duration::from_millis(1000 + rng.below(3000));
        let (term0, errors, before) = (term(&c), acks.errors.load(Ordering::Relaxed), ops());
        match fault {
            "isolate-leader" => {
                net.isolate(l);
                hold(dur);
                net.heal();
            }
            "isolate-follower" => {
                net.isolate(f);
                hold(dur);
                net.heal();
            }
            "cut-leader-to-follower" => {
                net.cut_one_way(l, f);
                hold(dur);
                net.heal();
            }
            "cut-follower-to-leader" => {
                net.cut_one_way(f, l);
                hold(dur);
                net.heal();
            }
            "flapping-link" => {
                for _ in 0..5 {
                    net.cut(l, f);
                    hold(Duration::from_millis(300));
                    net.heal();
                    hold(Duration::from_millis(300));
                }
            }
            "packet-loss" => {
                for i in 0..3 {
                    net.lossy(i, 0.2);
                }
                hold(dur);
                net.heal();
            }
            "slow-links" => {
                let how: Vec<&str> = (0..3).map(|i| net.slow(i)).collect();
                eprintln!("nemesis: slow links ({})", how[0]);
                hold(dur);
                net.heal();
            }
            "busy-disk" => {
                for i in (0..3).filter(|&i| i != l) {
                    stalls[i].set(800);
                }
                hold(dur);
                for s in &stalls {
                    s.clear();
                }
            }
            "cpu-hog" => {
                let halt = Arc::new(AtomicBool::new(false));
                let hogs = cpu_hog(halt.clone());
                hold(dur);
                halt.store(true, Ordering::Relaxed);
                for h in hogs {
                    let _ = h.join();
                }
            }
            "kill-leader" => {
                c.kill9(l);
                hold(dur);
                c.restart(l);
            }
            _ => {
                c.node(f).signal("STOP");
                hold(dur);
                c.node(f).signal("CONT");
            }
        }
        // Recovered: a leader every node agrees on, and clients moving again.
        c.wait_leader(Duration::from_secs(30));
        let moved = wait_until(Duration::from_secs(30), || ops() > before + 20);
        assert!(moved, "no progress after {fault}\n{}", c.logs());
        eprintln!(
            "FIGURE nemesis {:>6} ms {fault} {} ms: elections {}, writer errors {} (last: {})",
            start.elapsed().as_millis(),
            dur.as_millis(),
            term(&c).saturating_sub(term0),
            acks.errors.load(Ordering::Relaxed) - errors,
            acks.last_error.lock().unwrap_or_else(|e| e.into_inner())
        );
    }

    stop.store(true, Ordering::Relaxed);
    acks.stop.store(true, Ordering::Relaxed);
    for t in clients {
        let _ = t.join();
    }
    let history = history.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let unknown = history.iter().filter(|e| e.complete.is_none()).count();
    eprintln!(
        "nemesis: {steps} faults, {} operations ({unknown} with unknown outcome) over {:?}",
        history.len(),
        start.elapsed()
    );
    assert_linearizable(&history);

    // Every acknowledged write is on every node, and the replicas are equal.
    let l = c.wait_leader(Duration::from_secs(30));
    assert_replicas_equal(&c, l);
    let acked = acks.acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for i in 0..3 {
        let mut con = c.node(i).conn();
        for chunk in acked.chunks(500) {
            let got: Vec<Option<String>> =
                redis::cmd("MGET").arg(chunk).query(&mut con).expect("MGET");
            let lost: Vec<&String> = chunk
                .iter()
                .zip(&got)
                .filter(|(_, v)| v.is_none())
                .map(|(k, _)| k)
                .collect();
            assert!(
                lost.is_empty(),
                "node {} lost acknowledged writes {lost:?}",
                i + 1
            );
        }
    }
    eprintln!(
        "FIGURE nemesis: {} acknowledged writes, 0 lost; {} operations linearizable; replicas equal",
        acked.len(),
        history.len()
    );
    drop(c);
    let _ = std::fs::remove_dir_all(&dir);
}
