//! The log writer: a thread that appends each ready's entries and hard state to the
//! write-ahead log and fsyncs, so that the raft thread never waits on the disk.
//!
//! The raft thread hands every ready over as a [`Job`] (after putting its entries into the
//! in-memory log, where raft-rs reads them) and goes on with `advance_append_async`. The
//! writer takes every job that has queued up, writes them in order, fsyncs once, and
//! answers with the number of the last ready it made durable and the messages that had
//! to wait for that (a follower's append responses, a candidate's votes). The raft thread
//! then sends those and calls `on_persist_ready`. While one fsync runs, the raft thread
//! keeps taking proposals, replicating and applying, and the next fsync covers all of
//! them: on a 3-node cluster on one machine this took the leader's raft thread from
//! spending over half its time waiting in fsync to not waiting at all.
//!
//! Rare operations that change the log's shape (installing the leader's snapshot,
//! removing segments a snapshot covers) lock the log directly; installing first waits
//! with [`Persister::barrier`] for everything queued before it.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::channel::{Receiver, Sender};
use parking_lot::{Mutex, MutexGuard};
use raft::prelude::{Entry, HardState, Message};
use tracing::error;

use crate::status::ClusterStatus;
use crate::wal::Wal;

/// One ready's worth of durable state, and what may be sent once it is durable.
pub struct Job {
    pub number: u64,
    pub entries: Vec<Entry>,
    pub hs: Option<HardState>,
    pub msgs: Vec<Message>,
    /// False when only the commit index changed: raft-rs allows that to be written
    /// without an fsync of its own (the next fsync covers it; a lost commit index is
    /// learned again from the leader).
    pub must_sync: bool,
}

/// The writer's answer: every ready up to `number` is durable.
pub struct Persisted {
    pub number: u64,
    pub msgs: Vec<Message>,
}

enum Work {
    Job(Job),
    /// Answered once everything queued before it is durable.
    Barrier(std::sync::mpsc::SyncSender<()>),
}

pub struct Persister {
    work: Option<std::sync::mpsc::Sender<Work>>,
    wal: Arc<Mutex<Wal>>,
    dir: PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl Persister {
    /// Start the writer over `wal`. Its answers arrive on the returned receiver.
    pub fn start(
        wal: Wal,
        status: Arc<ClusterStatus>,
    ) -> std::io::Result<(Persister, Receiver<Persisted>)> {
        let dir = wal.dir().to_path_buf();
        let wal = Arc::new(Mutex::new(wal));
        // std's channel, not crossbeam's: crossbeam's `recv` spins and then calls
        // `sched_yield` a few times before it blocks, and on a busy machine each yield
        // is a context switch; the writer blocks once per fsync.
        let (work, work_rx) = std::sync::mpsc::channel();
        // Unbounded: the raft thread may wait in `barrier` while the writer answers.
        let (done_tx, done) = crossbeam::channel::unbounded();
        let w = wal.clone();
        let thread = std::thread::Builder::new()
            .name("raft-log".into())
            .spawn(move || write_loop(&w, &work_rx, &done_tx, &status))?;
        Ok((
            Persister {
                work: Some(work),
                wal,
                dir,
                thread: Some(thread),
            },
            done,
        ))
    }

    pub fn submit(&self, job: Job) {
        if let Some(w) = &self.work {
            if w.send(Work::Job(job)).is_err() {
                crate::node::fatal("raft log writer", &"the writer thread is gone");
            }
        }
    }

    /// Wait until everything submitted so far is durable.
    pub fn barrier(&self) {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if let Some(w) = &self.work {
            if w.send(Work::Barrier(tx)).is_err() || rx.recv().is_err() {
                crate::node::fatal("raft log writer", &"the writer thread is gone");
            }
        }
    }

    /// The log itself, for operations that change its shape.
    pub fn lock(&self) -> MutexGuard<'_, Wal> {
        self.wal.lock()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write and fsync everything queued, then stop the writer.
    pub fn stop(&mut self) {
        self.work = None;
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                error!("raft log writer panicked");
            }
        }
        if let Err(e) = self.wal.lock().sync() {
            error!(error = %e, "final log sync failed");
        }
    }
}

impl Drop for Persister {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_loop(
    wal: &Mutex<Wal>,
    work: &std::sync::mpsc::Receiver<Work>,
    done: &Sender<Persisted>,
    status: &ClusterStatus,
) {
    let mut batch = Vec::new();
    while let Ok(first) = work.recv() {
        batch.push(first);
        batch.extend(work.try_iter());
        let mut number = 0;
        let mut msgs = Vec::new();
        let mut barriers = Vec::new();
        let mut must_sync = false;
        {
            let mut w = wal.lock();
            for item in batch.drain(..) {
                match item {
                    Work::Job(job) => {
                        if !job.entries.is_empty() {
                            if let Err(e) = w.append(&job.entries) {
                                crate::node::fatal("raft log append failed", &e);
                            }
                        }
                        if let Some(hs) = &job.hs {
                            if let Err(e) = w.set_hard_state(hs) {
                                crate::node::fatal("raft hard state write failed", &e);
                            }
                        }
                        number = job.number;
                        must_sync |= job.must_sync;
                        msgs.extend(job.msgs);
                    }
                    Work::Barrier(tx) => {
                        must_sync = true;
                        barriers.push(tx);
                    }
                }
            }
            let t = Instant::now();
            let before = w.syncs;
            let res = if must_sync { w.sync() } else { w.flush() };
            if let Err(e) = res {
                crate::node::fatal("raft log fsync failed", &e);
            }
            if w.syncs != before {
                let us = t.elapsed().as_micros() as u64;
                status.fsyncs.fetch_add(1, Ordering::Relaxed);
                status.fsync_us.fetch_add(us, Ordering::Relaxed);
                status.fsync_hist.record_us(us);
            }
            status.log_bytes.store(w.written, Ordering::Relaxed);
        }
        if number != 0 && done.send(Persisted { number, msgs }).is_err() {
            return; // the raft thread has stopped
        }
        for b in barriers {
            let _ = b.send(());
        }
    }
}
