//! raft-rs's `Storage` for a node: raft-rs's `MemStorage` holds the log that is not yet
//! compacted (the write-ahead log makes it durable), and this wrapper adds the node's
//! latest snapshot, which `MemStorage` does not keep.
//!
//! A node with a `--dir` keeps only the snapshot's metadata in memory: its data is in the
//! snapshot file, and is read back (on another thread) only when a follower needs it.
//! Holding it would cost a node as much memory again as its store. A node without a
//! folder keeps the data.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use raft::prelude::{Entry, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

/// Entries taken from the in-memory log at a time (see `entries`).
const ENTRIES_STEP: u64 = 64;

/// The node's latest snapshot.
struct Latest {
    /// Its metadata, and its data when the node has no snapshot file.
    snap: Snapshot,
    /// The file that holds it.
    file: Option<PathBuf>,
}

#[derive(Clone, Default)]
pub struct NodeStorage {
    pub mem: MemStorage,
    latest: Arc<RwLock<Option<Latest>>>,
    /// The latest snapshot read back from its file for a follower, until raft takes it.
    loaded: Arc<Mutex<Option<Snapshot>>>,
    /// Set when raft asked for a snapshot that is not there yet.
    wanted: Arc<AtomicBool>,
    /// Set when raft asked for the latest snapshot, which is only on disk.
    load_wanted: Arc<AtomicBool>,
}

impl NodeStorage {
    pub fn new() -> Self {
        NodeStorage::default()
    }

    /// Make `snap` the one to send to followers that need one. With `file`, the snapshot
    /// is in that file, and its data is not kept.
    pub fn set_snapshot(&self, mut snap: Snapshot, file: Option<PathBuf>) {
        if file.is_some() {
            snap.data = Default::default();
        }
        *self.loaded.lock() = None;
        *self.latest.write() = Some(Latest { snap, file });
    }

    /// Whether raft asked for a newer snapshot since the last call.
    pub fn take_wanted(&self) -> bool {
        self.wanted.swap(false, Ordering::Relaxed)
    }

    /// The file of the latest snapshot, if raft asked for it since the last call and it
    /// has not been read back yet.
    pub fn take_load_wanted(&self) -> Option<(u64, PathBuf)> {
        if !self.load_wanted.swap(false, Ordering::Relaxed) {
            return None;
        }
        let latest = self.latest.read();
        let l = latest.as_ref()?;
        Some((l.snap.get_metadata().index, l.file.clone()?))
    }

    /// Ask the raft thread for a fresh snapshot.
    pub fn want_snapshot(&self) {
        self.wanted.store(true, Ordering::Relaxed);
    }

    /// Forget a snapshot read back that raft has not taken.
    pub fn drop_loaded(&self) {
        *self.loaded.lock() = None;
    }

    /// The latest snapshot as read back from its file; raft gets it at its next try.
    pub fn offer_loaded(&self, snap: Snapshot) {
        let current = self.snapshot_index();
        if snap.get_metadata().index == current {
            *self.loaded.lock() = Some(snap);
        }
    }

    pub fn snapshot_index(&self) -> u64 {
        self.latest
            .read()
            .as_ref()
            .map_or(0, |l| l.snap.get_metadata().index)
    }
}

