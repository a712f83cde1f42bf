//! `maxmemory`: keep used memory under the limit by evicting under the policy, or refuse
//! writes (`-OOM`) when the policy is `noeviction` or nothing more can go. The expiry
//! thread calls in once per round.
//!
//! - A single node evicts directly ([`enforce`]).
//! - A cluster node must not change its store outside the log ([`ClusterEvictor`]). It
//!   picks victims without removing them and proposes an eviction record; every replica
//!   removes each victim whose content is still what was picked (`store::evict`). The
//!   leader acts as soon as it is over its limit. A follower over its own limit (its
//!   memory is enforced too) first gives the leader's evictions a moment to arrive, then
//!   proposes its own through the leader. While an eviction is in flight, nothing more
//!   is picked: the next measurement sees its effect.
//!
//! Memory is what the allocator counts, less the in-memory raft log (Redis does not count
//! its replication buffers either).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sessiond_cluster::ClusterError;
use tokio::sync::oneshot;

use crate::config::MaxmemoryPolicy;
use crate::server::Shared;
use crate::store::{EvictPolicy, Victim};

/// Measurements of used memory per round while over `maxmemory`; between two, keys are
/// evicted until their estimated size covers the excess.
const EVICT_ROUNDS: usize = 16;
/// Bytes an entry costs beyond its key and value (table slot, allocator header, timer).
const ENTRY_OVERHEAD: u64 = 64;
/// Passes over sampled slots that find nothing before the store counts as exhausted
/// (`allkeys-lru`'s first pass over a slot may only clear marks).
const IDLE_PASSES: usize = 4;
/// Keys per eviction record, and records per round.
const RECORD_KEYS: usize = 4096;
const RECORDS_PER_ROUND: usize = 8;
/// How long a follower over its limit waits for the leader's evictions first.
const FOLLOWER_GRACE: Duration = Duration::from_millis(200);
/// An eviction not applied by then is given up on (it may still be; the next
/// measurement shows it).
const IN_FLIGHT_LIMIT: Duration = Duration::from_secs(2);

/// The store's policy, or `None` for `noeviction`.
fn policy(shared: &Shared) -> Option<EvictPolicy> {
    match shared.runtime.policy() {
        MaxmemoryPolicy::Noeviction => None,
        MaxmemoryPolicy::VolatileTtl => Some(EvictPolicy::VolatileTtl),
        MaxmemoryPolicy::AllkeysLru => Some(EvictPolicy::AllkeysLru),
    }
}

fn set_oom(shared: &Shared, oom: bool) {
    shared.oom.store(oom, Ordering::Relaxed);
}

/// The next slot pick (xorshift).
fn next_pick(pick: &mut u64) -> u64 {
    *pick ^= *pick << 13;
    *pick ^= *pick >> 7;
    *pick ^= *pick << 17;
    *pick
}

/// Single node: evict until used memory is under the limit, or set the OOM flag.
/// Entries are freed here at once, so that the next measurement sees the memory back.
pub fn enforce(shared: &Shared, pick: &mut u64) {
    let limit = shared.runtime.maxmemory();
    let mut used = if limit == 0 {
        0
    } else {
        crate::mem::allocated()
    };
    if used <= limit {
        set_oom(shared, false);
        return;
    }
    let Some(policy) = policy(shared) else {
        set_oom(shared, true);
        return;
    };
    let mut dead = Vec::new();
    for _ in 0..EVICT_ROUNDS {
        // Evict about the excess (plus 1% of the limit), then measure again.
        let need = used - limit + limit / 100;
        let mut freed = 0u64;
        let mut idle_passes = 0;
        while freed < need {
            let mut n = 0;
            for (_, store) in shared.dbs() {
                for i in 0..store.shard_count() {
                    n += store.lock(i).evict(policy, next_pick(pick), &mut dead);
                }
            }
            freed += dead
                .iter()
                .map(|e| e.heap_size() as u64 + ENTRY_OVERHEAD)
                .sum::<u64>();
            dead.clear();
            idle_passes = if n == 0 { idle_passes + 1 } else { 0 };
            if idle_passes >= IDLE_PASSES {
                // Nothing (more) to evict: refuse writes until memory is freed.
                set_oom(shared, crate::mem::allocated() > limit);
                return;
            }
        }
        used = crate::mem::allocated();
        if used <= limit {
            set_oom(shared, false);
            return;
        }
    }
    // Still over, but evicting: the next round goes on; writes are not refused.
    set_oom(shared, false);
}

