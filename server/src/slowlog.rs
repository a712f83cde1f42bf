//! The slow log: commands that ran longer than `slowlog-log-slower-than` microseconds,
//! newest first, at most `slowlog-max-len` of them (`SLOWLOG GET|LEN|RESET`).
//!
//! Only commands without Redis's `fast` flag are timed (O(1) commands are not worth two
//! clock reads each on the hot path), unless the threshold is 0, which times and logs
//! every command, as in Redis.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

/// Arguments kept per entry (Redis's `SLOWLOG_ENTRY_MAX_ARGC`).
const MAX_ARGS: usize = 32;
/// Bytes kept per argument (Redis's `SLOWLOG_ENTRY_MAX_STRING`).
const MAX_ARG_BYTES: usize = 128;

pub struct Entry {
    pub id: u64,
    pub unix_s: u64,
    pub micros: u64,
    pub args: Vec<Bytes>,
    pub addr: String,
    pub name: Bytes,
}

pub struct SlowLog {
    entries: Mutex<VecDeque<Entry>>,
    next_id: AtomicU64,
    /// Microseconds; negative turns the log off.
    threshold_us: AtomicI64,
    max_len: AtomicUsize,
}

impl Default for SlowLog {
    fn default() -> Self {
        SlowLog {
            entries: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(0),
            threshold_us: AtomicI64::new(10_000),
            max_len: AtomicUsize::new(128),
        }
    }
}

impl SlowLog {
    pub fn threshold_us(&self) -> i64 {
        self.threshold_us.load(Ordering::Relaxed)
    }

    pub fn set_threshold_us(&self, v: i64) {
        self.threshold_us.store(v, Ordering::Relaxed);
    }

    pub fn max_len(&self) -> usize {
        self.max_len.load(Ordering::Relaxed)
    }

    pub fn set_max_len(&self, n: usize) {
        self.max_len.store(n, Ordering::Relaxed);
        let mut e = self.entries.lock();
        e.truncate(n);
    }

    /// Whether a command with these flags must be timed.
    pub fn times(&self, fast: bool) -> bool {
        let t = self.threshold_us();
        t == 0 || (t > 0 && !fast)
    }

    /// Log a command that took `micros`, if that reaches the threshold.
    pub fn record(&self, micros: u64, args: &[Bytes], addr: String, name: Option<Bytes>) {
        let t = self.threshold_us();
        if t < 0 || micros < t as u64 {
            return;
        }
        let mut kept: Vec<Bytes> = Vec::with_capacity(args.len().min(MAX_ARGS));
        for (i, a) in args.iter().enumerate() {
            if i == MAX_ARGS - 1 && args.len() > MAX_ARGS {
                let more = args.len() - i;
                kept.push(Bytes::from(format!("... ({more} more arguments)")));
                break;
            }
            if a.len() > MAX_ARG_BYTES {
                let mut v = a[..MAX_ARG_BYTES].to_vec();
                v.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_ARG_BYTES).as_bytes(),
                );
                kept.push(Bytes::from(v));
            } else {
                kept.push(a.clone());
            }
        }
        let entry = Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            unix_s: crate::clock::now_ms() / 1000,
            micros,
            args: kept,
            addr,
            name: name.unwrap_or_default(),
        };
        let mut e = self.entries.lock();
        e.push_front(entry);
        e.truncate(self.max_len());
    }

    /// Visit up to `count` entries, newest first (`None`: all).
    pub fn with_entries<R>(&self, count: Option<usize>, f: impl FnOnce(&[&Entry]) -> R) -> R {
        let e = self.entries.lock();
        let list: Vec<&Entry> = e.iter().take(count.unwrap_or(usize::MAX)).collect();
        f(&list)
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&self) {
        self.entries.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_like_redis_and_keeps_the_newest() {
        let log = SlowLog::default();
        log.set_threshold_us(0);
        log.set_max_len(2);
        let long = Bytes::from(vec![b'x'; 200]);
        let many: Vec<Bytes> = (0..40).map(|i| Bytes::from(i.to_string())).collect();
        log.record(5, &[Bytes::from_static(b"SET"), long], "a".into(), None);
        log.record(6, &many, "b".into(), None);
        log.record(7, &many[..1], "c".into(), None);
        assert_eq!(log.len(), 2);
        log.with_entries(None, |e| {
            assert_eq!(e[0].micros, 7);
            assert_eq!(e[1].args.len(), 32);
            assert_eq!(&e[1].args[31][..], b"... (9 more arguments)");
        });
        log.reset();
        log.set_max_len(5);
        log.record(
            1,
            &[Bytes::from(vec![b'y'; 200])],
            "d".into(),
            Some(Bytes::from_static(b"n")),
        );
        log.with_entries(Some(1), |e| {
            assert!(e[0].args[0].ends_with(b"y... (72 more bytes)"));
        });
        log.set_threshold_us(-1);
        log.record(1_000_000, &many, "e".into(), None);
        assert_eq!(log.len(), 1);
    }
}
