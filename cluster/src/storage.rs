//! raft-rs's `Storage` for a node: raft-rs's `MemStorage` holds the log that is not yet
//! compacted (the write-ahead log makes it durable), and this wrapper adds the node's
//! latest snapshot with its data, which `MemStorage` does not keep.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use raft::prelude::{Entry, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

#[derive(Clone, Default)]
pub struct NodeStorage {
    pub mem: MemStorage,
    snap: Arc<RwLock<Option<Snapshot>>>,
    /// Set when raft asked for a snapshot that is not there yet.
    wanted: Arc<AtomicBool>,
}

impl NodeStorage {
    pub fn new() -> Self {
        NodeStorage::default()
    }

    /// Keep `snap` as the one to send to followers that need one.
    pub fn set_snapshot(&self, snap: Snapshot) {
        *self.snap.write() = Some(snap);
    }

    /// Whether raft asked for a newer snapshot since the last call.
    pub fn take_wanted(&self) -> bool {
        self.wanted.swap(false, Ordering::Relaxed)
    }

    pub fn snapshot_index(&self) -> u64 {
        self.snap
            .read()
            .as_ref()
            .map_or(0, |s| s.get_metadata().index)
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
        self.mem.entries(low, high, max_size, context)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if let Some(s) = self.snap.read().as_ref() {
            if s.get_metadata().index == idx {
                return Ok(s.get_metadata().term);
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
        match self.snap.read().as_ref() {
            Some(s) if s.get_metadata().index >= request_index && names(s) => Ok(s.clone()),
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
