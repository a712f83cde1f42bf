//! Hierarchical timing wheel: one per store shard, one timer per key that has a TTL.
//!
//! Time is absolute Unix milliseconds. The wheel has 11 levels of 64 slots;
//! a slot at level `L` spans `64^L` ms, so the 11 levels cover all 64 bits of a `u64`
//! deadline and no overflow list is needed. A timer due at `d` lives at the level of
//! the highest 6-bit digit in which `d` differs from the wheel's time `cur`, in the slot
//! named by that digit of `d`. So a level-0 slot holds timers of one exact deadline, and
//! when `cur` enters a higher slot its timers are cascaded to lower levels (or fired when
//! due): a timer moves down at most 10 times in its life. Timers scheduled
//! before `cur` go to a separate "due" list that the next poll drains first.
//!
//! Timers live in a slab (`Vec<Node>`, 24 bytes a node: deadline, key hash, prev, next)
//! whose free nodes form an intrusive free list, so ids are slab indices and are reused.
//! A node keeps [`HASH_BITS`] bits of its key's hash, and above them the list it is in,
//! so that moving a timer to a deadline of the same slot (a session written again with
//! its TTL, the common case) only changes the deadline and touches no other node.
//! Each slot is an intrusive doubly-linked list; the first node of a list stores
//! `HEAD | list` in `prev`, which is how it is unlinked without a level/slot field. So
//! insert, cancel and reschedule are O(1). A `u64` occupancy bitmap per level (and a
//! mask of non-empty levels) lets polling and [`TimerWheel::next_deadline`] find the next
//! non-empty slot with `trailing_zeros`, so a poll after a long pause costs O(timers it
//! touches), never O(elapsed ms).
//!
//! [`TimerWheel::poll_expired`] is exact (it never reports a timer before its deadline)
//! and bounded: at most `budget` timers are reported and at most `16 * budget` not-yet-due
//! timers are cascaded per call; either way the next call resumes where this one stopped.
//! If the clock steps back and a timer is then scheduled earlier than the wheel's time,
//! the next poll that must fire it rebuilds the wheel at the earlier time (O(timers),
//! once per such step).

use std::fmt;

/// A timer's handle: an index into the wheel's slab, reused after the timer ends.
pub type TimerId = u32;
/// "No timer": the id to keep in an entry without a TTL.
pub const NO_TIMER: TimerId = u32::MAX;

/// Bits of time per level.
const SLOT_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// Levels: 11 * 6 = 66 bits, enough for any `u64` deadline.
const LEVELS: usize = 11;
/// List index of the due list (the slot lists are `level * SLOTS + slot`).
const DUE: usize = LEVELS * SLOTS;
/// Timers a cluster leader has taken out for expiry but whose deletion is not applied
/// yet: live (their deadline still answers TTL reads), but in no slot.
const PARKED: usize = DUE + 1;
/// Number of list heads.
const LISTS: usize = DUE + 2;
/// End of a list.
const NIL: u32 = u32::MAX;
/// Tag in `Node::prev` of the first node of a list; the low bits name the list.
const HEAD: u32 = 1 << 31;
/// `Node::prev` of a free node.
const FREE: u32 = u32::MAX;
/// Bits of a key's hash a timer keeps and gives back (the store reads 46 of them).
pub const HASH_BITS: u32 = 52;
const HASH_MASK: u64 = (1 << HASH_BITS) - 1;
const _: () = assert!(LISTS <= 1 << (64 - HASH_BITS));
/// Not-yet-due timers a poll may cascade per unit of budget.
const CASCADE_PER_BUDGET: usize = 16;

/// One timer, or one free slab entry.
#[derive(Clone, Copy)]
struct Node {
    deadline: u64,
    /// The low [`HASH_BITS`] of the key's hash; above them, the list the node is in (set
    /// when it is linked).
    hash_list: u64,
    /// Previous node in the list; `HEAD | list` for the first; `FREE` when not a timer.
    prev: u32,
    /// Next node in the list (or in the free list); `NIL` at the end.
    next: u32,
}

const _: () = assert!(std::mem::size_of::<Node>() == 24);

