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
use raft::{RawNode, ReadOnlyOption, SnapshotStatus, StateRole, Storage};
use raft_proto::ConfChangeI;
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use crate::fence::Fence;
use crate::payload::{self, PayloadBuilder};
use crate::persist::{Job, Persisted, Persister};
use crate::status::{ClusterStatus, PeerInfo, Progress, Role};
use crate::storage::NodeStorage;
use crate::transport::{Applied, Hello, Transport};
use crate::wal::{self, Wal};
use crate::window::LogWindow;
use crate::{ClusterConfig, ClusterError, ReadConsistency, StartError, StateMachine};

mod clock;

/// Largest entry the raft thread builds from a batch of proposals.
const MAX_ENTRY_BYTES: usize = 4 << 20;
/// How long a snapshot read back for a follower waits for raft to take it.
const LOADED_SNAPSHOT_TTL: Duration = Duration::from_secs(10);
/// Events handled per turn before the ready is processed.
const MAX_EVENTS_PER_TURN: usize = 8192;
/// A ReadIndex not answered within this many ticks is asked again (raft-rs drops it
/// silently while a new leader has not committed in its term, or with no leader).
const READ_RETRY_TICKS: u64 = 3;
const SNAPSHOT_MAGIC: &[u8; 4] = b"SDCM";
/// How long a probe's answer is awaited before a heartbeat response may send it again.
const PROBE_AGAIN: Duration = Duration::from_millis(200);

type Reply<T> = oneshot::Sender<Result<T, ClusterError>>;

/// Everything the raft thread reacts to.
pub enum Event {
    Propose {
        data: Vec<u8>,
        tx: Reply<Bytes>,
    },
    Read {
        tx: Reply<()>,
    },
    Raft(Box<Message>),
    Hello(Hello),
    /// The connection to a peer was lost (closed, timed out or stuck): what was in
    /// flight to it may be gone.
    Unreachable(u64),
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
        if let Err(e) = self.tx.try_send(Event::Propose { data, tx }) {
            if let Event::Propose { tx, .. } = e.into_inner() {
                let _ = tx.send(Err(ClusterError::Timeout));
            }
        }
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
        if let Err(e) = self.tx.try_send(Event::Read { tx }) {
            if let Event::Read { tx } = e.into_inner() {
                let _ = tx.send(Err(ClusterError::Timeout));
            }
        }
        rx
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
    /// The log writer, with `--dir`.
    log: Option<Persister>,
    /// The writer's reports (never ready without `--dir`).
    persisted: Receiver<Persisted>,
    sm: Box<dyn StateMachine>,
    transport: Arc<Transport>,
    status: Arc<ClusterStatus>,
    rx: Receiver<Event>,
    tx: Sender<Event>,
    next_req: u64,
    batch: Option<PayloadBuilder>,
    /// The size of the last batch proposed, which the next one starts at.
    batch_hint: usize,
    batch_reqs: Vec<u64>,
    pending: HashMap<u64, Pending>,
    /// Proposals that arrived while no leader was known.
    held: VecDeque<(Vec<u8>, Reply<Bytes>, Instant)>,
    reads_new: Vec<ReadWaiter>,
    reads_inflight: HashMap<u64, (u64, Vec<ReadWaiter>)>,
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
    /// When each peer was last sent an append (see `hold_probe`).
    appended_at: HashMap<u64, Instant>,
    /// This node's clock is too far from the other voters' to lead (see `clocks`).
    skewed: bool,
    /// A quorum's clocks are measured and this one is not off: vote requests may go.
    may_campaign: bool,
    /// When this node, leading with a clock that is off, last handed leadership over.
    handed_over: Option<Instant>,
    timeout: Duration,
}

/// Encode what the cluster layer keeps in a snapshot before the state machine's data:
/// the apply clock and the peers' raft addresses.
fn encode_meta(apply_now: u64, peers: &BTreeMap<u64, String>, out: &mut Vec<u8>) {
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&apply_now.to_le_bytes());
    out.extend_from_slice(&(peers.len() as u32).to_le_bytes());
    for (id, addr) in peers {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(addr.len() as u16).to_le_bytes());
        out.extend_from_slice(addr.as_bytes());
    }
}

type Meta<'a> = (u64, BTreeMap<u64, String>, &'a [u8]);

fn decode_meta(data: &[u8]) -> Result<Meta<'_>, String> {
    let err = || "snapshot metadata is malformed".to_string();
    let take = |at: &mut usize, n: usize| -> Result<&[u8], String> {
        let s = data.get(*at..*at + n).ok_or_else(err)?;
        *at += n;
        Ok(s)
    };
    let mut at = 0;
    if take(&mut at, 4)? != SNAPSHOT_MAGIC {
        return Err(err());
    }
    let u64_of = |b: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_le_bytes(a)
    };
    let now = u64_of(take(&mut at, 8)?);
    let mut n4 = [0u8; 4];
    n4.copy_from_slice(take(&mut at, 4)?);
    let n = u32::from_le_bytes(n4);
    let mut peers = BTreeMap::new();
    for _ in 0..n {
        let id = u64_of(take(&mut at, 8)?);
        let l = take(&mut at, 2)?;
        let len = u16::from_le_bytes([l[0], l[1]]) as usize;
        let addr = String::from_utf8_lossy(take(&mut at, len)?).into_owned();
        peers.insert(id, addr);
    }
    Ok((now, peers, &data[at..]))
}

