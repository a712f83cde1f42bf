//! Active expiry: one OS thread that reclaims keys whose timers fire.
//!
//! Reads never see an expired key (every lookup checks the deadline), so this thread is
//! only about memory. Each round it visits every shard, takes the lock, pops at most
//! [`BUDGET`] due timers from the shard's wheel, unlinks their entries, and releases the
//! lock before freeing them. A shard lock is therefore held for a bounded, short time
//! even when a million keys expire in the same millisecond. When a round leaves work
//! behind it starts the next one at once; otherwise it sleeps until the earliest
//! deadline, at most [`MAX_SLEEP_MS`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::now_ms;
use crate::server::Shared;

/// Timers handled per shard per lock acquisition.
pub const BUDGET: usize = 2048;
/// The longest the thread sleeps, which bounds how late a key can be reclaimed.
pub const MAX_SLEEP_MS: u64 = 20;

/// Control and counters of the expiry thread.
#[derive(Default)]
pub struct Expirer {
    stop: AtomicBool,
    thread: Mutex<Option<Thread>>,
    /// Keys reclaimed by this thread.
    pub reclaimed: AtomicU64,
    /// Rounds run.
    pub rounds: AtomicU64,
    /// The longest a due key waited to be reclaimed, in ms: how far the earliest due
    /// deadline of a shard lay behind the clock when the thread reached that shard.
    pub max_lag_ms: AtomicU64,
}

impl Expirer {
    /// Ask the thread to stop and wake it.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.lock().as_ref() {
            t.unpark();
        }
    }
}

/// Start the expiry thread.
pub fn spawn(shared: Arc<Shared>) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("sessiond-expiry".into())
        .spawn(move || {
            *shared.expirer.thread.lock() = Some(thread::current());
            run(&shared)
        })
}

fn run(shared: &Shared) {
    if let Some(cluster) = shared.cluster() {
        return run_cluster(shared, cluster);
    }
    let store = &shared.store;
    let ex = &shared.expirer;
    let mut dead = Vec::with_capacity(BUDGET);
    while !ex.stop.load(Ordering::Acquire) {
        let now = now_ms();
        let mut more = false;
        let mut next = now + MAX_SLEEP_MS;
        let mut round = 0u64;
        let mut lag = 0u64;
        for i in 0..store.shard_count() {
            {
                let mut shard = store.lock(i);
                if let Some(d) = shard.next_deadline().filter(|&d| d <= now) {
                    lag = lag.max(now - d);
                }
                let n = shard.expire_due(now, BUDGET, &mut dead);
                round += n as u64;
                // A poll also stops early after moving many timers down the wheel;
                // a due deadline left behind means there is more to do now.
                let due_left = shard.next_deadline().is_some_and(|d| d <= now);
                if n == BUDGET || due_left {
                    more = true;
                } else if let Some(d) = shard.next_deadline() {
                    next = next.min(d);
                }
            }
            // Free the values with the lock released.
            dead.clear();
        }
        ex.rounds.fetch_add(1, Ordering::Relaxed);
        ex.max_lag_ms.fetch_max(lag, Ordering::Relaxed);
        if round > 0 {
            ex.reclaimed.fetch_add(round, Ordering::Relaxed);
        }
        if more {
            continue;
        }
        let wait = next.saturating_sub(now_ms()).clamp(1, MAX_SLEEP_MS);
        thread::park_timeout(Duration::from_millis(wait));
    }
}

/// Keys per proposed expiry record.
const EXPIRE_RECORD_KEYS: usize = 4096;
/// How long a proposed deletion may stay unapplied before its timer is re-armed (and the
/// deletion proposed again, if this node still leads). Longer than the request timeout.
const UNPARK_AFTER: Duration = Duration::from_secs(5);

/// The cluster flavour: only the leader acts. It takes due timers out of the wheels
/// (parking them, so the keys keep their TTLs) and proposes their deletion, each guarded
/// by the deadline it saw. Every replica, this one included, deletes when it applies.
/// Followers keep their wheels as they are, so a new leader starts expiring at once,
/// without rebuilding any timer.
fn run_cluster(shared: &Shared, cluster: &sessiond_cluster::Handle) {
    let store = &shared.store;
    let ex = &shared.expirer;
    let mut batch: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut last_unpark = std::time::Instant::now();
    let propose = |batch: &mut Vec<(Vec<u8>, u64)>| {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let record = crate::replicated::Record::Expire(std::mem::take(batch)).encode();
        // Nobody waits for the outcome: a lost deletion is re-armed by the unpark.
        drop(cluster.propose(record));
        ex.reclaimed.fetch_add(n, Ordering::Relaxed);
    };
    while !ex.stop.load(Ordering::Acquire) {
        let now = now_ms();
        let mut more = false;
        let mut next = now + MAX_SLEEP_MS;
        let mut lag = 0u64;
        if cluster.status.is_leader() {
            for i in 0..store.shard_count() {
                {
                    let mut shard = store.lock(i);
                    if let Some(d) = shard.next_deadline().filter(|&d| d <= now) {
                        lag = lag.max(now - d);
                    }
                    let n = shard.collect_due(now, BUDGET, &mut batch);
                    let due_left = shard.next_deadline().is_some_and(|d| d <= now);
                    if n == BUDGET || due_left {
                        more = true;
                    } else if let Some(d) = shard.next_deadline() {
                        next = next.min(d);
                    }
                }
                if batch.len() >= EXPIRE_RECORD_KEYS {
                    propose(&mut batch);
                }
            }
            propose(&mut batch);
        }
        if last_unpark.elapsed() >= UNPARK_AFTER {
            for i in 0..store.shard_count() {
                store.lock(i).unpark();
            }
            last_unpark = std::time::Instant::now();
        }
        ex.rounds.fetch_add(1, Ordering::Relaxed);
        ex.max_lag_ms.fetch_max(lag, Ordering::Relaxed);
        if more {
            continue;
        }
        let wait = next.saturating_sub(now_ms()).clamp(1, MAX_SLEEP_MS);
        thread::park_timeout(Duration::from_millis(wait));
    }
}
