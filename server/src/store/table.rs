//! The hash table of one slot: open addressing with linear probing, written for the
//! store so that a batch of commands can prefetch its keys before running them.
//!
//! Two parallel arrays of a power-of-two length: `tags` holds the low 32 bits of each
//! key's hash (with bit 0 forced on, so 0 means empty), `buckets` the entries. A key's
//! home bucket comes from its tag, so the bucket a key lives in (nearly always its home or
//! a neighbour) is known from the hash alone, before any memory is read: that is what
//! [`Table::prefetch`] touches. A probe compares 32-bit tags first, so a key's bytes are
//! read only for a real match (a false tag match is one in two billion).
//!
//! Removal shifts the following run of entries back (no tombstones), so probe runs never
//! lengthen under churn. Growth and shrinkage rehash from the tags alone, without reading
//! the keys. The table is at most 80% full.
//!
//! Capacities are not only powers of two but every quarter step between them (8, 10, 12,
//! 14, 16, 20, 24, 28, 32, 40...), and a tag maps to its home by a multiply-shift
//! (`home`) rather than a mask. With doubling, a store of a million sessions sat at about
//! 48% full (61 keys a slot on average, just past a 64-bucket table's 80%), and the
//! tables cost 75 bytes a session; quarter steps keep them 64-80% full.

use super::Entry;

/// Marks a used tag; an empty bucket's tag is 0.
const USED: u32 = 1;
/// Smallest non-empty capacity.
const MIN_CAP: usize = 8;

#[derive(Default)]
pub struct Table {
    tags: Box<[u32]>,
    buckets: Box<[Entry]>,
    len: usize,
}

#[inline]
fn tag_of(hash: u64) -> u32 {
    hash as u32 | USED
}

/// The home bucket of `tag` in a table of `cap` buckets: the tag's 31 hash bits scaled
/// to `[0, cap)`.
#[inline]
fn home(tag: u32, cap: usize) -> usize {
    ((u64::from(tag >> 1) * cap as u64) >> 31) as usize
}

/// The bucket after `i`, wrapping.
#[inline]
fn next(i: usize, cap: usize) -> usize {
    if i + 1 == cap {
        0
    } else {
        i + 1
    }
}

/// How far bucket `j` lies after bucket `from`, wrapping.
#[inline]
fn distance(from: usize, j: usize, cap: usize) -> usize {
    if j >= from {
        j - from
    } else {
        j + cap - from
    }
}

/// The capacity after `cap`: the next quarter step between powers of two.
fn grown(cap: usize) -> usize {
    if cap < MIN_CAP {
        return MIN_CAP;
    }
    let pow = 1usize << (usize::BITS - 1 - cap.leading_zeros());
    cap + pow / 4
}

/// The smallest capacity of the sequence that holds `n` entries at most 80% full.
fn capacity_for(n: usize) -> usize {
    let mut cap = MIN_CAP;
    while n * 5 > cap * 4 {
        cap = grown(cap);
    }
    cap
}

