//! An in-memory raft log for the simulation. A [`MemDisk`] is what survives a crash: the
//! durable snapshot, entries and hard state, and the jobs submitted but not yet synced.
//! A [`MemLog`] is a running node's handle on it. Nothing becomes durable until the
//! simulation calls [`MemDisk::sync`]; it can hold syncs back ([`MemDisk::stall`]) and
//! crash the disk ([`MemDisk::crash`]), keeping any prefix of what was not synced, as a
//! torn write would.

use std::path::PathBuf;
use std::sync::Arc;

use crossbeam::channel::Receiver;
use parking_lot::Mutex;
use raft::prelude::{Entry, HardState, Snapshot, SnapshotMetadata};

use super::{Job, Persisted, Quiet, RaftLog};
use crate::net::Network;
use crate::persist::Reporter;
use crate::wal::{Recovered, WalError};

#[derive(Default)]
struct State {
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    hard_state: HardState,
    queued: Vec<Job>,
    stalled: bool,
    /// How the running node hears of syncs.
    done: Option<Reporter>,
}

impl State {
    fn write(&mut self, job: &Job) {
        if let Some(first) = job.entries.first() {
            // Raft's overwrite rule: a new entry replaces the one at its index and all after.
            self.entries.retain(|e| e.index < first.index);
            self.entries.extend(job.entries.iter().cloned());
        }
        if let Some(hs) = &job.hs {
            self.hard_state = hs.clone();
        }
    }

    /// Make every queued job durable and report it.
    fn sync_all(&mut self) -> usize {
        let jobs = std::mem::take(&mut self.queued);
        let n = jobs.len();
        let mut last = None;
        let mut msgs = Vec::new();
        for job in jobs {
            self.write(&job);
            last = Some(job.number);
            msgs.extend(job.msgs);
        }
        if let (Some(number), Some(done)) = (last, &self.done) {
            // A node that has stopped hears nothing.
            let _ = done.durable(number, msgs);
        }
        n
    }
}

/// What a simulated node's log leaves behind, across restarts.
#[derive(Default)]
pub struct MemDisk {
    state: Mutex<State>,
}

impl MemDisk {
    pub fn new() -> Arc<MemDisk> {
        Arc::new(MemDisk::default())
    }

    /// A log on this disk for a node starting now, with the channel its reports come on,
    /// and what the node recovers. Jobs left queued by an earlier node are lost. Given
    /// the node's network, it sends append responses itself (see `persist::Reporter`).
    pub fn open(
        self: &Arc<Self>,
        network: Option<Arc<dyn Network>>,
    ) -> (MemLog, Receiver<Persisted>, Recovered) {
        let (report, rx) = Reporter::new(network);
        let quiet = report.quiet.clone();
        let mut s = self.state.lock();
        s.queued.clear();
        s.done = Some(report);
        let rec = Recovered {
            snapshot: s.snapshot.clone(),
            entries: s.entries.clone(),
            hard_state: s.hard_state.clone(),
        };
        drop(s);
        (
            MemLog {
                disk: self.clone(),
                quiet,
            },
            rx,
            rec,
        )
    }

    /// Make what was submitted durable and report it, unless stalled. Returns the number
    /// of jobs synced.
    pub fn sync(&self) -> usize {
        let mut s = self.state.lock();
        if s.stalled {
            return 0;
        }
        s.sync_all()
    }

    /// Hold syncs back (a busy disk), or let them go again.
    pub fn stall(&self, stalled: bool) {
        self.state.lock().stalled = stalled;
    }

    /// Jobs submitted and not yet durable.
    pub fn queued(&self) -> usize {
        self.state.lock().queued.len()
    }

    /// The process dies: of the jobs not synced, the first `jobs` reached the disk, and
    /// of the next one only its first `entries` entries (a torn write); the rest is lost.
    /// Nothing is reported. The node must not be driven after this.
    pub fn crash(&self, jobs: usize, entries: usize) {
        let mut s = self.state.lock();
        s.done = None;
        let queued = std::mem::take(&mut s.queued);
        for (i, mut job) in queued.into_iter().enumerate() {
            if i < jobs {
                s.write(&job);
            } else {
                job.entries.truncate(entries);
                job.hs = None;
                s.write(&job);
                break;
            }
        }
    }

    /// The durable entries' indexes (first, last), for checks.
    pub fn bounds(&self) -> Option<(u64, u64)> {
        let s = self.state.lock();
        Some((s.entries.first()?.index, s.entries.last()?.index))
    }
}

/// A running node's handle on its [`MemDisk`].
pub struct MemLog {
    disk: Arc<MemDisk>,
    quiet: Arc<Quiet>,
}

impl RaftLog for MemLog {
    fn submit(&self, job: Job) {
        self.disk.state.lock().queued.push(job);
    }

    fn quiet(&self) -> Option<Arc<Quiet>> {
        Some(self.quiet.clone())
    }

    fn barrier(&self) {
        // A stalled disk ends its stall for a barrier, as a busy disk does eventually.
        self.disk.state.lock().sync_all();
    }

    fn write_snapshot(&self, meta: &SnapshotMetadata, data: &[u8]) -> Result<(), WalError> {
        let mut snap = Snapshot::default();
        snap.set_metadata(meta.clone());
        snap.data = data.to_vec().into();
        self.disk.state.lock().snapshot = Some(snap);
        Ok(())
    }

    fn install_snapshot(&self, meta: &SnapshotMetadata, data: &[u8]) -> Result<(), WalError> {
        self.barrier();
        self.write_snapshot(meta, data)?;
        self.disk.state.lock().entries.clear();
        Ok(())
    }

    fn snapshot_taken(&self, snap: &Snapshot) -> Result<usize, WalError> {
        let index = snap.get_metadata().index;
        let mut s = self.disk.state.lock();
        s.snapshot = Some(snap.clone());
        let before = s.entries.len();
        s.entries.retain(|e| e.index > index);
        Ok(before - s.entries.len())
    }

    fn dir(&self) -> Option<PathBuf> {
        None
    }

    fn stop(&mut self) {
        let mut s = self.disk.state.lock();
        s.sync_all();
        s.done = None;
    }
}
