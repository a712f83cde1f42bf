//! The raft node's side of clock skew (see `crate::clocks`): the verdict every few
//! ticks, what it means for leadership, and the offset to the leader that every node
//! reads deadlines by.

use std::time::{Duration, Instant};

use raft::StateRole;
use tracing::{info, warn};

use super::Node;

impl Node {
    /// Every few ticks: take the clocks' verdict and publish it; a leader whose clock is
    /// off hands over.
    pub(super) fn clock_check(&mut self, now: Instant) {
        use std::sync::atomic::Ordering::Relaxed;
        let me = self.cfg.id;
        let voters: Vec<u64> = self.raw.raft.prs().conf().voters().ids().iter().collect();
        let max_us = self.cfg.max_clock_skew_ms as i64 * 1000;
        let clocks = self.transport.clocks();
        let v = clocks.verdict(me, &voters, max_us);
        if let Some(s) = v.skew_us {
            self.status.clock_skew_us.store(s, Relaxed);
        }
        for (id, p) in self.status.peers.lock().iter_mut() {
            if *id != me {
                p.clock_offset_ms = clocks.offset_us(*id).map(|o| o / 1000);
                p.clock_rate_ppm = clocks.rate_ppm(*id);
            }
        }
        let rates_ok = clocks.rates(me, &voters, crate::clocks::MAX_RATE_PPM);
        if rates_ok != self.rates_ok {
            self.rates_ok = rates_ok;
            self.status.clock_rates_ok.store(rates_ok, Relaxed);
            if self.cfg.read_consistency == crate::ReadConsistency::Lease {
                if rates_ok {
                    info!("the voters' clocks run at rates a read lease allows");
                } else {
                    warn!(
                        max_ppm = crate::clocks::MAX_RATE_PPM,
                        "a voter's clock runs too fast for a read lease, or is not measured yet: reads take a quorum round"
                    );
                }
            }
        }
        self.may_campaign = v.measured && !v.skewed;
        if v.skewed != self.skewed {
            self.skewed = v.skewed;
            self.status.clock_skewed.store(v.skewed, Relaxed);
            let skew_ms = v.skew_us.unwrap_or(0) / 1000;
            let max_ms = self.cfg.max_clock_skew_ms;
            if v.skewed {
                warn!(
                    skew_ms,
                    max_ms,
                    "this node's clock is off the other voters' by more than --max-clock-skew: it will not take leadership"
                );
            } else {
                info!(
                    skew_ms,
                    max_ms, "this node's clock is within --max-clock-skew again"
                );
            }
        }
        if self.skewed && self.raw.raft.state == StateRole::Leader {
            self.hand_over(now);
        }
    }

    /// Every tick: the offset from this node's clock to the leader's, by which the
    /// server reads deadlines. Until the offset to a new leader is measured, the last
    /// one stands.
    pub(super) fn follow_leader_clock(&self) {
        let me = self.cfg.id;
        let to_leader = match self.raw.raft.leader_id {
            0 => None,
            l if l == me => Some(0),
            l => self.transport.clocks().offset_us(l),
        };
        if let Some(o) = to_leader {
            self.status
                .leader_offset_us
                .store(o, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Leading with a clock that is off: hand leadership to the voter that has the most
    /// of the log, at most once per election timeout.
    fn hand_over(&mut self, now: Instant) {
        let wait = Duration::from_millis(self.cfg.tick_ms * self.cfg.election_ticks as u64);
        if self
            .handed_over
            .is_some_and(|t| now.duration_since(t) < wait)
        {
            return;
        }
        let me = self.cfg.id;
        let best = self
            .raw
            .raft
            .prs()
            .iter()
            .filter(|(id, _)| **id != me && self.clock_refuses(**id).is_none())
            .filter(|(id, _)| self.conf_state.voters.contains(id))
            .max_by_key(|(_, pr)| pr.matched)
            .map(|(id, _)| *id);
        if let Some(id) = best {
            warn!(to = id, "handing leadership over: this node's clock is off");
            self.handed_over = Some(now);
            self.raw.transfer_leader(id);
        }
    }

    /// Why `id` may not lead, as far as this node can tell from its clock.
    pub(super) fn clock_refuses(&self, id: u64) -> Option<String> {
        let off = self.transport.clocks().offset_us(id)?;
        let max_ms = self.cfg.max_clock_skew_ms as i64;
        (!self.skewed && off.abs() > max_ms * 1000).then(|| {
            format!(
                "node {id}'s clock is {} ms off this node's, more than --max-clock-skew ({max_ms} ms): it may not lead",
                off / 1000
            )
        })
    }
}
