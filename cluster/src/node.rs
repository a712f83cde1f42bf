//! The raft thread: one OS thread that owns the `RawNode` and runs raft-rs's ready loop.
//!
//! Each turn it waits for an event or the next tick, then drains every event that has
//! arrived (client proposals and reads, peer messages, admin requests), puts all the new
//! proposals into one entry, asks for one ReadIndex for all the new reads, and handles
//! the ready in the order raft-rs documents: send messages, install a snapshot, queue the
//! committed entries, put the new entries into the in-memory log, hand the entries and
//! the hard state to the log writer (`persist.rs`), advance, and apply. The writer
//! fsyncs while the raft thread goes on; when it reports a ready durable, the raft thread
//! sends the messages that had to wait for that and tells raft-rs (`on_persist_ready`).
//! Without `--dir` there is no writer and each ready is advanced at once.
//!
//! Proposals are matched to their clients by `(origin node, request id)` carried in the
//! entry, never by position, so a leader change cannot hand one client another's reply.
//! A proposal or read that does not complete within the request timeout gets an error.
//!
//! The node's state is the `Node` struct here, with the loop, event handling, batching
//! and ticks; its behaviours are `impl Node` blocks in their own files, as raftstore-v2
//! lays out a peer:
//! - `start`: recovery from `--dir` or bootstrap, and the raft thread's start;
//! - `propose`: batching proposals into entries and reads into read barriers;
//! - `ready`: raft-rs's ready in its documented order, and sending messages;
//! - `apply`: committed entries into the state machine, and the published status;
//! - `snapshot`: capture, files, reading back for followers, installing the leader's;
//! - `membership`: configuration changes and admin requests;
//! - `peers`: lost connections and re-probes of a follower far behind;
//! - `clock`: clock skew's verdict and what it means for leadership.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use protobuf::Message as PbMessage;
use raft::prelude::{
    ConfChange, ConfChangeSingle, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType,
    Message, MessageType, Snapshot, SnapshotMetadata,
};
use raft::{RawNode, SnapshotStatus, StateRole, Storage};
use raft_proto::ConfChangeI;
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use crate::fence::Fence;
use crate::net::Network;
use crate::payload::{self, PayloadBuilder};
use crate::persist::{Job, Persisted, Persister, Quiet};
use crate::raftlog::RaftLog;
use crate::status::{ClusterStatus, PeerInfo, Progress, Role};
use crate::storage::NodeStorage;
use crate::transport::{Applied, Hello, Transport};
use crate::wal::{self, Wal};
use crate::window::LogWindow;
use crate::{ClusterConfig, ClusterError, ReadConsistency, StartError, StateMachine};
use inbox::Pushed;

mod apply;
mod clock;
pub mod driven;
mod inbox;
mod lease;
mod membership;
mod peers;
mod propose;
mod ready;
mod snapshot;
mod start;

pub(crate) use lease::LeaseView;
pub use start::start;
use start::{decode_meta, encode_meta, follower_snapshot_permille};

/// Largest entry the raft thread builds from a batch of proposals.
const MAX_ENTRY_BYTES: usize = 4 << 20;
/// A leader holds a new batch while this many of its entries are appended and not yet
/// committed (see `Node::hold_batch`)...
const HOLD_WHILE_UNCOMMITTED: u64 = 1;
/// ...unless the batch has this many bytes, or has waited `cfg.max_hold`.
const HOLD_BYTES: usize = 1 << 20;
/// A follower holds a new batch for its last forwarded one only this many ticks: one
/// not applied by then was most likely lost on the way (raft does not resend a
/// proposal), and its proposals wait for their timeout, not the next batch.
const FORWARD_HOLD_TICKS: u64 = 2;
/// How long a snapshot read back for a follower waits for raft to take it.
const LOADED_SNAPSHOT_TTL: Duration = Duration::from_secs(10);
/// Events handled per turn before the ready is processed.
const MAX_EVENTS_PER_TURN: usize = 8192;
/// A ReadIndex not answered within this many ticks is asked again (raft-rs drops it
/// silently while a new leader has not committed in its term, or with no leader).
const READ_RETRY_TICKS: u64 = 3;
const SNAPSHOT_MAGIC: &[u8; 4] = b"SDCM";
/// How long a probe's answer is awaited before a heartbeat response may send it again.
/// Counted in ticks (`hold_probe`), so that a simulation that drives the ticks drives it.
const PROBE_AGAIN: Duration = Duration::from_millis(200);

