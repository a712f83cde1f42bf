//! A linearizability checker for one register per key (Wing & Gong's search with
//! Lowe's memoization, as Porcupine does), for histories recorded by concurrent clients.
//!
//! Each operation has an invocation time and, if the client got an answer, a completion
//! time. A write whose outcome is unknown (timeout, lost connection) never completes:
//! it may take effect at any point after its invocation, or never. Reads and writes that
//! certainly did not run are left out of the history by the caller.

use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `SET key value` (`None`: `DEL key`).
    Write(Option<String>),
    /// `GET key` and what it returned.
    Read(Option<String>),
}

#[derive(Debug, Clone)]
pub struct Event {
    /// Which client ran it; shown when a history fails.
    #[allow(dead_code)]
    pub client: usize,
    pub key: String,
    pub op: Op,
    pub invoke: u64,
    /// `None`: the outcome is unknown.
    pub complete: Option<u64>,
}

/// Check every key's history. Returns the first key that is not linearizable, with its
/// history, or `None` when all are.
pub fn check(history: &[Event]) -> Option<(String, Vec<Event>)> {
    let mut by_key: BTreeMap<&str, Vec<Event>> = BTreeMap::new();
    for e in history {
        by_key.entry(&e.key).or_default().push(e.clone());
    }
    for (key, ops) in by_key {
        if !check_key(&ops) {
            return Some((key.to_string(), ops));
        }
    }
    None
}

/// Whether one register's history is linearizable, starting from "no value".
pub fn check_key(ops: &[Event]) -> bool {
    let n = ops.len();
    let words = n.div_ceil(64).max(1);
    let mut done = vec![0u64; words];
    let mut memo: HashSet<(Vec<u64>, Option<String>)> = HashSet::new();
    let must: Vec<bool> = ops.iter().map(|e| e.complete.is_some()).collect();
    let mut steps = 0u64;
    search(ops, &must, &mut done, None, &mut memo, &mut steps)
}

fn is_done(done: &[u64], i: usize) -> bool {
    done[i / 64] & (1 << (i % 64)) != 0
}

fn flip(done: &mut [u64], i: usize) {
    done[i / 64] ^= 1 << (i % 64);
}

fn search(
    ops: &[Event],
    must: &[bool],
    done: &mut Vec<u64>,
    state: Option<String>,
    memo: &mut HashSet<(Vec<u64>, Option<String>)>,
    steps: &mut u64,
) -> bool {
    *steps += 1;
    assert!(*steps < 50_000_000, "linearizability search too large");
    // Finished when every operation that completed has been placed; unknown-outcome
    // writes may be left out (they never took effect).
    if (0..ops.len()).all(|i| !must[i] || is_done(done, i)) {
        return true;
    }
    if memo.contains(&(done.clone(), state.clone())) {
        return false;
    }
    // An operation may go next only if it was invoked before every other pending
    // operation completed.
    let horizon = (0..ops.len())
        .filter(|&i| !is_done(done, i))
        .filter_map(|i| ops[i].complete)
        .min()
        .unwrap_or(u64::MAX);
    for i in 0..ops.len() {
        if is_done(done, i) || ops[i].invoke > horizon {
            continue;
        }
        let next = match &ops[i].op {
            Op::Write(v) => Some(v.clone()),
            Op::Read(v) if *v == state => Some(state.clone()),
            Op::Read(_) => None,
        };
        if let Some(next) = next {
            flip(done, i);
            if search(ops, must, done, next, memo, steps) {
                return true;
            }
            flip(done, i);
        }
    }
    memo.insert((done.clone(), state));
    false
}
