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
/// Not-yet-due timers a poll may cascade per unit of budget.
const CASCADE_PER_BUDGET: usize = 16;

/// One timer, or one free slab entry.
#[derive(Clone, Copy)]
struct Node {
    deadline: u64,
    key_hash: u64,
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
            key_hash,
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

    /// Append `(id, key_hash)` of up to `budget` timers with deadline `<= now_ms` to `out`,
    /// removing them from the wheel (their ids become free for reuse). Returns how many
    /// were appended. Never reports a timer before its deadline.
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

    /// Put a live node (not in any list) into the list its deadline belongs to.
    fn link(&mut self, id: TimerId) {
        let d = self.nodes[id as usize].deadline;
        let list = if d < self.cur {
            self.due_min = self.due_min.min(d);
            DUE
        } else {
            let diff = d ^ self.cur;
            let level = if diff == 0 {
                0
            } else {
                ((63 - diff.leading_zeros()) / SLOT_BITS) as usize
            };
            let slot = ((d >> (level as u32 * SLOT_BITS)) as usize) & (SLOTS - 1);
            self.occupied[level] |= 1 << slot;
            self.levels |= 1 << level;
            level * SLOTS + slot
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
        out.push((id, self.nodes[id as usize].key_hash));
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
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    /// xorshift64*: tiny, deterministic.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    const START: u64 = 1_700_000_000_000;
    const HOUR: u64 = 3_600_000;
    const DAY: u64 = 24 * HOUR;

    /// A deadline around `now`: past, ms, seconds, hours, days, years, or anything.
    fn random_deadline(rng: &mut Rng, now: u64) -> u64 {
        match rng.below(10) {
            0 => now.saturating_sub(rng.below(5_000)),
            1 | 2 => now + rng.below(200),
            3 => now + rng.below(60_000),
            4 | 5 => now + 30 * 60_000 + rng.below(HOUR),
            6 => now + rng.below(3 * DAY),
            7 => now + rng.below(400 * DAY),
            8 => now + rng.below(1 << 50),
            _ => rng.next(),
        }
    }

    fn poll(w: &mut TimerWheel, now: u64, budget: usize) -> Vec<(TimerId, u64)> {
        let mut out = Vec::new();
        let n = w.poll_expired(now, budget, &mut out);
        assert_eq!(n, out.len());
        assert!(n <= budget);
        out
    }

    #[test]
    fn node_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Node>(), 24);
    }

    /// Pending timers of the exactness test: (deadline, key) and key -> deadline.
    #[derive(Default)]
    struct Pending {
        set: BTreeSet<(u64, u64)>,
        deadline_of: HashMap<u64, u64>,
        next_key: u64,
    }

    impl Pending {
        fn add(&mut self, w: &mut TimerWheel, rng: &mut Rng, now: u64) {
            let d = random_deadline(rng, now);
            w.insert(d, self.next_key);
            self.set.insert((d, self.next_key));
            self.deadline_of.insert(self.next_key, d);
            self.next_key += 1;
        }

        /// Record timers fired at `now`: each exactly once, none early.
        fn fired(&mut self, out: Vec<(TimerId, u64)>, now: u64) {
            for (_, k) in out {
                let d = self.deadline_of.remove(&k).expect("fired twice or unknown");
                assert!(d <= now, "timer due at {d} fired at {now}");
                assert!(self.set.remove(&(d, k)));
            }
        }
    }

