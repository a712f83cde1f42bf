//! sessiond's replication: one raft group, its durable log, and the network between nodes.
//!
//! Module map:
//! - [`node`]: the raft thread. It owns raft-rs's `RawNode` and runs the ready loop:
//!   proposals in, group commit to the log, messages out, committed entries into the
//!   [`StateMachine`], replies back to the waiting clients by request id. Proposals
//!   and reads reach it through an inbox (`node/inbox.rs`) that wakes it only when it
//!   would act on them at once: a batch waits for the entry in flight, and for the
//!   clients the last apply answered to come back (`node/propose.rs`). In lease mode
//!   a leader answers reads from a lease its read barriers earn (`node/lease.rs`),
//!   which it publishes so that its own reads are answered on the client's thread.
//! - [`payload`]: what a normal entry holds: the leader's clock stamp and a batch of
//!   proposals, each tagged with the proposing node and its request id.
//! - [`raftlog`]: the log as the node sees it (a trait), its conformance checks, and the
//!   in-memory log the simulation runs the node over; `persist`: the log writer thread,
//!   which appends and fsyncs each ready to the WAL while the raft thread goes on, sends
//!   a follower's acknowledgements itself, and wakes the raft thread only when its
//!   report is awaited.
//! - [`net`]: the network as the node sees it (a trait), implemented by the transport.
//! - [`wal`]: the segmented, CRC-checked write-ahead log and the snapshot files.
//! - [`storage`]: raft-rs's `Storage` over the in-memory log, serving our snapshots.
//! - `window`: the byte sizes of the in-memory log's entries, so that entries applied
//!   everywhere leave memory between snapshots.
//! - [`transport`]: length-prefixed `prost` frames over TCP between nodes, over mutual
//!   TLS when the cluster has certificates ([`PeerTls`]), after [`peer_auth`]'s challenge
//!   when it has a secret.
//! - [`clocks`]: the peers' wall clocks against this node's, measured over the transport;
//!   a node whose clock is off does not lead, and every node reads deadlines by the
//!   leader's clock.
//! - `liveness`: how the transport notices links that fail without closing (user
//!   timeout, keepalive, a progress check, connect timeouts that follow the network).
//! - `fence`: while clients cache keys on some node, a write's reply waits until every
//!   such node has applied it (and so sent its invalidations).
//! - [`status`]: what the rest of the server may read about the group (role, leader,
//!   indexes, peers) without asking the raft thread.
//!
//! The crate knows nothing of Redis commands: the server implements [`StateMachine`] and
//! hands opaque records to [`Handle::propose`].

pub mod clocks;
mod fence;
mod liveness;
pub mod net;
pub mod node;
pub mod payload;
pub mod peer_auth;
mod persist;
pub mod raftlog;
pub mod status;
pub mod storage;
pub mod transport;
pub mod wal;
mod window;

mod logger;

use std::path::PathBuf;

use bytes::Bytes;
use thiserror::Error;

pub use node::{start, Handle};
pub use status::{ClusterStatus, PeerInfo, Role};

/// What an entry is counted as in the log, beyond its data, for the snapshot byte
/// trigger: raft-rs's entry and our bookkeeping of it.
pub const ENTRY_OVERHEAD: u64 = 128;

/// How reads are served. See the README for what each mode risks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadConsistency {
    /// ReadIndex: the leader confirms with a quorum that it still leads, then the read
    /// waits until the serving node has applied that far. Never stale.
    Linearizable,
    /// The leader answers from a lease that its read barriers earn (no quorum round
    /// per read), on the monotonic clock, so that a pause outlives it; the leader's own
    /// reads are answered on the client's thread. No lease is held while a voter's clock
    /// runs more than 5% faster than the leader's, as measured (see `node/lease.rs`).
    Lease,
    /// Serve from the local state at once. A follower may lag, and a deposed leader
    /// may serve old data.
    Stale,
}

