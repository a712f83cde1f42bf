//! The sorted set value type (`ZADD` and friends).
//!
//! Members are ordered by score, then by their bytes, as Redis orders them. A small set
//! (Spring Session's expiry index per minute, a user's sessions) is one sorted vector,
//! searched linearly for a member; past [`SMALL_MAX`] members it becomes a B-tree ordered
//! by (score, member) plus a member → score map. A position (`ZRANK`, `ZRANGE` by index)
//! costs a walk to it: linear in the rank, never more.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use hashbrown::HashMap;

use super::hash::Bytes;

/// Members beyond which a sorted set switches to the B-tree.
pub const SMALL_MAX: usize = 128;

/// A score with a total order (NaN is never stored; -0 equals 0 as in C).
#[derive(Debug, Clone, Copy)]
pub struct Score(pub f64);

impl PartialEq for Score {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Score {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.partial_cmp(&o.0).unwrap_or(Ordering::Equal)
    }
}

type Item = (Score, Bytes);

/// A sorted set.
#[derive(Debug, Clone)]
pub enum ZSetValue {
    Small(Vec<Item>),
    Large {
        order: BTreeSet<Item>,
        scores: HashMap<Bytes, f64>,
    },
}

impl Default for ZSetValue {
    fn default() -> Self {
        ZSetValue::Small(Vec::new())
    }
}

/// A double-ended walk over (score, member).
pub type Iter<'a> = Box<dyn DoubleEndedIterator<Item = (f64, &'a [u8])> + 'a>;

fn pos(v: &[Item], score: f64, m: &[u8]) -> Result<usize, usize> {
    v.binary_search_by(|(s, k)| s.cmp(&Score(score)).then_with(|| (**k).cmp(m)))
}

impl ZSetValue {
    pub fn len(&self) -> usize {
        match self {
            ZSetValue::Small(v) => v.len(),
            ZSetValue::Large { scores, .. } => scores.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            ZSetValue::Small(v) => v.iter().find(|(_, k)| &**k == m).map(|(s, _)| s.0),
            ZSetValue::Large { scores, .. } => scores.get(m).copied(),
        }
    }

    /// Set a member's score; returns its old score (`None` when it is new).
    pub fn insert(&mut self, m: &[u8], score: f64) -> Option<f64> {
        let old = self.remove(m);
        match self {
            ZSetValue::Small(v) if v.len() < SMALL_MAX => {
                let i = pos(v, score, m).unwrap_or_else(|i| i);
                v.insert(i, (Score(score), m.into()));
            }
            ZSetValue::Small(v) => {
                let scores = v.iter().map(|(s, k)| (k.clone(), s.0)).collect();
                let order = v.drain(..).collect();
                *self = ZSetValue::Large { order, scores };
                return self.insert(m, score).or(old);
            }
            ZSetValue::Large { order, scores } => {
                scores.insert(m.into(), score);
                order.insert((Score(score), m.into()));
            }
        }
        old
    }

    /// Remove a member; returns its score.
    pub fn remove(&mut self, m: &[u8]) -> Option<f64> {
        match self {
            ZSetValue::Small(v) => {
                let i = v.iter().position(|(_, k)| &**k == m)?;
                Some(v.remove(i).0 .0)
            }
            ZSetValue::Large { order, scores } => {
                let (k, s) = scores.remove_entry(m)?;
                order.remove(&(Score(s), k));
                Some(s)
            }
        }
    }

    /// A member's 0-based position in ascending order.
    pub fn rank(&self, m: &[u8]) -> Option<usize> {
        let s = self.score(m)?;
        match self {
            ZSetValue::Small(v) => pos(v, s, m).ok(),
            ZSetValue::Large { order, .. } => {
                Some(order.range(..(Score(s), Bytes::from(m))).count())
            }
        }
    }

    /// Every member, ascending (reverse it for descending).
    pub fn iter(&self) -> Iter<'_> {
        match self {
            ZSetValue::Small(v) => Box::new(v.iter().map(|(s, k)| (s.0, &**k))),
            ZSetValue::Large { order, .. } => Box::new(order.iter().map(|(s, k)| (s.0, &**k))),
        }
    }

    /// Members with a score of at least `min`, ascending: found in O(log n).
    pub fn from_score(&self, min: f64) -> Iter<'_> {
        match self {
            ZSetValue::Small(v) => {
                let i = v.partition_point(|(s, _)| s.0 < min);
                Box::new(v[i..].iter().map(|(s, k)| (s.0, &**k)))
            }
            ZSetValue::Large { order, .. } => Box::new(
                order
                    .range((Score(min), Bytes::default())..)
                    .map(|(s, k)| (s.0, &**k)),
            ),
        }
    }

    /// Members with a score of at most `max`, descending: found in O(log n).
    pub fn down_from_score(&self, max: f64) -> Box<dyn Iterator<Item = (f64, &[u8])> + '_> {
        match self {
            ZSetValue::Small(v) => {
                let i = v.partition_point(|(s, _)| s.0 <= max);
                Box::new(v[..i].iter().rev().map(|(s, k)| (s.0, &**k)))
            }
            ZSetValue::Large { order, .. } => Box::new(
                order
                    .iter()
                    .rev()
                    .skip_while(move |(s, _)| s.0 > max)
                    .map(|(s, k)| (s.0, &**k)),
            ),
        }
    }

    /// Heap bytes, roughly.
    pub fn heap_size(&self) -> usize {
        match self {
            ZSetValue::Small(v) => v.iter().map(|(_, k)| k.len() + 24).sum(),
            ZSetValue::Large { scores, .. } => scores.keys().map(|k| 2 * k.len() + 80).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_agree() {
        let mut z = ZSetValue::default();
        let mut members = Vec::new();
        for i in 0..400u64 {
            let m = format!("m{}", (i * 7919) % 400);
            let s = ((i * 31) % 50) as f64;
            z.insert(m.as_bytes(), s);
            members.push((s, m));
            if i == 100 {
                assert!(matches!(z, ZSetValue::Small(_)));
            }
        }
        assert!(matches!(z, ZSetValue::Large { .. }));
        members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let got: Vec<(f64, String)> = z
            .iter()
            .map(|(s, m)| (s, String::from_utf8_lossy(m).into_owned()))
            .collect();
        assert_eq!(got, members);
        assert_eq!(z.rank(members[123].1.as_bytes()), Some(123));
        assert_eq!(
            z.insert(b"m5", 1000.0),
            members.iter().find(|m| m.1 == "m5").map(|m| m.0)
        );
        assert_eq!(z.iter().next_back().map(|(_, m)| m), Some(&b"m5"[..]));
        assert_eq!(z.from_score(49.0).count(), 8 + 1);
        assert_eq!(z.down_from_score(0.0).count(), 8);
        assert_eq!(z.remove(b"m5"), Some(1000.0));
        assert_eq!(z.len(), 399);
    }
}
