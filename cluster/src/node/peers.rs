//! What the node does about its peers' links: a lost connection, and heartbeat
//! responses that would only re-probe a follower far behind.

use super::*;

impl Node {
    /// The connection to peer `id` was lost. A leader probes it again from what it has.
    /// A follower that lost its connection to the leader may have lost the proposals it
    /// forwarded on it: their outcome is unknown, and their clients hear so now rather
    /// than at the request timeout (raft-rs drops a lost proposal without a word). New
    /// proposals wait (see `can_forward`) until the leader is heard again or another
    /// leads: a dead leader costs its clients a pause until the election, not a stream
    /// of errors.
    pub(super) fn unreachable(&mut self, id: u64) {
        self.raw.report_unreachable(id);
        if self.raw.raft.state != StateRole::Leader && id == self.raw.raft.leader_id {
            self.leader_unreachable = Some(id);
            if !self.pending.is_empty() {
                self.fail_pending("the link to the leader was lost");
            }
        }
    }

    /// Whether stepping `m`, a heartbeat response, would only make raft-rs probe a
    /// follower again while its answer to the last probe is on the way; if so, the
    /// probe is held for the step and `release_probe` must follow it.
    ///
    /// raft-rs resumes a paused probe on every heartbeat response and sends another
    /// append of up to `max_size_per_msg`. Heartbeat responses come once per round of
    /// reads, so a leader with reads in flight rebuilt and sent a megabyte-sized append
    /// to a follower far behind every few milliseconds after a partition healed, and the
    /// two did nothing else for seconds. For the step, the follower's progress looks like
    /// a snapshot in flight, which raft-rs never sends appends to; everything else the
    /// response means (the follower is alive, it acknowledges a ReadIndex) is taken as
    /// usual. After `PROBE_AGAIN` without an answer, the probe goes again as raft-rs
    /// would send it.
    pub(super) fn hold_probe(&mut self, m: &Message) -> Option<u64> {
        if m.get_msg_type() != MessageType::MsgHeartbeatResponse
            || self.raw.raft.state != StateRole::Leader
        {
            return None;
        }
        let again = (PROBE_AGAIN.as_millis() as u64 / self.cfg.tick_ms.max(1)).max(1);
        let recent = self
            .appended_at
            .get(&m.from)
            .is_some_and(|&t| self.ticks - t < again);
        match self.raw.raft.mut_prs().get_mut(m.from) {
            Some(pr) if pr.state == raft::ProgressState::Probe && pr.paused => {
                if recent {
                    pr.state = raft::ProgressState::Snapshot;
                    return Some(m.from);
                }
                // This step sends the probe (it reaches the socket at the end of the
                // turn, with other responses still to step before then).
                self.appended_at.insert(m.from, self.ticks);
                None
            }
            _ => None,
        }
    }

    /// After the step `hold_probe` allowed: the probe is paused again.
    pub(super) fn release_probe(&mut self, id: u64) {
        if let Some(pr) = self.raw.raft.mut_prs().get_mut(id) {
            if pr.state == raft::ProgressState::Snapshot && pr.pending_snapshot == 0 {
                pr.state = raft::ProgressState::Probe;
                pr.paused = true;
            }
        }
    }

    /// The leader's process is gone (its raft port refuses connections): campaign within
    /// 1 to 4 ticks instead of waiting out the election timeout (300-600 ms), drawn at
    /// random so that the followers seldom campaign at once. A follower whose timer is set
    /// this way is also out of the old leader's lease, so it grants the other follower's
    /// vote. Only a refused connection counts: a silent leader (a cut link, a paused
    /// process) is left to the election timeout, so that slow is never taken for dead.
    pub(super) fn peer_down(&mut self, id: u64) {
        let r = &mut self.raw.raft;
        if r.state != StateRole::Follower || id != r.leader_id {
            return;
        }
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(self.ticks);
        let ahead = 1 + (h.finish() % 4) as usize;
        let at = r
            .randomized_election_timeout()
            .saturating_sub(ahead)
            .max(r.election_timeout());
        if r.election_elapsed < at {
            r.election_elapsed = at;
        }
        info!(
            leader = id,
            "the leader's process is gone: campaigning early"
        );
    }
}
