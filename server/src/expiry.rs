//! Active expiry: one OS thread that reclaims keys whose timers fire, and a second one
//! that frees what the first has unlinked.
//!
//! Reads never see an expired key (every lookup checks the deadline), so this thread is
//! only about memory. Each round it visits every shard, takes the lock, pops at most
//! [`BUDGET`] due timers from the shard's wheel, unlinks their entries, and releases the
//! lock. A shard lock is therefore held for a bounded, short time even when a million
//! keys expire in the same millisecond. At the end of the round it hands the unlinked
//! entries to the free thread, which frees them in address order (see
//! [`Reclaimed::free`]) while the next round unlinks: the two halves of the work, each
//! about as costly as the other, then run on two cores. When a round leaves work behind
//! it starts the next one at once; otherwise it sleeps until the earliest deadline, at
//! most [`MAX_SLEEP_MS`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::now_ms;
use crate::server::Shared;
use crate::store::Reclaimed;

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
    /// Entries unlinked and not yet freed (Redis's `lazyfree_pending_objects`).
    pub pending_free: AtomicU64,
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

/// Start the expiry thread (and, on a single node, its free thread, which it stops).
pub fn spawn(shared: Arc<Shared>) -> std::io::Result<JoinHandle<()>> {
    let freer = match shared.cluster() {
        Some(_) => None,
        None => Some(Freer::spawn(shared.clone())?),
    };
    thread::Builder::new()
        .name("sessiond-expiry".into())
        .spawn(move || {
            *shared.expirer.thread.lock() = Some(thread::current());
            match (shared.cluster(), freer) {
                (Some(cluster), _) => run_cluster(&shared, cluster),
                (None, Some(freer)) => run(&shared, freer),
                (None, None) => {}
            }
        })
}

/// Batches of unlinked entries in flight between the expiry thread and the free thread.
/// Two: one being freed while the next is unlinked.
const FREE_QUEUE: usize = 2;

/// The expiry thread's end of the free thread: full batches go one way, emptied ones
/// (keeping their capacity) come back.
struct Freer {
    full: SyncSender<Reclaimed>,
    empty: Receiver<Reclaimed>,
    thread: JoinHandle<()>,
}

impl Freer {
    fn spawn(shared: Arc<Shared>) -> std::io::Result<Freer> {
        let (full, full_rx) = mpsc::sync_channel::<Reclaimed>(FREE_QUEUE);
        let (empty_tx, empty) = mpsc::sync_channel::<Reclaimed>(FREE_QUEUE + 1);
        let thread = thread::Builder::new()
            .name("sessiond-free".into())
            .spawn(move || {
                // Ends when the expiry thread drops its sender.
                while let Ok(mut batch) = full_rx.recv() {
                    let n = batch.len() as u64;
                    batch.free();
                    shared.expirer.pending_free.fetch_sub(n, Ordering::Relaxed);
                    // A full return queue only means the batch's capacity is dropped.
                    let _ = empty_tx.try_send(batch);
                }
            })?;
        Ok(Freer {
            full,
            empty,
            thread,
        })
    }

    /// Hand `batch` (already counted in `pending`) over to be freed, leaving an empty
    /// batch in its place. Blocks while [`FREE_QUEUE`] batches are already waiting,
    /// which bounds the memory in flight.
    fn hand_over(&self, batch: &mut Reclaimed, pending: &AtomicU64) {
        if batch.is_empty() {
            return;
        }
        let spare = self.empty.try_recv().unwrap_or_default();
        let full = std::mem::replace(batch, spare);
        if let Err(mpsc::SendError(mut full)) = self.full.send(full) {
            // The free thread is gone (it panicked): free here instead.
            pending.fetch_sub(full.len() as u64, Ordering::Relaxed);
            full.free();
        }
    }

    fn stop(self) {
        drop(self.full);
        if self.thread.join().is_err() {
            tracing::warn!("free thread panicked");
        }
    }
}

