//! Eviction for `maxmemory`, as `impl Shard` blocks.
//!
//! - A single node evicts directly ([`Shard::evict`]): the expiry thread takes a few
//!   victims out of a sampled slot and frees them.
//! - A cluster node may not change its store outside the log. It picks victims without
//!   removing them ([`Shard::evict_candidates`]), each with a fingerprint of its content,
//!   and proposes their deletion; every replica applies it with
//!   [`Shard::evict_guarded`], which removes a key only if its content still has that
//!   fingerprint. A session written again after it was picked survives, the same way on
//!   every replica, as a key re-set after its timer fired survives a replicated expiry.

use super::entry::{fnv1a, FNV_OFFSET};
use super::{fields, EvictPolicy, Object, Shard};
use crate::store::Entry;
use crate::wheel::{TimerId, NO_TIMER};

/// Slots a call looks at before it gives up finding a victim.
const SLOT_TRIES: usize = 16;

/// A key picked for eviction in a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Victim {
    pub key: Vec<u8>,
    /// Its content's fingerprint when picked (see [`content_digest`]).
    pub digest: u64,
    /// What it holds on the heap, roughly.
    pub bytes: u64,
}

/// A fingerprint of a key's content: its deadline, and its value (a string) or its
/// object's content, whatever the representation. Never 0.
pub(super) fn content_digest(deadline: Option<u64>, s: Option<&[u8]>, o: Option<&Object>) -> u64 {
    let mut d = fnv1a(FNV_OFFSET, &deadline.unwrap_or(0).to_le_bytes());
    match (s, o) {
        (Some(v), _) => d = fnv1a(fnv1a(d, b"s"), v),
        (None, Some(o)) => d = o.digest(d),
        (None, None) => {}
    }
    d.max(1)
}

/// The slot to look at on try `attempt`, from the caller's random `pick`.
fn slot_for(pick: u64, attempt: usize, n_slots: usize) -> usize {
    (pick as usize).wrapping_add(attempt * 7919) % n_slots
}

impl Shard {
    /// Evict a few keys to free memory, under `policy`: from one sampled slot, the keys
    /// nearest to expiry (`volatile-ttl`: a quarter of the slot's keys with a TTL, at
    /// least one), or those not used since the clock hand last passed (`allkeys-lru`:
    /// each used key loses its mark and survives this pass). `pick` chooses the slot.
    /// Returns the number evicted; the entries go to `out`, to be freed by the caller.
    pub fn evict(&mut self, policy: EvictPolicy, pick: u64, out: &mut Vec<Entry>) -> usize {
        let n_slots = self.slots.len();
        let before = out.len();
        for attempt in 0..n_slots.min(SLOT_TRIES) {
            let slot = slot_for(pick, attempt, n_slots);
            let Shard {
                slots,
                wheel,
                versions,
                touch,
                ..
            } = self;
            let table = &mut slots[slot];
            match policy {
                EvictPolicy::VolatileTtl => {
                    let doomed = nearest_deadlines(table.iter(), wheel);
                    if doomed.is_empty() {
                        continue;
                    }
                    let from = out.len();
                    table.extract_into(|e| doomed.contains(&e.timer), out);
                    for e in &out[from..] {
                        wheel.cancel(e.timer);
                    }
                }
                EvictPolicy::AllkeysLru => {
                    let from = out.len();
                    table.extract_into(|e| !clear_mark(e), out);
                    for e in &out[from..] {
                        if e.timer != NO_TIMER {
                            wheel.cancel(e.timer);
                        }
                    }
                }
            }
            if out.len() > before {
                versions[slot] += 1;
                for e in &out[before..] {
                    touch.touch(e.key(), false);
                    fields::drop_timer(&mut self.fwheel, e);
                }
                break;
            }
        }
        let n = out.len() - before;
        self.len -= n;
        self.evicted += n as u64;
        n
    }

    /// Cluster: pick victims from one sampled slot as [`Shard::evict`] would, but leave
    /// them in place; they go to `out` with their fingerprints. (`allkeys-lru` clears the
    /// marks of the keys it spares, as `evict` does: that is local bookkeeping, not
    /// state.) Returns the number picked.
    pub fn evict_candidates(
        &mut self,
        policy: EvictPolicy,
        pick: u64,
        out: &mut Vec<Victim>,
    ) -> usize {
        let n_slots = self.slots.len();
        let before = out.len();
        for attempt in 0..n_slots.min(SLOT_TRIES) {
            let slot = slot_for(pick, attempt, n_slots);
            let Shard { slots, wheel, .. } = self;
            let table = &mut slots[slot];
            let victim = |e: &Entry| Victim {
                key: e.key().to_vec(),
                digest: content_digest(wheel.deadline(e.timer), e.as_str(), e.object()),
                bytes: e.heap_size() as u64,
            };
            match policy {
                EvictPolicy::VolatileTtl => {
                    let doomed = nearest_deadlines(table.iter(), wheel);
                    out.extend(
                        table
                            .iter()
                            .filter(|e| doomed.contains(&e.timer))
                            .map(victim),
                    );
                }
                EvictPolicy::AllkeysLru => {
                    for e in table.iter_mut() {
                        if !clear_mark(e) {
                            out.push(victim(e));
                        }
                    }
                }
            }
            if out.len() > before {
                break;
            }
        }
        out.len() - before
    }