/// Start a raft node: recover from `cfg.dir` (or bootstrap), bind the raft port, and run
/// the raft thread.
pub fn start(cfg: ClusterConfig, mut sm: Box<dyn StateMachine>) -> Result<Handle, StartError> {
    if cfg.id == 0 {
        return Err(StartError::Config("--node-id must be 1 or more".into()));
    }
    let (tx, rx) = crossbeam::channel::bounded(1 << 16);
    let status = Arc::new(ClusterStatus::new(cfg.id));
    let (wal, rec) = match &cfg.dir {
        Some(d) => {
            let (w, r) = Wal::open(d, cfg.segment_bytes)?;
            (Some(w), r)
        }
        None => (None, wal::Recovered::default()),
    };
    let storage = NodeStorage::new();
    let mut peers: BTreeMap<u64, String> = cfg.peers.iter().cloned().collect();
    peers.insert(cfg.id, cfg.raft_advertise.clone());
    let mut applied = 0;
    let mut apply_now = 0;
    let fresh = rec.snapshot.is_none() && rec.entries.is_empty() && rec.hard_state.term == 0;
    let snapshot = match rec.snapshot {
        Some(s) => Some(s),
        None if fresh && !cfg.join => {
            // Every founding member starts from the same snapshot at index 1: the empty
            // state and the initial voters. A node added later gets a real snapshot
            // from the leader instead of the log from index 1.
            let mut meta = SnapshotMetadata {
                index: 1,
                term: 1,
                ..Default::default()
            };
            meta.mut_conf_state().voters = peers.keys().copied().collect();
            let mut data = Vec::new();
            encode_meta(0, &peers, &mut data);
            sm.snapshot_job().run(&mut data);
            if let Some(w) = &wal {
                wal::write_snapshot(w.dir(), &meta, &data)?;
            }
            let mut s = Snapshot::default();
            s.set_metadata(meta);
            s.data = Bytes::from(data);
            Some(s)
        }
        None if !fresh && !cfg.join => {
            return Err(StartError::Config(
                "the raft log on disk has no snapshot to start from".into(),
            ))
        }
        None => None,
    };
    let mut conf_state = ConfState::default();
    let mut last_snapshot_len = 0;
    if let Some(snap) = snapshot {
        last_snapshot_len = snap.data.len() as u64;
        let (now, snap_peers, data) = decode_meta(&snap.data).map_err(StartError::Restore)?;
        sm.restore(data).map_err(StartError::Restore)?;
        apply_now = now;
        for (id, addr) in snap_peers {
            peers.entry(id).or_insert(addr);
        }
        applied = snap.get_metadata().index;
        conf_state = snap.get_metadata().get_conf_state().clone();
        storage.mem.wl().apply_snapshot(snap.clone())?;
        let file = wal
            .as_ref()
            .map(|w| wal::snapshot_file(w.dir(), snap.get_metadata().index));
        storage.set_snapshot(snap, file);
    }
    let mut window = LogWindow::default();
    if !rec.entries.is_empty() {
        storage.mem.wl().append(&rec.entries)?;
        window.append(&rec.entries);
    }
    if rec.hard_state.term > 0 {
        let mut hs = rec.hard_state.clone();
        let cur = storage.mem.rl().hard_state().clone();
        hs.term = hs.term.max(cur.term);
        hs.commit = hs.commit.max(cur.commit).min(storage.mem.last_index()?);
        storage.mem.wl().set_hardstate(hs);
    }
    status.set_role(Role::Follower);

    let mut rc = raft::Config {
        id: cfg.id,
        election_tick: cfg.election_ticks,
        heartbeat_tick: cfg.heartbeat_ticks,
        applied,
        max_size_per_msg: 1 << 20,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        ..Default::default()
    };
    if cfg.read_consistency == ReadConsistency::Lease {
        rc.read_only_option = ReadOnlyOption::LeaseBased;
    }
    rc.validate()?;
    let logger = crate::logger::logger(cfg.id);
    let raw = RawNode::new(&rc, storage.clone(), &logger)?;

    let hello = Hello {
        node_id: cfg.id,
        client_addr: cfg.client_addr.clone(),
        raft_addr: cfg.raft_advertise.clone(),
    };
    let transport = Transport::start(
        cfg.id,
        &cfg.raft_listen,
        hello,
        crate::transport::Security {
            secret: cfg.secret.as_ref().map(|s| s.0.clone().into()),
            tls: cfg.tls.clone(),
        },
        tx.clone(),
    )
    .map_err(|source| StartError::Listen {
        addr: cfg.raft_listen.clone(),
        source,
    })?;
    {
        let mut sp = status.peers.lock();
        for (&id, addr) in &peers {
            transport.set_peer(id, addr);
            sp.insert(
                id,
                PeerInfo {
                    raft_addr: addr.clone(),
                    client_addr: (id == cfg.id).then(|| cfg.client_addr.clone()),
                    voter: conf_state.voters.contains(&id),
                    progress: None,
                    clock_offset_ms: None,
                },
            );
        }
    }
    status
        .applied
        .store(applied, std::sync::atomic::Ordering::Relaxed);
    status.snapshot_index.store(
        storage.snapshot_index(),
        std::sync::atomic::Ordering::Relaxed,
    );
    let read_consistency = cfg.read_consistency;
    let max_clock_skew_ms = cfg.max_clock_skew_ms;
    let timeout = Duration::from_millis(cfg.request_timeout_ms);
    let next_req = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let (log, persisted) = match wal {
        Some(w) => {
            let (p, rx) =
                Persister::start(w, status.clone()).map_err(|source| StartError::Listen {
                    addr: "raft log thread".into(),
                    source,
                })?;
            (Some(p), rx)
        }
        None => (None, crossbeam::channel::never()),
    };
    let node = Node {
        raw,
        storage,
        log,
        persisted,
        sm,
        transport,
        status: status.clone(),
        rx,
        tx: tx.clone(),
        next_req,
        batch: None,
        batch_hint: 0,
        batch_reqs: Vec::new(),
        pending: HashMap::new(),
        held: VecDeque::new(),
        reads_new: Vec::new(),
        reads_inflight: HashMap::new(),
        reads_ready: Vec::new(),
        next_ctx: next_req,
        ticks: 0,
        applied,
        apply_now,
        unapplied: VecDeque::new(),
        window,
        capture: None,
        capture_job: None,
        snapshot_busy: false,
        snapshot_loading: false,
        snapshot_loaded_at: None,
        fence: Fence::default(),
        conf_state,
        transfer: None,
        peers,
        applied_bytes: 0,
        last_snapshot_len,
        follower_snapshot_permille: follower_snapshot_permille(),
        last_leader: 0,
        appended_at: HashMap::new(),
        skewed: false,
        may_campaign: false,
        handed_over: None,
        timeout,
        cfg,
    };
    info!(id = node.cfg.id, applied, "raft node starting");
    let thread = std::thread::Builder::new()
        .name("raft".into())
        .spawn(move || node.run())
        .map_err(|source| StartError::Listen {
            addr: "raft thread".into(),
            source,
        })?;
    Ok(Handle {
        tx,
        status,
        read_consistency,
        max_clock_skew_ms,
        thread: Mutex::new(Some(thread)),
    })
}