type Pending = oneshot::Receiver<Result<Bytes, ClusterError>>;

/// A cluster node's eviction state, kept by its expiry thread.
pub struct ClusterEvictor {
    pick: u64,
    /// Eviction records proposed and not yet applied, with when.
    in_flight: Vec<(Pending, Instant)>,
    /// Since when this node has been over its limit (a follower's grace).
    over_since: Option<Instant>,
}

impl Default for ClusterEvictor {
    fn default() -> Self {
        ClusterEvictor {
            pick: 0x9e37_79b9_7f4a_7c15,
            in_flight: Vec::new(),
            over_since: None,
        }
    }
}

impl ClusterEvictor {
    /// One round: measure, and propose evictions if over the limit.
    pub fn enforce(&mut self, shared: &Shared, cluster: &sessiond_cluster::Handle) {
        let limit = shared.runtime.maxmemory();
        let log = cluster.status.log_memory.load(Ordering::Relaxed);
        let used = match limit {
            0 => 0,
            _ => crate::mem::allocated().saturating_sub(log),
        };
        if used <= limit {
            self.over_since = None;
            set_oom(shared, false);
            return;
        }
        let Some(policy) = policy(shared) else {
            set_oom(shared, true);
            return;
        };
        self.in_flight.retain_mut(|(rx, at)| {
            matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty))
                && at.elapsed() < IN_FLIGHT_LIMIT
        });
        // Evicting: writes go on meanwhile, as on a single node.
        set_oom(shared, false);
        if !self.in_flight.is_empty() {
            return;
        }
        let since = *self.over_since.get_or_insert_with(Instant::now);
        if !cluster.status.is_leader() && since.elapsed() < FOLLOWER_GRACE {
            return;
        }
        let need = used - limit + limit / 100;
        if !self.propose(shared, cluster, policy, need) {
            // Nothing (more) to evict: refuse writes until memory is freed.
            set_oom(shared, true);
        }
    }

    /// Pick victims worth about `need` bytes and propose their eviction. False if the
    /// store has nothing to evict under `policy`.
    fn propose(
        &mut self,
        shared: &Shared,
        cluster: &sessiond_cluster::Handle,
        policy: EvictPolicy,
        need: u64,
    ) -> bool {
        let mut picked = 0u64;
        let mut records = 0;
        let mut idle_passes = 0;
        let mut victims: Vec<Victim> = Vec::new();
        while picked < need && records < RECORDS_PER_ROUND && idle_passes < IDLE_PASSES {
            let mut n = 0;
            for (db, store) in shared.dbs() {
                for i in 0..store.shard_count() {
                    n += store.lock(i).evict_candidates(
                        policy,
                        next_pick(&mut self.pick),
                        &mut victims,
                    );
                    if victims.len() >= RECORD_KEYS {
                        picked += self.send(cluster, db, &mut victims);
                        records += 1;
                    }
                    if picked >= need {
                        break;
                    }
                }
                if !victims.is_empty() {
                    picked += self.send(cluster, db, &mut victims);
                    records += 1;
                }
                if picked >= need || records >= RECORDS_PER_ROUND {
                    break;
                }
            }
            idle_passes = if n == 0 { idle_passes + 1 } else { 0 };
        }
        picked > 0 || !self.in_flight.is_empty()
    }

    /// Propose the eviction of `victims` from database `db`; returns their bytes.
    fn send(
        &mut self,
        cluster: &sessiond_cluster::Handle,
        db: usize,
        victims: &mut Vec<Victim>,
    ) -> u64 {
        if victims.is_empty() {
            return 0;
        }
        let bytes = victims.iter().map(|v| v.bytes + ENTRY_OVERHEAD).sum();
        let keys = victims.drain(..).map(|v| (v.key, v.digest)).collect();
        let record = crate::replicated::Record::Evict(db as u8, keys).encode();
        self.in_flight
            .push((cluster.propose(record), Instant::now()));
        bytes
    }
}
