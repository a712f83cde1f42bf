//! Starting a node: recovering the log and the latest snapshot from `--dir` (or
//! bootstrapping a new cluster), binding the raft port, and starting the raft thread.

use super::*;

/// Encode what the cluster layer keeps in a snapshot before the state machine's data:
/// the apply clock and the peers' raft addresses.
pub(super) fn encode_meta(apply_now: u64, peers: &BTreeMap<u64, String>, out: &mut Vec<u8>) {
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&apply_now.to_le_bytes());
    out.extend_from_slice(&(peers.len() as u32).to_le_bytes());
    for (id, addr) in peers {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(addr.len() as u16).to_le_bytes());
        out.extend_from_slice(addr.as_bytes());
    }
}

pub(super) fn decode_meta(data: &[u8]) -> Result<Meta<'_>, String> {
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

/// What a node runs over: its log (none: in memory only) with the channel the log
/// reports on and what it recovered, its network, and its own event channel. [`start`]
/// makes them from the WAL and TCP; the simulation makes its own (`crate::sim`).
pub(crate) struct Parts {
    pub log: Option<Box<dyn RaftLog>>,
    pub persisted: Receiver<Persisted>,
    pub recovered: wal::Recovered,
    pub network: Arc<dyn Network>,
    pub tx: Sender<Event>,
    pub rx: Receiver<Event>,
    pub inbox: Arc<super::inbox::Inbox>,
    pub status: Arc<ClusterStatus>,
}

/// The event channel every node has.
pub(crate) fn events() -> (Sender<Event>, Receiver<Event>) {
    crossbeam::channel::bounded(1 << 16)
}

/// Start a raft node: recover from `cfg.dir` (or bootstrap), bind the raft port, and run
/// the raft thread.
pub fn start(cfg: ClusterConfig, sm: Box<dyn StateMachine>) -> Result<Handle, StartError> {
    if cfg.id == 0 {
        return Err(StartError::Config("--node-id must be 1 or more".into()));
    }
    let (tx, rx) = events();
    let status = Arc::new(ClusterStatus::new(cfg.id));
    let (wal, recovered) = match &cfg.dir {
        Some(d) => {
            let (w, r) = Wal::open(d, cfg.segment_bytes)?;
            (Some(w), r)
        }
        None => (None, wal::Recovered::default()),
    };
    let hello = Hello {
        node_id: cfg.id,
        client_addr: cfg.client_addr.clone(),
        raft_addr: cfg.raft_advertise.clone(),
    };
    let security = crate::transport::Security {
        secret: cfg.secret.as_ref().map(|s| s.0.clone().into()),
        tls: cfg.tls.clone(),
    };
    let transport = match cfg.raft_fd {
        Some(fd) => crate::transport::inherited_listener(fd)
            .and_then(|l| Transport::start_on(cfg.id, l, hello, security, tx.clone())),
        None => Transport::start(cfg.id, &cfg.raft_listen, hello, security, tx.clone()),
    }
    .map_err(|source| StartError::Listen {
        addr: cfg.raft_listen.clone(),
        source,
    })?;
    let (log, persisted): (Option<Box<dyn RaftLog>>, _) = match wal {
        Some(w) => {
            let (p, rx) = Persister::start(
                w,
                status.clone(),
                Some(transport.clone() as Arc<dyn crate::net::Network>),
            )
            .map_err(|source| StartError::Listen {
                addr: "raft log thread".into(),
                source,
            })?;
            (Some(Box::new(p)), rx)
        }
        None => (None, crossbeam::channel::never()),
    };
    let read_consistency = cfg.read_consistency;
    let max_clock_skew_ms = cfg.max_clock_skew_ms;
    let inbox = Arc::new(super::inbox::Inbox::new());
    let parts = Parts {
        log,
        persisted,
        recovered,
        network: transport,
        tx: tx.clone(),
        rx,
        inbox: inbox.clone(),
        status: status.clone(),
    };
    let node = Node::build(cfg, sm, parts)?;
    let thread = std::thread::Builder::new()
        .name("raft".into())
        .spawn(move || node.run())
        .map_err(|source| StartError::Listen {
            addr: "raft thread".into(),
            source,
        })?;
    Ok(Handle {
        tx,
        inbox,
        status,
        read_consistency,
        max_clock_skew_ms,
        thread: Mutex::new(Some(thread)),
    })
}

