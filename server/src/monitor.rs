//! `MONITOR`: every command that runs, as one line per command, to each monitoring
//! connection. A command is fed after it ran (so `EXEC` follows the commands it ran, as
//! in Redis), with `AUTH` and `HELLO ... AUTH` passwords redacted; admin commands are not
//! fed. With no monitor the cost is one relaxed atomic load per command.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::mpsc;

/// How many lines a monitor may lag before it misses some.
const QUEUE: usize = 65_536;

#[derive(Default)]
pub struct Monitors {
    count: AtomicUsize,
    subs: Mutex<Vec<(u64, mpsc::Sender<Bytes>)>>,
}

impl Monitors {
    /// Make connection `id` a monitor: the lines it will receive.
    pub fn add(&self, id: u64) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut s = self.subs.lock();
        s.retain(|(i, _)| *i != id);
        s.push((id, tx));
        self.count.store(s.len(), Relaxed);
        rx
    }

    pub fn remove(&self, id: u64) {
        let mut s = self.subs.lock();
        s.retain(|(i, _)| *i != id);
        self.count.store(s.len(), Relaxed);
    }

    pub fn active(&self) -> bool {
        self.count.load(Relaxed) > 0
    }

    /// Feed one command that ran, from `addr` (`None`: applied from the raft log).
    pub fn feed(&self, addr: Option<SocketAddr>, args: &[Bytes]) {
        if !self.active() {
            return;
        }
        let source = addr.map_or("raft".to_string(), |a| a.to_string());
        self.feed_from(&source, args);
    }

    /// A line whose source is `source` (`lua` for a script's commands, as Redis shows them).
    pub fn feed_from(&self, source: &str, args: &[Bytes]) {
        if !self.active() {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut line = format!("+{}.{:06} [0 {source}]", now.as_secs(), now.subsec_micros(),);
        let redact_from = redact_from(args);
        for (i, a) in args.iter().enumerate() {
            line.push(' ');
            if i >= redact_from {
                line.push_str("\"(redacted)\"");
            } else {
                quote(&mut line, a);
            }
        }
        line.push_str("\r\n");
        let line = Bytes::from(line);
        let mut s = self.subs.lock();
        // A monitor that went away leaves; one that lags misses lines.
        s.retain(|(_, tx)| {
            !matches!(
                tx.try_send(line.clone()),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
        self.count.store(s.len(), Relaxed);
    }
}

/// From which argument on a command's arguments are passwords.
fn redact_from(args: &[Bytes]) -> usize {
    if args[0].eq_ignore_ascii_case(b"auth") {
        return 1;
    }
    if args[0].eq_ignore_ascii_case(b"hello") {
        if let Some(i) = args.iter().position(|a| a.eq_ignore_ascii_case(b"auth")) {
            return i + 1;
        }
    }
    usize::MAX
}

/// Redis's `sdscatrepr`: a quoted string with C escapes.
fn quote(out: &mut String, b: &[u8]) {
    out.push('"');
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_quote_and_redact_like_redis() {
        let m = Monitors::default();
        let mut rx = m.add(7);
        let args = |v: &[&[u8]]| {
            v.iter()
                .map(|a| Bytes::copy_from_slice(a))
                .collect::<Vec<_>>()
        };
        m.feed(None, &args(&[b"set", b"k\"\n", b"\x01 v"]));
        m.feed(None, &args(&[b"auth", b"user", b"pw"]));
        m.feed(None, &args(&[b"hello", b"3", b"AUTH", b"u", b"p"]));
        let l1 = rx.try_recv().expect("line");
        assert!(
            l1.ends_with(b" \"set\" \"k\\\"\\n\" \"\\x01 v\"\r\n"),
            "{l1:?}"
        );
        let l2 = rx.try_recv().expect("line");
        assert!(
            l2.ends_with(b" \"auth\" \"(redacted)\" \"(redacted)\"\r\n"),
            "{l2:?}"
        );
        let l3 = rx.try_recv().expect("line");
        assert!(
            l3.ends_with(b"\"hello\" \"3\" \"AUTH\" \"(redacted)\" \"(redacted)\"\r\n"),
            "{l3:?}"
        );
        m.remove(7);
        assert!(!m.active());
    }
}
