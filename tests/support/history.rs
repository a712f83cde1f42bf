//! Clients that record a history of GET / SET / DEL on a few registers, for the
//! linearizability checker (`linearizable.rs`), used by the tests that run faults.
//!
//! Each client picks a node at random, runs one operation at a time, and records when it
//! invoked it and when (and what) it was answered. An error whose outcome is unknown
//! (timeout, lost connection) is a write that may or may not have happened; an error that
//! certainly did not run (no leader) is left out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error_text;
use super::linearizable::{self, Event, Op};

/// Registers per round; each round of `round` uses fresh keys, so that one key's
/// history stays short enough to check however long the run.
pub struct Keys {
    pub per_round: u64,
    pub round: Duration,
}

impl Default for Keys {
    fn default() -> Self {
        Keys {
            per_round: 3,
            round: Duration::from_secs(3600),
        }
    }
}

pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
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

/// Run one client until `stop`, appending to `history`.
pub fn client_loop(
    id: usize,
    urls: Vec<String>,
    keys: &Keys,
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
        let round = start.elapsed().as_millis() as u64 / keys.round.as_millis().max(1) as u64;
        let key = format!("r{round}-{}", rng.below(keys.per_round));
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

/// Fail with the first key whose history is not linearizable. The search recurses as
/// deep as a key's history is long, so it runs on a thread with a large stack.
pub fn assert_linearizable(history: &[Event]) {
    let h = history.to_vec();
    let found = std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(move || linearizable::check(&h))
        .expect("checker thread")
        .join()
        .expect("the checker panicked");
    if let Some((key, ops)) = found {
        let mut text = String::new();
        for e in &ops {
            text.push_str(&format!("{e:?}\n"));
        }
        panic!("history of {key} is not linearizable:\n{text}");
    }
}
