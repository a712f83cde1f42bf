//! Lease reads (`--read-consistency lease`): a leader that a quorum answered recently
//! serves reads without a quorum round of its own.
//!
//! Why that is safe. With check-quorum on, a follower refuses votes and pre-votes for
//! `election_ticks` of its own ticks after it last heard from its leader (raft-rs's
//! `in_lease`); only a leadership transfer, which this leader starts, overrides that. A
//! node's ticks come no faster than one per `tick_ms`, but for one (`Node::run` catches up
//! one tick at most). So once a quorum has answered a read barrier whose heartbeats left
//! at `sent`, no other leader can be elected before `sent + (election_ticks - 1) *
//! tick_ms`, as the followers' clocks count. The lease ends a fifth earlier, for clocks
//! that run at different rates. A node that restarts has forgotten whom it heard from,
//! so in this mode it refuses votes for its first `election_ticks` ticks
//! (`refuses_vote`).
//!
//! Time is the monotonic clock, which counts a pause of the process. A leader stopped past
//! its lease (SIGSTOP, a stalled VM) finds the lease over when it resumes, and goes back to
//! read barriers, which a deposed leader cannot complete. (raft-rs's own lease mode only
//! trusts check-quorum, which counts ticks, and a resumed leader served old data until its
//! next check.)
//!
//! The barriers renew the lease: while it holds, a read that finds less than half of it
//! left also sends one, which nobody waits for. A lease is for one term, and ends for the
//! rest of the term once a leadership transfer starts. Reads forwarded by followers are
//! answered from it too.

use super::*;

/// A leader's lease: reads need no quorum round until `until`, in `term`.
#[derive(Clone, Copy)]
pub(super) struct Lease {
    term: u64,
    until: Instant,
}

impl Node {
    fn lease_mode(&self) -> bool {
        self.cfg.read_consistency == ReadConsistency::Lease
    }

    /// How long a lease lasts past the send of the barrier a quorum answered.
    fn lease_len(&self) -> Duration {
        let ticks = self.cfg.election_ticks.saturating_sub(1) as u32;
        Duration::from_millis(self.cfg.tick_ms) * ticks * 4 / 5
    }

    /// Ends the lease for the rest of the term once a leadership transfer starts. Called
    /// every turn.
    pub(super) fn watch_lease(&mut self) {
        let r = &self.raw.raft;
        if r.lead_transferee.is_some() || self.transfer.is_some() {
            self.lease = None;
            self.lease_barred = r.term;
        }
    }

    /// The lease, if it holds now.
    pub(super) fn lease_now(&self) -> Option<Lease> {
        let r = &self.raw.raft;
        self.lease.filter(|l| {
            r.state == StateRole::Leader
                && l.term == r.term
                && self.lease_barred != r.term
                && r.lead_transferee.is_none()
                && !self.skewed
                && Instant::now() < l.until
        })
    }

    /// A read barrier sent at `sent` was answered by a quorum.
    pub(super) fn lease_renewed(&mut self, sent: Instant) {
        let r = &self.raw.raft;
        if !self.lease_mode() || r.state != StateRole::Leader || self.lease_barred == r.term {
            return;
        }
        let until = sent + self.lease_len();
        if self
            .lease
            .is_some_and(|l| l.term == r.term && l.until >= until)
        {
            return;
        }
        self.lease = Some(Lease {
            term: r.term,
            until,
        });
    }

    /// Serve the new reads from the lease, if it holds: they wait only for the commit
    /// index to be applied here. Sends a barrier to renew it when less than half is left.
    /// True when the reads were taken.
    pub(super) fn lease_reads(&mut self) -> bool {
        if !self.lease_mode() {
            return false;
        }
        let Some(lease) = self.lease_now() else {
            return false;
        };
        let committed = self.raw.raft.raft_log.committed;
        let waiters = std::mem::take(&mut self.reads_new);
        self.reads_since = None;
        self.reads_ready.push((committed, waiters));
        self.answer_reads();
        let left = lease.until.saturating_duration_since(Instant::now());
        if left < self.lease_len() / 2 && self.reads_inflight.is_empty() {
            self.send_read_barrier(Vec::new());
        }
        true
    }

    /// A follower's read request, answered from the lease if it holds. True when it was.
    pub(super) fn lease_answers(&mut self, m: &Message) -> bool {
        if !self.lease_mode() || m.get_msg_type() != MessageType::MsgReadIndex {
            return false;
        }
        if self.lease_now().is_none() || m.entries.len() != 1 {
            return false;
        }
        let mut resp = Message {
            to: m.from,
            from: self.cfg.id,
            term: self.raw.raft.term,
            index: self.raw.raft.raft_log.committed,
            ..Default::default()
        };
        resp.set_msg_type(MessageType::MsgReadIndexResp);
        resp.entries = m.entries.clone();
        self.send(vec![resp]);
        true
    }

    /// In lease mode, a node refuses votes for its first `election_ticks` ticks: it may
    /// have promised a leader not to vote, before it restarted and forgot. A transfer's
    /// campaign is not refused: only the leader starts one, and it ends its lease first.
    pub(super) fn refuses_vote(&self, m: &Message) -> bool {
        self.lease_mode()
            && self.ticks < self.cfg.election_ticks as u64
            && matches!(
                m.get_msg_type(),
                MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
            )
            && m.context.as_ref() != raft::CAMPAIGN_TRANSFER
    }
}