/// A hierarchical timing wheel with O(1) insert, cancel and reschedule.
pub struct TimerWheel {
    nodes: Vec<Node>,
    /// First free node, or `NIL`.
    free: u32,
    /// Live timers.
    len: usize,
    /// Wheel time: every timer due before `cur` is in the due list; the others are in
    /// the levels, placed relative to `cur`.
    cur: u64,
    heads: [u32; LISTS],
    /// Per level, bit `s` is set when slot `s` is non-empty.
    occupied: [u64; LEVELS],
    /// Bit `L` is set when `occupied[L] != 0`.
    levels: u16,
    /// A lower bound of the deadlines in the due list (`u64::MAX` when it is empty).
    due_min: u64,
    /// Slots processed by polls, to test that polls skip empty time.
    #[cfg(test)]
    visits: u64,
}

impl fmt::Debug for TimerWheel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("len", &self.len)
            .field("time", &self.cur)
            .field("slab", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

/// The start of the level-`level` span that contains `t` (all digits from `level + 1` up
/// are kept, the others cleared).
fn level_base(t: u64, level: usize) -> u64 {
    let bits = (level as u32 + 1) * SLOT_BITS;
    t.checked_shr(bits).map_or(0, |v| v << bits)
}

impl TimerWheel {
    /// An empty wheel whose time is `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        TimerWheel {
            nodes: Vec::new(),
            free: NIL,
            len: 0,
            cur: now_ms,
            heads: [NIL; LISTS],
            occupied: [0; LEVELS],
            levels: 0,
            due_min: u64::MAX,
            #[cfg(test)]
            visits: 0,
        }
    }

    /// Schedule a timer. O(1).
    pub fn insert(&mut self, deadline_ms: u64, key_hash: u64) -> TimerId {
        let node = Node {
            deadline: deadline_ms,
            hash_list: key_hash & HASH_MASK,
            prev: FREE,
            next: NIL,
        };
        let id = if self.free != NIL {
            let id = self.free;
            self.free = self.nodes[id as usize].next;
            self.nodes[id as usize] = node;
            id
        } else {
            let id = self.nodes.len();
            assert!(id < HEAD as usize, "timing wheel: too many timers");
            self.nodes.push(node);
            id as TimerId
        };
        self.link(id);
        self.len += 1;
        id
    }

    /// Cancel a live timer. O(1). Cancelling `NO_TIMER` or any id that is not a live
    /// timer does nothing.
    pub fn cancel(&mut self, id: TimerId) {
        if self.is_live(id) {
            self.unlink(id);
            self.release(id);
        }
    }

    /// Move a live timer to a new deadline. O(1). Returns `id` (the id does not change).
    /// For an id that is not live (a caller bug) it returns `NO_TIMER`.
    pub fn reschedule(&mut self, id: TimerId, deadline_ms: u64) -> TimerId {
        if !self.is_live(id) {
            debug_assert!(false, "reschedule of timer {id}, which is not live");
            return NO_TIMER;
        }
        let list = (self.nodes[id as usize].hash_list >> HASH_BITS) as usize;
        if list < DUE && deadline_ms >= self.cur && self.level_list(deadline_ms) == list {
            // The new deadline belongs to the slot the timer is in: the list stays as
            // it is (the due list and the parked one always take the long way).
            self.nodes[id as usize].deadline = deadline_ms;
            return id;
        }
        self.unlink(id);
        self.nodes[id as usize].deadline = deadline_ms;
        self.link(id);
        id
    }

    /// Start loading a timer's record (a hint; any id is accepted).
    pub fn prefetch(&self, id: TimerId) {
        if let Some(n) = self.nodes.get(id as usize) {
            crate::store::prefetch(n);
        }
    }

    /// The deadline of a live timer; `None` for `NO_TIMER` and ids that are not live.
    pub fn deadline(&self, id: TimerId) -> Option<u64> {
        self.nodes
            .get(id as usize)
            .filter(|n| n.prev != FREE)
            .map(|n| n.deadline)
    }

    /// Append `(id, key_hash)` (the hash's low [`HASH_BITS`]) of up to `budget` timers
    /// with deadline `<= now_ms` to `out`, removing them from the wheel (their ids become
    /// free for reuse). Returns how many were appended. Never reports a timer before its
    /// deadline.
    ///
    /// Work is bounded: besides the `budget` reported timers, at most `16 * budget`
    /// not-yet-due timers are cascaded to lower levels. Whenever a call stops early (the
    /// budget is hit, or, rarely, the cascade allowance), the next call continues where
    /// it left off, and [`next_deadline`](Self::next_deadline) is `<= now_ms` while due
    /// timers remain. With `budget == usize::MAX` one call reports every due timer.
    /// `now_ms` going backwards is harmless.
    pub fn poll_expired(
        &mut self,
        now_ms: u64,
        budget: usize,
        out: &mut Vec<(TimerId, u64)>,
    ) -> usize {
        self.poll(now_ms, budget, out, false)
    }

    /// Like [`poll_expired`](Self::poll_expired), but the reported timers stay live: they
    /// move to a parked list, keep their deadlines, and fire no more until
    /// [`unpark_all`](Self::unpark_all). A cluster leader parks the timers whose keys it
    /// proposes to delete, so that the keys keep their TTLs until the deletion applies.
    pub fn park_expired(
        &mut self,
        now_ms: u64,
        budget: usize,
        out: &mut Vec<(TimerId, u64)>,
    ) -> usize {
        self.poll(now_ms, budget, out, true)
    }

    /// Put every parked timer back; they are due, so the next poll reports them again.
    pub fn unpark_all(&mut self) -> usize {
        let mut n = 0;
        while self.heads[PARKED] != NIL {
            let id = self.heads[PARKED];
            self.unlink(id);
            self.link(id);
            n += 1;
        }
        n
    }

    fn poll(
        &mut self,
        now_ms: u64,
        budget: usize,
        out: &mut Vec<(TimerId, u64)>,
        park: bool,
    ) -> usize {
        let mut fired = 0;
        if budget == 0 {
            return 0;
        }
        let next_ms = now_ms.saturating_add(1);
        if next_ms < self.cur {
            // The clock went back. Timers in the levels are due at `cur` or later, so
            // only the due list can hold timers due by `now_ms`, and it can also hold
            // timers due after `now_ms`: rebuild the wheel at the earlier time.
            if self.due_min > now_ms {
                return 0;
            }
            self.rebase(next_ms);
        }
        // Every timer in the due list is due before `cur <= now_ms + 1`.
        while self.heads[DUE] != NIL {
            if fired == budget {
                return fired;
            }
            self.take(self.heads[DUE], out, park);
            fired += 1;
        }
        let mut cascades = budget.saturating_mul(CASCADE_PER_BUDGET);
        while let Some((list, t)) = self.next_event() {
            if t > now_ms {
                break;
            }
            #[cfg(test)]
            {
                self.visits += 1;
            }
            // Enter the slot. Nothing else is due before `t`, so this keeps every other
            // timer's place; the slot's own timers now belong to lower levels.
            self.cur = self.cur.max(t);
            loop {
                let id = self.heads[list];
                if id == NIL {
                    break;
                }
                if self.nodes[id as usize].deadline <= now_ms {
                    if fired == budget {
                        return fired;
                    }
                    self.take(id, out, park);
                    fired += 1;
                } else {
                    // Only in a higher-level slot: a level-0 slot holds one deadline, `t`.
                    debug_assert!(list >= SLOTS);
                    if cascades == 0 {
                        return fired;
                    }
                    cascades -= 1;
                    self.unlink(id);
                    self.link(id);
                    debug_assert!(self.heads[list] != id);
                }
            }
        }
        self.cur = self.cur.max(next_ms);
        fired
    }

    /// A lower bound of the earliest pending deadline, or `None` when the wheel is empty.
    /// Exact when that timer is in level 0 (due in the wheel's current 64 ms block); else
    /// the start of its slot, or the earliest deadline put in the due list since it was
    /// last empty. O(levels).
    pub fn next_deadline(&self) -> Option<u64> {
        if self.heads[DUE] != NIL {
            // Due-list deadlines are before `cur`, so before every other timer.
            return Some(self.due_min);
        }
        self.next_event().map(|(_, t)| t)
    }

    /// Live timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no live timer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes held: the slab's capacity (the list heads and bitmaps, ~2.9 KiB, are
    /// inline in the wheel).
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
    }

    /// Release the slab when no timer is live. O(1) otherwise. (Live timers pin their
    /// slab indices, so a non-empty slab is not compacted.)
    pub fn shrink(&mut self) {
        if self.len == 0 && self.nodes.capacity() > 0 {
            debug_assert!(self.heads.iter().all(|&h| h == NIL));
            self.nodes = Vec::new();
            self.free = NIL;
        }
    }

    fn is_live(&self, id: TimerId) -> bool {
        self.nodes.get(id as usize).is_some_and(|n| n.prev != FREE)
    }

    /// The level list a deadline at or after `cur` belongs to: its level is that of the
    /// highest 6-bit digit in which it differs from `cur`, its slot that digit.
    fn level_list(&self, d: u64) -> usize {
        let diff = d ^ self.cur;
        let level = if diff == 0 {
            0
        } else {
            ((63 - diff.leading_zeros()) / SLOT_BITS) as usize
        };
        let slot = ((d >> (level as u32 * SLOT_BITS)) as usize) & (SLOTS - 1);
        level * SLOTS + slot
    }

    /// Put a live node (not in any list) into the list its deadline belongs to.
    fn link(&mut self, id: TimerId) {
        let d = self.nodes[id as usize].deadline;
        let list = if d < self.cur {
            self.due_min = self.due_min.min(d);
            DUE
        } else {
            let list = self.level_list(d);
            let (level, slot) = (list / SLOTS, list % SLOTS);
            self.occupied[level] |= 1 << slot;
            self.levels |= 1 << level;
            list
        };
        self.push_front(list, id);
    }

    fn push_front(&mut self, list: usize, id: TimerId) {
        let head = self.heads[list];
        if head != NIL {
            self.nodes[head as usize].prev = id;
        }
        let node = &mut self.nodes[id as usize];
        node.prev = HEAD | list as u32;
        node.next = head;
        node.hash_list = node.hash_list & HASH_MASK | (list as u64) << HASH_BITS;
        self.heads[list] = id;
    }

    /// Take a live node out of its list.
    fn unlink(&mut self, id: TimerId) {
        let Node { prev, next, .. } = self.nodes[id as usize];
        debug_assert!(prev != FREE);
        if prev & HEAD != 0 {
            let list = (prev & !HEAD) as usize;
            self.heads[list] = next;
            if next != NIL {
                self.nodes[next as usize].prev = prev;
            } else if list == DUE {
                self.due_min = u64::MAX;
            } else if list != PARKED {
                let level = list / SLOTS;
                self.occupied[level] &= !(1 << (list % SLOTS));
                if self.occupied[level] == 0 {
                    self.levels &= !(1 << level);
                }
            }
        } else {
            self.nodes[prev as usize].next = next;
            if next != NIL {
                self.nodes[next as usize].prev = prev;
            }
        }
    }

    /// Return an unlinked node to the free list.
    fn release(&mut self, id: TimerId) {
        let node = &mut self.nodes[id as usize];
        node.prev = FREE;
        node.next = self.free;
        self.free = id;
        self.len -= 1;
    }

    fn take(&mut self, id: TimerId, out: &mut Vec<(TimerId, u64)>, park: bool) {
        self.unlink(id);
        out.push((id, self.nodes[id as usize].hash_list & HASH_MASK));
        if park {
            self.push_front(PARKED, id);
        } else {
            self.release(id);
        }
    }

    /// The earliest non-empty slot of the levels, as (list, time the wheel reaches it).
    /// For level 0 the time is the slot's deadline; above, the slot's start.
    fn next_event(&self) -> Option<(usize, u64)> {
        let mut best: Option<(usize, u64)> = None;
        let mut levels = self.levels;
        while levels != 0 {
            let level = levels.trailing_zeros() as usize;
            levels &= levels - 1;
            let slot = self.occupied[level].trailing_zeros() as usize;
            // Slots are never behind `cur`'s digit, except one a poll entered but did not
            // finish cascading, whose time is `<= cur` and so comes first.
            let t = level_base(self.cur, level) | ((slot as u64) << (level as u32 * SLOT_BITS));
            if best.is_none_or(|(_, b)| t < b) {
                best = Some((level * SLOTS + slot, t));
            }
        }
        best
    }

    /// Re-place every timer relative to a new (earlier) wheel time. O(slab).
    fn rebase(&mut self, cur: u64) {
        self.cur = cur;
        self.heads = [NIL; LISTS];
        self.occupied = [0; LEVELS];
        self.levels = 0;
        self.due_min = u64::MAX;
        for id in 0..self.nodes.len() as TimerId {
            if self.nodes[id as usize].prev != FREE {
                self.link(id);
            }
        }
    }
}

#[cfg(test)]
mod tests;