/// Settings of one node.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub id: u64,
    /// Where to listen for peers.
    pub raft_listen: String,
    /// Listen on this inherited file descriptor instead, already bound (by a test
    /// harness or a service manager); `raft_listen` is then only a name for it.
    pub raft_fd: Option<i32>,
    /// The secret peers prove they hold before they are heard (`None`: no check).
    pub secret: Option<PeerSecret>,
    /// Mutual TLS between peers (`None`: plain TCP).
    pub tls: Option<PeerTls>,
    /// The address peers should use to reach this node (defaults to `raft_listen`).
    pub raft_advertise: String,
    /// Where this node serves clients, as told to peers (for redirects and `ROLE`).
    pub client_addr: String,
    /// Every voter of a new cluster, this node included: `(id, raft address)`.
    pub peers: Vec<(u64, String)>,
    /// Start empty and wait to be added by the cluster (`RAFT.NODE ADD`).
    pub join: bool,
    /// Where the log and snapshots live; `None` keeps everything in memory.
    pub dir: Option<PathBuf>,
    pub tick_ms: u64,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// Take a snapshot after this many applied entries...
    pub snapshot_entries: u64,
    /// ...or once this many bytes of entries (plus [`ENTRY_OVERHEAD`] per entry) were
    /// applied since the last one (entries carry whole batches, so counting entries
    /// alone lets the log grow large), or as many as the last snapshot had if that is
    /// more: a snapshot costs in proportion to the store, so on a big store it waits
    /// for the log to grow as big (the rule of Redis's `auto-aof-rewrite-percentage 100`).
    pub snapshot_bytes: u64,
    /// Entries kept in the log behind a snapshot, for followers that lag a little.
    pub snapshot_keep: u64,
    pub segment_bytes: u64,
    /// Bytes of entries kept in memory before the oldest one this node or a follower
    /// still needs (see `window`).
    pub log_memory: u64,
    /// How long a client waits for its write or read before it gets an error.
    pub request_timeout_ms: u64,
    /// A node whose clock is further than this from a quorum of the others' does not
    /// lead (see `clocks`).
    pub max_clock_skew_ms: u64,
    pub read_consistency: ReadConsistency,
    /// The longest a batch of proposals (or reads) waits for the entry (or read barrier)
    /// in flight before it goes anyway (see `Node::hold_batch`). Not a flag: the
    /// simulation sets it to hold for no time, or until the entry in flight is through,
    /// so that what it does never depends on how fast the machine runs it.
    pub max_hold: std::time::Duration,
    /// After an apply answers this node's clients, hold the next batch until as many
    /// proposals have come (see `Node::regrouping`), for at most twice the time they
    /// usually take and `max_hold`. Not a flag either: the simulation turns it off,
    /// as that wait is measured in wall-clock time, but in a test of its own.
    pub regroup: bool,
}

impl ClusterConfig {
    pub fn new(id: u64, raft_listen: &str, client_addr: &str) -> Self {
        ClusterConfig {
            id,
            raft_listen: raft_listen.to_string(),
            raft_fd: None,
            secret: None,
            tls: None,
            raft_advertise: raft_listen.to_string(),
            client_addr: client_addr.to_string(),
            peers: Vec::new(),
            join: false,
            dir: None,
            tick_ms: 20,
            election_ticks: 15,
            heartbeat_ticks: 3,
            snapshot_entries: 1_000_000,
            snapshot_bytes: 256 << 20,
            snapshot_keep: 10_000,
            segment_bytes: 64 << 20,
            log_memory: 32 << 20,
            request_timeout_ms: 3_000,
            max_clock_skew_ms: 500,
            read_consistency: ReadConsistency::Linearizable,
            max_hold: std::time::Duration::from_millis(2),
            regroup: true,
        }
    }
}

