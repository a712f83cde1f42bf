//! Membership and the admin requests: adding and removing voters through joint
//! configuration changes, leadership transfer, and snapshots on demand.

use super::*;

impl Node {
    pub(super) fn apply_conf_change(&mut self, cc: ConfChangeV2) {
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

    pub(super) fn admin(&mut self, cmd: Admin, tx: Reply<String>) {
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

    pub(super) fn propose_conf(
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
}
