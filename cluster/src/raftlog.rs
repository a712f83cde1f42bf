//! The raft log as the node sees it: a trait, so that the node runs over the write-ahead
//! log in production and over an in-memory log in the simulation.
//!
//! - [`RaftLog`]: what the raft thread asks of a log. Readies are submitted as
//!   [`Job`]s and reported durable, in order, on the channel the log was made with (a
//!   [`Persisted`] per batch); the rest (snapshots, compaction) is synchronous.
//! - The [`Persister`] (`persist.rs`): the WAL behind a writer thread.
//! - [`mem::MemLog`] over a [`mem::MemDisk`]: in memory, for the simulation. The disk
//!   outlives the node that wrote it (a restart recovers from it), holds what was
//!   submitted until the simulation syncs it, and can stall, fail or tear.
//! - [`conformance`]: the checks every implementation must pass.

pub mod conformance;
pub mod mem;

use std::path::PathBuf;
use std::sync::Arc;

use raft::prelude::{Snapshot, SnapshotMetadata};

pub use crate::persist::{Job, Persisted, Persister, Quiet};
use crate::wal::{self, WalError};

/// What the raft thread needs of its log.
pub trait RaftLog: Send {
    /// Queue a ready's durable state; it is reported on the log's channel once durable.
    fn submit(&self, job: Job);
    /// Wait until everything submitted so far is durable.
    fn barrier(&self);
    /// Where the log records readies made durable without a report on the channel
    /// (`persist::Reporter`); `None` when every report comes on the channel.
    fn quiet(&self) -> Option<Arc<Quiet>> {
        None
    }
    /// Store a snapshot without touching the log (a founding member's first one).
    fn write_snapshot(&self, meta: &SnapshotMetadata, data: &[u8]) -> Result<(), WalError>;
    /// Replace the log with the leader's snapshot, durably: what was submitted before
    /// goes first, the entries go, the hard state stays.
    fn install_snapshot(&self, meta: &SnapshotMetadata, data: &[u8]) -> Result<(), WalError>;
    /// This node took `snap` (its data may be empty when the snapshot was written to a
    /// file in [`RaftLog::dir`]): drop what it covers. Returns the pieces dropped.
    fn snapshot_taken(&self, snap: &Snapshot) -> Result<usize, WalError>;
    /// The folder snapshot files go to; `None` keeps snapshots in memory.
    fn dir(&self) -> Option<PathBuf>;
    /// Make everything durable and stop.
    fn stop(&mut self);
}

impl RaftLog for Persister {
    fn submit(&self, job: Job) {
        Persister::submit(self, job);
    }

    fn barrier(&self) {
        Persister::barrier(self);
    }

    fn quiet(&self) -> Option<Arc<Quiet>> {
        Some(Persister::quiet(self))
    }

    fn write_snapshot(&self, meta: &SnapshotMetadata, data: &[u8]) -> Result<(), WalError> {
        wal::write_snapshot(self.dir(), meta, data)
    }

    fn install_snapshot(&self, meta: &SnapshotMetadata, data: &[u8]) -> Result<(), WalError> {
        Persister::barrier(self);
        let mut w = self.lock();
        wal::write_snapshot(w.dir(), meta, data)?;
        w.reset_to_snapshot(meta.index)?;
        w.sync()
    }

    fn snapshot_taken(&self, snap: &Snapshot) -> Result<usize, WalError> {
        // The snapshot is in its file already; segments it covers go.
        self.lock().compact(snap.get_metadata().index)
    }

    fn dir(&self) -> Option<PathBuf> {
        Some(Persister::dir(self).to_path_buf())
    }

    fn stop(&mut self) {
        Persister::stop(self);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crossbeam::channel::Receiver;

    use super::conformance::{check, Subject};
    use super::mem::MemDisk;
    use super::*;
    use crate::status::ClusterStatus;
    use crate::wal::{Recovered, Wal};

    struct Mem(Arc<MemDisk>);

    impl Subject for Mem {
        fn open(&mut self) -> (Box<dyn RaftLog>, Receiver<Persisted>, Recovered) {
            let (log, rx, rec) = self.0.open(None);
            (Box::new(log), rx, rec)
        }

        fn sync(&mut self) {
            self.0.sync();
        }
    }

    struct OnDisk(PathBuf);

    impl Subject for OnDisk {
        fn open(&mut self) -> (Box<dyn RaftLog>, Receiver<Persisted>, Recovered) {
            let (wal, rec) = Wal::open(&self.0, 1 << 20).expect("open the WAL");
            let (p, rx) =
                Persister::start(wal, Arc::new(ClusterStatus::new(1)), None).expect("writer");
            (Box::new(p), rx, rec)
        }
    }

    #[test]
    fn the_write_ahead_log_conforms() {
        let dir = std::env::temp_dir().join(format!("sessiond-conform-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        check(&mut OnDisk(dir.clone()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_in_memory_log_conforms() {
        check(&mut Mem(MemDisk::new()));
    }

    /// A crash keeps what was synced, and of the rest only a prefix (a torn write).
    #[test]
    fn a_crash_of_the_in_memory_disk_keeps_a_prefix_of_what_was_not_synced() {
        let disk = MemDisk::new();
        let (log, _rx, _) = disk.open(None);
        let entry = |index| raft::prelude::Entry {
            index,
            term: 1,
            ..Default::default()
        };
        let job = |number, from: u64, to: u64| Job {
            number,
            entries: (from..=to).map(entry).collect(),
            hs: None,
            msgs: Vec::new(),
            must_sync: true,
        };
        log.submit(job(1, 1, 2));
        assert_eq!(disk.sync(), 1);
        disk.stall(true);
        log.submit(job(2, 3, 4));
        log.submit(job(3, 5, 7));
        log.submit(job(4, 8, 9));
        assert_eq!(disk.sync(), 0, "stalled");
        disk.crash(1, 2);
        assert_eq!(disk.bounds(), Some((1, 6)));
        let (_log, _rx, rec) = disk.open(None);
        assert_eq!(rec.entries.len(), 6);
    }
}