impl Node {
    /// Recover (or bootstrap) a node over `parts`; it does nothing until driven.
    pub(crate) fn build(
        cfg: ClusterConfig,
        mut sm: Box<dyn StateMachine>,
        parts: Parts,
    ) -> Result<Node, StartError> {
        let Parts {
            log,
            persisted,
            recovered: rec,
            network: transport,
            tx,
            rx,
            inbox,
            status,
        } = parts;
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
                if let Some(l) = &log {
                    l.write_snapshot(&meta, &data)?;
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
            let file = log
                .as_ref()
                .and_then(|l| l.dir())
                .map(|d| wal::snapshot_file(&d, snap.get_metadata().index));
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

        let rc = raft_config(&cfg, applied)?;
        let logger = crate::logger::logger(cfg.id);
        let raw = RawNode::new(&rc, storage.clone(), &logger)?;

        publish_peers(&status, &*transport, &peers, &conf_state, &cfg);
        status
            .applied
            .store(applied, std::sync::atomic::Ordering::Relaxed);
        status.snapshot_index.store(
            storage.snapshot_index(),
            std::sync::atomic::Ordering::Relaxed,
        );
        let timeout = Duration::from_millis(cfg.request_timeout_ms);
        let next_req = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let quiet = log.as_ref().and_then(|l| l.quiet());
        let node = Node {
            raw,
            storage,
            log,
            persisted,
            quiet,
            quiet_seen: 0,
            sm,
            transport,
            status: status.clone(),
            rx,
            tx: tx.clone(),
            inbox,
            inbox_spare: Default::default(),
            commit_told: 0,
            appended_this_turn: false,
            forwarded_tick: 0,
            next_req,
            batch: None,
            batch_hint: 0,
            batch_since: None,
            regroup: propose::Regroup::new(cfg.max_hold),
            regroup_reads: propose::Regroup::new(cfg.max_hold),
            reads_since: None,
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
            leader_unreachable: None,
            appended_at: HashMap::new(),
            skewed: false,
            rates_ok: false,
            lease: None,
            lease_barred: 0,
            may_campaign: false,
            handed_over: None,
            timeout,
            cfg,
        };
        info!(id = node.cfg.id, applied, "raft node starting");
        Ok(node)
    }
}

/// A follower's snapshot thresholds relative to the configured ones, per mille: 1000 to
/// 1400, different on every node and every time (see `Node::snapshot_due`).
pub(super) fn follower_snapshot_permille() -> u64 {
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

/// raft-rs's configuration for a node that has applied up to `applied`.
fn raft_config(cfg: &ClusterConfig, applied: u64) -> Result<raft::Config, StartError> {
    let rc = raft::Config {
        id: cfg.id,
        election_tick: cfg.election_ticks,
        heartbeat_tick: cfg.heartbeat_ticks,
        applied,
        max_size_per_msg: 1 << 20,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        // A new commit index rides on the next append instead of an empty append of its
        // own; `Node::tell_commit` sends one only when no append went this turn.
        skip_bcast_commit: true,
        ..Default::default()
    };
    // Lease reads are the node's own (`node/lease.rs`): raft-rs's lease mode trusts
    // check-quorum's ticks, which a paused leader does not count.
    rc.validate()?;
    Ok(rc)
}

/// Tell the network where every peer is, and the status what is known of each.
fn publish_peers(
    status: &ClusterStatus,
    network: &dyn Network,
    peers: &BTreeMap<u64, String>,
    conf_state: &ConfState,
    cfg: &ClusterConfig,
) {
    let mut sp = status.peers.lock();
    for (&id, addr) in peers {
        network.set_peer(id, addr);
        sp.insert(
            id,
            PeerInfo {
                raft_addr: addr.clone(),
                client_addr: (id == cfg.id).then(|| cfg.client_addr.clone()),
                voter: conf_state.voters.contains(&id),
                progress: None,
                clock_offset_ms: None,
                clock_rate_ppm: None,
            },
        );
    }
}