/// Ask the CPU to start loading the cache line at `p`; never faults.
#[inline(always)]
#[allow(unsafe_code)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is only a hint: it
        // never faults and never reads into the program, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl Table {
    pub fn new() -> Table {
        Table::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Where the table's arrays live (to free many tables in address order).
    pub fn address(&self) -> usize {
        self.tags.as_ptr() as usize
    }

    /// Free an empty table's arrays without running the entries' destructors: an empty
    /// table's buckets own nothing, and walking them to drop nothing touched every cache
    /// line of the array again (most of the cost of freeing the tables a mass expiry
    /// empties).
    #[allow(unsafe_code)]
    pub fn free_empty(self) {
        debug_assert!(self.is_empty());
        if !self.is_empty() {
            drop(self);
            return;
        }
        let Table { tags, buckets, .. } = self;
        drop(tags);
        let raw = Box::into_raw(buckets);
        // SAFETY: `ManuallyDrop<Entry>` has the layout of `Entry` (it is
        // `repr(transparent)`), so the slice's allocation is the same one, freed with the
        // same layout; and every bucket of an empty table is a default `Entry`, which owns
        // no memory, so skipping its destructor leaks nothing.
        let md = unsafe { Box::from_raw(raw as *mut [std::mem::ManuallyDrop<Entry>]) };
        drop(md);
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.tags.len()
    }

    /// Heap bytes held by the arrays.
    pub fn allocation_size(&self) -> usize {
        self.tags.len() * (std::mem::size_of::<u32>() + std::mem::size_of::<Entry>())
    }

    /// The bucket of the key with this hash for which `eq` holds.
    #[inline]
    pub fn find(&self, hash: u64, mut eq: impl FnMut(&Entry) -> bool) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let cap = self.tags.len();
        let tag = tag_of(hash);
        let mut i = home(tag, cap);
        loop {
            let t = self.tags[i];
            if t == 0 {
                return None;
            }
            if t == tag && eq(&self.buckets[i]) {
                return Some(i);
            }
            i = next(i, cap);
        }
    }

    pub fn get(&self, i: usize) -> &Entry {
        &self.buckets[i]
    }

    pub fn get_mut(&mut self, i: usize) -> &mut Entry {
        &mut self.buckets[i]
    }

    /// Insert an entry whose key is not in the table; returns its bucket.
    pub fn insert(&mut self, hash: u64, entry: Entry) -> usize {
        if (self.len + 1) * 5 > self.tags.len() * 4 {
            self.resize(grown(self.tags.len()));
        }
        self.len += 1;
        self.place(tag_of(hash), entry)
    }

    fn place(&mut self, tag: u32, entry: Entry) -> usize {
        let cap = self.tags.len();
        let mut i = home(tag, cap);
        while self.tags[i] != 0 {
            i = next(i, cap);
        }
        self.tags[i] = tag;
        self.buckets[i] = entry;
        i
    }

    /// Take the entry out of bucket `i`, shifting back the entries after it that may move.
    pub fn remove(&mut self, i: usize) -> Entry {
        let cap = self.tags.len();
        let out = std::mem::take(&mut self.buckets[i]);
        self.tags[i] = 0;
        self.len -= 1;
        let mut hole = i;
        let mut j = next(i, cap);
        loop {
            let t = self.tags[j];
            if t == 0 {
                break;
            }
            // The entry at j may fill the hole if the hole lies between its home and j.
            let h = home(t, cap);
            if distance(h, j, cap) >= distance(hole, j, cap) {
                self.tags[hole] = t;
                self.tags[j] = 0;
                self.buckets.swap(hole, j);
                hole = j;
            }
            j = next(j, cap);
        }
        out
    }

    /// Rehash into `cap` buckets (0 only when empty).
    fn resize(&mut self, cap: usize) {
        debug_assert!(cap >= MIN_CAP || (cap == 0 && self.len == 0));
        let tags = std::mem::replace(&mut self.tags, vec![0; cap].into_boxed_slice());
        let buckets = std::mem::replace(
            &mut self.buckets,
            std::iter::repeat_with(Entry::default).take(cap).collect(),
        );
        for (t, e) in tags.iter().zip(buckets.into_vec()) {
            if *t != 0 {
                self.place(*t, e);
            }
        }
    }

    /// Shrink when at most a tenth full (to about 40% full), and free the arrays when
    /// empty. Shrinking rehashes, so it is kept rare.
    pub fn maybe_shrink(&mut self) {
        let cap = self.tags.len();
        if self.len == 0 {
            if cap > 0 {
                *self = Table::default();
            }
        } else if cap > 4 * MIN_CAP && self.len * 10 <= cap {
            self.resize(capacity_for(self.len * 2));
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.tags
            .iter()
            .zip(self.buckets.iter())
            .filter(|(t, _)| **t != 0)
            .map(|(_, e)| e)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.tags
            .iter()
            .zip(self.buckets.iter_mut())
            .filter(|(t, _)| **t != 0)
            .map(|(_, e)| e)
    }

    /// Move every entry for which `pred` returns true into `out` (`pred` may change the
    /// entries it keeps). Rebuilds the table when something goes (for eviction, not for
    /// the hot path), then shrinks it if it became sparse.
    pub fn extract_into(&mut self, mut pred: impl FnMut(&mut Entry) -> bool, out: &mut Vec<Entry>) {
        let mut doomed = Vec::new();
        for (i, (t, e)) in self.tags.iter().zip(self.buckets.iter_mut()).enumerate() {
            if *t != 0 && pred(e) {
                doomed.push(i);
            }
        }
        if doomed.is_empty() {
            return;
        }
        let old = std::mem::take(self);
        self.tags = vec![0; old.tags.len()].into_boxed_slice();
        self.buckets = std::iter::repeat_with(Entry::default)
            .take(old.tags.len())
            .collect();
        let mut doomed = doomed.into_iter().peekable();
        for (i, (t, e)) in old.tags.iter().zip(old.buckets.into_vec()).enumerate() {
            if *t == 0 {
                continue;
            }
            if doomed.next_if_eq(&i).is_some() {
                out.push(e);
            } else {
                self.len += 1;
                self.place(*t, e);
            }
        }
        self.maybe_shrink();
    }

    /// First stage of a prefetch: the home tag and bucket of `hash`.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if self.tags.is_empty() {
            return;
        }
        let h = home(tag_of(hash), self.tags.len());
        prefetch(self.tags.as_ptr().wrapping_add(h));
        prefetch(self.buckets.as_ptr().wrapping_add(h));
    }

    /// Second stage: the entry whose tag matches `hash` (its key bytes and value), and
    /// return it so the caller can prefetch its timer.
    #[inline]
    pub fn prefetch_entry(&self, hash: u64) -> Option<&Entry> {
        let tag = tag_of(hash);
        let i = self.find(hash, |_| true)?;
        debug_assert_eq!(self.tags[i], tag);
        let e = &self.buckets[i];
        prefetch(e.heap_ptr());
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn entry(k: u64) -> Entry {
        Entry::string(&k.to_le_bytes(), b"v")
    }

    /// A hash with few distinct low bits, to force long probe runs and wrap-around.
    fn weak_hash(k: u64) -> u64 {
        (k % 7) | (k << 40)
    }

    #[test]
    fn capacities_go_up_in_quarter_steps_and_homes_stay_inside() {
        let mut caps = vec![MIN_CAP];
        while caps.len() < 10 {
            caps.push(grown(*caps.last().expect("one")));
        }
        assert_eq!(caps, [8, 10, 12, 14, 16, 20, 24, 28, 32, 40]);
        assert_eq!(capacity_for(61), 80, "61 keys: 76% full, not 48%");
        for cap in caps {
            for tag in [USED, u32::MAX, 0x8000_0001, 0x7fff_ffff] {
                assert!(home(tag, cap) < cap);
            }
            assert_eq!(home(u32::MAX, cap), cap - 1);
        }
    }

    fn find(t: &Table, k: u64) -> Option<usize> {
        t.find(weak_hash(k), |e| e.key() == k.to_le_bytes())
    }

    proptest! {
        /// Inserts and removes in any order agree with a HashMap, and every key stays
        /// reachable from its home after backward shifts.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((0u64..64, any::<bool>()), 0..400)) {
            let mut t = Table::new();
            let mut m: HashMap<u64, ()> = HashMap::new();
            for (k, add) in ops {
                match (find(&t, k), add) {
                    (None, true) => {
                        t.insert(weak_hash(k), entry(k));
                        m.insert(k, ());
                    }
                    (Some(i), false) => {
                        let e = t.remove(i);
                        prop_assert_eq!(e.key(), &k.to_le_bytes()[..]);
                        m.remove(&k);
                        t.maybe_shrink();
                    }
                    _ => {}
                }
                prop_assert_eq!(t.len(), m.len());
                prop_assert!(t.len() * 5 <= t.capacity() * 4);
                for k in 0..64 {
                    prop_assert_eq!(find(&t, k).is_some(), m.contains_key(&k));
                }
            }
            prop_assert_eq!(t.iter().count(), m.len());
        }
    }

    #[test]
    fn extract_keeps_the_rest_findable() {
        let mut t = Table::new();
        for k in 0..100 {
            t.insert(weak_hash(k), entry(k));
        }
        let mut out = Vec::new();
        t.extract_into(|e| e.key()[0] % 3 == 0, &mut out);
        assert_eq!(out.len(), 34);
        assert_eq!(t.len(), 66);
        for k in 0..100 {
            assert_eq!(find(&t, k).is_some(), k % 3 != 0, "key {k}");
        }
        // Nothing chosen: nothing moves, and the predicate saw every entry once.
        let before = t.capacity();
        let mut seen = 0;
        t.extract_into(
            |_| {
                seen += 1;
                false
            },
            &mut out,
        );
        assert_eq!((seen, t.len(), t.capacity()), (66, 66, before));
        // Nearly everything chosen: the table shrinks.
        t.extract_into(|e| e.key()[0] > 2, &mut out);
        assert_eq!(t.len(), 2);
        assert!(t.capacity() < before, "{} -> {}", before, t.capacity());
        assert!(find(&t, 1).is_some() && find(&t, 2).is_some());
    }

    #[test]
    fn shrinks_and_frees() {
        let mut t = Table::new();
        for k in 0..1000 {
            t.insert(weak_hash(k), entry(k));
        }
        let big = t.capacity();
        for k in 0..990 {
            let i = find(&t, k).expect("key present");
            t.remove(i);
            t.maybe_shrink();
        }
        assert!(t.capacity() < big / 8, "{} -> {}", big, t.capacity());
        for k in 990..1000 {
            assert!(find(&t, k).is_some());
        }
        for k in 990..1000 {
            let i = find(&t, k).expect("key present");
            t.remove(i);
            t.maybe_shrink();
        }
        assert_eq!(t.capacity(), 0);
        assert_eq!(t.allocation_size(), 0);
    }

    #[test]
    fn prefetch_stages_find_the_entry() {
        let mut t = Table::new();
        t.prefetch(5);
        assert!(t.prefetch_entry(5).is_none());
        t.insert(weak_hash(5), entry(5));
        t.prefetch(weak_hash(5));
        assert_eq!(
            t.prefetch_entry(weak_hash(5)).expect("inserted").key(),
            5u64.to_le_bytes()
        );
    }
}