/// Whether a message raft-rs holds until its ready is durable promises nothing that the
/// disk must keep, so it goes at once. A follower's heartbeat responses are the leader's
/// evidence that a quorum is alive (check-quorum) and still follows it (ReadIndex): held
/// behind an fsync that a busy disk stalls for longer than an election timeout, on both
/// followers at once, they deposed a healthy leader. Pre-votes change no state; a
/// forwarded proposal or read request is the client's, not this node's. What waits:
/// append responses (they acknowledge entries), votes (the vote is on disk first), and
/// anything else raft-rs may add.
///
/// Heartbeat responses that come at once also come often (one per round of reads), and
/// raft-rs answers each from a follower it probes with another append: `hold_probe`
/// keeps that to one per `PROBE_AGAIN`.
fn independent_of_disk(m: &Message) -> bool {
    use MessageType::*;
    matches!(
        m.get_msg_type(),
        MsgHeartbeatResponse
            | MsgRequestPreVote
            | MsgRequestPreVoteResponse
            | MsgPropose
            | MsgReadIndex
    )
}

/// A storage failure leaves the node unable to keep its promises: stop the process.
pub(crate) fn fatal(what: &str, e: &dyn std::fmt::Display) -> ! {
    error!("{what}: {e}; stopping");
    eprintln!("sessiond: {what}: {e}");
    std::process::exit(70);
}

/// A follower's snapshot thresholds relative to the configured ones, per mille: 1000 to
/// 1400, different on every node and every time (see `Node::snapshot_due`).
fn follower_snapshot_permille() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS once per process and differs per instance.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    1000 + h.finish() % 401
}

impl Node {
    fn run(mut self) {
        let tick = Duration::from_millis(self.cfg.tick_ms);
        let mut next_tick = Instant::now() + tick;
        loop {
            let mut wait = next_tick.saturating_duration_since(Instant::now());
            if self.help_capture() {
                // Parts are left: look at events without waiting, then take more.
                wait = Duration::ZERO;
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
                self.raw.tick();
                self.ticks += 1;
                next_tick += tick;
                if next_tick < now {
                    next_tick = now + tick;
                }
                self.on_tick(now);
            }
            self.flush_proposals();
            self.flush_reads();
            self.on_ready();
            if !self.snapshot_busy && (self.storage.take_wanted() || self.snapshot_due()) {
                self.start_snapshot();
            }
            if let Some((index, path)) = self.storage.take_load_wanted() {
                self.load_snapshot(index, path);
            }
        }
        self.shutdown();
    }

