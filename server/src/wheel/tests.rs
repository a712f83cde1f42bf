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
                        // Half of the moves stay near the old deadline, mostly in its slot
                        // (a session written again with its TTL).
                        let d = if rng.below(2) == 0 {
                            random_deadline(&mut rng, clock)
                        } else {
                            old.saturating_add(rng.below(2_000))
                                .saturating_sub(rng.below(500))
                        };
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
                        let more =
                            out.len() == budget || w.next_deadline().is_some_and(|n| n <= clock);
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

/// A timer moved within its slot stays where it is (no neighbour is touched), fires at its
/// new deadline, and gives back the low `HASH_BITS` of its key's hash.
#[test]
fn reschedule_within_a_slot_keeps_the_list() {
    let mut w = TimerWheel::new(START);
    let d = START + 30 * 60_000;
    let ids: Vec<TimerId> = (0..3).map(|k| w.insert(d + k, u64::MAX - k)).collect();
    let list = |w: &TimerWheel, id: TimerId| w.nodes[id as usize].hash_list >> HASH_BITS;
    let before: Vec<_> = ids.iter().map(|&id| w.nodes[id as usize].prev).collect();
    assert_eq!(w.reschedule(ids[1], d + 5), ids[1]);
    assert_eq!(list(&w, ids[1]), list(&w, ids[0]), "same slot, same list");
    let after: Vec<_> = ids.iter().map(|&id| w.nodes[id as usize].prev).collect();
    assert_eq!(before, after, "no node relinked");
    assert_eq!(w.deadline(ids[1]), Some(d + 5));
    // Far enough to leave the slot: it moves.
    w.reschedule(ids[2], d + 10 * HOUR);
    assert_ne!(list(&w, ids[2]), list(&w, ids[0]));
    let out = poll(&mut w, d + 4, usize::MAX);
    assert_eq!(out.len(), 1, "only the first is due at d + 4");
    assert_eq!(out[0], (ids[0], HASH_MASK));
    let out = poll(&mut w, d + 5, usize::MAX);
    assert_eq!(out, vec![(ids[1], (u64::MAX - 1) & HASH_MASK)]);
    assert_eq!(w.len(), 1);
}
