//! Linearizability of a 3-node cluster under faults, checked per key by our own register
//! checker (`support/linearizable.rs`).
//!
//! Client threads run GET / SET / DEL on a few keys through every node (leaders and
//! follower proxies) while the test kills the leader with -9 and restarts it, pauses a
//! follower with SIGSTOP/SIGCONT, and adds and removes a member. Each client records
//! when it invoked every operation and when (and what) it was answered. Any history that
//! cannot be linearized fails the test.

#[path = "support/linearizable.rs"]
mod linearizable;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linearizable::{Event, Op};
use support::cluster::Cluster;
use support::{error_text, wait_until};

const KEYS: &[&str] = &["r0", "r1", "r2"];

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What an error means for the history.
enum Outcome {
    /// Certainly did not run: leave it out.
    NotRun,
    /// May or may not have run.
    Unknown,
}

fn classify(e: &redis::RedisError) -> Outcome {
    let t = error_text(e);
    if t.starts_with("CLUSTERDOWN No raft leader") {
        Outcome::NotRun
    } else {
        Outcome::Unknown
    }
}

fn client_loop(
    id: usize,
    urls: Vec<String>,
    start: Instant,
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<Vec<Event>>>,
) {
    let mut rng = Rng(0x9e37_79b9 ^ ((id as u64 + 1) * 0x1234_5677));
    let mut seq = 0u64;
    let mut con: Option<redis::Connection> = None;
    let now = || start.elapsed().as_micros() as u64;
    while !stop.load(Ordering::Relaxed) {
        if con.is_none() {
            let url = &urls[rng.below(urls.len() as u64) as usize];
            let Ok(client) = redis::Client::open(url.as_str()) else {
                continue;
            };
            match client.get_connection_with_timeout(Duration::from_millis(300)) {
                Ok(c) => {
                    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                    con = Some(c);
                }
                Err(_) => continue,
            }
        }
        let Some(c) = con.as_mut() else { continue };
        let key = KEYS[rng.below(KEYS.len() as u64) as usize].to_string();
        let roll = rng.below(10);
        let invoke = now();
        let (op, res): (Op, Result<Option<String>, redis::RedisError>) = if roll < 4 {
            seq += 1;
            let v = format!("c{id}-{seq}");
            let r = redis::cmd("SET").arg(&key).arg(&v).query::<()>(c);
            (Op::Write(Some(v)), r.map(|()| None))
        } else if roll < 5 {
            let r = redis::cmd("DEL").arg(&key).query::<i64>(c);
            (Op::Write(None), r.map(|_| None))
        } else {
            let r = redis::cmd("GET").arg(&key).query::<Option<String>>(c);
            (Op::Read(None), r)
        };
        let complete = now();
        let event = match (op, res) {
            (Op::Read(_), Ok(v)) => Some(Event {
                client: id,
                key,
                op: Op::Read(v),
                invoke,
                complete: Some(complete),
            }),
            // A failed read changed nothing.
            (Op::Read(_), Err(e)) => {
                if e.is_io_error() {
                    con = None;
                }
                None
            }
            (op, Ok(_)) => Some(Event {
                client: id,
                key,
                op,
                invoke,
                complete: Some(complete),
            }),
            (op, Err(e)) => {
                if e.is_io_error() || e.is_timeout() {
                    con = None;
                }
                match classify(&e) {
                    Outcome::NotRun => None,
                    Outcome::Unknown => Some(Event {
                        client: id,
                        key,
                        op,
                        invoke,
                        complete: None,
                    }),
                }
            }
        };
        if let Some(ev) = event {
            history.lock().unwrap_or_else(|e| e.into_inner()).push(ev);
        }
    }
}

#[test]
fn t111_get_set_del_stay_linearizable_through_kills_pauses_and_membership_changes() {
    let mut c = Cluster::start(3, &["--request-timeout-ms", "1500"]);
    c.wait_leader(Duration::from_secs(15));
    let urls: Vec<String> = (0..3).map(|i| c.node(i).url()).collect();
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let history = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|id| {
            let (urls, stop, history) = (urls.clone(), stop.clone(), history.clone());
            std::thread::spawn(move || client_loop(id, urls, start, stop, history))
        })
        .collect();
    let count = || history.lock().unwrap_or_else(|e| e.into_inner()).len();
    let mut target = 500;
    let mut progress = |what: &str| {
        assert!(
            wait_until(Duration::from_secs(20), || count() >= target),
            "clients made no progress after {what}"
        );
        eprintln!(
            "{:>6} ms: {what}: {} operations",
            start.elapsed().as_millis(),
            count()
        );
        target = count() + 500;
    };
    progress("start");

    // 1. kill -9 the leader, then bring it back.
    let l = c.wait_leader(Duration::from_secs(15));
    c.kill9(l);
    progress("the leader kill");
    c.restart(l);
    c.wait_leader(Duration::from_secs(15));
    progress("the restart");

    // 2. Pause a follower, let the others go on, resume it.
    let l = c.wait_leader(Duration::from_secs(15));
    let f = (l + 1) % 3;
    c.node(f).signal("STOP");
    progress("pausing a follower");
    c.node(f).signal("CONT");
    progress("resuming it");

    // 3. Membership: add node 4, then remove it again.
    let l = c.wait_leader(Duration::from_secs(15));
    let j = c.spawn_joiner();
    let mut lc = c.node(l).conn();
    let _ = lc.set_read_timeout(Some(Duration::from_secs(10)));
    let r: String = redis::cmd("RAFT.NODE")
        .arg("ADD")
        .arg(j + 1)
        .arg(c.raft_addr(j))
        .query(&mut lc)
        .expect("RAFT.NODE ADD");
    assert!(r.contains("added"), "{r}");
    progress("adding a node");
    let r: String = redis::cmd("RAFT.NODE")
        .arg("REMOVE")
        .arg(j + 1)
        .query(&mut lc)
        .expect("RAFT.NODE REMOVE");
    assert!(r.contains("removed"), "{r}");
    c.kill9(j);
    progress("removing it");

    stop.store(true, Ordering::Relaxed);
    for t in clients {
        let _ = t.join();
    }
    let history = history.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let unknown = history.iter().filter(|e| e.complete.is_none()).count();
    eprintln!(
        "{} operations over {:?} ({} with unknown outcome)",
        history.len(),
        start.elapsed(),
        unknown
    );
    if let Some((key, ops)) = linearizable::check(&history) {
        let mut text = String::new();
        for e in &ops {
            text.push_str(&format!("{e:?}\n"));
        }
        panic!("history of {key} is not linearizable:\n{text}");
    }
}
