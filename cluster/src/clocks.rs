//! How far each peer's wall clock is from this node's, and whether this node's clock may
//! be trusted to lead.
//!
//! TTL deadlines are wall-clock instants: the leader stamps each entry with its clock,
//! relative TTLs resolve against that stamp, and the leader's expiry decides when a key
//! is due. A leader whose clock is off moves every session's end by as much.
//!
//! - Every [`STAMP_EVERY`] each connection to a peer carries a [`ClockStamp`]: the
//!   sender's clock, and the last stamp it received from that peer with how long ago. On
//!   receipt that gives one sample of the peer's offset, as NTP computes it:
//!   `((t2 - t1) + (t3 - t4)) / 2`, within half the round trip. Of the last
//!   [`SAMPLES`] samples, the one with the shortest round trip counts.
//! - [`Clocks::verdict`]: a node is off when a quorum of the other voters finds its
//!   clock more than `--max-clock-skew` from theirs. In a group of three with one clock
//!   off, that node hears it from both others; each of the two good ones hears it from
//!   one only.
//! - A node campaigns only once it has measured a quorum of the voters (itself among
//!   them), so that a node whose clock is off cannot win the first election of a new
//!   cluster before anyone can tell.
//! - A node whose clock is off says so (log, `RAFT.INFO`) and does not
//!   take leadership: its vote requests are not sent, a leadership transfer to it is
//!   refused, and a leader that finds itself skewed hands leadership over.
//! - Every node reads deadlines by the leader's clock (its own plus the offset to the
//!   leader), so a follower whose clock is off still expires sessions on time.
//! - Stamps also carry the sender's monotonic clock, which raft's ticks and the read
//!   lease count by. [`Clocks::rates`]: how much faster each peer's runs than this
//!   node's, from the first and last of its recent stamps (at least [`RATE_SPAN_US`]
//!   apart). A leader serves reads from its lease only while no voter's clock runs more
//!   than [`MAX_RATE_PPM`] faster than its own (see `node/lease.rs`): offsets alone do
//!   not show a clock that runs fast until it is already far off.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// How often a stamp goes to each peer.
pub const STAMP_EVERY: Duration = Duration::from_millis(500);
/// Samples kept per peer.
const SAMPLES: usize = 8;
/// A peer's offset older than this is not used.
const STALE: Duration = Duration::from_secs(10);
/// Monotonic samples kept per peer (one a stamp: 4 s of them).
const RATE_SAMPLES: usize = 8;
/// A peer's rate is measured over at least this much of this node's time.
pub const RATE_SPAN_US: i64 = 1_000_000;
/// A peer heard from within this long counts for the rates' verdict.
const RATE_FRESH: Duration = Duration::from_secs(2);
/// How much faster than this node's a voter's clock may run for the lease to hold, in
/// parts per million: a fifth of the quarter the lease's length allows for (clocks
/// kept by NTP differ by a few hundred at most; a delay that varies by 10 ms over the
/// span shows as 10,000).
pub const MAX_RATE_PPM: i64 = 50_000;

/// This process's monotonic clock, in microseconds from its first reading (never 0).
pub fn mono_us() -> i64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    epoch.elapsed().as_micros() as i64 + 1
}

/// One node's clock, as carried between peers (microseconds since the Unix epoch).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ClockStamp {
    /// The sender's clock when it sent this.
    #[prost(int64, tag = "1")]
    pub sent_us: i64,
    /// The `sent_us` of the last stamp the sender received from the receiver (0: none).
    #[prost(int64, tag = "2")]
    pub echo_us: i64,
    /// How long the sender held that stamp before sending this one.
    #[prost(int64, tag = "3")]
    pub held_us: i64,
    /// The sender's monotonic clock ([`mono_us`]; 0 from a node that does not send it).
    #[prost(int64, tag = "4")]
    pub mono_us: i64,
}

pub fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sample {
    offset_us: i64,
    rtt_us: i64,
}

#[derive(Default)]
struct Peer {
    /// The last stamp received, and when (this node's clock), to echo.
    last: Option<(i64, Instant)>,
    samples: VecDeque<Sample>,
    at: Option<Instant>,
    /// (the peer's monotonic clock when it sent a stamp, this node's when it came).
    mono: VecDeque<(i64, i64)>,
}

impl Peer {
    /// See [`Clocks::rate_ppm`].
    fn rate_ppm(&self) -> Option<i64> {
        let (&(m0, t0), &(m1, t1)) = (self.mono.front()?, self.mono.back()?);
        let span = t1 - t0;
        if span < RATE_SPAN_US {
            return None;
        }
        Some(((m1 - m0 - span) as i128 * 1_000_000 / span as i128) as i64)
    }
}

/// What this node knows of its peers' clocks.
#[derive(Default)]
pub struct Clocks {
    peers: Mutex<HashMap<u64, Peer>>,
}

