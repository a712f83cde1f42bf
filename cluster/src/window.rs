//! How many bytes of entries the in-memory log holds, by index, so that the raft thread
//! can drop entries nobody needs from memory between snapshots.
//!
//! An entry is needed in memory until this node has applied it and, on a leader, every
//! follower has it. Past that, only a follower that comes back from far behind would ask
//! for it, and such a follower gets a snapshot instead (`storage` asks for a fresh one
//! when the latest does not reach the in-memory log). The write-ahead log on disk still
//! holds every entry since the last snapshot, for a restart. Without this, a node held
//! every entry since its last snapshot in memory: up to twice its store on a leader.

use std::collections::VecDeque;

use raft::prelude::Entry;

/// The bytes of each in-memory entry, as running totals.
#[derive(Debug, Default)]
pub struct LogWindow {
    /// `(index, bytes of all entries up to and including this one)`, in index order.
    ents: VecDeque<(u64, u64)>,
    /// The running total before the first entry held.
    dropped: u64,
}

impl LogWindow {
    /// Entries appended to the in-memory log. Entries at or after the first one's index
    /// replace what was there (a follower's log overwritten by a new leader).
    pub fn append(&mut self, ents: &[Entry]) {
        let Some(first) = ents.first() else {
            return;
        };
        while self.ents.back().is_some_and(|&(i, _)| i >= first.index) {
            self.ents.pop_back();
        }
        let mut total = self.ents.back().map_or(self.dropped, |&(_, t)| t);
        for e in ents {
            total += e.data.len() as u64 + crate::ENTRY_OVERHEAD;
            self.ents.push_back((e.index, total));
        }
    }

    /// Bytes held in entries before `index`.
    pub fn bytes_before(&self, index: u64) -> u64 {
        let n = self.ents.partition_point(|&(i, _)| i < index);
        match n {
            0 => 0,
            n => self.ents[n - 1].1 - self.dropped,
        }
    }

    /// Where to compact the in-memory log so that at most `keep` bytes of entries stay
    /// before `floor`: `None` unless more than `2 * keep` are there now, so that each
    /// compaction frees a good amount at once.
    pub fn compaction_point(&self, floor: u64, keep: u64) -> Option<u64> {
        let before = self.bytes_before(floor);
        if before <= 2 * keep {
            return None;
        }
        // Drop every entry whose running total is within `before - keep` bytes.
        let cut = self.dropped + before - keep;
        let n = self.ents.partition_point(|&(_, t)| t <= cut);
        self.ents.get(n).map(|&(i, _)| i).filter(|&i| i <= floor)
    }

    /// Bytes of all the entries held.
    pub fn held(&self) -> u64 {
        self.ents.back().map_or(0, |&(_, t)| t - self.dropped)
    }

    /// The in-memory log now starts at `index`.
    pub fn compact(&mut self, index: u64) {
        while let Some(&(i, t)) = self.ents.front() {
            if i >= index {
                break;
            }
            self.dropped = t;
            self.ents.pop_front();
        }
    }

    /// The in-memory log was replaced by a snapshot.
    pub fn clear(&mut self) {
        self.dropped = self.ents.back().map_or(self.dropped, |&(_, t)| t);
        self.ents.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ents.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.ents.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ents(from: u64, to: u64, size: usize) -> Vec<Entry> {
        (from..=to)
            .map(|i| Entry {
                index: i,
                data: vec![0u8; size].into(),
                ..Default::default()
            })
            .collect()
    }

    const E: u64 = 1000 + crate::ENTRY_OVERHEAD;

    #[test]
    fn compaction_keeps_what_is_asked_and_follows_overwrites() {
        let mut w = LogWindow::default();
        w.append(&ents(5, 14, 1000));
        assert_eq!(w.bytes_before(5), 0);
        assert_eq!(w.bytes_before(8), 3 * E);
        assert_eq!(w.bytes_before(100), 10 * E);
        // Not worth it until more than twice `keep` is before the floor.
        assert_eq!(w.compaction_point(12, 4 * E), None);
        // 7 entries before 12: keep 3 of them, so compact to 9.
        assert_eq!(w.compaction_point(12, 3 * E), Some(9));
        w.compact(9);
        assert_eq!(w.len(), 6);
        assert_eq!(w.bytes_before(12), 3 * E);
        assert_eq!(w.compaction_point(12, E), Some(11));
        // A new leader overwrites 13 and 14 with smaller entries, and appends.
        w.append(&ents(13, 16, 10));
        assert_eq!(w.len(), 8);
        assert_eq!(w.bytes_before(17), 4 * E + 4 * (10 + crate::ENTRY_OVERHEAD));
        // Never past the floor, whatever `keep` is.
        assert_eq!(w.compaction_point(10, 0), Some(10));
        // A snapshot replaces everything; appends go on from it.
        w.clear();
        assert!(w.is_empty());
        assert_eq!(w.bytes_before(100), 0);
        w.append(&ents(40, 41, 1000));
        assert_eq!(w.bytes_before(41), E);
        w.compact(41);
        assert_eq!(w.bytes_before(42), E);
    }
}