/// Why a proposal or a read did not complete.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ClusterError {
    /// No leader is known; nothing was proposed.
    #[error("No raft leader")]
    NoLeader,
    /// Proposed, but not seen committed in time: it may or may not take effect.
    #[error("the cluster did not confirm the request in time; its outcome is unknown")]
    Timeout,
    /// The node is shutting down.
    #[error("the raft node stopped")]
    Stopped,
    #[error("{0}")]
    Admin(String),
}

/// Errors starting a node.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("raft log: {0}")]
    Wal(#[from] wal::WalError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("cannot listen for peers on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("snapshot on disk does not load: {0}")]
    Restore(String),
    #[error("{0}")]
    Config(String),
}

/// The replicated state. The server's store implements it.
/// Mutual TLS between peers: each side presents a certificate that chains to the
/// cluster's CA (the server's `--cluster-tls-*` settings build both configurations), and
/// the connecting side checks that the peer's certificate names the host it dialled.
#[derive(Clone)]
pub struct PeerTls {
    pub client: std::sync::Arc<rustls::ClientConfig>,
    pub server: std::sync::Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls")
    }
}

/// The cluster's shared secret; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerSecret(pub Vec<u8>);

impl std::fmt::Debug for PeerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

/// A snapshot being captured, in parts that two threads take on at once: the snapshot
/// thread from the front, the raft thread from the back (it holds back applying while a
/// capture runs, so it has the time, and the state stands still).
pub trait SnapshotCapture: Send + Sync {
    /// With `Some(out)` (the snapshot thread): serialize the next part from the front,
    /// appending to `out` (the caller may write `out` away and clear it between parts).
    /// With `None` (the raft thread): the next part from the back, kept aside. False
    /// when no part was left to take.
    fn step(&self, out: Option<&mut Vec<u8>>) -> bool;
    /// Once no part is left to take: wait for parts still being written. From then on
    /// the state is read, and applying may resume.
    fn wait_parts(&self);
    /// After [`SnapshotCapture::wait_parts`]: hand the parts kept aside to `write`, in
    /// order, completing the serialized state.
    fn finish(&self, write: &mut dyn FnMut(&[u8]));

    /// The whole capture on this thread's side: every part it can take, then the rest.
    fn run(&self, out: &mut Vec<u8>) {
        while self.step(Some(out)) {}
        self.wait_parts();
        self.finish(&mut |part| out.extend_from_slice(part));
    }
}

/// See [`StateMachine::snapshot_job`].
pub type SnapshotJob = std::sync::Arc<dyn SnapshotCapture>;

pub trait StateMachine: Send + 'static {
    /// Apply one committed record (a slice of the entry, so arguments can be sliced
    /// out of it without copying). `now` is the entry's stamp (Unix ms): every replica
    /// applies the record at the same `now`. The returned reply goes to the client that
    /// proposed it when `want_reply` is set (on the proposing node only).
    fn apply(&mut self, record: Bytes, now: u64, want_reply: bool) -> Bytes;
    /// Called once before a batch of entries and after it, so the state machine can
    /// publish the horizon at which logically dead keys may be physically removed.
    fn set_horizon(&mut self, now: u64);
    /// A capture of the current state (see [`SnapshotCapture`]). It runs while the raft
    /// thread holds back applying, so the state it reads does not change.
    fn snapshot_job(&self) -> SnapshotJob;
    /// Replace the whole state with a snapshot's.
    fn restore(&mut self, data: &[u8]) -> Result<(), String>;
    /// Whether clients of this node cache keys (client tracking): while any node's do,
    /// writes are answered only once every such node has applied them (see `fence`).
    fn tracking(&self) -> bool {
        false
    }
    /// Mark what has been applied so far: [`StateMachine::caching_settled`] with the
    /// mark says when its invalidations have all been written to the clients'
    /// sockets. Until then the node holds its report to the fence; the state
    /// machine's side calls [`Handle::caching_changed`] when they have been.
    fn caching_mark(&self) -> u64 {
        0
    }
    fn caching_settled(&self, _mark: u64) -> bool {
        true
    }
}
