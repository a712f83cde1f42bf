//! Active expiry: one OS thread that reclaims keys whose timers fire, and a reaper
//! thread that frees them.
//!
//! Reads never see an expired key (every lookup checks the deadline), so this thread is
//! only about memory. Each round it visits every shard, takes the lock, pops at most
//! [`BUDGET`] due timers from the shard's wheel, unlinks their entries, and releases the
//! lock before they are freed: big batches go to the reaper thread, so freeing one
//! shard's keys overlaps with unlinking the next one's. A shard lock is therefore held
//! for a bounded, short time even when a million keys expire in the same millisecond.
//! When a round leaves work behind the next one starts at once; otherwise the thread
//! sleeps until the earliest deadline, at most [`MAX_SLEEP_MS`]. After a burst the reaper
//! hands free memory back to the operating system.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::now_ms;
use crate::server::Shared;
use crate::store::Entry;

/// Timers handled per shard per lock acquisition.
pub const BUDGET: usize = 2048;
/// The longest the thread sleeps, which bounds how late a key can be reclaimed.
pub const MAX_SLEEP_MS: u64 = 20;
/// After a burst that reclaimed at least this many keys, free memory is handed back to
/// the operating system.
pub const TRIM_AFTER: usize = 65_536;
/// Batches of at least this many dead entries go to the reaper thread to be freed.
const REAPER_MIN: usize = 256;
/// Batches the reaper may have queued; beyond that the expiry thread frees them itself.
const REAPER_QUEUE: usize = 64;

/// Control and counters of the expiry thread.
#[derive(Default)]
pub struct Expirer {
    stop: AtomicBool,
    thread: Mutex<Option<Thread>>,
    /// Keys reclaimed by this thread.
    pub reclaimed: AtomicU64,
    /// Rounds run.
    pub rounds: AtomicU64,
    /// The most keys found due in one round, for `INFO`.
    pub max_batch: AtomicU64,
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

/// Start the expiry thread and the reaper thread that frees what it unlinks. Returns
/// the expiry thread, which joins the reaper when it stops.
pub fn spawn(shared: Arc<Shared>) -> std::io::Result<JoinHandle<()>> {
    let (tx, rx) = crossbeam::channel::bounded::<Vec<Entry>>(REAPER_QUEUE);
    let reaper = thread::Builder::new()
        .name("sessiond-reaper".into())
        .spawn(move || reap(rx))?;
    thread::Builder::new()
        .name("sessiond-expiry".into())
        .spawn(move || {
            *shared.expirer.thread.lock() = Some(thread::current());
            run(&shared, tx);
            let _ = reaper.join();
        })
}

/// Free batches of expired entries; hand memory back to the OS after a big burst.
fn reap(rx: crossbeam::channel::Receiver<Vec<Entry>>) {
    let mut since_trim = 0usize;
    for batch in rx.iter() {
        since_trim += batch.len();
        drop(batch);
        if rx.is_empty() && since_trim >= TRIM_AFTER {
            crate::mem::trim();
            since_trim = 0;
        }
    }
}

fn run(shared: &Shared, reaper: crossbeam::channel::Sender<Vec<Entry>>) {
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
            // Free the values with the lock released: big batches on the reaper thread,
            // so that unlinking the next shard's keys overlaps with freeing these.
            if dead.len() >= REAPER_MIN {
                let batch = std::mem::replace(&mut dead, Vec::with_capacity(BUDGET));
                if let Err(e) = reaper.try_send(batch) {
                    drop(e.into_inner());
                }
            } else {
                dead.clear();
            }
        }
        ex.rounds.fetch_add(1, Ordering::Relaxed);
        ex.max_lag_ms.fetch_max(lag, Ordering::Relaxed);
        if round > 0 {
            ex.reclaimed.fetch_add(round, Ordering::Relaxed);
            ex.max_batch.fetch_max(round, Ordering::Relaxed);
        }
        if more {
            continue;
        }
        let wait = next.saturating_sub(now_ms()).clamp(1, MAX_SLEEP_MS);
        thread::park_timeout(Duration::from_millis(wait));
    }
}
