//! Hash-field expiry (`HEXPIRE`): each shard keeps a second timing wheel, with one timer
//! per hash that has field deadlines, due at its earliest. A timer may fire early (a
//! field lost its deadline since); it then finds nothing due and is set again. It never
//! fires late: every new deadline goes through [`rearm`].
//!
//! Like keys, fields expire three ways: the expiry thread polls the wheel
//! ([`Shard::expire_due_fields`]); a read that finds a due field removes it
//! ([`Shard::purge_fields`], within the cluster's horizon); and in a cluster the leader
//! parks due timers and proposes each field's deletion, guarded by the deadline it saw
//! ([`Shard::collect_due_fields`], [`Shard::expire_field_guarded`]).

use super::entry::{Entry, Object};
use super::{HashValue, Reclaimed, Shard};
use crate::wheel::{TimerId, TimerWheel, NO_TIMER};

/// Set the hash's field timer to its earliest deadline: move it, start it, or stop it.
/// `fresh`: the hash just arrived from elsewhere, so a timer id it carries is not this
/// wheel's.
pub(super) fn rearm(fwheel: &mut TimerWheel, h: &mut HashValue, hash: u64, fresh: bool) {
    if fresh {
        if let Some(t) = h.timer_mut() {
            *t = NO_TIMER;
        }
    }
    let cur = h.timer();
    let Some(min) = h.min_deadline() else {
        fwheel.cancel(cur);
        h.tidy();
        return;
    };
    if let Some(t) = h.timer_mut() {
        *t = if cur == NO_TIMER {
            fwheel.insert(min, hash)
        } else if fwheel.deadline(cur) == Some(min) {
            cur
        } else {
            fwheel.reschedule(cur, min)
        };
    }
}

/// The hash of an entry, if it is one.
fn hash_of(e: &mut Entry) -> Option<&mut HashValue> {
    match e.object_mut() {
        Some(Object::Hash(h)) => Some(h),
        _ => None,
    }
}

/// Stop the field timer of an entry leaving its shard.
pub(super) fn drop_timer(fwheel: &mut TimerWheel, e: &Entry) {
    if let Some(Object::Hash(h)) = e.object() {
        fwheel.cancel(h.timer());
    }
}

/// An entry arriving in a shard: start its field timer there.
pub(super) fn arm_arrival(fwheel: &mut TimerWheel, e: &mut Entry, hash: u64) {
    if let Some(h) = hash_of(e) {
        if h.volatile_fields() > 0 || h.timer() != NO_TIMER {
            rearm(fwheel, h, hash, true);
        }
    }
}

impl Shard {
    /// A read found the hash at `slot`/`i` with fields due at `now`: remove them (raising
    /// `hexpired`), and the key too when no field is left. Returns true when the key
    /// went. Within the cluster's horizon only (see `Shard::horizon`).
    pub(super) fn purge_fields(&mut self, slot: usize, i: usize, hash: u64, now: u64) -> bool {
        let horizon = self.horizon.load(std::sync::atomic::Ordering::Relaxed);
        let entry = self.slots[slot].get_mut(i);
        let Some(h) = hash_of(entry) else {
            return false;
        };
        if h.min_deadline().is_none_or(|d| d > now || d > horizon) {
            return false;
        }
        let removed = h.purge_due(now);
        let empty = h.is_empty();
        if !empty {
            rearm(&mut self.fwheel, h, hash, false);
        }
        self.fields_expired(slot, i, removed, empty).is_some()
    }

    /// After `removed` fields of the entry at `slot`/`i` expired: events, version, and
    /// the key's removal when it is `empty` (the entry is returned, to be freed).
    fn fields_expired(
        &mut self,
        slot: usize,
        i: usize,
        removed: usize,
        empty: bool,
    ) -> Option<Entry> {
        if removed == 0 {
            return None;
        }
        self.versions[slot] += 1;
        self.expired_fields += removed as u64;
        let key = self.slots[slot].get(i).key().to_vec();
        self.touch.touch(&key, false);
        if let Some(f) = self.on_hexpired.get() {
            f(&key, empty);
        }
        if !empty {
            return None;
        }
        let dead = self.slots[slot].remove(i);
        self.wheel.cancel(dead.timer);
        drop_timer(&mut self.fwheel, &dead);
        self.len -= 1;
        Some(dead)
    }

