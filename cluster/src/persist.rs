//! The log writer: a thread that appends each ready's entries and hard state to the
//! write-ahead log and fsyncs, so that the raft thread never waits on the disk.
//!
//! The raft thread hands every ready over as a [`Job`] (after putting its entries into the
//! in-memory log, where raft-rs reads them) and goes on with `advance_append_async`. The
//! writer takes every job that has queued up, writes them in order, fsyncs once, and
//! reports the number of the last ready it made durable (a [`Reporter`]). The messages
//! that had to wait for that go with it: a follower's append responses are sent from the
//! writer itself, anything else (a candidate's votes) goes back to the raft thread, which
//! sends it and calls `on_persist_ready`. A report with nothing for the raft thread to
//! send does not wake it unless it asked (its own fsync holds up a commit or an apply):
//! per entry, that is one wake-up less on each follower and on the leader,
//! and the follower's acknowledgement leaves without waiting for its raft thread to be
//! scheduled. While one fsync runs, the raft thread
//! keeps taking proposals, replicating and applying, and the next fsync covers all of
//! them: on a 3-node cluster on one machine this took the leader's raft thread from
//! spending over half its time waiting in fsync to not waiting at all.
//!
//! Rare operations that change the log's shape (installing the leader's snapshot,
//! removing segments a snapshot covers) lock the log directly; installing first waits
//! with [`Persister::barrier`] for everything queued before it.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::{self, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::channel::{Receiver, Sender};
use parking_lot::{Mutex, MutexGuard};
use raft::prelude::{Entry, HardState, Message, MessageType};
use tracing::error;

use crate::net::Network;
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

/// How a log reports readies made durable (the WAL's writer here, the simulation's disk
/// in `raftlog::mem`). Given the network, a follower's append responses are sent from
/// the log's thread as soon as they may be, and a report with nothing else to send is
/// quiet: it is recorded in [`Quiet`], and the raft thread is woken for it only if it
/// asked to be, which it does when its own fsync holds something up: entries the others
/// committed, which it may apply only once they are durable here too, or, on a leader,
/// entries whose durability here would complete a quorum (a follower's acknowledgement
/// overtook the leader's fsync). Otherwise the news can wait: a follower learns of the
/// commit of what it acknowledged from the leader's answer to it, and it reads the
/// report then.
pub struct Reporter {
    done: Sender<Persisted>,
    pub(crate) quiet: Arc<Quiet>,
    network: Option<Arc<dyn Network>>,
}

/// What a log and its raft thread share about quiet reports.
pub struct Quiet {
    /// The last ready made durable.
    durable: AtomicU64,
    /// The raft thread wants every report to wake it.
    wake: AtomicBool,
}

impl Quiet {
    fn new() -> Quiet {
        Quiet {
            durable: AtomicU64::new(0),
            // Until the raft thread first says otherwise, every report wakes it.
            wake: AtomicBool::new(true),
        }
    }

    /// The log: ready `number` is durable. True when the raft thread must be woken.
    fn record(&self, number: u64) -> bool {
        // Both sides are sequentially consistent: a thread that arms and then reads
        // finds the number, or this finds its flag.
        self.durable.fetch_max(number, SeqCst);
        self.wake.load(SeqCst)
    }

    /// The raft thread, before it sleeps: whether reports should wake it. Returns the
    /// last ready made durable, read after the flag is set.
    pub fn arm(&self, wake: bool) -> u64 {
        self.wake.store(wake, SeqCst);
        self.durable.load(SeqCst)
    }

    /// The last ready made durable.
    pub fn durable(&self) -> u64 {
        self.durable.load(SeqCst)
    }
}

impl Reporter {
    /// A reporter, and the channel its loud reports arrive on.
    pub fn new(network: Option<Arc<dyn Network>>) -> (Reporter, Receiver<Persisted>) {
        // Unbounded: the raft thread may wait in `barrier` while the writer answers.
        let (done, rx) = crossbeam::channel::unbounded();
        (
            Reporter {
                done,
                quiet: Arc::new(Quiet::new()),
                network,
            },
            rx,
        )
    }

    /// Every ready up to `number` is durable, and `msgs` waited for that. False once the
    /// raft thread has stopped listening.
    pub fn durable(&self, number: u64, mut msgs: Vec<Message>) -> bool {
        let Some(net) = &self.network else {
            return self.done.send(Persisted { number, msgs }).is_ok();
        };
        let (responses, rest): (Vec<Message>, Vec<Message>) = msgs
            .drain(..)
            .partition(|m| m.get_msg_type() == MessageType::MsgAppendResponse);
        // Recorded before the responses go: the leader's answer to them finds it.
        let woken = self.quiet.record(number);
        for m in &responses {
            // One that finds no link is lost, as raft allows; the leader sends again.
            net.send(m);
        }
        if rest.is_empty() && !woken {
            return true;
        }
        self.done.send(Persisted { number, msgs: rest }).is_ok()
    }
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
    quiet: Arc<Quiet>,
    thread: Option<JoinHandle<()>>,
}

