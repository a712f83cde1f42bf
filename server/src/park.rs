//! Coalescing wake-ups: what an event loop does just before it blocks in `epoll_wait`.
//!
//! A loaded server goes idle many times a second: each time it has answered every client
//! that was ready, it blocks until a new request arrives. Waking a thread that is blocked
//! in `epoll_wait` is paid by whoever sends the request (on loopback, inside the client's
//! own `write`), and it costs a few microseconds of kernel time. With redis-benchmark at
//! `-P 1`, that wake-up was about a tenth of the load generator's CPU.
//!
//! So, when the loop is busy, it first sleeps for the configured wait (`--coalesce-us`)
//! and only then blocks. Requests that arrive during the sleep find no thread waiting, so
//! their senders pay no wake-up, and the loop then picks them all up in one pass.
//!
//! "Busy" means two things:
//! - The pass that just ended answered at least [`BUSY_BATCHES`] connections.
//! - At least [`MIN_ACTIVE`] distinct connections were answered in this millisecond or the
//!   one before.
//!
//! The second condition keeps a few clients from stalling. With four clients, every one of
//! them is waiting on the server by the time the wait ends, and the wait only adds to each
//! round trip: four clients lost 46% of their throughput to it. With many clients, the
//! clients still have replies to work on while the server waits.
//!
//! An idle server, or one serving a few clients at a time, never waits here, so its
//! latency is unchanged. Under load, a request waits at most the configured time (plus
//! the timer's overshoot) longer, and the server and its clients spend less CPU per
//! request. The README has the figures.
//!
//! A cluster node defaults to no wait (`config.rs`). Its loop also waits on raft commits,
//! and through a 3-node cluster's leader `SETEX -P 16` measured 272–282k req/s with the
//! wait against 281–315k without it, at more CPU per request.
//!
//! The counts are per thread, because each event loop parks on its own.
//!
//! How long to wait is found by trial unless it is given (`--coalesce-us auto`, the
//! default for a single node): see [`adapt`].

pub mod adapt;

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use crate::clock::now_us;

/// `--coalesce-us`: a fixed wait in microseconds (0: none), or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coalesce {
    Fixed(u64),
    Auto,
}

impl std::str::FromStr for Coalesce {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Coalesce::Auto);
        }
        s.parse::<u64>()
            .map(Coalesce::Fixed)
            .map_err(|_| format!("'{s}' is neither a number of microseconds nor 'auto'"))
    }
}

impl std::fmt::Display for Coalesce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Coalesce::Fixed(us) => write!(f, "{us}"),
            Coalesce::Auto => f.write_str("auto"),
        }
    }
}

/// Connections answered in one pass that make it a busy pass.
pub const BUSY_BATCHES: u32 = 4;
/// Distinct connections answered in the current or previous window that make the loop
/// wait after a busy pass.
pub const MIN_ACTIVE: u32 = 12;
/// The window over which distinct connections are counted, in microseconds.
const WINDOW_US: u64 = 1000;

/// One event loop's counts.
struct Counts {
    /// Connections answered since the last park.
    pass: Cell<u32>,
    /// The current window's number; a connection remembers the last one it was counted in.
    window: Cell<u32>,
    window_start_us: Cell<u64>,
    /// Distinct connections answered in the current window.
    active: Cell<u32>,
    /// The same count for the window before.
    active_before: Cell<u32>,
    slack_set: Cell<bool>,
    climber: RefCell<adapt::Climber>,
    /// This loop's place in `SETTLED`, once it has one.
    slot: Cell<Option<usize>>,
}

thread_local! {
    static COUNTS: Counts = const {
        Counts {
            pass: Cell::new(0),
            window: Cell::new(1),
            window_start_us: Cell::new(0),
            active: Cell::new(0),
            active_before: Cell::new(0),
            slack_set: Cell::new(false),
            climber: RefCell::new(adapt::Climber::new()),
            slot: Cell::new(None),
        }
    };
}

/// Called by a connection after it has answered one batch of commands. `seen` is the
/// connection's own note of the last window it was counted in; start it at 0.
#[inline]
pub fn served_batch(seen: &mut u32) {
    COUNTS.with(|c| {
        c.pass.set(c.pass.get().saturating_add(1));
        let w = c.window.get();
        if *seen != w {
            *seen = w;
            c.active.set(c.active.get().saturating_add(1));
        }
    });
}

/// The hook for tokio's `on_thread_park`: when the loop is busy, waits the fixed time, or
/// the time this loop's [`adapt::Climber`] chose. `Fixed(0)` turns coalescing off.
pub fn hook(coalesce: Coalesce) -> impl Fn() + Send + Sync + 'static {
    move || {
        let now = now_us();
        let (busy, pass) = end_pass(now);
        let wait_us = match coalesce {
            Coalesce::Fixed(us) => us,
            // Every pass counts toward the climber's windows, busy or not: counting only
            // busy ones would favour longer waits, which make more passes busy.
            Coalesce::Auto => COUNTS.with(|c| {
                let mut climber = c.climber.borrow_mut();
                let wait = climber.next(now, pass);
                publish(c, climber.current_us());
                wait
            }),
        };
        if !busy || wait_us == 0 {
            return;
        }
        COUNTS.with(|c| {
            if !c.slack_set.replace(true) {
                tighten_timer_slack();
            }
        });
        std::thread::sleep(Duration::from_micros(wait_us));
    }
}