    #[test]
    fn exact_at_random_deadlines_and_irregular_polls() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut w = TimerWheel::new(START);
        let mut p = Pending::default();
        for _ in 0..20_000 {
            p.add(&mut w, &mut rng, START);
        }
        let mut now = START - 1_000;
        for round in 0..3_000 {
            p.fired(poll(&mut w, now, usize::MAX), now);
            // Nothing due is left behind, and next_deadline is a lower bound.
            let first = p.set.first().map(|&(d, _)| d);
            assert!(
                first.is_none_or(|d| d > now),
                "late timer at {now}: {first:?}"
            );
            assert_eq!(w.len(), p.set.len());
            match (w.next_deadline(), first) {
                (Some(n), Some(d)) => assert!(n <= d, "next_deadline {n} > earliest {d}"),
                (None, None) => {}
                other => panic!("next_deadline mismatch {other:?}"),
            }
            if round % 4 == 0 {
                for _ in 0..rng.below(20) {
                    p.add(&mut w, &mut rng, now);
                }
            }
            now = now.saturating_add(match rng.below(10) {
                0 => 0,
                1..=3 => rng.below(4),
                4 | 5 => rng.below(100),
                6 => rng.below(60_000),
                7 => rng.below(HOUR),
                8 => rng.below(2 * DAY),
                _ => rng.below(100 * DAY),
            });
        }
        p.fired(poll(&mut w, u64::MAX, usize::MAX), u64::MAX);
        assert!(p.set.is_empty());
        assert!(w.is_empty());
        assert_eq!(w.next_deadline(), None);
        w.shrink();
        assert_eq!(w.heap_bytes(), 0);
    }

    /// Random insert / cancel / reschedule / poll against a BTreeSet model, with small
    /// budgets (so polls stop mid-slot and mid-cascade) and a clock that sometimes steps
    /// back.
    #[test]
    fn matches_model() {
        for seed in 1..=4u64 {
            let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
            let mut clock = START;
            let mut w = TimerWheel::new(clock);
            let mut model: BTreeSet<(u64, TimerId)> = BTreeSet::new();
            let mut live: HashMap<TimerId, (u64, u64)> = HashMap::new();
            let mut next_key = 0u64;
            let mut max_id = 0;
            for step in 0..15_000 {
                match rng.below(20) {
                    0..=7 => {
                        let d = random_deadline(&mut rng, clock);
                        let id = w.insert(d, next_key);
                        assert!(
                            live.insert(id, (d, next_key)).is_none(),
                            "id {id} reused while live"
                        );
                        model.insert((d, id));
                        next_key += 1;
                        max_id = max_id.max(id + 1);
                    }
                    8..=10 => {
                        let id = rng.below(u64::from(max_id) + 2) as TimerId;
                        w.cancel(id);
                        if let Some((d, _)) = live.remove(&id) {
                            assert!(model.remove(&(d, id)));
                        }
                        assert_eq!(w.deadline(id), None);
                    }
                    11..=13 => {
                        let id = rng.below(u64::from(max_id) + 1) as TimerId;
                        if let Some(&(old, k)) = live.get(&id) {
                            let d = random_deadline(&mut rng, clock);
                            let new = w.reschedule(id, d);
                            assert!(model.remove(&(old, id)));
                            live.remove(&id);
                            live.insert(new, (d, k));
                            model.insert((d, new));
                        }
                    }
                    _ => {
                        clock = match rng.below(12) {
                            0 => clock.saturating_sub(rng.below(10_000)),
                            1 => clock.saturating_sub(rng.below(3 * DAY)),
                            2..=6 => clock + rng.below(70),
                            7..=9 => clock + rng.below(10_000),
                            10 => clock + rng.below(2 * DAY),
                            _ => clock + rng.below(1 << 40),
                        };
                        let budget = [1, 2, 7, 64, usize::MAX][rng.below(5) as usize];
                        let drain = rng.below(3) != 0;
                        loop {
                            let out = poll(&mut w, clock, budget);
                            for &(id, k) in &out {
                                let (d, key) =
                                    live.remove(&id).expect("fired a timer that is not live");
                                assert_eq!(k, key);
                                assert!(d <= clock, "timer due at {d} fired at {clock}");
                                assert!(model.remove(&(d, id)));
                            }
                            let more = out.len() == budget
                                || w.next_deadline().is_some_and(|n| n <= clock);
                            if !drain || !more {
                                break;
                            }
                        }
                        if drain {
                            assert!(model.first().is_none_or(|&(d, _)| d > clock));
                        }
                    }
                }
                assert_eq!(w.len(), model.len());
                let earliest = model.first().map(|&(d, _)| d);
                match (w.next_deadline(), earliest) {
                    (Some(n), Some(d)) => assert!(n <= d, "next_deadline {n} > earliest {d}"),
                    (None, None) => {}
                    other => panic!("next_deadline mismatch {other:?} at step {step}"),
                }
                let probe = rng.below(u64::from(max_id) + 1) as TimerId;
                assert_eq!(w.deadline(probe), live.get(&probe).map(|&(d, _)| d));
                if w.is_empty() {
                    w.shrink();
                    assert_eq!(w.heap_bytes(), 0);
                    max_id = 0;
                }
            }
            // Everything left fires exactly once.
            let out = poll(&mut w, u64::MAX, usize::MAX);
            for (id, _) in out {
                let (d, _) = live.remove(&id).expect("fired a timer that is not live");
                assert!(model.remove(&(d, id)));
            }
            assert!(model.is_empty() && live.is_empty() && w.is_empty());
        }
    }

    #[test]
    fn reschedule_and_cancel_keep_len_and_memory_bounded() {
        let mut rng = Rng(7);
        let mut w = TimerWheel::new(START);
        let ids: Vec<TimerId> = (0..100).map(|k| w.insert(START + HOUR + k, k)).collect();
        let mut id = w.insert(START + HOUR, 999);
        let bytes = w.heap_bytes();
        for _ in 0..1_000_000 {
            id = w.reschedule(id, random_deadline(&mut rng, START));
            assert_ne!(id, NO_TIMER);
        }
        assert_eq!(w.len(), 101);
        for k in 0..1_000_000 {
            let t = w.insert(random_deadline(&mut rng, START), k);
            w.cancel(t);
        }
        assert_eq!(w.len(), 101);
        assert_eq!(w.heap_bytes(), bytes);
        // Double cancel, NO_TIMER and ids past the slab are ignored.
        w.cancel(ids[3]);
        w.cancel(ids[3]);
        w.cancel(NO_TIMER);
        w.cancel(1 << 20);
        assert_eq!(w.len(), 100);
        assert_eq!(w.deadline(ids[3]), None);
        assert_eq!(w.deadline(NO_TIMER), None);
        assert_eq!(w.deadline(ids[4]), Some(START + HOUR + 4));
        let out = poll(&mut w, u64::MAX, usize::MAX);
        assert_eq!(out.len(), 100);
        assert!(out.iter().all(|&(t, _)| t != ids[3]));
        assert!(w.is_empty());
    }

    #[test]
    fn parked_timers_keep_deadlines_fire_no_more_and_come_back() {
        let mut w = TimerWheel::new(START);
        let a = w.insert(START + 10, 1);
        let b = w.insert(START + 20, 2);
        let c = w.insert(START + 5_000, 3);
        let mut out = Vec::new();
        assert_eq!(w.park_expired(START + 30, usize::MAX, &mut out), 2);
        assert_eq!(out.len(), 2);
        assert_eq!(w.deadline(a), Some(START + 10));
        assert_eq!(w.deadline(b), Some(START + 20));
        assert_eq!(w.len(), 3);
        assert_eq!(w.next_deadline().map(|d| d > START + 30), Some(true));
        assert!(poll(&mut w, START + 100, usize::MAX).is_empty());
        // The deletion of `a` applied: its timer is cancelled while parked.
        w.cancel(a);
        assert_eq!(w.len(), 2);
        assert_eq!(w.unpark_all(), 1);
        assert_eq!(poll(&mut w, START + 100, usize::MAX), vec![(b, 2)]);
        assert_eq!(w.deadline(c), Some(START + 5_000));
    }

    #[test]
    fn million_timers_same_deadline_drain_in_chunks() {
        let d = START + 30 * 60_000;
        let mut w = TimerWheel::new(START);
        for k in 0..1_000_000 {
            w.insert(d, k);
        }
        assert!(w.heap_bytes() >= 24_000_000);
        // One ms early: nothing fires, though the cascade takes several bounded polls.
        let mut out = Vec::new();
        let mut early_polls = 0;
        while w.next_deadline().is_some_and(|n| n < d) {
            assert_eq!(w.poll_expired(d - 1, 10_000, &mut out), 0);
            early_polls += 1;
        }
        assert!(early_polls > 1, "the cascade was not chunked");
        assert_eq!(w.next_deadline(), Some(d));
        let mut seen = vec![false; 1_000_000];
        for _ in 0..100 {
            out.clear();
            assert_eq!(w.poll_expired(d, 10_000, &mut out), 10_000);
            for &(_, k) in &out {
                assert!(!std::mem::replace(&mut seen[k as usize], true));
            }
        }
        assert_eq!(w.poll_expired(d + 5, 10_000, &mut out), 0);
        assert!(w.is_empty());
        assert_eq!(w.next_deadline(), None);
        w.shrink();
        assert_eq!(w.heap_bytes(), 0);

        // And fired straight from a high level when the poll is already past them.
        for k in 0..200_000 {
            w.insert(d + DAY, k);
        }
        let mut n = 0;
        loop {
            out.clear();
            let got = w.poll_expired(d + 2 * DAY, 10_000, &mut out);
            n += got;
            if got < 10_000 {
                break;
            }
        }
        assert_eq!(n, 200_000);
        assert!(w.is_empty());
    }

    #[test]
    fn past_deadlines_fire_on_next_poll() {
        let mut w = TimerWheel::new(10_000);
        let a = w.insert(9_000, 1);
        let b = w.insert(0, 2);
        let c = w.insert(10_000, 3);
        w.insert(10_001, 4);
        let mut got: Vec<u64> = poll(&mut w, 10_000, usize::MAX)
            .iter()
            .map(|x| x.1)
            .collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2, 3]);
        assert!([a, b, c].iter().all(|&id| w.deadline(id).is_none()));
        assert!(poll(&mut w, 20_000, usize::MAX).len() == 1);
        // Scheduled behind the wheel's time: due at the next poll, even with the same now.
        w.insert(15_000, 5);
        w.insert(u64::MIN, 6);
        assert_eq!(w.next_deadline(), Some(0));
        assert_eq!(poll(&mut w, 20_000, usize::MAX).len(), 2);
        assert!(w.is_empty());
        // Reuses freed ids.
        assert!(u64::from(w.insert(1, 7)) < 4);
    }

    #[test]
    fn clock_going_back_is_harmless() {
        let mut w = TimerWheel::new(0);
        w.insert(100, 100);
        w.insert(5_000, 5_000);
        let keys = |v: Vec<(TimerId, u64)>| v.into_iter().map(|x| x.1).collect::<Vec<_>>();
        assert_eq!(keys(poll(&mut w, 1_000, usize::MAX)), [100]);
        assert!(poll(&mut w, 500, usize::MAX).is_empty());
        w.insert(700, 700); // before the wheel's time (1_001)
        assert!(poll(&mut w, 600, usize::MAX).is_empty());
        assert!(poll(&mut w, 650, usize::MAX).is_empty());
        w.insert(620, 620);
        assert!(w.next_deadline().is_some_and(|n| n <= 620));
        assert_eq!(keys(poll(&mut w, 630, usize::MAX)), [620]);
        assert!(poll(&mut w, 699, usize::MAX).is_empty());
        assert_eq!(w.next_deadline(), Some(700));
        assert_eq!(keys(poll(&mut w, 700, usize::MAX)), [700]);
        assert!(poll(&mut w, 4_999, usize::MAX).is_empty());
        assert!(poll(&mut w, 0, usize::MAX).is_empty());
        assert_eq!(keys(poll(&mut w, 5_000, usize::MAX)), [5_000]);
        assert!(w.is_empty());
        assert!(poll(&mut w, 0, usize::MAX).is_empty());
    }

    #[test]
    fn next_deadline_is_a_lower_bound_and_exact_when_close() {
        let mut w = TimerWheel::new(START);
        assert_eq!(w.next_deadline(), None);
        let d = START + 3 * DAY + 12_345;
        let id = w.insert(d, 1);
        assert!(w.next_deadline().is_some_and(|n| n <= d && n > START));
        assert!(poll(&mut w, d - 1, usize::MAX).is_empty());
        assert_eq!(w.next_deadline(), Some(d));
        w.reschedule(id, d - 10);
        assert_eq!(w.next_deadline(), Some(d - 10));
        w.insert(u64::MAX, 2);
        w.cancel(id);
        assert!(w.next_deadline().is_some_and(|n| n > d));
        assert!(poll(&mut w, u64::MAX - 1, usize::MAX).is_empty());
        assert_eq!(w.next_deadline(), Some(u64::MAX));
        assert_eq!(poll(&mut w, u64::MAX, usize::MAX).len(), 1);
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn long_jumps_visit_only_occupied_slots() {
        let mut w = TimerWheel::new(START);
        assert!(poll(&mut w, u64::MAX - 1, usize::MAX).is_empty());
        assert_eq!(w.visits, 0);
        let mut w = TimerWheel::new(START);
        let mut rng = Rng(99);
        for k in 0..1_000 {
            w.insert(START + rng.below(10 * 365 * DAY), k);
        }
        assert_eq!(
            poll(&mut w, START + 11 * 365 * DAY, usize::MAX).len(),
            1_000
        );
        assert!(
            w.visits <= 1_000 * LEVELS as u64,
            "{} slot visits",
            w.visits
        );
    }

    #[test]
    fn budget_stops_mid_cascade_and_resumes() {
        let mut w = TimerWheel::new(0);
        // 5_000 timers in one level-2 slot, [4096, 8192).
        for k in 0..5_000u64 {
            w.insert(4_096 + (k * 7) % 4_096, k);
        }
        let mut out = Vec::new();
        let mut polls = 0;
        // At 4_096 only the timers due at 4_096 fire; budget 1 allows 16 cascades a call.
        while w.next_deadline().is_some_and(|n| n <= 4_096) {
            w.poll_expired(4_096, 1, &mut out);
            polls += 1;
        }
        assert!(polls > 100);
        assert!(out.iter().all(|&(_, k)| (k * 7) % 4_096 == 0));
        assert_eq!(out.len(), 2);
        let mut fired = out.len();
        for now in 4_097..8_192 {
            out.clear();
            fired += w.poll_expired(now, usize::MAX, &mut out);
            assert!(out.iter().all(|&(_, k)| 4_096 + (k * 7) % 4_096 == now));
        }
        assert_eq!(fired, 5_000);
        assert!(w.is_empty());
    }
}
