//! The invalidation fence, for client-side caching across the group.
//!
//! A client caching keys on one node learns of a change when that node applies it. A
//! write acknowledged by another node before then leaves a window in which the cache
//! still serves the old value: a session logged out through node A, still valid from a
//! cache on node B. So while any node has clients that cache keys
//! ([`crate::StateMachine::tracking`]), a write's reply waits until every such node has
//! applied the write (and so sent its invalidations):
//! - a follower with caching clients reports its applied index to the leader after
//!   each batch it applies, and every tick;
//! - the leader takes the lowest applied index among itself (if it has such clients)
//!   and the reporting nodes heard from lately: that is `safe`, which it sends to every
//!   follower whenever it moves, and every tick while the fence is on;
//! - every node holds its replies to entries past `safe`.
//!
//! A node not heard from for [`STALE`] no longer holds writes back, and no reply is held
//! longer than [`HOLD_MAX`]: a slow or cut-off node loses the guarantee, the writes
//! carry on. With no caching client anywhere, nothing is sent and nothing is held.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::transport::Applied;
use crate::ClusterError;

/// A report older than this no longer holds writes back.
pub const STALE: Duration = Duration::from_millis(200);
/// The longest a reply waits for the fence.
pub const HOLD_MAX: Duration = Duration::from_millis(250);

type Reply = tokio::sync::oneshot::Sender<Result<Bytes, ClusterError>>;

struct Held {
    index: u64,
    tx: Reply,
    reply: Bytes,
    until: Instant,
}

/// The fence's state on one node.
#[derive(Default)]
pub struct Fence {
    /// Leader: each peer's last report (applied index, has caching clients, when).
    peers: HashMap<u64, (u64, bool, Instant)>,
    /// Whether replies wait (the leader decides; followers hold what it last said).
    on: bool,
    /// The applied index every node with caching clients has reached.
    safe: u64,
    /// Replies waiting, in entry order.
    held: VecDeque<Held>,
    /// Follower: the caching flag last reported to the leader.
    reported: bool,
    /// Follower: applied indexes waiting for their invalidations to be taken, with the
    /// state machine's mark for each (see `StateMachine::caching_mark`).
    waits: VecDeque<(u64, u64)>,
}

/// Applied indexes a follower keeps waiting to report; past this the oldest goes (a
/// later one reports more).
const WAITS_MAX: usize = 256;

impl Fence {
    /// The reply to the entry at `index`: sent now, or held until the fence passes it.
    pub fn reply(&mut self, index: u64, tx: Reply, reply: Bytes, now: Instant) {
        if !self.on || index <= self.safe {
            let _ = tx.send(Ok(reply));
        } else {
            self.held.push_back(Held {
                index,
                tx,
                reply,
                until: now + HOLD_MAX,
            });
        }
    }

    /// Send the held replies the fence has passed, or that waited long enough; returns
    /// how many went at the time limit.
    pub fn release(&mut self, now: Instant) -> u64 {
        let mut late = 0;
        while let Some(h) = self.held.front() {
            let passed = !self.on || h.index <= self.safe;
            if !passed && h.until > now {
                break;
            }
            late += u64::from(!passed);
            if let Some(h) = self.held.pop_front() {
                let _ = h.tx.send(Ok(h.reply));
            }
        }
        late
    }

    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Leader: a follower's report.
    pub fn report(&mut self, from: u64, a: &Applied, now: Instant) {
        self.peers.insert(from, (a.index, a.tracking, now));
    }

    /// Leader: recompute the fence from this node's state and the live reports. Returns
    /// the word to send to the followers when it changed (or, `periodic`, while it is on).
    pub fn lead(
        &mut self,
        applied: u64,
        tracking: bool,
        now: Instant,
        periodic: bool,
    ) -> Option<Applied> {
        let mut on = tracking;
        let mut safe = if tracking { applied } else { u64::MAX };
        self.peers
            .retain(|_, (_, _, seen)| now.duration_since(*seen) < STALE * 10);
        for &(index, caching, seen) in self.peers.values() {
            if caching && now.duration_since(seen) < STALE {
                on = true;
                safe = safe.min(index);
            }
        }
        if !on {
            safe = applied;
        }
        let changed = on != self.on || (on && safe != self.safe);
        self.on = on;
        self.safe = safe;
        (changed || (on && periodic)).then_some(Applied {
            index: applied,
            tracking,
            fence: on,
            safe,
        })
    }

    /// Follower: the leader's word.
    pub fn follow(&mut self, a: &Applied) {
        self.on = a.fence;
        self.safe = a.safe;
    }

    /// Follower: `applied` is to be reported once `mark` has settled.
    pub fn wait(&mut self, applied: u64, mark: u64) {
        if self.waits.back().is_some_and(|&(a, _)| a >= applied) {
            return;
        }
        if self.waits.len() == WAITS_MAX {
            self.waits.pop_front();
        }
        self.waits.push_back((applied, mark));
    }

    /// Follower: the highest waiting applied index whose mark has settled.
    pub fn settled_upto(&mut self, settled: impl Fn(u64) -> bool) -> Option<u64> {
        let mut upto = None;
        while let Some(&(applied, mark)) = self.waits.front() {
            if !settled(mark) {
                break;
            }
            upto = Some(applied);
            self.waits.pop_front();
        }
        upto
    }

    /// Follower: the report to send the leader, if any (while this node has caching
    /// clients, and once when it stops having them).
    pub fn report_due(&mut self, applied: u64, tracking: bool) -> Option<Applied> {
        if !tracking && !self.reported {
            return None;
        }
        self.reported = tracking;
        Some(Applied {
            index: applied,
            tracking,
            fence: false,
            safe: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(index: u64, tracking: bool) -> Applied {
        Applied {
            index,
            tracking,
            fence: false,
            safe: 0,
        }
    }

    /// A reply waits for every caching node, then goes; without caching nodes, nothing
    /// waits; a silent node stops holding writes back; nothing waits past HOLD_MAX.
    #[test]
    fn replies_wait_for_caching_nodes_only() {
        let t0 = Instant::now();
        let mut f = Fence::default();
        assert!(
            f.lead(10, false, t0, true).is_none(),
            "nobody caches: nothing to say"
        );
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        f.reply(11, tx, Bytes::from_static(b"+OK\r\n"), t0);
        assert!(rx.try_recv().is_ok(), "no fence: sent at once");

        f.report(2, &report(10, true), t0);
        let word = f.lead(11, false, t0, true).expect("the fence goes up");
        assert!(word.fence && word.safe == 10);
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        f.reply(11, tx, Bytes::from_static(b"+OK\r\n"), t0);
        f.release(t0);
        assert!(rx.try_recv().is_err(), "held until node 2 applies 11");
        f.report(2, &report(11, true), t0);
        f.lead(11, false, t0, true);
        f.release(t0);
        assert!(rx.try_recv().is_ok(), "released once node 2 applied it");

        let (tx, mut rx) = tokio::sync::oneshot::channel();
        f.reply(12, tx, Bytes::new(), t0);
        let later = t0 + STALE;
        f.lead(12, false, later, true);
        f.release(later);
        assert!(rx.try_recv().is_ok(), "a silent node holds nothing back");

        f.report(2, &report(12, true), later);
        f.lead(12, false, later, true);
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        f.reply(13, tx, Bytes::new(), later);
        f.release(later + HOLD_MAX / 2);
        assert!(rx.try_recv().is_err());
        f.release(later + HOLD_MAX);
        assert!(rx.try_recv().is_ok(), "never held past HOLD_MAX");
    }
}
