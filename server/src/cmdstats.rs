//! Per-command statistics for `INFO commandstats`, `INFO errorstats` and
//! `INFO latencystats`: calls, time, rejected and failed calls for each command and
//! subcommand (by ACL id, see `cmd::table`), error replies by their first word, and a
//! latency histogram per command.
//!
//! Counting is a few relaxed atomic adds per command. Timing costs two clock reads, so
//! one call in [`SAMPLE`] is timed (per thread) and counted [`SAMPLE`] times over: `usec`
//! and the percentiles are estimates, `calls` is exact.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;

use crate::cmd::table::{acl_entry, acl_ids};

/// One call in this many is timed.
pub const SAMPLE: u64 = 8;
/// Histogram buckets: bucket `b` holds times below 2^(b/4) µs.
const BUCKETS: usize = 128;

struct Per {
    calls: AtomicU64,
    usec: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    hist: Box<[AtomicU64]>,
}

impl Per {
    fn new() -> Per {
        Per {
            calls: AtomicU64::new(0),
            usec: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            hist: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

pub struct CmdStats {
    per: Box<[Per]>,
    errors: Mutex<BTreeMap<String, u64>>,
    total_errors: AtomicU64,
}

impl Default for CmdStats {
    fn default() -> Self {
        CmdStats {
            per: (0..acl_ids()).map(|_| Per::new()).collect(),
            errors: Mutex::new(BTreeMap::new()),
            total_errors: AtomicU64::new(0),
        }
    }
}

/// Whether this thread times its next call.
pub fn sample_now() -> bool {
    thread_local!(static N: Cell<u64> = const { Cell::new(0) });
    N.with(|n| {
        let v = n.get().wrapping_add(1);
        n.set(v);
        v % SAMPLE == 0
    })
}

fn bucket(usec: f64) -> usize {
    if usec < 1.0 {
        return 0;
    }
    ((usec.log2() * 4.0) as usize + 1).min(BUCKETS - 1)
}

fn bucket_upper(b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        2f64.powf(b as f64 / 4.0)
    }
}

impl CmdStats {
    /// A call that ran: `usec` when it was timed, whether it replied an error (and which).
    pub fn ran(&self, id: usize, usec: Option<f64>, error: Option<&[u8]>) {
        let Some(p) = self.per.get(id) else { return };
        p.calls.fetch_add(1, Relaxed);
        if let Some(us) = usec {
            p.usec.fetch_add((us * SAMPLE as f64) as u64, Relaxed);
            p.hist[bucket(us)].fetch_add(SAMPLE, Relaxed);
        }
        if let Some(e) = error {
            p.failed.fetch_add(1, Relaxed);
            self.error(e);
        }
    }

    /// A call refused before it ran (`id` when the command is known).
    pub fn rejected(&self, id: Option<usize>, error: &[u8]) {
        if let Some(p) = id.and_then(|i| self.per.get(i)) {
            p.rejected.fetch_add(1, Relaxed);
        }
        self.error(error);
    }

    /// Count an error reply by its first word (`ERR`, `WRONGTYPE`...).
    pub fn error(&self, reply: &[u8]) {
        let body = reply.strip_prefix(b"-").unwrap_or(reply);
        let end = body
            .iter()
            .position(|&c| c == b' ' || c == b'\r')
            .unwrap_or(body.len());
        let prefix = String::from_utf8_lossy(&body[..end.min(64)]).into_owned();
        self.total_errors.fetch_add(1, Relaxed);
        let mut e = self.errors.lock();
        // Like Redis, at most 128 kinds; further ones count under ERR... only as total.
        if e.len() < 128 || e.contains_key(&prefix) {
            *e.entry(prefix).or_insert(0) += 1;
        }
    }

    pub fn total_errors(&self) -> u64 {
        self.total_errors.load(Relaxed)
    }

    pub fn reset(&self) {
        for p in self.per.iter() {
            for a in [&p.calls, &p.usec, &p.rejected, &p.failed] {
                a.store(0, Relaxed);
            }
            for h in p.hist.iter() {
                h.store(0, Relaxed);
            }
        }
        self.errors.lock().clear();
        self.total_errors.store(0, Relaxed);
    }

    pub fn write_commandstats(&self, t: &mut String) {
        t.push_str("# Commandstats\r\n");
        for (id, p) in self.per.iter().enumerate() {
            let calls = p.calls.load(Relaxed);
            let (rejected, failed) = (p.rejected.load(Relaxed), p.failed.load(Relaxed));
            if calls == 0 && rejected == 0 {
                continue;
            }
            let usec = p.usec.load(Relaxed);
            let per_call = if calls == 0 {
                0.0
            } else {
                usec as f64 / calls as f64
            };
            let _ = write!(
                t,
                "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
                acl_entry(id).0
            );
        }
    }

    pub fn write_errorstats(&self, t: &mut String) {
        t.push_str("# Errorstats\r\n");
        for (k, v) in self.errors.lock().iter() {
            let _ = write!(t, "errorstat_{k}:count={v}\r\n");
        }
    }

    pub fn write_latencystats(&self, t: &mut String) {
        t.push_str("# Latencystats\r\n");
        for (id, p) in self.per.iter().enumerate() {
            let counts: Vec<u64> = p.hist.iter().map(|h| h.load(Relaxed)).collect();
            let total: u64 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let pct = |q: f64| {
                let want = (total as f64 * q).ceil() as u64;
                let mut seen = 0;
                for (b, c) in counts.iter().enumerate() {
                    seen += c;
                    if seen >= want {
                        return bucket_upper(b);
                    }
                }
                bucket_upper(BUCKETS - 1)
            };
            let _ = write!(
                t,
                "latency_percentiles_usec_{}:p50={:.3},p99={:.3},p99.9={:.3}\r\n",
                acl_entry(id).0,
                pct(0.5),
                pct(0.99),
                pct(0.999)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_calls_errors_and_percentiles() {
        let s = CmdStats::default();
        s.ran(0, Some(3.0), None);
        s.ran(0, None, Some(b"-ERR syntax error\r\n"));
        s.rejected(Some(1), b"NOPERM User x has no permissions");
        let mut t = String::new();
        s.write_commandstats(&mut t);
        assert!(
            t.contains(&format!("cmdstat_{}:calls=2,usec=24,", acl_entry(0).0)),
            "{t}"
        );
        assert!(t.contains("rejected_calls=1,failed_calls=0"), "{t}");
        let mut e = String::new();
        s.write_errorstats(&mut e);
        assert!(e.contains("errorstat_ERR:count=1") && e.contains("errorstat_NOPERM:count=1"));
        assert_eq!(s.total_errors(), 2);
        let mut l = String::new();
        s.write_latencystats(&mut l);
        assert!(l.contains("p50="), "{l}");
        s.reset();
        assert_eq!(s.total_errors(), 0);
    }
}
