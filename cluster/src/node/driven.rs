//! The real raft node, driven by hand: no thread, no sockets, no disk. The simulation
//! (`cluster/tests/sim.rs`) builds each node over a [`MemDisk`] and a network of its own
//! and decides what happens when: which message arrives, when a tick passes, when the
//! disk syncs, when a node crashes. Everything else is the node's own code: batching,
//! restamping, the order of persistence and sending, snapshots, membership.

use super::start::{events, Parts};
use super::*;
use crate::raftlog::mem::MemDisk;

/// A node the caller drives.
pub struct DrivenNode {
    node: Node,
    handle: Handle,
}

impl DrivenNode {
    /// Recover a node from `disk` (or bootstrap it on an empty one) over `network`.
    pub fn start(
        cfg: ClusterConfig,
        sm: Box<dyn StateMachine>,
        disk: &Arc<MemDisk>,
        network: Arc<dyn Network>,
    ) -> Result<DrivenNode, StartError> {
        let (tx, rx) = events();
        let status = Arc::new(ClusterStatus::new(cfg.id));
        let (log, persisted, recovered) = disk.open(Some(network.clone()));
        let inbox = Arc::new(super::inbox::Inbox::new());
        let handle = Handle {
            tx: tx.clone(),
            inbox: inbox.clone(),
            status: status.clone(),
            read_consistency: cfg.read_consistency,
            max_clock_skew_ms: cfg.max_clock_skew_ms,
            thread: Mutex::new(None),
        };
        let parts = Parts {
            log: Some(Box::new(log)),
            persisted,
            recovered,
            network,
            tx,
            rx,
            inbox,
            status,
        };
        Ok(DrivenNode {
            node: Node::build(cfg, sm, parts)?,
            handle,
        })
    }

    /// Propose, read and administer through this, as the server does.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// A raft message arrives from a peer.
    pub fn deliver(&mut self, m: Message) {
        self.node.handle(Event::Raft(Box::new(m)));
    }

    /// The link to peer `id` was lost.
    pub fn unreachable(&mut self, id: u64) {
        self.node.handle(Event::Unreachable(id));
    }

    /// A tick passes.
    pub fn tick(&mut self) {
        self.node.tick(Instant::now());
    }

    /// Take everything waiting (the log's reports, proposals, reads, a snapshot's
    /// progress), then do what follows: propose, handle the ready, apply, send.
    pub fn turn(&mut self) {
        while self.node.help_capture() {}
        while let Ok(p) = self.node.persisted.try_recv() {
            self.node.on_persisted(p);
        }
        self.node.on_quietly_persisted();
        for _ in 0..MAX_EVENTS_PER_TURN {
            match self.node.rx.try_recv() {
                Ok(ev) => {
                    self.node.handle(ev);
                }
                Err(_) => break,
            }
        }
        self.node.work();
        // What the thread does before it sleeps: say whether the log's reports wake it.
        self.node.arm_quiet();
    }

    /// Whether this node's own fsync holds something up, so that the log's next report
    /// wakes it (see `persist::Reporter`).
    pub fn waits_on_own_fsync(&self) -> bool {
        self.node.waits_on_own_fsync()
    }

    /// Reports from the log that would wake the node's thread, not yet taken.
    pub fn reports_waiting(&self) -> usize {
        self.node.persisted.len()
    }

    pub fn status(&self) -> &ClusterStatus {
        &self.handle.status
    }

    /// What a failing check prints about the node: its ticks, whether it may campaign,
    /// whether a snapshot's persistence is unreported, raft-rs's election timer, and the
    /// proposals it holds and waits for.
    pub fn describe(&self) -> String {
        let n = &self.node;
        let r = &n.raw.raft;
        format!(
            "ticks {} may_campaign {} snapshot_unreported {} election_elapsed {}/{} \
             leader {} applied {} raft-applied {} persisted {} first {:?} held {} pending {} \
             batch {}",
            n.ticks,
            n.may_campaign,
            n.snapshot_unreported(),
            r.election_elapsed,
            r.randomized_election_timeout(),
            r.leader_id,
            n.applied,
            r.raft_log.applied,
            r.raft_log.persisted,
            n.storage.first_index(),
            n.held.len(),
            n.pending.len(),
            n.batch_reqs.len(),
        )
    }

    /// raft-rs's view, for checks: (role is leader, term, commit index, last index).
    pub fn raft(&self) -> (bool, u64, u64, u64) {
        let r = &self.node.raw.raft;
        (
            r.state == StateRole::Leader,
            r.term,
            r.raft_log.committed,
            r.raft_log.last_index(),
        )
    }
}