type Reply<T> = oneshot::Sender<Result<T, ClusterError>>;

/// Everything the raft thread reacts to.
pub enum Event {
    /// A proposal or a read the raft thread asked to hear of is in the inbox.
    Wake,
    Raft(Box<Message>),
    Hello(Hello),
    /// The connection to a peer was lost (closed, timed out or stuck): what was in
    /// flight to it may be gone.
    Unreachable(u64),
    /// A peer refused a connection: its process is gone.
    PeerDown(u64),
    /// The invalidation fence's word from a peer (see `crate::fence`).
    Applied(u64, Applied),
    /// This node's clients started or stopped caching keys: tell the fence now.
    Caching,
    Admin {
        cmd: Admin,
        tx: Reply<String>,
    },
    /// The snapshot thread has read the store; applying may resume.
    SnapshotCaptured,
    /// The snapshot is taken (or failed): its metadata, its data's length, and the data
    /// itself when the node has no folder to keep it in.
    SnapshotDone(Result<(SnapshotMetadata, u64, Option<Bytes>), String>),
    /// The latest snapshot, read back from its file for a follower that needs it.
    SnapshotLoaded(Result<Snapshot, String>),
    Stop,
}

/// Membership and leadership changes.
#[derive(Debug, Clone)]
pub enum Admin {
    AddNode { id: u64, raft_addr: String },
    RemoveNode { id: u64 },
    TransferLeader { id: u64 },
    Snapshot,
}

