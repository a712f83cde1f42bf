//! The set value type (`SADD` and friends).
//!
//! Members are kept in the order of a fixed-seed hash of their bytes (ties broken by the
//! bytes), so a set's order is a function of its content alone: every replica, and a
//! replica restored from a snapshot, lists and picks members alike. That is what lets
//! `SPOP` and a script's `SMEMBERS` run at apply time on every node. A small set (the
//! usual "sessions of one user" index) is a sorted vector; a large one a B-tree; which
//! one is a function of the size alone.

use std::collections::BTreeSet;

use super::hash::Bytes;

/// Members beyond which a set switches from the sorted vector to a B-tree.
pub const SMALL_MAX: usize = 128;

/// A member's place in the order: its hash, then its bytes.
type Key = (u64, Bytes);

/// A set of binary-safe members.
#[derive(Debug, Clone)]
pub enum SetValue {
    /// Sorted by [`member_hash`], then bytes.
    Small(Vec<Key>),
    Large(BTreeSet<Key>),
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue::Small(Vec::new())
    }
}

/// FNV-1a with a fixed seed: the same on every node and across restarts.
pub fn member_hash(m: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in m {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn cmp(a: &Key, h: u64, m: &[u8]) -> std::cmp::Ordering {
    a.0.cmp(&h).then_with(|| (*a.1).cmp(m))
}

impl SetValue {
    pub fn len(&self) -> usize {
        match self {
            SetValue::Small(v) => v.len(),
            SetValue::Large(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        let h = member_hash(m);
        match self {
            SetValue::Small(v) => v.binary_search_by(|k| cmp(k, h, m)).is_ok(),
            SetValue::Large(t) => t.contains(&(h, Box::from(m))),
        }
    }

    /// Add a member; true when it is new.
    pub fn insert(&mut self, m: &[u8]) -> bool {
        let h = member_hash(m);
        match self {
            SetValue::Small(v) => match v.binary_search_by(|k| cmp(k, h, m)) {
                Ok(_) => false,
                Err(i) if v.len() < SMALL_MAX => {
                    v.insert(i, (h, m.into()));
                    true
                }
                Err(_) => {
                    let mut t: BTreeSet<Key> = v.drain(..).collect();
                    t.insert((h, m.into()));
                    *self = SetValue::Large(t);
                    true
                }
            },
            SetValue::Large(t) => t.insert((h, m.into())),
        }
    }

    /// Remove a member; true when it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        let h = member_hash(m);
        match self {
            SetValue::Small(v) => match v.binary_search_by(|k| cmp(k, h, m)) {
                Ok(i) => {
                    v.remove(i);
                    true
                }
                Err(_) => false,
            },
            SetValue::Large(t) => {
                let gone = t.remove(&(h, Box::from(m)));
                // The representation is a function of the size alone (picks differ by
                // representation, and a replica restored from a snapshot must pick alike).
                if t.len() <= SMALL_MAX {
                    *self = SetValue::Small(std::mem::take(t).into_iter().collect());
                }
                gone
            }
        }
    }

    /// Members in the set's order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = &[u8]> + '_> {
        match self {
            SetValue::Small(v) => Box::new(v.iter().map(|k| &*k.1)),
            SetValue::Large(t) => Box::new(t.iter().map(|k| &*k.1)),
        }
    }

    /// Members whose hash is at least `from`, in order, with their hashes (`SSCAN`'s
    /// cursor is a hash: a member present for the whole scan is always returned).
    pub fn iter_from(&self, from: u64) -> Box<dyn Iterator<Item = (u64, &[u8])> + '_> {
        match self {
            SetValue::Small(v) => {
                let i = v.partition_point(|k| k.0 < from);
                Box::new(v[i..].iter().map(|k| (k.0, &*k.1)))
            }
            SetValue::Large(t) => {
                Box::new(t.range((from, Bytes::default())..).map(|k| (k.0, &*k.1)))
            }
        }
    }

    /// The member a random draw `r` picks, as a function of the content and `r` only: in
    /// a small set the one at position `r mod len` (uniform); in a large one the first
    /// whose hash is at least `r` (O(log n); a member after a wide gap between hashes is
    /// likelier, as Redis's own bucket-then-chain draw favours short chains).
    pub fn pick(&self, r: u64) -> Option<&[u8]> {
        match self {
            SetValue::Small(v) if v.is_empty() => None,
            SetValue::Small(v) => Some(&v[(r % v.len() as u64) as usize].1),
            SetValue::Large(_) => self
                .iter_from(r)
                .next()
                .map(|(_, m)| m)
                .or_else(|| self.iter().next()),
        }
    }

    /// Heap bytes, roughly: each member's bytes and its slot.
    pub fn heap_size(&self) -> usize {
        let per = match self {
            SetValue::Small(_) => 24,
            SetValue::Large(_) => 40,
        };
        self.iter().map(|m| m.len() + per).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_a_function_of_content() {
        let mut a = SetValue::default();
        let mut b = SetValue::default();
        for i in 0..300u32 {
            a.insert(format!("m{i}").as_bytes());
            b.insert(format!("m{}", 299 - i).as_bytes());
        }
        // `a` grew past SMALL_MAX; a copy rebuilt small-then-large must agree.
        assert!(matches!(a, SetValue::Large(_)));
        let la: Vec<&[u8]> = a.iter().collect();
        let lb: Vec<&[u8]> = b.iter().collect();
        assert_eq!(la, lb);
        for i in 0..250u32 {
            assert!(a.remove(format!("m{i}").as_bytes()));
        }
        let mut c = SetValue::default();
        for m in a.iter() {
            c.insert(m);
        }
        assert!(matches!(a, SetValue::Small(_)) && matches!(c, SetValue::Small(_)));
        assert_eq!(a.iter().collect::<Vec<_>>(), c.iter().collect::<Vec<_>>());
        for r in [0, 1 << 20, u64::MAX / 3, u64::MAX] {
            assert_eq!(a.pick(r), c.pick(r));
        }
        assert!(!a.contains(b"m3") && a.contains(b"m299") && c.contains(b"m299"));
    }
}