    /// While a capture runs, take parts of it from the back for up to 2 ms (applying is
    /// held back meanwhile, so this thread would otherwise wait). True if parts are left.
    fn help_capture(&mut self) -> bool {
        let Some(job) = &self.capture_job else {
            return false;
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(2) {
            if !job.step(None) {
                self.capture_job = None;
                return false;
            }
        }
        true
    }

    /// Whether the log has grown enough for a snapshot (see `Config::snapshot_bytes`).
    /// Capturing pauses applying. On the leader that pause holds back every client's
    /// reply; on a follower it delays no client. So the leader waits for twice the
    /// thresholds, and followers for 1 to 1.4 times them, drawn anew for each snapshot,
    /// so that the leader seldom captures at the same time as a follower and never
    /// systematically. (With followers at a fixed 1.5 times a leader at 1, both
    /// followers captured at the same index as the leader at every third leader
    /// snapshot, and that capture took 1.2-1.7 s instead of 0.2 s.) The leader's log
    /// grows twice as long in memory for it.
    fn snapshot_due(&self) -> bool {
        let (num, den) = if self.raw.raft.state == StateRole::Leader {
            (2, 1)
        } else {
            (self.follower_snapshot_permille, 1000)
        };
        let entries = self.cfg.snapshot_entries * num / den;
        let bytes = self.cfg.snapshot_bytes.max(self.last_snapshot_len) * num / den;
        self.applied >= self.storage.snapshot_index() + entries || self.applied_bytes >= bytes
    }

    fn shutdown(&mut self) {
        if let Some(p) = &mut self.log {
            p.stop();
        }
        info!("raft node stopped");
    }

    /// The log writer made readies durable: send what waited for that, and let raft-rs
    /// count the entries as persisted (which may commit them).
    fn on_persisted(&mut self, p: Persisted) {
        self.send(p.msgs);
        self.raw.on_persist_ready(p.number);
    }

    fn capturing(&self) -> bool {
        self.capture.is_some()
    }

    fn leader_known(&self) -> bool {
        self.raw.raft.leader_id != raft::INVALID_ID
    }

    /// Returns false to stop.
    fn handle(&mut self, ev: Event) -> bool {
        match ev {
            Event::Propose { data, tx } => {
                let deadline = Instant::now() + self.timeout;
                if self.leader_known() && self.held.is_empty() {
                    self.add_to_batch(data, Waiter::Write(tx), deadline);
                } else {
                    self.held.push_back((data, tx, deadline));
                }
            }
            Event::Read { tx } => self.reads_new.push(ReadWaiter {
                tx,
                deadline: Instant::now() + self.timeout,
            }),
            Event::Raft(msg) if self.skewed && msg.get_msg_type() == MessageType::MsgTimeoutNow => {
                warn!(
                    from = msg.from,
                    "refusing leadership: this node's clock is off the other voters'"
                );
            }
            Event::Raft(mut msg) => {
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

    /// The connection to peer `id` was lost. A leader probes it again from what it has.
    /// A follower that lost its connection to the leader may have lost the proposals it
    /// forwarded on it: their outcome is unknown, and their clients hear so now rather
    /// than at the request timeout (raft-rs drops a lost proposal without a word).
    fn unreachable(&mut self, id: u64) {
        self.raw.report_unreachable(id);
        if self.raw.raft.state != StateRole::Leader
            && id == self.raw.raft.leader_id
            && !self.pending.is_empty()
        {
            let n = self.pending.len() as u64;
            for (_, p) in self.pending.drain() {
                p.fail(ClusterError::Timeout);
            }
            self.status
                .timeouts
                .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Whether stepping `m`, a heartbeat response, would only make raft-rs probe a
    /// follower again while its answer to the last probe is on the way; if so, the
    /// probe is held for the step and `release_probe` must follow it.
    ///
    /// raft-rs resumes a paused probe on every heartbeat response and sends another
    /// append of up to `max_size_per_msg`. Heartbeat responses come once per round of
    /// reads, so a leader with reads in flight rebuilt and sent a megabyte-sized append
    /// to a follower far behind every few milliseconds after a partition healed, and the
    /// two did nothing else for seconds. For the step, the follower's progress looks like
    /// a snapshot in flight, which raft-rs never sends appends to; everything else the
    /// response means (the follower is alive, it acknowledges a ReadIndex) is taken as
    /// usual. After `PROBE_AGAIN` without an answer, the probe goes again as raft-rs
    /// would send it.
    fn hold_probe(&mut self, m: &Message) -> Option<u64> {
        if m.get_msg_type() != MessageType::MsgHeartbeatResponse
            || self.raw.raft.state != StateRole::Leader
        {
            return None;
        }
        let recent = self
            .appended_at
            .get(&m.from)
            .is_some_and(|t| t.elapsed() < PROBE_AGAIN);
        match self.raw.raft.mut_prs().get_mut(m.from) {
            Some(pr) if pr.state == raft::ProgressState::Probe && pr.paused => {
                if recent {
                    pr.state = raft::ProgressState::Snapshot;
                    return Some(m.from);
                }
                // This step sends the probe (it reaches the socket at the end of the
                // turn, with other responses still to step before then).
                self.appended_at.insert(m.from, Instant::now());
                None
            }
            _ => None,
        }
    }

    /// After the step `hold_probe` allowed: the probe is paused again.
    fn release_probe(&mut self, id: u64) {
        if let Some(pr) = self.raw.raft.mut_prs().get_mut(id) {
            if pr.state == raft::ProgressState::Snapshot && pr.pending_snapshot == 0 {
                pr.state = raft::ProgressState::Probe;
                pr.paused = true;
            }
        }
    }

    fn add_to_batch(&mut self, data: Vec<u8>, waiter: Waiter, deadline: Instant) {
        let req = self.next_req;
        self.next_req = self.next_req.wrapping_add(1);
        if self
            .batch
            .as_ref()
            .is_some_and(|b| b.bytes() + data.len() > MAX_ENTRY_BYTES)
        {
            self.flush_proposals();
        }
        let hint = (self.batch_hint + self.batch_hint / 8).min(MAX_ENTRY_BYTES);
        let b = self
            .batch
            .get_or_insert_with(|| PayloadBuilder::with_capacity(unix_ms(), hint));
        b.push(self.cfg.id, req, &data);
        self.batch_reqs.push(req);
        self.pending.insert(req, Pending { waiter, deadline });
    }

    fn flush_proposals(&mut self) {
        if self.leader_known() {
            while let Some((data, tx, deadline)) = self.held.pop_front() {
                self.add_to_batch(data, Waiter::Write(tx), deadline);
            }
        }
        let Some(b) = self.batch.take() else {
            return;
        };
        let n = b.len() as u64;
        self.batch_hint = b.bytes();
        let reqs = std::mem::take(&mut self.batch_reqs);
        match self.raw.propose(Vec::new(), b.finish()) {
            Ok(()) => {
                self.status
                    .proposals
                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => {
                debug!(error = %e, "proposal dropped");
                for r in reqs {
                    if let Some(p) = self.pending.remove(&r) {
                        p.fail(ClusterError::NoLeader);
                    }
                }
            }
        }
    }

    fn flush_reads(&mut self) {
        if self.reads_new.is_empty() || !self.leader_known() {
            return;
        }
        let ctx = self.next_ctx;
        self.next_ctx = self.next_ctx.wrapping_add(1);
        let waiters = std::mem::take(&mut self.reads_new);
        // The leader keys pending reads by context, so it must be unique in the group.
        let mut rctx = Vec::with_capacity(16);
        rctx.extend_from_slice(&self.cfg.id.to_le_bytes());
        rctx.extend_from_slice(&ctx.to_le_bytes());
        self.raw.read_index(rctx);
        self.reads_inflight.insert(ctx, (self.ticks, waiters));
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
            .filter(|(_, (at, _))| ticks - at >= READ_RETRY_TICKS)
            .map(|(&c, _)| c)
            .collect();
        for c in stale {
            if let Some((_, ws)) = self.reads_inflight.remove(&c) {
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

    fn send(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            let to = m.to;
            if !self.may_campaign
                && matches!(
                    m.get_msg_type(),
                    MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
                )
            {
                // A node whose clock is off, or not yet measured, does not campaign.
                continue;
            }
            let is_snap = m.get_msg_type() == MessageType::MsgSnapshot;
            let ok = self.transport.send(&m);
            if m.get_msg_type() == MessageType::MsgAppend {
                self.appended_at.insert(to, Instant::now());
            }
            if is_snap {
                self.raw.report_snapshot(
                    to,
                    if ok {
                        SnapshotStatus::Finish
                    } else {
                        SnapshotStatus::Failure
                    },
                );
            } else if !ok && m.get_msg_type() == MessageType::MsgPropose {
                // A forwarded proposal was dropped: its clients hear so now.
                self.unreachable(to);
            } else if !ok {
                self.raw.report_unreachable(to);
            }
        }
    }

    fn on_ready(&mut self) {
        if !self.raw.has_ready() {
            return;
        }
        let mut rd = self.raw.ready();
        if let Some(ss) = rd.ss() {
            let role = match ss.raft_state {
                StateRole::Leader => Role::Leader,
                StateRole::Candidate => Role::Candidate,
                StateRole::PreCandidate => Role::PreCandidate,
                StateRole::Follower => Role::Follower,
            };
            let old = self
                .status
                .leader
                .swap(ss.leader_id, std::sync::atomic::Ordering::Relaxed);
            if old != ss.leader_id && ss.leader_id != 0 {
                self.status
                    .leader_changes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                info!(
                    leader = ss.leader_id,
                    term = self.raw.raft.term,
                    "leader changed"
                );
            }
            if self.last_leader != ss.leader_id && self.last_leader != 0 {
                // What was proposed under the old leader may or may not commit under the
                // new one. Say so now rather than at the request timeout, so clients can
                // retry as soon as there is a leader to retry on.
                let n = self.pending.len() as u64;
                for (_, p) in self.pending.drain() {
                    p.fail(ClusterError::Timeout);
                }
                self.status
                    .timeouts
                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
            self.last_leader = ss.leader_id;
            self.status.set_role(role);
        }
        self.send(rd.take_messages());
        if !rd.snapshot().is_empty() {
            let snap = rd.snapshot().clone();
            self.install_snapshot(snap);
        }
        self.unapplied.extend(rd.take_committed_entries());
        if !rd.entries().is_empty() {
            if let Err(e) = self.storage.mem.wl().append(rd.entries()) {
                fatal("raft in-memory log append failed", &e);
            }
            self.window.append(rd.entries());
        }
        if let Some(hs) = rd.hs() {
            self.status
                .term
                .store(hs.term, std::sync::atomic::Ordering::Relaxed);
            self.storage.mem.wl().set_hardstate(hs.clone());
        }
        for rs in rd.take_read_states() {
            if rs.request_ctx.len() != 16 || rs.request_ctx[..8] != self.cfg.id.to_le_bytes() {
                continue;
            }
            let mut a = [0u8; 8];
            a.copy_from_slice(&rs.request_ctx[8..]);
            if let Some((_, ws)) = self.reads_inflight.remove(&u64::from_le_bytes(a)) {
                self.reads_ready.push((rs.index, ws));
            }
        }
        match self.log.is_some() {
            true => {
                let (now, msgs): (Vec<_>, Vec<_>) = rd
                    .take_persisted_messages()
                    .into_iter()
                    .partition(independent_of_disk);
                self.send(now);
                let (entries, hs) = (rd.take_entries(), rd.hs().cloned());
                let log = self.log.as_ref().filter(|_| {
                    !entries.is_empty() || hs.is_some() || !msgs.is_empty() || rd.must_sync()
                });
                if let Some(log) = log {
                    log.submit(Job {
                        number: rd.number(),
                        entries,
                        hs,
                        msgs,
                        must_sync: rd.must_sync(),
                    });
                }
                self.raw.advance_append_async(rd);
            }
            false => {
                // In memory only: durable as soon as it is in the in-memory log.
                self.send(rd.take_persisted_messages());
                let mut light = self.raw.advance_append(rd);
                if let Some(c) = light.commit_index() {
                    self.storage.mem.wl().mut_hard_state().commit = c;
                }
                self.send(light.take_messages());
                self.unapplied.extend(light.take_committed_entries());
            }
        }
        self.apply();
        self.compact_memory();
        self.publish();
    }

    /// Drop from the in-memory log the entries that this node has applied and, on a
    /// leader, that every follower has, but for the last `log_memory` bytes of them (see
    /// `window`). The write-ahead log keeps them until the next snapshot.
    fn compact_memory(&mut self) {
        let mut floor = self.applied;
        if self.raw.raft.state == StateRole::Leader {
            for (_, pr) in self.raw.raft.prs().iter() {
                floor = floor.min(pr.matched);
            }
        }
        let Some(to) = self.window.compaction_point(floor, self.cfg.log_memory) else {
            return;
        };
        if let Err(e) = self.storage.mem.wl().compact(to) {
            warn!(error = %e, "in-memory log compaction");
            return;
        }
        self.window.compact(to);
    }

    fn publish(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let st = &self.status;
        st.commit.store(self.raw.raft.raft_log.committed, Relaxed);
        st.applied.store(self.applied, Relaxed);
        st.term.store(self.raw.raft.term, Relaxed);
        st.leader.store(self.raw.raft.leader_id, Relaxed);
        if let Ok(f) = self.storage.first_index() {
            st.first_index.store(f, Relaxed);
        }
        if let Ok(l) = self.storage.last_index() {
            st.last_index.store(l, Relaxed);
        }
        self.publish_progress();
    }

    /// On the leader, each follower's progress into the status (for `ROLE` and `INFO
    /// replication`); elsewhere none.
    fn publish_progress(&self) {
        let leader = self.raw.raft.state == StateRole::Leader;
        let last = self.raw.raft.raft_log.last_index();
        let now = unix_ms();
        let mut peers = self.status.peers.lock();
        for (id, p) in peers.iter_mut() {
            if *id == self.status.id {
                continue;
            }
            let pr = if leader {
                self.raw.raft.prs().get(*id)
            } else {
                None
            };
            p.progress = pr.map(|pr| {
                let old = p.progress.as_ref();
                let moved = old.is_none_or(|o| o.matched != pr.matched) || pr.matched >= last;
                Progress {
                    matched: pr.matched,
                    state: match pr.state {
                        raft::ProgressState::Probe => "probe",
                        raft::ProgressState::Replicate => "replicate",
                        raft::ProgressState::Snapshot => "snapshot",
                    },
                    active: pr.recent_active,
                    caught_up_ms: if moved {
                        now
                    } else {
                        old.map_or(now, |o| o.caught_up_ms)
                    },
                }
            });
        }
    }

    /// Apply queued committed entries, unless a snapshot is being captured.
    fn apply(&mut self) {
        if self.capturing() {
            return;
        }
        let start = self.applied;
        while let Some(e) = self.unapplied.pop_front() {
            if e.index <= self.applied {
                continue;
            }
            self.applied_bytes += e.data.len() as u64 + crate::ENTRY_OVERHEAD;
            match e.get_entry_type() {
                EntryType::EntryNormal => self.apply_normal(&e),
                EntryType::EntryConfChange => match ConfChange::parse_from_bytes(&e.data) {
                    Ok(cc) => self.apply_conf_change(cc.into_v2()),
                    Err(err) => warn!(index = e.index, error = %err, "bad conf change"),
                },
                EntryType::EntryConfChangeV2 => match ConfChangeV2::parse_from_bytes(&e.data) {
                    Ok(cc) => self.apply_conf_change(cc),
                    Err(err) => warn!(index = e.index, error = %err, "bad conf change"),
                },
            }
            self.applied = e.index;
        }
        // raft-rs does not move its own applied index to a snapshot this node installed:
        // once the snapshot is persisted, say so, or an election here would read the
        // entries before it, which are gone, and stop the node.
        let rl = &self.raw.raft.raft_log;
        if self.applied == start
            && rl.applied < self.applied
            && self.applied <= rl.committed.min(rl.persisted)
        {
            self.raw.advance_apply_to(self.applied);
        }
        if self.applied != start {
            self.fence_step(false);
            self.sm.set_horizon(self.apply_now);
            self.raw.advance_apply_to(self.applied);
            self.status
                .entries_applied
                .fetch_add(self.applied - start, std::sync::atomic::Ordering::Relaxed);
        }
        let applied = self.applied;
        let mut i = 0;
        while i < self.reads_ready.len() {
            if self.reads_ready[i].0 <= applied {
                let (_, ws) = self.reads_ready.swap_remove(i);
                self.status
                    .reads
                    .fetch_add(ws.len() as u64, std::sync::atomic::Ordering::Relaxed);
                for w in ws {
                    let _ = w.tx.send(Ok(()));
                }
            } else {
                i += 1;
            }
        }
    }

    fn apply_normal(&mut self, e: &Entry) {
        if e.data.is_empty() {
            return; // a new leader's empty entry
        }
        let (stamp, records) = match payload::decode(&e.data) {
            Ok(x) => x,
            Err(err) => {
                warn!(index = e.index, error = %err, "undecodable entry");
                return;
            }
        };
        let now = stamp.max(self.apply_now);
        self.apply_now = now;
        self.sm.set_horizon(now);
        for r in records {
            let r = match r {
                Ok(r) => r,
                Err(err) => {
                    warn!(index = e.index, error = %err, "undecodable record");
                    break;
                }
            };
            let mine = r.origin == self.cfg.id && self.pending.contains_key(&r.request);
            let reply = self.sm.apply(e.data.slice_ref(r.data), now, mine);
            if mine {
                if let Some(p) = self.pending.remove(&r.request) {
                    if let Waiter::Write(tx) = p.waiter {
                        // Sent once every node whose clients cache keys has applied it.
                        self.fence.reply(e.index, tx, reply, Instant::now());
                    }
                }
            }
        }
    }

    fn apply_conf_change(&mut self, cc: ConfChangeV2) {
        let cs = match self.raw.apply_conf_change(&cc) {
            Ok(cs) => cs,
            Err(e) => {
                warn!(error = %e, "conf change rejected");
                return;
            }
        };
        self.storage.mem.wl().set_conf_state(cs.clone());
        // Context: origin u64, request u64, then the raft address of an added node.
        let ctx = &cc.context[..];
        let (origin, req, addr) = if ctx.len() >= 16 {
            let mut a = [0u8; 8];
            a.copy_from_slice(&ctx[..8]);
            let origin = u64::from_le_bytes(a);
            a.copy_from_slice(&ctx[8..16]);
            (
                origin,
                u64::from_le_bytes(a),
                String::from_utf8_lossy(&ctx[16..]).into_owned(),
            )
        } else {
            (0, 0, String::new())
        };
        let mut summary = Vec::new();
        for ch in cc.get_changes() {
            let id = ch.node_id;
            match ch.get_change_type() {
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                    if !addr.is_empty() {
                        self.peers.insert(id, addr.clone());
                        self.transport.set_peer(id, &addr);
                    }
                    summary.push(format!("added node {id}"));
                }
                ConfChangeType::RemoveNode => {
                    self.peers.remove(&id);
                    if id != self.cfg.id {
                        self.transport.remove_peer(id);
                    } else {
                        warn!("this node was removed from the cluster");
                    }
                    summary.push(format!("removed node {id}"));
                }
            }
        }
        {
            let mut sp = self.status.peers.lock();
            sp.retain(|id, _| self.peers.contains_key(id));
            for (&id, a) in &self.peers {
                let p = sp.entry(id).or_default();
                p.raft_addr = a.clone();
                p.voter = cs.voters.contains(&id);
            }
        }
        info!(voters = ?cs.voters, "membership changed");
        self.conf_state = cs;
        if origin == self.cfg.id {
            if let Some(p) = self.pending.remove(&req) {
                if let Waiter::Admin(tx) = p.waiter {
                    let _ = tx.send(Ok(summary.join(", ")));
                }
            }
        }
    }

    fn admin(&mut self, cmd: Admin, tx: Reply<String>) {
        let deadline = Instant::now() + self.timeout;
        match cmd {
            Admin::AddNode { id, raft_addr } => {
                self.propose_conf(ConfChangeType::AddNode, id, raft_addr, tx, deadline)
            }
            Admin::RemoveNode { id } => {
                let cs = &self.conf_state;
                if cs.voters.contains(&id) || cs.learners.contains(&id) {
                    self.propose_conf(ConfChangeType::RemoveNode, id, String::new(), tx, deadline)
                } else {
                    let _ = tx.send(Err(ClusterError::Admin(format!(
                        "node {id} is not a member"
                    ))));
                }
            }
            Admin::TransferLeader { id } => {
                if self.raw.raft.state != StateRole::Leader {
                    let _ = tx.send(Err(ClusterError::Admin(
                        "only the leader can transfer leadership".into(),
                    )));
                } else if id == self.cfg.id {
                    let _ = tx.send(Ok("this node already leads".into()));
                } else if !self.conf_state.voters.contains(&id) {
                    let _ = tx.send(Err(ClusterError::Admin(format!(
                        "node {id} is not a voter"
                    ))));
                } else if let Some(why) = self.clock_refuses(id) {
                    let _ = tx.send(Err(ClusterError::Admin(why)));
                } else {
                    self.raw.transfer_leader(id);
                    self.transfer = Some((id, tx, deadline));
                }
            }
            Admin::Snapshot => {
                let reply = if self.snapshot_busy {
                    "no snapshot started: one is already being taken".to_string()
                } else if self.start_snapshot() {
                    format!("snapshot at index {} started", self.applied)
                } else {
                    format!(
                        "no snapshot started: nothing applied since the snapshot at index {}",
                        self.storage.snapshot_index()
                    )
                };
                let _ = tx.send(Ok(reply));
            }
        }
    }

    fn propose_conf(
        &mut self,
        kind: ConfChangeType,
        id: u64,
        addr: String,
        tx: Reply<String>,
        deadline: Instant,
    ) {
        if !self.leader_known() {
            let _ = tx.send(Err(ClusterError::NoLeader));
            return;
        }
        let req = self.next_req;
        self.next_req = self.next_req.wrapping_add(1);
        let mut ctx = Vec::with_capacity(16 + addr.len());
        ctx.extend_from_slice(&self.cfg.id.to_le_bytes());
        ctx.extend_from_slice(&req.to_le_bytes());
        ctx.extend_from_slice(addr.as_bytes());
        let mut single = ConfChangeSingle::default();
        single.set_change_type(kind);
        single.node_id = id;
        let mut cc = ConfChangeV2::default();
        cc.set_changes(vec![single].into());
        cc.context = Bytes::from(ctx);
        match self.raw.propose_conf_change(Vec::new(), cc) {
            Ok(()) => {
                self.pending.insert(
                    req,
                    Pending {
                        waiter: Waiter::Admin(tx),
                        deadline,
                    },
                );
            }
            Err(e) => {
                let _ = tx.send(Err(ClusterError::Admin(format!(
                    "membership change refused: {e}"
                ))));
            }
        }
    }

    /// Capture the state at `applied` on another thread; applying waits until it is done.
    /// Start capturing a snapshot at the applied index; false when none was started
    /// (nothing applied since the last one).
    fn start_snapshot(&mut self) -> bool {
        let index = self.applied;
        if index <= self.storage.snapshot_index() {
            return false;
        }
        let term = match self.storage.term(index) {
            Ok(t) => t,
            Err(e) => {
                warn!(index, error = %e, "no term for snapshot index");
                return false;
            }
        };
        let mut meta = SnapshotMetadata {
            index,
            term,
            ..Default::default()
        };
        meta.set_conf_state(self.conf_state.clone());
        let mut data = Vec::new();
        encode_meta(self.apply_now, &self.peers, &mut data);
        let job = self.sm.snapshot_job();
        self.capture_job = Some(job.clone());
        self.applied_bytes = 0;
        self.follower_snapshot_permille = follower_snapshot_permille();
        let dir = self.log.as_ref().map(|p| p.dir().to_path_buf());
        let tx = self.tx.clone();
        let (captured_tx, captured_rx) = crossbeam::channel::bounded(1);
        debug!(index, "snapshot capture started");
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                let t = Instant::now();
                let captured = || {
                    // Applying may go on while the file is completed.
                    let _ = captured_tx.send(());
                    let _ = tx.send(Event::SnapshotCaptured);
                };
                let done = match dir {
                    Some(d) => {
                        let mut captured_ms = 0;
                        let file = capture_to_file(&*job, &d, &meta, &data, || {
                            captured_ms = t.elapsed().as_millis() as u64;
                            captured();
                        });
                        let t = Instant::now();
                        let res = file.and_then(|f| {
                            let len = f.data_len();
                            f.finish().map(|()| len).map_err(|e| e.to_string())
                        });
                        if let Ok(len) = res {
                            info!(
                                index,
                                bytes = len,
                                captured_ms,
                                written_ms = t.elapsed().as_millis() as u64,
                                "snapshot captured and written"
                            );
                        }
                        res.map(|len| (meta, len, None))
                    }
                    None => {
                        job.run(&mut data);
                        captured();
                        let captured_ms = t.elapsed().as_millis() as u64;
                        info!(index, bytes = data.len(), captured_ms, "snapshot captured");
                        Ok((meta, data.len() as u64, Some(Bytes::from(data))))
                    }
                };
                let _ = tx.send(Event::SnapshotDone(done));
            });
        match spawned {
            Ok(_) => {
                self.capture = Some(captured_rx);
                self.snapshot_busy = true;
                true
            }
            Err(e) => {
                self.capture_job = None;
                warn!(error = %e, "cannot start the snapshot thread");
                false
            }
        }
    }

    /// The file of the snapshot at `index`, for a node with a folder.
    fn snapshot_file(&self, index: u64) -> Option<std::path::PathBuf> {
        self.log
            .as_ref()
            .map(|p| wal::snapshot_file(p.dir(), index))
    }

    /// Read the latest snapshot back from its file on another thread, for a follower
    /// that needs it (see `storage`).
    fn load_snapshot(&mut self, index: u64, path: std::path::PathBuf) {
        if self.snapshot_loading {
            return;
        }
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot-read".into())
            .spawn(move || {
                // Whatever happens on this thread, the raft thread hears that it ended.
                let guard = SendOnDrop(Some((
                    tx,
                    Event::SnapshotLoaded(Err("the snapshot reading thread failed".into())),
                )));
                let res = wal::read_snapshot(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|s| {
                        if s.get_metadata().index == index {
                            Ok(s)
                        } else {
                            Err(format!("{} does not hold index {index}", path.display()))
                        }
                    });
                guard.send(Event::SnapshotLoaded(res));
            });
        match spawned {
            Ok(_) => self.snapshot_loading = true,
            Err(e) => warn!(error = %e, "cannot start the snapshot reading thread"),
        }
    }

    /// Wait until the snapshot thread has finished reading the store.
    fn wait_captured(&mut self) {
        self.capture_job = None;
        if let Some(rx) = self.capture.take() {
            let _ = rx.recv();
        }
    }

    fn snapshot_done(&mut self, res: Result<(SnapshotMetadata, u64, Option<Bytes>), String>) {
        self.wait_captured();
        self.snapshot_busy = false;
        match res {
            Ok((meta, len, data)) => {
                let index = meta.index;
                if index > self.storage.snapshot_index() {
                    self.last_snapshot_len = len;
                    let mut s = Snapshot::default();
                    s.set_metadata(meta);
                    let file = match data {
                        Some(data) => {
                            s.data = data;
                            None
                        }
                        None => self.snapshot_file(index),
                    };
                    self.storage.set_snapshot(s, file);
                    let compact = index.saturating_sub(self.cfg.snapshot_keep);
                    if compact > 1 {
                        if let Err(e) = self.storage.mem.wl().compact(compact) {
                            warn!(error = %e, "log compaction");
                        }
                        self.window.compact(compact);
                    }
                    if let Some(p) = &self.log {
                        match p.lock().compact(index) {
                            Ok(n) => debug!(segments = n, "log segments removed"),
                            Err(e) => warn!(error = %e, "log segment removal"),
                        }
                    }
                    let st = &self.status;
                    st.snapshot_index
                        .store(index, std::sync::atomic::Ordering::Relaxed);
                    st.snapshot_ms
                        .store(unix_ms(), std::sync::atomic::Ordering::Relaxed);
                    info!(index, "snapshot taken");
                }
            }
            Err(e) => error!(error = %e, "snapshot failed"),
        }
        self.apply();
        self.publish();
    }

    /// Replace the state with a snapshot from the leader.
    fn install_snapshot(&mut self, snap: Snapshot) {
        self.wait_captured();
        let meta = snap.get_metadata().clone();
        let index = meta.index;
        let (now, peers, data) = match decode_meta(&snap.data) {
            Ok(x) => x,
            Err(e) => fatal("snapshot from the leader", &e),
        };
        if let Some(p) = &self.log {
            // Everything queued before the snapshot goes to the log first.
            p.barrier();
            let mut w = p.lock();
            if let Err(e) = wal::write_snapshot(w.dir(), &meta, &snap.data) {
                fatal("writing the leader's snapshot", &e);
            }
            if let Err(e) = w.reset_to_snapshot(index) {
                fatal("raft log reset", &e);
            }
            if let Err(e) = w.sync() {
                fatal("raft log fsync failed", &e);
            }
        }
        if let Err(e) = self.sm.restore(data) {
            fatal("restoring the leader's snapshot", &e);
        }
        self.apply_now = now;
        for (id, addr) in peers {
            if !self.peers.contains_key(&id) {
                self.transport.set_peer(id, &addr);
                self.peers.insert(id, addr);
            }
        }
        self.conf_state = meta.get_conf_state().clone();
        if let Err(e) = self.storage.mem.wl().apply_snapshot(snap.clone()) {
            warn!(error = %e, "snapshot out of date");
        }
        self.window.clear();
        self.last_snapshot_len = snap.data.len() as u64;
        self.applied_bytes = 0;
        let file = self.snapshot_file(index);
        self.storage.set_snapshot(snap, file);
        self.applied = index;
        self.unapplied.retain(|e| e.index > index);
        {
            let mut sp = self.status.peers.lock();
            for (&id, a) in &self.peers {
                let p = sp.entry(id).or_default();
                p.raft_addr = a.clone();
                p.voter = self.conf_state.voters.contains(&id);
            }
        }
        let st = &self.status;
        st.snapshot_index
            .store(index, std::sync::atomic::Ordering::Relaxed);
        st.snapshot_ms
            .store(unix_ms(), std::sync::atomic::Ordering::Relaxed);
        info!(index, "installed the leader's snapshot");
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