    /// The expiry thread: expire the fields whose timers are due (up to `budget` hashes).
    /// Hashes left empty go to `out`, to be freed unlocked.
    pub(super) fn expire_due_fields(
        &mut self,
        now: u64,
        budget: usize,
        out: &mut Reclaimed,
    ) -> usize {
        // The key wheel's buffer, free again by now.
        let mut fired = std::mem::take(&mut self.fired);
        fired.clear();
        self.fwheel.poll_expired(now, budget, &mut fired);
        for &(id, hash) in &fired {
            let slot = self.local_slot(hash);
            let Some(i) = self.slots[slot].find(hash, |e| field_timer(e) == id) else {
                continue;
            };
            let entry = self.slots[slot].get_mut(i);
            let Some(h) = hash_of(entry) else {
                continue;
            };
            // The timer fired and is gone from the wheel.
            if let Some(t) = h.timer_mut() {
                *t = NO_TIMER;
            }
            let removed = h.purge_due(now);
            let empty = h.is_empty();
            if !empty {
                rearm(&mut self.fwheel, h, hash, false);
            }
            if let Some(dead) = self.fields_expired(slot, i, removed, empty) {
                out.push(dead);
            }
        }
        let n = fired.len();
        self.fired = fired;
        n
    }

    /// Cluster leader: report the fields due at `now` as (key, field, deadline), parking
    /// their hashes' timers (see `Shard::collect_due`).
    pub fn collect_due_fields(
        &mut self,
        now: u64,
        budget: usize,
        out: &mut Vec<(Vec<u8>, Vec<u8>, u64)>,
    ) -> usize {
        let mut fired: Vec<(TimerId, u64)> = Vec::new();
        self.fwheel.park_expired(now, budget, &mut fired);
        for &(id, hash) in &fired {
            let slot = self.local_slot(hash);
            let Some(i) = self.slots[slot].find(hash, |e| field_timer(e) == id) else {
                continue;
            };
            let entry = self.slots[slot].get_mut(i);
            let key = entry.key().to_vec();
            let Some(h) = hash_of(entry) else {
                continue;
            };
            let before = out.len();
            for (f, d) in h.deadlines() {
                if d <= now {
                    out.push((key.clone(), f.to_vec(), d));
                }
            }
            if out.len() == before {
                // Fired early (the earliest field lost its deadline): set it again.
                rearm(&mut self.fwheel, h, hash, false);
            }
        }
        fired.len()
    }

    /// Apply a replicated field expiry: remove `field` if its deadline is still exactly
    /// `deadline`, and the key when no field is left.
    pub fn expire_field_guarded(
        &mut self,
        hash: u64,
        key: &[u8],
        field: &[u8],
        deadline: u64,
    ) -> bool {
        let slot = self.local_slot(hash);
        let Some(i) = self.slots[slot].find(hash, |e| e.key() == key) else {
            return false;
        };
        let Some(h) = hash_of(self.slots[slot].get_mut(i)) else {
            return false;
        };
        if !h.remove_if_deadline(field, deadline) {
            return false;
        }
        let empty = h.is_empty();
        if !empty {
            rearm(&mut self.fwheel, h, hash, false);
        }
        self.fields_expired(slot, i, 1, empty);
        true
    }
}

/// The field timer of an entry (`NO_TIMER` for all but hashes with deadlines).
fn field_timer(e: &Entry) -> TimerId {
    match e.object() {
        Some(Object::Hash(h)) => h.timer(),
        _ => NO_TIMER,
    }
}