impl Clocks {
    /// The stamp to send to `peer` now.
    pub fn stamp_for(&self, peer: u64) -> ClockStamp {
        let now = wall_us();
        let peers = self.peers.lock();
        let (echo_us, held_us) = peers
            .get(&peer)
            .and_then(|p| p.last)
            .map_or((0, 0), |(sent, at)| (sent, at.elapsed().as_micros() as i64));
        ClockStamp {
            sent_us: now,
            echo_us,
            held_us,
            mono_us: mono_us(),
        }
    }

    /// A stamp arrived from `peer` (at this node's clock `now_us`).
    pub fn received(&self, peer: u64, s: &ClockStamp, now_us: i64) {
        self.received_at(peer, s, now_us, mono_us());
    }

    /// [`Clocks::received`], with this node's monotonic clock given (a simulation's).
    pub fn received_at(&self, peer: u64, s: &ClockStamp, now_us: i64, now_mono_us: i64) {
        let mut peers = self.peers.lock();
        let p = peers.entry(peer).or_default();
        p.last = Some((s.sent_us, Instant::now()));
        if s.mono_us > 0 {
            if p.mono.back().is_some_and(|&(m, _)| m >= s.mono_us) {
                p.mono.clear(); // the peer restarted (or the stamps crossed)
            }
            if p.mono.len() == RATE_SAMPLES {
                p.mono.pop_front();
            }
            p.mono.push_back((s.mono_us, now_mono_us));
        }
        if s.echo_us == 0 {
            return;
        }
        let (t1, t3, t4) = (s.echo_us, s.sent_us, now_us);
        let t2 = t3 - s.held_us;
        let rtt_us = (t4 - t1) - (t3 - t2);
        if rtt_us < 0 {
            return; // this node's clock stepped back between the two
        }
        let offset_us = ((t2 - t1) + (t3 - t4)) / 2;
        if p.samples.len() == SAMPLES {
            p.samples.pop_front();
        }
        p.samples.push_back(Sample { offset_us, rtt_us });
        p.at = Some(Instant::now());
    }

    /// `peer`'s clock minus this node's, in microseconds, if measured lately.
    pub fn offset_us(&self, peer: u64) -> Option<i64> {
        let peers = self.peers.lock();
        let p = peers.get(&peer)?;
        if p.at?.elapsed() > STALE {
            return None;
        }
        p.samples
            .iter()
            .min_by_key(|s| s.rtt_us)
            .map(|s| s.offset_us)
    }

    /// How much faster `peer`'s monotonic clock runs than this node's, in parts per
    /// million (negative: slower), once its stamps span [`RATE_SPAN_US`].
    pub fn rate_ppm(&self, peer: u64) -> Option<i64> {
        self.peers.lock().get(&peer).and_then(Peer::rate_ppm)
    }

    /// Whether the voters' clocks run close enough to this node's for a read lease: no
    /// voter heard from lately runs more than `max_ppm` faster or is not measured yet,
    /// and a quorum (this node included) is measured.
    pub fn rates(&self, me: u64, voters: &[u64], max_ppm: i64) -> bool {
        let peers = self.peers.lock();
        let mut good = 1;
        for &v in voters.iter().filter(|&&v| v != me) {
            let p = peers.get(&v);
            let fresh = p
                .and_then(|p| p.last)
                .is_some_and(|(_, at)| at.elapsed() < RATE_FRESH);
            match p.and_then(Peer::rate_ppm) {
                Some(r) if r <= max_ppm => good += 1,
                Some(_) => return false,
                None if fresh => return false,
                None => {}
            }
        }
        good > voters.len() / 2
    }

    /// This node's clock against the voters': how far it is from the median of their
    /// clocks (this node's own among them), and whether a quorum of the other voters
    /// finds it more than `max_us` off. With one voter down in a group of three, the one
    /// other cannot tell which of the two clocks is wrong, and the verdict is "not off".
    pub fn verdict(&self, me: u64, voters: &[u64], max_us: i64) -> Verdict {
        let offs: Vec<i64> = voters
            .iter()
            .filter(|&&v| v != me)
            .filter_map(|&v| self.offset_us(v))
            .collect();
        let quorum = voters.len() / 2 + 1;
        let off = offs.iter().filter(|o| o.abs() > max_us).count();
        let mut all: Vec<i64> = offs.clone();
        all.push(0);
        all.sort_unstable();
        let skew_us = (all.len() > 1).then(|| -all[all.len() / 2]);
        Verdict {
            skew_us,
            skewed: off >= quorum,
            measured: offs.len() + 1 >= quorum,
        }
    }
}