fn run(shared: &Shared, freer: Freer) {
    let ex = &shared.expirer;
    let mut dead = Reclaimed::default();
    let mut pick = 0x9e37_79b9_7f4a_7c15u64;
    while !ex.stop.load(Ordering::Acquire) {
        crate::maxmemory::enforce(shared, &mut pick);
        let now = now_ms();
        let mut more = false;
        let mut next = now + MAX_SLEEP_MS;
        let mut round = 0u64;
        let mut lag = 0u64;
        let shards = shared
            .dbs()
            .flat_map(|(_, s)| (0..s.shard_count()).map(move |i| (s, i)));
        for (store, i) in shards {
            let mut shard = store.lock(i);
            if let Some(d) = shard.next_deadline().filter(|&d| d <= now) {
                lag = lag.max(now - d);
            }
            let n = shard.expire_due(now, BUDGET, &mut dead);
            round += n as u64;
            // Counted before the lock is released, so that no reader sees a key gone
            // from the shard and not yet pending.
            ex.pending_free.fetch_add(n as u64, Ordering::Relaxed);
            // A poll also stops early after moving many timers down the wheel;
            // a due deadline left behind means there is more to do now.
            let due_left = shard.next_deadline().is_some_and(|d| d <= now);
            if n == BUDGET || due_left {
                more = true;
            } else if let Some(d) = shard.next_deadline() {
                next = next.min(d);
            }
        }
        freer.hand_over(&mut dead, &ex.pending_free);
        // BCAST trackers hear of this round's expired keys at once.
        shared.tracking.broadcast();
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
    freer.stop();
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
    let ex = &shared.expirer;
    let mut batch: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut last_unpark = std::time::Instant::now();
    let propose = |db: usize, batch: &mut Vec<(Vec<u8>, u64)>| {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let record = crate::replicated::Record::Expire(db as u8, std::mem::take(batch)).encode();
        // Nobody waits for the outcome: a lost deletion is re-armed by the unpark.
        drop(cluster.propose(record));
        ex.reclaimed.fetch_add(n, Ordering::Relaxed);
    };
    let mut fields: Vec<(Vec<u8>, Vec<u8>, u64)> = Vec::new();
    let propose_fields = |db: usize, fields: &mut Vec<(Vec<u8>, Vec<u8>, u64)>| {
        if fields.is_empty() {
            return;
        }
        let record =
            crate::replicated::Record::FieldExpire(db as u8, std::mem::take(fields)).encode();
        drop(cluster.propose(record));
    };
    let mut evictor = crate::maxmemory::ClusterEvictor::default();
    while !ex.stop.load(Ordering::Acquire) {
        evictor.enforce(shared, cluster);
        let now = now_ms();
        let mut more = false;
        let mut next = now + MAX_SLEEP_MS;
        let mut lag = 0u64;
        if cluster.status.is_leader() {
            for (db, store) in shared.dbs() {
                for i in 0..store.shard_count() {
                    {
                        let mut shard = store.lock(i);
                        if let Some(d) = shard.next_deadline().filter(|&d| d <= now) {
                            lag = lag.max(now - d);
                        }
                        let n = shard.collect_due(now, BUDGET, &mut batch)
                            + shard.collect_due_fields(now, BUDGET, &mut fields);
                        let due_left = shard.next_deadline().is_some_and(|d| d <= now);
                        if n == BUDGET || due_left {
                            more = true;
                        } else if let Some(d) = shard.next_deadline() {
                            next = next.min(d);
                        }
                    }
                    if batch.len() >= EXPIRE_RECORD_KEYS {
                        propose(db, &mut batch);
                    }
                    if fields.len() >= EXPIRE_RECORD_KEYS {
                        propose_fields(db, &mut fields);
                    }
                }
                propose(db, &mut batch);
                propose_fields(db, &mut fields);
            }
        }
        if last_unpark.elapsed() >= UNPARK_AFTER {
            for (_, store) in shared.dbs() {
                for i in 0..store.shard_count() {
                    store.lock(i).unpark();
                }
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
