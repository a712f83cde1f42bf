//! `--coalesce-us auto`: the coalescing wait found by trial, per event loop, on the
//! machine and load at hand.
//!
//! A fixed wait was tuned on one machine: 20 µs gave 1.03-1.13 of Redis's `SET -P 1`
//! throughput there and 0.96-1.08 on another. What a wait is worth depends on what a
//! wake-up costs, how fast the clients come back and how many cores they share, none of
//! which the server knows. It can see the outcome, though: how many connections it
//! answers per second.
//!
//! So a loop compares its current wait (the one it sleeps when busy) with a neighbour on
//! the ladder [`STEPS_US`] (the next one up or down, in turn) over [`PAIRS`] pairs of
//! alternating [`WINDOW_US`] windows, counting every connection it answers, and moves
//! when the neighbour answered more. Alternating short
//! windows makes a change in the load itself fall on both sides alike. A longer wait must
//! win by [`MARGIN`] to be taken, a shorter one only must not lose by as much: when the
//! wait makes no difference to throughput (the clients do not wait on the server, or the
//! load is light), the loop drifts down to no wait, which costs no latency.

/// The waits tried, in microseconds.
pub const STEPS_US: [u64; 6] = [0, 5, 10, 20, 40, 80];
/// Where a loop starts: the wait the fixed setting had.
const START: usize = 3;
/// One measuring window, in microseconds of wall time.
pub const WINDOW_US: u64 = 20_000;
/// Pairs of windows (current, neighbour) per comparison.
pub const PAIRS: u32 = 6;
/// The relative gain a longer wait needs, and the loss a shorter one may have.
pub const MARGIN: f64 = 0.02;
/// A window that lasts longer than this many windows (the loop went idle) spoils its
/// pair.
const STRETCH: u64 = 4;

#[derive(Debug, Clone)]
pub struct Climber {
    at: usize,
    trial: usize,
    /// Next neighbour to try is above (else below).
    up: bool,
    /// Windows closed in this comparison; even ones run the current wait.
    window: u32,
    window_start: u64,
    served: u64,
    /// The open pair's current-wait rate.
    pair_current: f64,
    sum_current: f64,
    sum_trial: f64,
}

impl Default for Climber {
    fn default() -> Self {
        Climber::new()
    }
}

impl Climber {
    pub const fn new() -> Climber {
        Climber {
            at: START,
            trial: START + 1,
            up: false,
            window: 0,
            window_start: 0,
            served: 0,
            pair_current: 0.0,
            sum_current: 0.0,
            sum_trial: 0.0,
        }
    }

    /// The wait settled on so far.
    pub fn current_us(&self) -> u64 {
        STEPS_US[self.at]
    }

    /// The loop is about to park, at `now_us`, having answered `served` connections since
    /// the last call. Returns the wait to use if the loop is busy.
    pub fn next(&mut self, now_us: u64, served: u32) -> u64 {
        if self.window_start == 0 {
            self.window_start = now_us;
        }
        self.served += u64::from(served);
        let elapsed = now_us.saturating_sub(self.window_start);
        if elapsed >= WINDOW_US {
            self.close_window(elapsed);
            self.window_start = now_us;
            self.served = 0;
        }
        if self.window.is_multiple_of(2) {
            STEPS_US[self.at]
        } else {
            STEPS_US[self.trial]
        }
    }

    fn close_window(&mut self, elapsed: u64) {
        if elapsed > STRETCH * WINDOW_US {
            // Idle in between: start this pair again.
            self.window -= self.window % 2;
            return;
        }
        let rate = self.served as f64 / elapsed as f64;
        if self.window.is_multiple_of(2) {
            self.pair_current = rate;
        } else {
            self.sum_current += self.pair_current;
            self.sum_trial += rate;
        }
        self.window += 1;
        if self.window == 2 * PAIRS {
            self.decide();
        }
    }

    fn decide(&mut self) {
        let gain = self.sum_trial / self.sum_current.max(f64::MIN_POSITIVE) - 1.0;
        let take = if self.trial > self.at {
            gain > MARGIN
        } else {
            gain > -MARGIN
        };
        if take {
            // Keep going the way that paid.
            self.up = self.trial > self.at;
            self.at = self.trial;
        } else {
            self.up = !self.up;
        }
        self.trial = self.neighbour();
        self.window = 0;
        self.sum_current = 0.0;
        self.sum_trial = 0.0;
    }

    fn neighbour(&mut self) -> usize {
        if self.at == 0 {
            self.up = true;
        } else if self.at == STEPS_US.len() - 1 {
            self.up = false;
        }
        if self.up {
            self.at + 1
        } else {
            self.at - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loop whose answers per microsecond, given the wait, follow `rate`, with ±5%
    /// noise per pass; runs `seconds` of simulated time.
    fn run(c: &mut Climber, seconds: u64, seed: u64, rate: impl Fn(u64) -> f64) {
        let mut rng = seed | 1;
        // Simulated time goes on from where the last run left it.
        let mut now = c.window_start.max(1_000_000);
        let mut wait = c.next(now, 0);
        let end = now + seconds * 1_000_000;
        let mut carry = 0.0;
        while now < end {
            // A pass of 100 µs plus the wait.
            let dt = 100 + wait;
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let noise = 0.95 + (rng % 1000) as f64 / 10_000.0;
            carry += rate(wait) * dt as f64 * noise;
            let served = carry as u32;
            carry -= f64::from(served);
            now += dt;
            wait = c.next(now, served);
        }
    }

    fn peaked_at(best: u64) -> impl Fn(u64) -> f64 {
        // 10% less throughput per step away from the best wait.
        move |w| {
            let i = STEPS_US.iter().position(|&s| s == w).unwrap_or(0) as f64;
            let b = STEPS_US.iter().position(|&s| s == best).unwrap_or(0) as f64;
            1.0 - 0.1 * (i - b).abs()
        }
    }

    #[test]
    fn finds_the_best_wait_wherever_it_is() {
        for (best, seed) in [(0, 1), (10, 2), (20, 3), (40, 4), (80, 5)] {
            let mut c = Climber::new();
            run(&mut c, 10, seed, peaked_at(best));
            assert_eq!(c.current_us(), best, "peak at {best} µs");
        }
    }

    #[test]
    fn follows_the_best_wait_when_it_moves() {
        let mut c = Climber::new();
        run(&mut c, 10, 7, peaked_at(40));
        assert_eq!(c.current_us(), 40);
        run(&mut c, 10, 8, peaked_at(5));
        assert_eq!(c.current_us(), 5);
    }

    #[test]
    fn a_wait_that_changes_nothing_drifts_down_to_none() {
        let mut c = Climber::new();
        run(&mut c, 10, 9, |_| 1.0);
        assert_eq!(c.current_us(), 0);
    }

    #[test]
    fn an_idle_gap_spoils_only_its_pair() {
        let mut c = Climber::new();
        let mut now = 1_000_000;
        c.next(now, 0);
        // One window at the current wait, then a long silence.
        now += WINDOW_US;
        c.next(now, 100);
        assert_eq!(c.window, 1);
        now += 10 * WINDOW_US;
        c.next(now, 100);
        assert_eq!(c.window, 0, "the pair starts again");
        assert_eq!(c.current_us(), STEPS_US[START]);
    }
}
