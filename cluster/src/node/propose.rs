//! Proposals and reads on their way into raft: the batch of proposals that becomes one
//! entry, when it goes (held while an entry is in flight, so that unpipelined clients
//! share entries), and the read barriers that batch reads alike.

use super::*;

impl Node {
    /// Take what the server left in the inbox.
    pub(super) fn take_inbox(&mut self) {
        let mut q = std::mem::take(&mut self.inbox_spare);
        self.inbox.swap(&mut q);
        for (data, tx, at) in q.proposals.drain(..) {
            let deadline = at + self.timeout;
            if self.can_forward() && self.held.is_empty() {
                self.add_to_batch(data, Waiter::Write(tx), at, deadline);
            } else {
                self.held.push_back((data, tx, deadline));
            }
        }
        for (tx, at) in q.reads.drain(..) {
            self.regroup_reads.arrived(at);
            if self.reads_new.is_empty() {
                self.reads_since = Some(at);
            }
            self.reads_new.push(ReadWaiter {
                tx,
                deadline: at + self.timeout,
            });
        }
        self.inbox_spare = q;
    }

    /// `at`: when the proposal arrived, from which its batch's hold is counted.
    pub(super) fn add_to_batch(
        &mut self,
        data: Vec<u8>,
        waiter: Waiter,
        at: Instant,
        deadline: Instant,
    ) {
        let req = self.next_req;
        self.next_req = self.next_req.wrapping_add(1);
        if self
            .batch
            .as_ref()
            .is_some_and(|b| b.bytes() + data.len() > MAX_ENTRY_BYTES)
        {
            self.propose_batch();
        }
        let hint = (self.batch_hint + self.batch_hint / 8).min(MAX_ENTRY_BYTES);
        if self.batch.is_none() {
            self.batch_since = Some(at);
        }
        let b = self
            .batch
            .get_or_insert_with(|| PayloadBuilder::with_capacity(unix_ms(), hint));
        b.push(self.cfg.id, req, &data);
        self.regroup.arrived(at);
        self.batch_reqs.push(req);
        self.pending.insert(req, Pending { waiter, deadline });
    }

    pub(super) fn flush_proposals(&mut self) {
        if self.can_forward() {
            while let Some((data, tx, deadline)) = self.held.pop_front() {
                self.add_to_batch(data, Waiter::Write(tx), Instant::now(), deadline);
            }
        }
        if !self.hold_batch() {
            self.propose_batch();
        }
    }

    /// Whether to keep the batch open a little longer. While an entry is on its way to a
    /// quorum (on a leader: one of its entries is not committed; on a follower: a batch
    /// it forwarded in the last `FORWARD_HOLD_TICKS` is not applied), proposals that arrive join the next entry instead of
    /// each making one of their own: with clients that each wait for their reply (web
    /// traffic, no pipelining), one entry, one append per follower and one fsync per node
    /// then carry all of them, instead of a few each. The batch goes as soon as that
    /// entry is through, when it is big, or after `cfg.max_hold`.
    fn hold_batch(&self) -> bool {
        let Some(b) = &self.batch else {
            return false;
        };
        (self.entry_in_flight() || self.regrouping())
            && b.bytes() < HOLD_BYTES
            && self
                .batch_since
                .is_some_and(|t| t.elapsed() < self.cfg.max_hold)
    }

    fn entry_in_flight(&self) -> bool {
        let r = &self.raw.raft;
        match r.state {
            StateRole::Leader => {
                r.raft_log.last_index() - r.raft_log.committed >= HOLD_WHILE_UNCOMMITTED
            }
            // Proposals of earlier batches still wait for their entries, and the last
            // batch went lately.
            _ => {
                self.pending.len() > self.batch_reqs.len()
                    && self.ticks - self.forwarded_tick < FORWARD_HOLD_TICKS
            }
        }
    }