impl Storage for NodeStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let limit = match max_size.into() {
            Some(l) if l != raft::NO_LIMIT => l,
            _ => return self.mem.entries(low, high, None, context),
        };
        // `MemStorage` copies the whole range asked for before cutting it to the size
        // limit. A leader probing a follower that is far behind asks for everything
        // after the follower's index, on every heartbeat response from it (with reads
        // in flight, hundreds a second): after a partition healed, that copying kept a
        // leader's raft thread busy for seconds and cost it its leadership. So the range
        // is taken in small pieces, as far as the limit reaches, with raft-rs's rule: the
        // first entry always, then while the total stays within the limit.
        let mut out: Vec<Entry> = Vec::new();
        let mut size = 0u64;
        let mut at = low;
        while at < high {
            let end = (at + ENTRIES_STEP).min(high);
            for e in self
                .mem
                .entries(at, end, None, GetEntriesContext::empty(false))?
            {
                let s = u64::from(protobuf::Message::compute_size(&e));
                if !out.is_empty() && size + s > limit {
                    return Ok(out);
                }
                size += s;
                out.push(e);
            }
            at = end;
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if let Some(l) = self.latest.read().as_ref() {
            if l.snap.get_metadata().index == idx {
                return Ok(l.snap.get_metadata().term);
            }
        }
        self.mem.term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        // A snapshot from before `to` joined does not name it as a member, and the
        // receiver would refuse it: wait for one taken after the membership change.
        let names = |s: &Snapshot| {
            let cs = s.get_metadata().get_conf_state();
            cs.voters.contains(&to) || cs.learners.contains(&to)
        };
        // A snapshot must reach the in-memory log, or the follower would be left with a
        // gap: entries leave memory between snapshots (see `window`).
        let first = self.mem.first_index()?;
        match self.latest.read().as_ref() {
            Some(l)
                if l.snap.get_metadata().index >= request_index
                    && l.snap.get_metadata().index + 1 >= first
                    && names(&l.snap) =>
            {
                if l.file.is_none() {
                    return Ok(l.snap.clone());
                }
                // Handed out once: a follower that needs it again has it read again.
                if let Some(s) = self.loaded.lock().take() {
                    return Ok(s);
                }
                self.load_wanted.store(true, Ordering::Relaxed);
                Err(raft::Error::Store(
                    StorageError::SnapshotTemporarilyUnavailable,
                ))
            }
            // The raft thread takes a new one soon (it snapshots when the log is long).
            _ => {
                self.wanted.store(true, Ordering::Relaxed);
                Err(raft::Error::Store(
                    StorageError::SnapshotTemporarilyUnavailable,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(index: u64, voters: Vec<u64>) -> Snapshot {
        let mut s = Snapshot::default();
        s.mut_metadata().index = index;
        s.mut_metadata().term = 1;
        s.mut_metadata().mut_conf_state().voters = voters;
        s.data = bytes::Bytes::from_static(b"the state");
        s
    }

    fn unavailable(r: raft::Result<Snapshot>) -> bool {
        matches!(
            r,
            Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable
            ))
        )
    }

    #[test]
    fn a_snapshot_kept_in_a_file_is_read_back_for_raft_once_per_request() {
        let st = NodeStorage::new();
        st.set_snapshot(snap(10, vec![1, 2]), Some(PathBuf::from("/snap/10")));
        // Only the metadata is kept.
        assert_eq!(st.snapshot_index(), 10);
        assert_eq!(st.term(10).ok(), Some(1));
        assert!(st
            .latest
            .read()
            .as_ref()
            .is_some_and(|l| l.snap.data.is_empty()));
        assert!(st.take_load_wanted().is_none());
        // Raft asks: not there yet, and the file is wanted.
        assert!(unavailable(st.snapshot(5, 2)));
        assert_eq!(st.take_load_wanted(), Some((10, PathBuf::from("/snap/10"))));
        assert!(st.take_load_wanted().is_none());
        // A stale read-back is not offered; the right one is, once.
        st.offer_loaded(snap(9, vec![1, 2]));
        assert!(unavailable(st.snapshot(5, 2)));
        assert!(st.take_load_wanted().is_some());
        st.offer_loaded(snap(10, vec![1, 2]));
        let got = st.snapshot(5, 2).expect("loaded");
        assert_eq!(&got.data[..], b"the state");
        assert!(unavailable(st.snapshot(5, 2)));
        // A newer snapshot drops what was read back of the older one.
        st.offer_loaded(snap(10, vec![1, 2]));
        st.set_snapshot(snap(20, vec![1, 2]), Some(PathBuf::from("/snap/20")));
        assert!(unavailable(st.snapshot(5, 2)));
        assert_eq!(st.take_load_wanted(), Some((20, PathBuf::from("/snap/20"))));
        // A node without a folder keeps the data and hands it out at once.
        let mem = NodeStorage::new();
        mem.set_snapshot(snap(7, vec![1, 2]), None);
        assert_eq!(
            &mem.snapshot(5, 2).expect("in memory").data[..],
            b"the state"
        );
        // A snapshot that does not name the asking node, or is too old, is not given.
        assert!(unavailable(mem.snapshot(5, 3)));
        assert!(unavailable(mem.snapshot(8, 2)));
        assert!(mem.take_wanted());
        // Nor one that stops short of the in-memory log: entries 1..=20 with everything
        // before 15 dropped leave a gap after a snapshot at 7.
        let ents: Vec<Entry> = (1..=20)
            .map(|i| Entry {
                index: i,
                term: 1,
                ..Default::default()
            })
            .collect();
        mem.mem.wl().append(&ents).expect("append");
        assert_eq!(
            &mem.snapshot(5, 2).expect("reaches the log").data[..],
            b"the state"
        );
        mem.mem.wl().compact(15).expect("compact");
        assert!(unavailable(mem.snapshot(5, 2)));
        assert!(mem.take_wanted());
        mem.set_snapshot(snap(14, vec![1, 2]), None);
        assert_eq!(
            mem.snapshot(5, 2).expect("reaches 15").get_metadata().index,
            14
        );
    }

    #[test]
    fn entries_stop_at_the_size_limit_as_memstorage_does_without_copying_the_rest() {
        let st = NodeStorage::new();
        let ents: Vec<Entry> = (1..=500u64)
            .map(|i| Entry {
                index: i,
                term: 1,
                data: bytes::Bytes::from(vec![b'x'; (i % 7 * 10) as usize]),
                ..Default::default()
            })
            .collect();
        st.mem.wl().append(&ents).expect("append");
        for (low, high) in [(1, 501), (2, 300), (64, 65), (100, 101), (450, 501)] {
            for max in [0, 1, 40, 100, 1000, 5000, 100_000, raft::NO_LIMIT] {
                let ours = st
                    .entries(low, high, max, GetEntriesContext::empty(false))
                    .expect("ours");
                let theirs = st
                    .mem
                    .entries(low, high, max, GetEntriesContext::empty(false))
                    .expect("theirs");
                assert_eq!(ours, theirs, "{low}..{high} within {max}");
            }
        }
        assert!(st
            .entries(0, 5, 100, GetEntriesContext::empty(false))
            .is_err());
    }
}