    /// Apply a replicated eviction: remove `key` if its content still has fingerprint
    /// `digest`. Returns the entry, for the caller to free.
    pub fn evict_guarded(&mut self, hash: u64, key: &[u8], digest: u64) -> Option<Entry> {
        let slot = self.local_slot(hash);
        let i = self.slots[slot].find(hash, |e| e.key() == key)?;
        let e = self.slots[slot].get(i);
        if content_digest(self.wheel.deadline(e.timer), e.as_str(), e.object()) != digest {
            return None;
        }
        let entry = self.unlink_at(slot, i);
        self.evicted += 1;
        Some(entry)
    }
}

/// The timers of a quarter (at least one) of the keys with a TTL among `entries`, those
/// nearest to their deadlines.
fn nearest_deadlines<'a>(
    entries: impl Iterator<Item = &'a Entry>,
    wheel: &crate::wheel::TimerWheel,
) -> Vec<TimerId> {
    let mut cands: Vec<(u64, TimerId)> = entries
        .filter(|e| e.timer != NO_TIMER)
        .filter_map(|e| wheel.deadline(e.timer).map(|d| (d, e.timer)))
        .collect();
    cands.sort_unstable();
    cands.truncate((cands.len() / 4).max(1));
    cands.into_iter().map(|(_, t)| t).collect()
}

/// The clock hand passes a key: whether it was used since the last pass; its mark is
/// cleared either way.
fn clear_mark(e: &mut Entry) -> bool {
    e.take_used()
}

#[cfg(test)]
mod tests {
    use super::super::{Store, Ttl};
    use super::*;

    /// A one-shard store holding `keys` (`(key, deadline)`), as strings "v".
    fn store_with(keys: &[(&[u8], Option<u64>)]) -> Store {
        let store = Store::new(1, 0);
        for (k, d) in keys {
            set(&store, k, d.map_or(Ttl::Clear, Ttl::At));
        }
        store
    }

    fn set(store: &Store, key: &[u8], ttl: Ttl) {
        let loc = store.locate(key);
        store.lock(loc.shard).set_str(loc.hash, key, b"v", ttl, 0);
    }

    /// Candidates from the slot that holds `key`.
    fn candidates(store: &Store, key: &[u8], policy: EvictPolicy) -> Vec<Victim> {
        let loc = store.locate(key);
        let mut shard = store.lock(loc.shard);
        let pick = shard.local_slot(loc.hash) as u64;
        let mut out = Vec::new();
        shard.evict_candidates(policy, pick, &mut out);
        out
    }

    fn evict(store: &Store, v: &Victim) -> bool {
        let loc = store.locate(&v.key);
        store
            .lock(loc.shard)
            .evict_guarded(loc.hash, &v.key, v.digest)
            .is_some()
    }

    /// `volatile-ttl` picks only keys with a TTL and leaves them in place; a picked key
    /// goes when the eviction is applied, unless it was written again meanwhile.
    #[test]
    fn a_replicated_eviction_spares_a_key_written_after_it_was_picked() {
        let store = store_with(&[(b"plain", None), (b"sess", Some(10_000))]);
        assert!(candidates(&store, b"plain", EvictPolicy::VolatileTtl)
            .iter()
            .all(|v| v.key != b"plain"));
        let picked = candidates(&store, b"sess", EvictPolicy::VolatileTtl);
        let v = picked.iter().find(|v| v.key == b"sess").expect("picked");
        assert_eq!(v.bytes, 6, "key, value and the byte of the key's length");
        assert_eq!(store.lock(0).len(), 2, "picking removes nothing");
        // Written again with a new TTL after it was picked: it survives.
        set(&store, b"sess", Ttl::At(30_000));
        assert!(!evict(&store, v));
        // Picked again: now it goes, once.
        let again = candidates(&store, b"sess", EvictPolicy::VolatileTtl);
        let v = again
            .iter()
            .find(|v| v.key == b"sess")
            .expect("picked again");
        assert!(evict(&store, v));
        assert!(!evict(&store, v), "gone already");
        assert_eq!(store.lock(0).len(), 1);
        assert_eq!(store.lock(0).evicted(), 1);
        assert_eq!(store.lock(0).volatile(), 0, "its timer went with it");
    }

    /// `allkeys-lru` spares keys used since the hand last passed, on this pass.
    #[test]
    fn lru_candidates_are_the_keys_not_used_since_the_last_pass() {
        let store = store_with(&[(b"a", None)]);
        assert!(
            candidates(&store, b"a", EvictPolicy::AllkeysLru).is_empty(),
            "a new key is marked used: the first pass clears the mark"
        );
        assert_eq!(candidates(&store, b"a", EvictPolicy::AllkeysLru).len(), 1);
        let loc = store.locate(b"a");
        assert!(store.lock(0).get(loc.hash, b"a", 0).is_some());
        assert!(
            candidates(&store, b"a", EvictPolicy::AllkeysLru).is_empty(),
            "read since: spared"
        );
    }
}