    /// A node (leader or follower) whose last apply answered clients of its own waits,
    /// with nothing in flight, until as many new proposals have arrived (those clients, back with their
    /// next request) or for `Regroup::wait`, whichever comes first. Without it, 50
    /// unpipelined clients split into two groups that take turns: the one whose entry is
    /// in flight, and the one that waits for it to commit. Each client then waits for
    /// two commits a request, and each entry carries half of them.
    fn regrouping(&self) -> bool {
        self.regroups() && self.regroup.waiting(self.cfg.max_hold)
    }

    /// The same for reads: the clients whose reads the last barrier answered.
    fn regrouping_reads(&self) -> bool {
        self.regroups() && self.regroup_reads.waiting(self.cfg.max_hold)
    }

    fn regroups(&self) -> bool {
        self.cfg.regroup && matches!(self.raw.raft.state, StateRole::Leader | StateRole::Follower)
    }

    /// How many queued reads should wake the raft thread before it sleeps: none while
    /// a barrier is out (unless a lease answers them), the clients still expected while
    /// regrouping, else the first.
    pub(super) fn reads_to_wake(&self) -> usize {
        let leased = self.lease_now().is_some();
        if !self.reads_inflight.is_empty() && !leased {
            inbox::NEVER
        } else if !leased && self.regrouping_reads() {
            self.regroup_reads.missing()
        } else {
            1
        }
    }

    /// How many queued proposals should wake the raft thread before it sleeps (`inbox`):
    /// none while a proposal would only join a held batch, the clients still expected
    /// while regrouping, else the first.
    pub(super) fn proposals_to_wake(&self) -> usize {
        let holding = self.can_forward()
            && self.held.is_empty()
            && self.batch.as_ref().map_or(0, |b| b.bytes()) < HOLD_BYTES;
        if holding && self.entry_in_flight() {
            inbox::NEVER
        } else if holding && self.regrouping() {
            self.regroup.missing()
        } else {
            1
        }
    }

    /// How long the loop may wait for events before held proposals or reads must go.
    pub(super) fn hold_left(&self) -> Option<Duration> {
        let reads = self.reads_since.filter(|_| !self.reads_new.is_empty());
        // The end of a regroup matters only if proposals wait for it: in the batch, or
        // in the inbox, which wakes the thread only at the count still missing.
        let regroup = self
            .regroup
            .left(self.cfg.max_hold)
            .filter(|_| (self.batch.is_some() || self.regroup.missing() > 1) && self.regrouping());
        let regroup_reads = self.regroup_reads.left(self.cfg.max_hold).filter(|_| {
            (!self.reads_new.is_empty() || self.regroup_reads.missing() > 1)
                && self.regrouping_reads()
        });
        [self.batch.as_ref().and(self.batch_since), reads]
            .into_iter()
            .flatten()
            .map(|t| self.cfg.max_hold.saturating_sub(t.elapsed()))
            .chain(regroup)
            .chain(regroup_reads)
            .min()
    }

    /// A leader whose commit index moved this turn tells the followers, unless an append
    /// (which carries it) went this turn: a batch proposed right after the entry before
    /// it commits, as the hold makes it, then costs each follower one append, one ready
    /// and one log write instead of two of each (raft-rs broadcasts an empty append for
    /// every commit otherwise; `skip_bcast_commit` is set in `raft_config`).
    /// Returns whether it sent (so the ready must be handled again).
    pub(super) fn tell_commit(&mut self) -> bool {
        let appended = std::mem::take(&mut self.appended_this_turn);
        let r = &mut self.raw.raft;
        let committed = r.raft_log.committed;
        if r.state != StateRole::Leader || committed <= self.commit_told {
            self.commit_told = self.commit_told.max(committed);
            return false;
        }
        self.commit_told = committed;
        if appended {
            return false;
        }
        r.bcast_append();
        true
    }