impl Persister {
    /// Start the writer over `wal`. Its answers arrive on the returned receiver.
    pub fn start(
        wal: Wal,
        status: Arc<ClusterStatus>,
        network: Option<Arc<dyn Network>>,
    ) -> std::io::Result<(Persister, Receiver<Persisted>)> {
        let dir = wal.dir().to_path_buf();
        let wal = Arc::new(Mutex::new(wal));
        // std's channel, not crossbeam's: crossbeam's `recv` spins and then calls
        // `sched_yield` a few times before it blocks, and on a busy machine each yield
        // is a context switch; the writer blocks once per fsync.
        let (work, work_rx) = std::sync::mpsc::channel();
        let (report, done) = Reporter::new(network);
        let quiet = report.quiet.clone();
        let w = wal.clone();
        let thread = std::thread::Builder::new()
            .name("raft-log".into())
            .spawn(move || write_loop(&w, &work_rx, &report, &status))?;
        Ok((
            Persister {
                work: Some(work),
                wal,
                dir,
                quiet,
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

    /// What the writer and the raft thread share about quiet reports.
    pub fn quiet(&self) -> Arc<Quiet> {
        self.quiet.clone()
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
    report: &Reporter,
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
        if number != 0 && !report.durable(number, msgs) {
            return; // the raft thread has stopped
        }
        for b in barriers {
            let _ = b.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clocks::Clocks;
    use crate::transport::Applied;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(u64, MessageType)>>);

    impl Network for Recorder {
        fn send(&self, m: &Message) -> bool {
            self.0.lock().push((m.to, m.get_msg_type()));
            true
        }
        fn send_applied(&self, _: u64, _: Applied) -> bool {
            true
        }
        fn set_peer(&self, _: u64, _: &str) {}
        fn remove_peer(&self, _: u64) {}
        fn peer_addr(&self, _: u64) -> Option<String> {
            None
        }
        fn clocks(&self) -> Arc<Clocks> {
            Arc::new(Clocks::default())
        }
    }

    fn msg(to: u64, t: MessageType) -> Message {
        let mut m = Message {
            to,
            ..Default::default()
        };
        m.set_msg_type(t);
        m
    }

    /// A follower's append responses leave from the log's side, and the report wakes
    /// the raft thread only when it asked for that or something else waits for it.
    #[test]
    fn append_responses_leave_from_the_log_and_reports_wake_only_when_asked() {
        use MessageType::{MsgAppendResponse, MsgRequestVoteResponse};
        let net = Arc::new(Recorder::default());
        let (r, rx) = Reporter::new(Some(net.clone()));
        // Until the raft thread says otherwise, every report wakes it.
        assert!(r.durable(1, vec![msg(1, MsgAppendResponse)]));
        assert_eq!(rx.try_recv().expect("reported").msgs.len(), 0);
        assert_eq!(r.quiet.arm(false), 1);

        assert!(r.durable(3, vec![msg(1, MsgAppendResponse)]));
        assert_eq!(net.0.lock().len(), 2, "the responses were sent here");
        assert!(rx.try_recv().is_err(), "no wake-up for a quiet report");
        assert_eq!(r.quiet.durable(), 3);

        // A vote's answer is the raft thread's to send: that report wakes it.
        let batch = vec![msg(2, MsgAppendResponse), msg(3, MsgRequestVoteResponse)];
        assert!(r.durable(5, batch));
        assert_eq!(net.0.lock().len(), 3);
        let p = rx.try_recv().expect("a loud report");
        assert_eq!((p.number, p.msgs.len()), (5, 1));
        assert_eq!(p.msgs[0].get_msg_type(), MsgRequestVoteResponse);

        // A leader's own entries, nothing to send: quiet, unless it asked.
        assert!(r.durable(6, Vec::new()));
        assert!(rx.try_recv().is_err());
        assert_eq!(r.quiet.arm(true), 6, "arming reads what came meanwhile");
        assert!(r.durable(7, Vec::new()));
        assert_eq!(rx.try_recv().expect("asked for").number, 7);
        assert!(r.durable(4, Vec::new()));
        assert_eq!(r.quiet.durable(), 7, "only moves forward");

        // Without the network, everything is reported as before.
        let (r, rx) = Reporter::new(None);
        r.quiet.arm(false);
        assert!(r.durable(1, vec![msg(1, MsgAppendResponse)]));
        assert_eq!(rx.try_recv().expect("reported").msgs.len(), 1);
        drop(rx);
        assert!(!r.durable(2, Vec::new()), "the raft thread is gone");
    }
}
