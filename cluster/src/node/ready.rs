//! The ready loop's core: raft-rs's ready handled in the order it documents, and the
//! messages it produces sent (some at once, the rest once the log writer has made
//! their ready durable); the log writer's reports taken, and when the thread wants to
//! be woken by them.

use super::*;

impl Node {
    pub(super) fn on_ready(&mut self) {
        if !self.raw.has_ready() {
            return;
        }
        self.publish_lease();
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
                self.fail_pending("the leader changed");
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
            if let Some((_, sent, ws)) = self.reads_inflight.remove(&u64::from_le_bytes(a)) {
                self.lease_renewed(sent);
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

    /// The log writer made readies durable: send what waited for that, and let raft-rs
    /// count the entries as persisted (which may commit them).
    pub(super) fn on_persisted(&mut self, p: Persisted) {
        self.send(p.msgs);
        self.raw.on_persist_ready(p.number);
        self.applied_snapshot_persisted();
    }

    /// Readies the writer made durable without waking this thread.
    pub(super) fn on_quietly_persisted(&mut self) {
        let n = self.quiet.as_ref().map_or(0, |q| q.durable());
        if n > self.quiet_seen {
            self.quiet_seen = n;
            self.raw.on_persist_ready(n);
            self.applied_snapshot_persisted();
        }
    }

    /// Before the thread sleeps: asks the log to wake it for its reports when its own
    /// fsync is what something waits for. True when one came meanwhile.
    pub(super) fn arm_quiet(&mut self) -> bool {
        let Some(q) = &self.quiet else {
            return false;
        };
        q.arm(self.waits_on_own_fsync()) > self.quiet_seen
    }

    /// Whether entries not yet durable here hold something up: entries committed (by
    /// the others) that this node may apply only once they are durable here too, or, on
    /// a leader, entries that would commit once they are durable here (the followers
    /// that acknowledged beyond what this node has synced make a quorum with it).
    pub(super) fn waits_on_own_fsync(&self) -> bool {
        let r = &self.raw.raft;
        let persisted = r.raft_log.persisted;
        if r.raft_log.committed > persisted {
            return true;
        }
        if r.state != StateRole::Leader || r.raft_log.last_index() <= persisted {
            return false;
        }
        let mut acked = std::collections::HashSet::default();
        acked.insert(r.id);
        for (id, pr) in r.prs().iter() {
            if pr.matched > persisted {
                acked.insert(*id);
            }
        }
        r.prs().has_quorum(&acked)
    }

    pub(super) fn send(&mut self, msgs: Vec<Message>) {
        self.publish_lease();
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
                self.appended_at.insert(to, self.ticks);
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
pub(super) fn independent_of_disk(m: &Message) -> bool {
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
