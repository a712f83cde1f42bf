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
        self.entry_in_flight()
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

    /// Whether a proposal arriving now would only join a held batch: then it need not
    /// wake the raft thread (see `inbox`).
    pub(super) fn holds_new_proposals(&self) -> bool {
        self.can_forward()
            && self.held.is_empty()
            && self.entry_in_flight()
            && self.batch.as_ref().map_or(0, |b| b.bytes()) < HOLD_BYTES
    }

    /// How long the loop may wait for events before held proposals or reads must go.
    pub(super) fn hold_left(&self) -> Option<Duration> {
        let reads = self.reads_since.filter(|_| !self.reads_new.is_empty());
        [self.batch.as_ref().and(self.batch_since), reads]
            .into_iter()
            .flatten()
            .map(|t| self.cfg.max_hold.saturating_sub(t.elapsed()))
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
        if !self.reads_inflight.is_empty()
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