    pub(super) fn propose_batch(&mut self) {
        let Some(b) = self.batch.take() else {
            return;
        };
        self.batch_since = None;
        let n = b.len() as u64;
        self.batch_hint = b.bytes();
        let reqs = std::mem::take(&mut self.batch_reqs);
        match self.raw.propose(Vec::new(), b.finish()) {
            Ok(()) => {
                self.forwarded_tick = self.ticks;
                // On a leader, raft-rs sent the entry to every follower it may send to,
                // with the commit index.
                self.appended_this_turn = true;
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

    pub(super) fn flush_reads(&mut self) {
        if self.reads_new.is_empty() || !self.leader_known() || self.lease_reads() {
            return;
        }
        // As with writes (`hold_batch`): while a read barrier is out, new reads wait to
        // share the next one, for at most `cfg.max_hold`.
        // And once reads were answered, the next barrier waits for as many to come back
        // (`regrouping`).
        if (!self.reads_inflight.is_empty() || self.regrouping_reads())
            && self
                .reads_since
                .is_some_and(|t| t.elapsed() < self.cfg.max_hold)
        {
            return;
        }
        self.reads_since = None;
        let waiters = std::mem::take(&mut self.reads_new);
        self.send_read_barrier(waiters);
    }

    /// Ask raft for a read index (a quorum round on the leader) for `waiters`.
    pub(super) fn send_read_barrier(&mut self, waiters: Vec<ReadWaiter>) {
        let ctx = self.next_ctx;
        self.next_ctx = self.next_ctx.wrapping_add(1);
        // The leader keys pending reads by context, so it must be unique in the group.
        let mut rctx = Vec::with_capacity(16);
        rctx.extend_from_slice(&self.cfg.id.to_le_bytes());
        rctx.extend_from_slice(&ctx.to_le_bytes());
        self.raw.read_index(rctx);
        self.reads_inflight
            .insert(ctx, (self.ticks, Instant::now(), waiters));
    }
}

/// A node's count of the clients its last replies should bring back (`regrouping`),
/// and how long they take to come back.
pub(super) struct Regroup {
    /// Proposals of this node answered by the apply in progress.
    pub replied: usize,
    /// Answered by the last apply that answered any: the clients expected back.
    expected: usize,
    /// Proposals of this node that arrived since.
    arrived: usize,
    /// When that apply answered them.
    since: Option<Instant>,
    /// When the last of them arrived, and how long all of them took, if they did.
    last_arrival: Option<Instant>,
    all_back: Option<Duration>,
    /// Average time for the clients answered by an apply to come back (when not all
    /// came back before the next apply, extrapolated from those that did).
    back: Duration,
    /// The longest wait, which bounds what is learnt too.
    cap: Duration,
}

impl Regroup {
    pub fn new(max_hold: Duration) -> Regroup {
        Regroup {
            replied: 0,
            expected: 0,
            arrived: 0,
            since: None,
            last_arrival: None,
            all_back: None,
            // Learnt from the first round on.
            back: max_hold / 4,
            cap: max_hold,
        }
    }

    /// A proposal of this node arrived.
    pub fn arrived(&mut self, now: Instant) {
        self.arrived += 1;
        self.last_arrival = Some(now);
        if self.arrived == self.expected {
            self.all_back = self.since.map(|t| now.saturating_duration_since(t));
        }
    }

    /// The end of an apply: learn from the round it ends, and expect back what it
    /// answered.
    pub fn applied(&mut self, now: Instant) {
        if self.replied == 0 {
            return;
        }
        let sample = match (self.all_back, self.since, self.last_arrival) {
            (Some(t), _, _) => Some(t),
            (None, Some(since), Some(last)) if self.arrived > 0 => {
                let part = last.saturating_duration_since(since);
                let factor = u32::try_from(self.expected).unwrap_or(u32::MAX);
                let arrived = u32::try_from(self.arrived).unwrap_or(u32::MAX);
                Some(part.checked_mul(factor).map_or(self.cap, |t| t / arrived))
            }
            _ => None,
        };
        if let Some(t) = sample.map(|t| t.min(self.cap)) {
            // An average over about the last 8 rounds.
            self.back = self.back.saturating_sub(self.back / 8) + t / 8;
        }
        self.expected = std::mem::take(&mut self.replied);
        self.arrived = 0;
        self.since = Some(now);
        self.last_arrival = None;
        self.all_back = None;
    }

    /// Whether the clients answered last are still expected.
    pub fn waiting(&self, max_hold: Duration) -> bool {
        self.arrived < self.expected
            && self
                .since
                .is_some_and(|t| t.elapsed() < self.wait(max_hold))
    }

    /// The clients still expected.
    pub fn missing(&self) -> usize {
        self.expected.saturating_sub(self.arrived)
    }

    /// How long after the apply the wait for them ends, if it has not.
    pub fn left(&self, max_hold: Duration) -> Option<Duration> {
        self.since
            .filter(|_| self.arrived < self.expected)
            .map(|t| self.wait(max_hold).saturating_sub(t.elapsed()))
    }

    /// The longest wait: twice the usual time for them to come back, at most a hold.
    fn wait(&self, max_hold: Duration) -> Duration {
        (self.back * 2).min(max_hold)
    }
}

#[cfg(test)]
mod tests {
    use super::Regroup;
    use std::time::{Duration, Instant};

    const HOLD: Duration = Duration::from_millis(2);

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn it_expects_back_what_an_apply_answered_and_counts_them_in() {
        let mut g = Regroup::new(HOLD);
        assert!(!g.waiting(HOLD), "nothing answered yet");
        g.replied = 3;
        g.applied(Instant::now());
        assert!(g.waiting(HOLD));
        assert_eq!(g.missing(), 3);
        g.arrived(Instant::now());
        g.arrived(Instant::now());
        assert_eq!(g.missing(), 1);
        assert!(g.waiting(HOLD));
        g.arrived(Instant::now());
        assert!(!g.waiting(HOLD), "all back");
        // An apply that answered nothing changes nothing.
        g.applied(Instant::now());
        assert!(!g.waiting(HOLD));
    }

    #[test]
    fn it_learns_how_long_they_take_from_full_and_partial_rounds() {
        let mut g = Regroup::new(HOLD);
        // Synthetic times ahead of the clock, so that no time passes for the waits
        // however slowly the test runs.
        let t0 = Instant::now() + Duration::from_secs(60);
        let mut t = t0;
        // Rounds in which all 4 come back within 100 us: the wait moves towards 200 us.
        for _ in 0..40 {
            g.replied = 4;
            g.applied(t);
            for k in 1..=4 {
                g.arrived(t + us(25 * k));
            }
            t += us(1000);
        }
        g.replied = 4;
        g.applied(t);
        let left = g.left(HOLD).expect("waiting");
        assert!(left <= us(260), "{left:?}");
        // Rounds in which only half come back, the last at 300 us: as if all took 600.
        for _ in 0..40 {
            g.replied = 4;
            g.applied(t);
            g.arrived(t + us(100));
            g.arrived(t + us(300));
            t += us(1000);
        }
        let mut g2 = g;
        g2.replied = 4;
        g2.applied(t);
        let left = g2.left(HOLD).expect("waiting");
        assert!(left > us(900) && left <= us(1200), "{left:?}");
    }

    #[test]
    fn a_client_back_after_a_long_pause_teaches_no_more_than_the_cap() {
        let mut g = Regroup::new(HOLD);
        let t = Instant::now();
        g.replied = 60_000;
        g.applied(t);
        // One of 60,000 comes back an hour later: extrapolated, 60,000 hours.
        g.arrived(t + Duration::from_secs(3600));
        g.replied = 1;
        g.applied(t + Duration::from_secs(3601));
        assert!(g.back <= HOLD, "{:?}", g.back);
        assert!(g.wait(HOLD) <= HOLD);
    }

    #[test]
    fn the_wait_ends_by_itself() {
        let hold = Duration::from_millis(5);
        let mut g = Regroup::new(hold);
        g.replied = 2;
        g.applied(Instant::now());
        assert!(g.waiting(hold));
        let deadline = Instant::now() + Duration::from_secs(5);
        while g.waiting(hold) && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(!g.waiting(hold), "never waits past the hold");
    }
}
