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
//! Clocks that run at different rates: the lease allows for a follower's running up to
//! a quarter faster than the leader's. Rather than trust that, the leader measures each
//! voter's monotonic rate from its clock stamps (`crate::clocks::Clocks::rates`) and
//! serves no read from a lease while a voter runs more than 5% faster, or has not been
//! measured since it was last heard from (for a second after a node starts): reads take
//! the quorum round meanwhile. (A clock running 1.5 times as fast under `faketime`
//! shows as +500,000 ppm within a second.)
//!
//! The barriers renew the lease: while it holds, a read that finds less than half of it
//! left also sends one, which nobody waits for. A lease is for one term, and ends for the
//! rest of the term once a leadership transfer starts. Reads forwarded by followers are
//! answered from it too.
//!
//! The raft thread publishes the lease ([`LeaseView`]) so that a client's event loop can
//! serve a read itself, with no hand-off to this thread and back: it checks the lease's
//! end on the monotonic clock, then waits for nothing if everything committed is applied.
//! The view is brought up to date before anything this thread does could let a client
//! learn of a write (a message sent, an entry applied), and before a transfer's
//! `MsgTimeoutNow` leaves, which is the only way another leader can be elected within
//! the lease.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::*;

/// The lease as client threads see it (`ClusterStatus::lease`), written by the raft
/// thread only.
#[derive(Debug)]
pub(crate) struct LeaseView {
    epoch: Instant,
    /// Nanoseconds past `epoch` until which the lease holds; 0 when there is none.
    until: AtomicU64,
    /// The commit index, published before any message or reply could tell of it.
    committed: AtomicU64,
    /// The last index applied to the state machine, published after its effects.
    applied: AtomicU64,
    /// A client thread served a read from the view since the raft thread last looked.
    used: AtomicBool,
}

impl Default for LeaseView {
    fn default() -> Self {
        LeaseView {
            epoch: Instant::now(),
            until: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            used: AtomicBool::new(false),
        }
    }
}

impl LeaseView {
    fn nanos(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64 + 1
    }

    /// Whether a read may run now, on the caller's thread: the lease holds, and this
    /// node has applied everything committed when it was checked. (The lease is checked
    /// first: everything acknowledged before that moment is in the commit index read
    /// after it.)
    pub(crate) fn read_now(&self) -> bool {
        if !self.holds() {
            return false;
        }
        let committed = self.committed.load(Ordering::Acquire);
        if self.applied.load(Ordering::Acquire) < committed {
            return false;
        }
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
        true
    }

    /// Whether the lease holds now (as a read would find it, whatever is applied).
    pub(crate) fn holds(&self) -> bool {
        let until = self.until.load(Ordering::Acquire);
        until != 0 && self.nanos(Instant::now()) < until
    }

    pub(crate) fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    fn set(&self, lease: Option<Instant>, committed: u64) {
        // The commit index first: a reader that finds the new lease finds it too.
        self.committed.store(committed, Ordering::Release);
        let until = lease.map_or(0, |t| self.nanos(t));
        if self.until.load(Ordering::Relaxed) != until {
            self.until.store(until, Ordering::Release);
        }
    }

    fn set_applied(&self, applied: u64) {
        self.applied.store(applied, Ordering::Release);
    }

    fn take_used(&self) -> bool {
        self.used.load(Ordering::Relaxed) && self.used.swap(false, Ordering::Relaxed)
    }
}

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
                && self.rates_ok
                && Instant::now() < l.until
        })
    }

    /// Brings the published lease and commit index up to date. Called before anything
    /// leaves this thread that could tell of a commit or start another leader's election:
    /// at each ready, before each send, before applying.
    pub(super) fn publish_lease(&mut self) {
        if !self.lease_mode() {
            return;
        }
        self.watch_lease();
        let until = self.lease_now().map(|l| l.until);
        self.status
            .lease
            .set(until, self.raw.raft.raft_log.committed);
    }

    /// After entries are applied (their effects visible in the store).
    pub(super) fn publish_applied(&self) {
        if self.lease_mode() {
            self.status.lease.set_applied(self.applied);
        }
    }

    /// On each tick: a lease that client threads read from, with less than half of it
    /// left, is renewed by a barrier nobody waits for.
    pub(super) fn renew_lease(&mut self) {
        if !self.lease_mode() || !self.status.lease.take_used() {
            return;
        }
        if let Some(l) = self.lease_now() {
            let left = l.until.saturating_duration_since(Instant::now());
            if left < self.lease_len() / 2 && self.reads_inflight.is_empty() {
                self.send_read_barrier(Vec::new());
            }
        }
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
        self.publish_lease();
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
