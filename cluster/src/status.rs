//! What the server may read about the raft group at any time, without a round trip to
//! the raft thread: atomics written by the raft thread after each ready.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use parking_lot::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    PreCandidate,
    Leader,
}

impl Role {
    fn from_u8(v: u8) -> Role {
        match v {
            3 => Role::Leader,
            1 => Role::Candidate,
            2 => Role::PreCandidate,
            _ => Role::Follower,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Role::Follower => 0,
            Role::Candidate => 1,
            Role::PreCandidate => 2,
            Role::Leader => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::PreCandidate => "pre-candidate",
            Role::Leader => "leader",
        }
    }
}

/// A member of the group as this node knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerInfo {
    pub raft_addr: String,
    /// Learned from the peer's hello; `None` until it has connected to us.
    pub client_addr: Option<String>,
    pub voter: bool,
    /// On the leader: the peer's progress as raft tracks it.
    pub progress: Option<Progress>,
    /// The peer's clock minus this node's, in ms, once measured (see `crate::clocks`).
    pub clock_offset_ms: Option<i64>,
    /// How much faster the peer's monotonic clock runs than this node's, in parts per
    /// million, once measured.
    pub clock_rate_ppm: Option<i64>,
}

/// What the leader knows of a follower's replication (`ROLE`, `INFO replication`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The highest log index known to be on the follower.
    pub matched: u64,
    /// `probe`, `replicate` or `snapshot` (raft-rs's progress states).
    pub state: &'static str,
    /// Heard from within the last election timeout.
    pub active: bool,
    /// Unix ms when `matched` last moved (or the follower was caught up).
    pub caught_up_ms: u64,
}

/// Upper bounds of [`Histogram`] buckets, in microseconds (the last bucket is open).
pub const BUCKETS_US: [u64; 16] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000,
];

/// A latency histogram that any thread may record into without a lock (Prometheus-style
/// cumulative buckets are computed when it is read).
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn record_us(&self, us: u64) {
        let i = BUCKETS_US.partition_point(|&b| b < us);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// (upper bound in µs, `None` for +Inf; cumulative count) per bucket, and the sum in µs.
    pub fn snapshot(&self) -> (Vec<(Option<u64>, u64)>, u64) {
        let mut acc = 0;
        let mut out = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            acc += c.load(Ordering::Relaxed);
            out.push((BUCKETS_US.get(i).copied(), acc));
        }
        (out, self.sum_us.load(Ordering::Relaxed))
    }
}

/// Shared, always-current facts about the group.
#[derive(Debug, Default)]
pub struct ClusterStatus {
    pub id: u64,
    role: AtomicU8,
    pub leader: AtomicU64,
    pub term: AtomicU64,
    pub commit: AtomicU64,
    pub applied: AtomicU64,
    pub first_index: AtomicU64,
    pub last_index: AtomicU64,
    pub snapshot_index: AtomicU64,
    /// Unix ms of the last snapshot taken or installed (0: none).
    pub snapshot_ms: AtomicU64,
    pub log_bytes: AtomicU64,
    /// Bytes of entries the in-memory log holds (not counted against `maxmemory`, as
    /// Redis does not count its replication buffers).
    pub log_memory: AtomicU64,
    pub fsyncs: AtomicU64,
    /// Total microseconds spent in fsync, for the average.
    pub fsync_us: AtomicU64,
    /// fsync durations.
    pub fsync_hist: Histogram,
    pub leader_changes: AtomicU64,
    pub proposals: AtomicU64,
    pub entries_applied: AtomicU64,
    pub reads: AtomicU64,
    pub timeouts: AtomicU64,
    /// Whether write replies wait for the nodes with caching clients (`crate::fence`).
    pub fence: std::sync::atomic::AtomicBool,
    /// Replies released by the fence only at its time limit (a caching node was slow).
    pub fence_timeouts: AtomicU64,
    /// This node's clock minus the median of the voters' (see `crate::clocks`), in µs.
    pub clock_skew_us: std::sync::atomic::AtomicI64,
    /// Its clock is too far off to lead.
    pub clock_skewed: std::sync::atomic::AtomicBool,
    /// No voter's clock runs too fast for this node to hold a read lease.
    pub clock_rates_ok: std::sync::atomic::AtomicBool,
    /// The leader's clock minus this node's, in µs (0 on the leader): add it to read
    /// deadlines by the leader's clock.
    pub leader_offset_us: std::sync::atomic::AtomicI64,
    pub peers: Mutex<BTreeMap<u64, PeerInfo>>,
    /// The leader's read lease, for reads served on the client's thread
    /// (`Handle::read_barrier`).
    pub(crate) lease: crate::node::LeaseView,
}

impl ClusterStatus {
    pub fn new(id: u64) -> Self {
        ClusterStatus {
            id,
            ..Default::default()
        }
    }

    pub fn role(&self) -> Role {
        Role::from_u8(self.role.load(Ordering::Relaxed))
    }

    pub(crate) fn set_role(&self, r: Role) {
        self.role.store(r.to_u8(), Ordering::Relaxed);
    }

    pub fn is_leader(&self) -> bool {
        self.role() == Role::Leader
    }

    pub fn leader_id(&self) -> u64 {
        self.leader.load(Ordering::Relaxed)
    }

    /// The client address of the current leader, when known.
    pub fn leader_client_addr(&self) -> Option<String> {
        let id = self.leader_id();
        if id == 0 {
            return None;
        }
        self.peers
            .lock()
            .get(&id)
            .and_then(|p| p.client_addr.clone())
    }

    pub fn peers(&self) -> BTreeMap<u64, PeerInfo> {
        self.peers.lock().clone()
    }

    /// Whether this node's client threads may serve reads from a leader's lease now
    /// (`--read-consistency lease`), and the commit index published with it.
    pub fn lease_view(&self) -> (bool, u64) {
        (self.lease.holds(), self.lease.committed())
    }
}