/// Event loops whose settled wait `INFO` shows.
const SHOWN: usize = 64;
/// Each `auto` loop's settled wait plus one (0: no such loop), for `INFO`.
static SETTLED: [AtomicU64; SHOWN] = [const { AtomicU64::new(0) }; SHOWN];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

/// The waits the `auto` loops have settled on so far, in microseconds, one per loop that
/// has been busy.
pub fn settled_us() -> Vec<u64> {
    SETTLED
        .iter()
        .map(|s| s.load(Relaxed))
        .take_while(|&v| v != 0)
        .map(|v| v - 1)
        .collect()
}

fn publish(c: &Counts, us: u64) {
    let slot = match c.slot.get() {
        Some(s) => s,
        None => {
            let s = NEXT_SLOT.fetch_add(1, Relaxed);
            c.slot.set(Some(s));
            s
        }
    };
    if let Some(a) = SETTLED.get(slot) {
        a.store(us + 1, Relaxed);
    }
}

/// Ends a pass at `now_us`: rolls the window if it is over, starts the pass count over,
/// and says whether the loop is busy, with the connections the pass answered.
fn end_pass(now_us: u64) -> (bool, u32) {
    COUNTS.with(|c| {
        let pass = c.pass.replace(0);
        let busy = pass >= BUSY_BATCHES && c.active.get().max(c.active_before.get()) >= MIN_ACTIVE;
        if now_us.saturating_sub(c.window_start_us.get()) >= WINDOW_US {
            c.window_start_us.set(now_us);
            c.window.set(c.window.get().wrapping_add(1).max(1));
            c.active_before.set(c.active.replace(0));
        }
        (busy, pass)
    })
}

/// Linux rounds a sleeping thread's timer up by its "timer slack", 50 µs by default, which
/// would more than triple a 20 µs wait. Ask for 1 µs on this thread.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!("PR_SET_TIMERSLACK failed; coalescing waits will be coarser");
    }
}

#[cfg(not(target_os = "linux"))]
fn tighten_timer_slack() {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Runs `f` on a thread of its own, so that it starts from fresh counts.
    fn fresh(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(f)
            .join()
            .expect("the test thread panicked");
    }

    /// Distinct connections (their `seen` notes) each answer one batch.
    fn serve(seen: &mut [u32]) {
        for s in seen.iter_mut() {
            served_batch(s);
        }
    }

    const T0: u64 = 10_000_000;

    #[test]
    fn a_few_connections_never_make_the_loop_busy() {
        fresh(|| {
            let mut few = [0u32; (MIN_ACTIVE - 1) as usize];
            for pass in 0..20 {
                serve(&mut few);
                assert!(!end_pass(T0 + pass * WINDOW_US / 4).0, "pass {pass}");
            }
        });
    }

    #[test]
    fn enough_connections_and_a_full_pass_make_it_busy() {
        fresh(|| {
            let mut conns = [0u32; MIN_ACTIVE as usize];
            serve(&mut conns);
            assert!(end_pass(T0).0);
            // A short pass is not busy, even with many connections active.
            serve(&mut conns[..(BUSY_BATCHES - 1) as usize]);
            assert!(!end_pass(T0 + 1).0);
            serve(&mut conns[..BUSY_BATCHES as usize]);
            assert!(end_pass(T0 + 2).0);
        });
    }

    #[test]
    fn a_connection_counts_once_per_window() {
        fresh(|| {
            let mut one = 0u32;
            for pass in 0..4 {
                for _ in 0..MIN_ACTIVE {
                    served_batch(&mut one);
                }
                assert!(!end_pass(T0 + pass * WINDOW_US).0, "pass {pass}");
            }
        });
    }

    #[test]
    fn the_window_before_still_counts_then_expires() {
        fresh(|| {
            let mut conns = [0u32; MIN_ACTIVE as usize];
            serve(&mut conns);
            assert!(end_pass(T0).0);
            // The next window: a few of the same connections; the window before carries
            // the rest.
            serve(&mut conns[..BUSY_BATCHES as usize]);
            assert!(end_pass(T0 + WINDOW_US).0);
            // Two windows on, only the last window's connections count.
            serve(&mut conns[..BUSY_BATCHES as usize]);
            assert!(!end_pass(T0 + 2 * WINDOW_US).0);
        });
    }

    #[test]
    fn a_busy_loop_waits_and_zero_turns_it_off() {
        fresh(|| {
            let mut conns = [0u32; MIN_ACTIVE as usize];
            serve(&mut conns);
            let t = Instant::now();
            hook(Coalesce::Fixed(20_000))();
            assert!(
                t.elapsed() >= Duration::from_millis(20),
                "a busy loop did not wait"
            );
            // With 0 the hook still ends the pass; whether it slept cannot be asserted on
            // a shared machine, so check the pass was consumed.
            serve(&mut conns);
            hook(Coalesce::Fixed(0))();
            assert!(!end_pass(now_us()).0, "hook(0) did not end the pass");
        });
    }
}