/// How the server talks to its raft node.
pub struct Handle {
    tx: Sender<Event>,
    inbox: Arc<inbox::Inbox>,
    pub status: Arc<ClusterStatus>,
    pub read_consistency: ReadConsistency,
    max_clock_skew_ms: u64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Handle {
    /// Propose a record. The receiver yields the state machine's reply once the record is
    /// committed and applied on this node.
    pub fn propose(&self, data: Vec<u8>) -> oneshot::Receiver<Result<Bytes, ClusterError>> {
        let (tx, rx) = oneshot::channel();
        self.pushed(self.inbox.propose(data, tx));
        rx
    }

    /// A read barrier: resolves once this node has applied everything that was committed
    /// when the barrier was asked for (ReadIndex), or at once in stale mode.
    pub fn read_barrier(&self) -> oneshot::Receiver<Result<(), ClusterError>> {
        let (tx, rx) = oneshot::channel();
        if self.read_consistency == ReadConsistency::Stale {
            let _ = tx.send(Ok(()));
            return rx;
        }
        if self.read_consistency == ReadConsistency::Lease && self.status.lease.read_now() {
            self.status
                .reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = tx.send(Ok(()));
            return rx;
        }
        self.pushed(self.inbox.read(tx));
        rx
    }

    /// What follows a push into the inbox: wake the raft thread if asked, or refuse.
    fn pushed<T>(&self, p: Pushed<Reply<T>>) {
        match p {
            // A full channel means the thread has events to take anyway.
            Pushed::Wake => {
                let _ = self.tx.try_send(Event::Wake);
            }
            Pushed::Queued => {}
            Pushed::Full(tx) => {
                let _ = tx.send(Err(ClusterError::Timeout));
            }
        }
    }

    pub fn admin(&self, cmd: Admin) -> oneshot::Receiver<Result<String, ClusterError>> {
        let (tx, rx) = oneshot::channel();
        if let Err(e) = self.tx.try_send(Event::Admin { cmd, tx }) {
            if let Event::Admin { tx, .. } = e.into_inner() {
                let _ = tx.send(Err(ClusterError::Timeout));
            }
        }
        rx
    }

    /// This node's clients started (or stopped) caching keys: the invalidation fence
    /// hears of it now rather than at the next tick.
    /// The `--max-clock-skew` this node runs with, in ms.
    pub fn max_clock_skew_ms(&self) -> u64 {
        self.max_clock_skew_ms
    }

    pub fn caching_changed(&self) {
        let _ = self.tx.try_send(Event::Caching);
    }

    /// Stop the raft thread after it has synced the log.
    pub fn stop(&self) {
        let _ = self.tx.send(Event::Stop);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

enum Waiter {
    Write(Reply<Bytes>),
    Admin(Reply<String>),
}

struct Pending {
    waiter: Waiter,
    deadline: Instant,
}

struct ReadWaiter {
    tx: Reply<()>,
    deadline: Instant,
}

struct Node {
    cfg: ClusterConfig,
    raw: RawNode<NodeStorage>,
    storage: NodeStorage,
    /// The log (the WAL's writer, with `--dir`; the simulation's in-memory log).
    log: Option<Box<dyn RaftLog>>,
    /// The writer's reports (never ready without `--dir`).
    persisted: Receiver<Persisted>,
    /// Where the log records readies made durable without waking this thread
    /// (`persist::Reporter`), and the last of them taken.
    quiet: Option<Arc<Quiet>>,
    quiet_seen: u64,
    sm: Box<dyn StateMachine>,
    transport: Arc<dyn Network>,
    status: Arc<ClusterStatus>,
    rx: Receiver<Event>,
    tx: Sender<Event>,
    /// Proposals and reads from the server (see `inbox`), and the emptied queue the next
    /// take hands back.
    inbox: Arc<inbox::Inbox>,
    inbox_spare: inbox::Queued,
    /// The highest commit index the followers have been sent (see `tell_commit`).
    commit_told: u64,
    /// A batch was proposed this turn (its appends carry the commit index).
    appended_this_turn: bool,
    /// The tick at which this node, a follower, last forwarded a batch.
    forwarded_tick: u64,
    next_req: u64,
    batch: Option<PayloadBuilder>,
    /// The size of the last batch proposed, which the next one starts at.
    batch_hint: usize,
    /// When the batch being built got its first proposal.
    batch_since: Option<Instant>,
    regroup: propose::Regroup,
    regroup_reads: propose::Regroup,
    /// When the oldest read in `reads_new` arrived.
    reads_since: Option<Instant>,
    batch_reqs: Vec<u64>,
    pending: HashMap<u64, Pending>,
    /// Proposals that arrived while no leader was known or reachable.
    held: VecDeque<(Vec<u8>, Reply<Bytes>, Instant)>,
    reads_new: Vec<ReadWaiter>,
    /// Read barriers out: the tick and the time each was sent, and who waits for it.
    reads_inflight: HashMap<u64, (u64, Instant, Vec<ReadWaiter>)>,
    reads_ready: Vec<(u64, Vec<ReadWaiter>)>,
    next_ctx: u64,
    ticks: u64,
    applied: u64,
    apply_now: u64,
    unapplied: VecDeque<Entry>,
    /// The sizes of the entries in the in-memory log.
    window: LogWindow,
    /// Set while a snapshot thread reads the store (applying waits); it receives one
    /// message when the reading is done.
    capture: Option<Receiver<()>>,
    /// The capture running, while parts are left for this thread to take.
    capture_job: Option<crate::SnapshotJob>,
    /// Set from the start of a snapshot until its file is written.
    snapshot_busy: bool,
    /// A thread is reading the latest snapshot back from its file.
    snapshot_loading: bool,
    /// When a snapshot read back for a follower was offered to raft.
    snapshot_loaded_at: Option<Instant>,
    /// Replies held until every node with caching clients has applied their entries.
    fence: Fence,
    conf_state: ConfState,
    transfer: Option<(u64, Reply<String>, Instant)>,
    peers: BTreeMap<u64, String>,
    /// Entry bytes applied since the last snapshot started.
    applied_bytes: u64,
    /// Size of the last snapshot taken or installed. The log may grow as large as the
    /// snapshot before the next one: a snapshot costs in proportion to the store, so
    /// taking one every `snapshot_bytes` on a big store would cost more than the writes.
    last_snapshot_len: u64,
    /// A follower's snapshot thresholds relative to the configured ones, per mille.
    follower_snapshot_permille: u64,
    /// The leader as of the last soft-state change (0: none).
    last_leader: u64,
    /// A follower lost its connection to this leader and has heard nothing from it
    /// since: proposals are held rather than forwarded into a link that drops them.
    leader_unreachable: Option<u64>,
    /// The tick at which each peer was last sent an append (see `hold_probe`).
    appended_at: HashMap<u64, u64>,
    /// This node's clock is too far from the other voters' to lead (see `clocks`).
    skewed: bool,
    /// No voter's clock runs too much faster than this node's for a read lease
    /// (`crate::clocks::Clocks::rates`).
    rates_ok: bool,
    /// The leader's read lease (`--read-consistency lease`), and the last term in which a
    /// leadership transfer ended it for good (see `lease`).
    lease: Option<lease::Lease>,
    lease_barred: u64,
    /// A quorum's clocks are measured and this one is not off: vote requests may go.
    may_campaign: bool,
    /// When this node, leading with a clock that is off, last handed leadership over.
    handed_over: Option<Instant>,
    timeout: Duration,
}

type Meta<'a> = (u64, BTreeMap<u64, String>, &'a [u8]);

/// A storage failure leaves the node unable to keep its promises: stop the process.
pub(crate) fn fatal(what: &str, e: &dyn std::fmt::Display) -> ! {
    error!("{what}: {e}; stopping");
    eprintln!("sessiond: {what}: {e}");
    std::process::exit(70);
}

impl Node {
    fn run(mut self) {
        let tick = Duration::from_millis(self.cfg.tick_ms);
        let mut next_tick = Instant::now() + tick;
        loop {
            let mut wait = next_tick.saturating_duration_since(Instant::now());
            if let Some(left) = self.hold_left() {
                wait = wait.min(left);
            }
            if self.help_capture() {
                // Parts are left: look at events without waiting, then take more.
                wait = Duration::ZERO;
            }
            let reads = self.reads_to_wake();
            let proposals = self.proposals_to_wake();
            if self.inbox.arm(proposals, reads) | self.arm_quiet() {
                wait = Duration::ZERO;
            } else if !(proposals == 1 && reads == 1) {
                // What waits unannounced in the inbox waits no longer than a hold.
                wait = wait.min(self.cfg.max_hold);
            }
            let got = crossbeam::channel::select! {
                recv(self.rx) -> ev => ev.map_err(|_| RecvTimeoutError::Disconnected),
                recv(self.persisted) -> p => {
                    if let Ok(p) = p {
                        self.on_persisted(p);
                    }
                    Err(RecvTimeoutError::Timeout)
                },
                default(wait) => Err(RecvTimeoutError::Timeout),
            };
            while let Ok(p) = self.persisted.try_recv() {
                self.on_persisted(p);
            }
            self.on_quietly_persisted();
            match got {
                Ok(ev) => {
                    if !self.handle(ev) {
                        break;
                    }
                    for _ in 0..MAX_EVENTS_PER_TURN {
                        match self.rx.try_recv() {
                            Ok(ev) => {
                                if !self.handle(ev) {
                                    self.shutdown();
                                    return;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if now >= next_tick {
                self.tick(now);
                next_tick += tick;
                if next_tick < now {
                    next_tick = now + tick;
                }
            }
            self.work();
        }
        self.shutdown();
    }

    /// One raft tick.
    fn tick(&mut self, now: Instant) {
        if !self.snapshot_unreported() {
            self.raw.tick();
        }
        self.ticks += 1;
        self.on_tick(now);
    }

    /// What follows every turn of events: propose, ask for reads, handle the ready, and
    /// start the snapshot work that is due.
    fn work(&mut self) {
        self.watch_lease();
        self.take_inbox();
        self.flush_proposals();
        self.flush_reads();
        self.on_ready();
        if self.tell_commit() {
            self.on_ready();
        }
        if !self.snapshot_busy && (self.storage.take_wanted() || self.snapshot_due()) {
            self.start_snapshot();
        }
        if let Some((index, path)) = self.storage.take_load_wanted() {
            self.load_snapshot(index, path);
        }
    }

    fn shutdown(&mut self) {
        if let Some(p) = &mut self.log {
            p.stop();
        }
        info!("raft node stopped");
    }

    /// Every proposal in flight gets `-TIMEOUT` (its outcome is unknown) now.
    fn fail_pending(&mut self, why: &str) {
        let n = self.pending.len() as u64;
        if n > 0 {
            info!(
                proposals = n,
                "{why}: the outcome of the proposals in flight is unknown"
            );
        }
        for (_, p) in self.pending.drain() {
            p.fail(ClusterError::Timeout);
        }
        self.status
            .timeouts
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    fn capturing(&self) -> bool {
        self.capture.is_some()
    }

    fn leader_known(&self) -> bool {
        self.raw.raft.leader_id != raft::INVALID_ID
    }

    /// Whether a proposal can go to the leader now: one is known and, on a follower, its
    /// link is not known to be down.
    fn can_forward(&self) -> bool {
        self.leader_known() && self.leader_unreachable != Some(self.raw.raft.leader_id)
    }

    /// Returns false to stop.
    fn handle(&mut self, ev: Event) -> bool {
        match ev {
            Event::Wake => {}
            Event::Raft(msg) if self.skewed && msg.get_msg_type() == MessageType::MsgTimeoutNow => {
                warn!(
                    from = msg.from,
                    "refusing leadership: this node's clock is off the other voters'"
                );
            }
            Event::Raft(msg)
                if msg.get_msg_type() == MessageType::MsgTimeoutNow
                    && self.snapshot_unreported() =>
            {
                debug!("leadership offered while a snapshot's persistence is unreported");
            }
            Event::Raft(msg) if self.refuses_vote(&msg) => {
                debug!(
                    from = msg.from,
                    "no vote in this node's first election timeout"
                );
            }
            Event::Raft(msg) if self.lease_answers(&msg) => {}
            Event::Raft(mut msg) => {
                if self.leader_unreachable == Some(msg.from) {
                    // The leader is heard again: held proposals go at the next flush.
                    self.leader_unreachable = None;
                }
                if msg.get_msg_type() == MessageType::MsgTimeoutNow {
                    // The leader hands over (and checked this node's clock if it could):
                    // campaign even before a quorum's clocks are measured here.
                    self.may_campaign = true;
                }
                if msg.get_msg_type() == MessageType::MsgPropose
                    && self.raw.raft.state == StateRole::Leader
                {
                    // A follower's batch: its TTLs resolve against the leader's clock.
                    let now = unix_ms();
                    for e in msg.mut_entries().iter_mut() {
                        if e.get_entry_type() == EntryType::EntryNormal {
                            if let Some(d) = payload::restamp(&e.data, now) {
                                e.data = Bytes::from(d);
                            }
                        }
                    }
                }
                let hold = self.hold_probe(&msg);
                if let Err(e) = self.raw.step(*msg) {
                    debug!(error = %e, "raft step");
                }
                if let Some(id) = hold {
                    self.release_probe(id);
                }
            }
            Event::Caching => self.fence_step(false),
            Event::Unreachable(id) => self.unreachable(id),
            Event::PeerDown(id) => self.peer_down(id),
            Event::Applied(from, a) => {
                if self.raw.raft.state == StateRole::Leader {
                    self.fence.report(from, &a, Instant::now());
                } else if from == self.raw.raft.leader_id {
                    self.fence.follow(&a);
                }
                self.fence_step(false);
            }
            Event::Hello(h) => {
                // A node that joined knows nobody until someone connects: answer them.
                if h.node_id != self.cfg.id
                    && !h.raft_addr.is_empty()
                    && self.transport.peer_addr(h.node_id).is_none()
                {
                    self.transport.set_peer(h.node_id, &h.raft_addr);
                }
                let mut peers = self.status.peers.lock();
                let p = peers.entry(h.node_id).or_default();
                p.client_addr = Some(h.client_addr);
                if p.raft_addr.is_empty() {
                    p.raft_addr = h.raft_addr;
                }
            }
            Event::Admin { cmd, tx } => self.admin(cmd, tx),
            Event::SnapshotCaptured => {
                self.wait_captured();
                self.apply();
                self.publish();
            }
            Event::SnapshotDone(res) => self.snapshot_done(res),
            Event::SnapshotLoaded(res) => {
                self.snapshot_loading = false;
                match res {
                    Ok(snap) => {
                        self.storage.offer_loaded(snap);
                        self.snapshot_loaded_at = Some(Instant::now());
                    }
                    Err(e) => {
                        // The file is gone or damaged: take a fresh snapshot instead.
                        warn!(error = %e, "reading the snapshot back for a follower");
                        self.storage.want_snapshot();
                    }
                }
            }
            Event::Stop => return false,
        }
        true
    }

    /// The invalidation fence after applying, on a peer's word, and every tick: the
    /// leader recomputes it and tells the followers; a follower with caching clients
    /// reports how far it has applied; replies the fence has passed go.
    fn fence_step(&mut self, periodic: bool) {
        let now = Instant::now();
        let tracking = self.sm.tracking();
        if self.raw.raft.state == StateRole::Leader {
            if let Some(word) = self.fence.lead(self.applied, tracking, now, periodic) {
                let me = self.cfg.id;
                for id in self.raw.raft.prs().conf().voters().ids().iter() {
                    if id != me {
                        self.transport.send_applied(id, word.clone());
                    }
                }
            }
        } else {
            // Reported once the invalidations applying produced are written to the
            // clients' sockets.
            let applied = if tracking {
                let mark = self.sm.caching_mark();
                self.fence.wait(self.applied, mark);
                let sm = &self.sm;
                self.fence.settled_upto(|m| sm.caching_settled(m))
            } else {
                Some(self.applied)
            };
            if let Some(report) = applied.and_then(|a| self.fence.report_due(a, tracking)) {
                let leader = self.raw.raft.leader_id;
                if leader != 0 {
                    self.transport.send_applied(leader, report);
                }
            }
        }
        let late = self.fence.release(now);
        if late > 0 {
            self.status
                .fence_timeouts
                .fetch_add(late, std::sync::atomic::Ordering::Relaxed);
        }
        self.status
            .fence
            .store(self.fence.is_on(), std::sync::atomic::Ordering::Relaxed);
    }

    fn on_tick(&mut self, now: Instant) {
        self.fence_step(true);
        self.follow_leader_clock();
        if self.ticks.is_multiple_of(10) {
            self.clock_check(now);
        }
        // After the clocks' verdict, which may end the lease.
        self.publish_lease();
        self.renew_lease();
        // A snapshot read back for a follower that raft has not taken in this long (the
        // follower caught up otherwise, went away, or this node stopped leading) goes.
        if self
            .snapshot_loaded_at
            .is_some_and(|t| now.duration_since(t) > LOADED_SNAPSHOT_TTL)
        {
            self.snapshot_loaded_at = None;
            self.storage.drop_loaded();
        }
        // Expired writes: proposed, fate unknown.
        let mut expired = Vec::new();
        for (&req, p) in &self.pending {
            if p.deadline <= now {
                expired.push(req);
            }
        }
        if !expired.is_empty() {
            info!(proposals = expired.len(), "proposals not applied in time");
        }
        for req in expired {
            if let Some(p) = self.pending.remove(&req) {
                self.status
                    .timeouts
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                p.fail(ClusterError::Timeout);
            }
        }
        // Held proposals: never proposed, so "no leader".
        while self.held.front().is_some_and(|h| h.2 <= now) {
            if let Some((_, tx, _)) = self.held.pop_front() {
                let _ = tx.send(Err(ClusterError::NoLeader));
            }
        }
        // Reads: ask again when raft dropped the request; fail the ones out of time.
        let ticks = self.ticks;
        let stale: Vec<u64> = self
            .reads_inflight
            .iter()
            .filter(|(_, (at, _, _))| ticks - at >= READ_RETRY_TICKS)
            .map(|(&c, _)| c)
            .collect();
        for c in stale {
            if let Some((_, _, ws)) = self.reads_inflight.remove(&c) {
                self.reads_new.extend(ws);
            }
        }
        let no_leader = !self.leader_known();
        let mut keep = Vec::with_capacity(self.reads_new.len());
        for w in self.reads_new.drain(..) {
            if w.deadline <= now {
                let _ = w.tx.send(Err(if no_leader {
                    ClusterError::NoLeader
                } else {
                    ClusterError::Timeout
                }));
            } else {
                keep.push(w);
            }
        }
        self.reads_new = keep;
        for (_, ws) in &mut self.reads_ready {
            let mut keep = Vec::with_capacity(ws.len());
            for w in ws.drain(..) {
                if w.deadline <= now {
                    let _ = w.tx.send(Err(ClusterError::Timeout));
                } else {
                    keep.push(w);
                }
            }
            *ws = keep;
        }
        self.reads_ready.retain(|(_, ws)| !ws.is_empty());
        if let Some((target, _, deadline)) = &self.transfer {
            let done = self.raw.raft.leader_id == *target;
            if done || *deadline <= now {
                if let Some((target, tx, _)) = self.transfer.take() {
                    let _ = tx.send(if done {
                        Ok(format!("leadership transferred to node {target}"))
                    } else {
                        Err(ClusterError::Admin(format!(
                            "node {target} did not take over in time"
                        )))
                    });
                }
            }
        }
    }
}

/// Sends its event when dropped, unless [`SendOnDrop::send`] sent another first: a thread
/// that panics still reports that it ended.
struct SendOnDrop(Option<(Sender<Event>, Event)>);

impl SendOnDrop {
    fn send(mut self, ev: Event) {
        if let Some((tx, _)) = self.0.take() {
            let _ = tx.send(ev);
        }
    }
}

impl Drop for SendOnDrop {
    fn drop(&mut self) {
        if let Some((tx, ev)) = self.0.take() {
            let _ = tx.send(ev);
        }
    }
}

/// Run a capture on the snapshot thread's side, writing its parts to a new snapshot file
/// as they come (`head` first), so that the whole state is never held in memory.
/// `captured` runs as soon as the state is read, before the parts the raft thread took
/// are written, so that applying resumes without waiting for the disk. The capture
/// always runs to its end, even when the file fails, because the raft thread waits for
/// it.
fn capture_to_file(
    job: &dyn crate::SnapshotCapture,
    dir: &std::path::Path,
    meta: &SnapshotMetadata,
    head: &[u8],
    captured: impl FnOnce(),
) -> Result<wal::SnapshotFile, String> {
    const CHUNK: usize = 1 << 20;
    let mut file = wal::SnapshotFile::create(dir, meta).and_then(|mut f| f.write(head).map(|()| f));
    let mut write = |part: &[u8]| {
        if let Ok(f) = &mut file {
            if let Err(e) = f.write(part) {
                file = Err(e);
            }
        }
    };
    let mut buf = Vec::with_capacity(CHUNK);
    while job.step(Some(&mut buf)) {
        if buf.len() >= CHUNK {
            write(&buf);
            buf.clear();
        }
    }
    write(&buf);
    job.wait_parts();
    captured();
    job.finish(&mut write);
    file.map_err(|e| e.to_string())
}

impl Pending {
    fn fail(self, e: ClusterError) {
        match self.waiter {
            Waiter::Write(tx) => {
                let _ = tx.send(Err(e));
            }
            Waiter::Admin(tx) => {
                let _ = tx.send(Err(e));
            }
        }
    }
}