/// See [`Clocks::verdict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// This node's clock minus the median of the voters' (when any peer is measured).
    pub skew_us: Option<i64>,
    pub skewed: bool,
    /// Enough voters are measured for a verdict (a quorum, this node included).
    pub measured: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two clocks `skew` apart exchange stamps over a link with `delay` each way.
    #[test]
    fn offsets_are_measured_within_half_the_round_trip() {
        let a = Clocks::default();
        let skew = 30_000_000; // b is 30 s ahead
        let delay = 400;
        let t0 = 1_000_000_000;
        // a -> b at a's t0, received at b's t0 + delay + skew.
        let s1 = ClockStamp {
            sent_us: t0,
            echo_us: 0,
            held_us: 0,
            mono_us: 0,
        };
        let b = Clocks::default();
        b.received(1, &s1, t0 + delay + skew);
        // b answers 100 us later; a receives it after another delay.
        let s2 = ClockStamp {
            sent_us: t0 + delay + skew + 100,
            echo_us: t0,
            held_us: 100,
            mono_us: 0,
        };
        a.received(2, &s2, t0 + 2 * delay + 100);
        let off = a.offset_us(2).expect("measured");
        assert!((off - skew).abs() <= delay, "{off}");
        assert_eq!(a.offset_us(3), None);
    }

    #[test]
    fn the_median_finds_the_node_that_is_off() {
        let c = Clocks::default();
        let put = |peer, off: i64| {
            let mut peers = c.peers.lock();
            let p = peers.entry(peer).or_default();
            p.samples.push_back(Sample {
                offset_us: off,
                rtt_us: 10,
            });
            p.at = Some(Instant::now());
        };
        // Seen from the node that is an hour ahead: both others are an hour behind.
        put(2, -3_600_000_000);
        put(3, -3_600_000_000 + 500);
        let v = c.verdict(1, &[1, 2, 3], 500_000);
        assert!(v.skewed);
        assert!((v.skew_us.expect("measured") - 3_600_000_000).abs() < 1000);
        // Seen from a good node: one peer far off, the other close.
        let good = Clocks::default();
        {
            let mut peers = good.peers.lock();
            for (id, off) in [(1u64, 3_600_000_000i64), (3, 200)] {
                let p = peers.entry(id).or_default();
                p.samples.push_back(Sample {
                    offset_us: off,
                    rtt_us: 10,
                });
                p.at = Some(Instant::now());
            }
        }
        let v = good.verdict(2, &[1, 2, 3], 500_000);
        assert!(!v.skewed);
        assert!(v.skew_us.expect("measured").abs() <= 200);
        // One peer measured, and it disagrees: no way to tell who is wrong.
        let alone = Clocks::default();
        {
            let mut peers = alone.peers.lock();
            let p = peers.entry(2).or_default();
            p.samples.push_back(Sample {
                offset_us: 40_000_000,
                rtt_us: 10,
            });
            p.at = Some(Instant::now());
        }
        let v = alone.verdict(1, &[1, 2, 3], 500_000);
        assert!(!v.skewed && v.measured);
        assert!(!Clocks::default().verdict(1, &[1, 2, 3], 1).measured);
        assert!(Clocks::default().verdict(1, &[1], 1).measured);
        assert_eq!(Clocks::default().verdict(1, &[1, 2, 3], 1).skew_us, None);
    }

    /// Stamps every half second from a peer whose clock runs `ppm` faster, each delayed
    /// by up to 2 ms at random: the rate is measured once they span a second, within
    /// what the delays allow, and a restart of the peer starts the measure over.
    #[test]
    fn rates_are_measured_over_a_second_of_stamps() {
        let c = Clocks::default();
        let feed = |peer: u64, ppm: i64, n: i64, from: i64| {
            for k in 0..n {
                let mine = from + k * 500_000;
                let theirs = 7_000_000 + (mine - from) + (mine - from) * ppm / 1_000_000;
                let delay = (k * 7919) % 2000;
                let s = ClockStamp {
                    sent_us: 1,
                    echo_us: 0,
                    held_us: 0,
                    mono_us: theirs,
                };
                c.received_at(peer, &s, 1, mine + delay);
            }
        };
        feed(2, 0, 2, 10_000_000);
        assert_eq!(c.rate_ppm(2), None, "half a second is not enough");
        assert!(
            !c.rates(1, &[1, 2, 3], MAX_RATE_PPM),
            "2 is heard, not measured"
        );
        feed(2, 0, 8, 11_000_000);
        let r = c.rate_ppm(2).expect("measured");
        assert!(r.abs() < 1_000, "{r}");
        assert!(
            c.rates(1, &[1, 2, 3], MAX_RATE_PPM),
            "3 never heard; 1 and 2 agree"
        );
        feed(3, 500_000, 8, 20_000_000);
        let r = c.rate_ppm(3).expect("measured");
        assert!((r - 500_000).abs() < 1_000, "{r}");
        assert!(
            !c.rates(1, &[1, 2, 3], MAX_RATE_PPM),
            "3 runs half again as fast"
        );
        feed(3, -300_000, 8, 30_000_000);
        assert!(
            c.rates(1, &[1, 2, 3], MAX_RATE_PPM),
            "a slower clock is no danger"
        );
        // 3 restarts: its monotonic clock starts again, and so does the measure.
        let s = ClockStamp {
            sent_us: 1,
            echo_us: 0,
            held_us: 0,
            mono_us: 3,
        };
        c.received_at(3, &s, 1, 40_000_000);
        assert_eq!(c.rate_ppm(3), None);
        assert!(!c.rates(1, &[1, 2, 3], MAX_RATE_PPM));
    }
}
