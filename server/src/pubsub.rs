//! Pub/sub: the registry of subscribed connections, `PUBLISH` delivery, and keyspace
//! notifications (`notify-keyspace-events`).
//!
//! Every subscribed connection owns a bounded queue; the registry maps channels and
//! patterns to the senders of those queues. Publishing takes the registry's read lock and
//! `try_send`s one shared message per receiver, so it never waits on a slow client. A
//! client whose queue is full is marked to be disconnected, as Redis disconnects a
//! subscriber over its pubsub output buffer limit.
//!
//! In a cluster, `PUBLISH` is replicated (every node delivers to its own subscribers when
//! it applies it) and keyspace events come from applying entries, so a subscriber on any
//! node sees them, expirations included.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;
use parking_lot::RwLock;
use sessiond_protocol::encode;
use tokio::sync::mpsc;

use crate::cmd::glob_match;

/// Messages queued per subscriber before it counts as too slow and is disconnected.
pub const QUEUE: usize = 64 * 1024;

/// One message for a subscriber.
pub struct Message {
    /// The pattern that matched, for `pmessage`.
    pub pattern: Option<Bytes>,
    pub channel: Bytes,
    pub payload: Bytes,
}

impl Message {
    /// Encode as Redis does: `message` (or `pmessage`) as an array in RESP2, a push in RESP3.
    pub fn encode(&self, out: &mut BytesMut, resp3: bool) {
        match &self.pattern {
            Some(p) => {
                encode::push_len(out, 4, resp3);
                encode::bulk(out, b"pmessage");
                encode::bulk(out, p);
            }
            None => {
                encode::push_len(out, 3, resp3);
                encode::bulk(out, b"message");
            }
        }
        encode::bulk(out, &self.channel);
        encode::bulk(out, &self.payload);
    }
}

/// A subscriber's end in the registry.
#[derive(Clone)]
struct Subscriber {
    tx: mpsc::Sender<Arc<Message>>,
    overflow: Arc<AtomicBool>,
}

impl Subscriber {
    fn deliver(&self, msg: &Arc<Message>) -> bool {
        match self.tx.try_send(msg.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.store(true, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// A connection's subscription state (kept in its `Conn`). Dropping it (the client
/// disconnected) removes the client from the registry.
pub struct Subscription {
    ps: Arc<PubSub>,
    client: u64,
    pub rx: mpsc::Receiver<Arc<Message>>,
    tx: mpsc::Sender<Arc<Message>>,
    /// Set by a publisher that found the queue full: close the connection.
    pub overflow: Arc<AtomicBool>,
    pub channels: hashbrown::HashSet<Bytes>,
    pub patterns: hashbrown::HashSet<Bytes>,
}

impl Subscription {
    pub fn new(ps: Arc<PubSub>, client: u64) -> Subscription {
        let (tx, rx) = mpsc::channel(QUEUE);
        Subscription {
            ps,
            client,
            rx,
            tx,
            overflow: Arc::new(AtomicBool::new(false)),
            channels: hashbrown::HashSet::new(),
            patterns: hashbrown::HashSet::new(),
        }
    }

    /// Channels plus patterns: the count Redis reports after each (un)subscribe.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    fn subscriber(&self) -> Subscriber {
        Subscriber {
            tx: self.tx.clone(),
            overflow: self.overflow.clone(),
        }
    }

    pub fn subscribe(&mut self, channel: Bytes) {
        if self.channels.insert(channel.clone()) {
            let s = self.subscriber();
            self.ps.add(false, channel, self.client, s);
        }
    }

    pub fn psubscribe(&mut self, pattern: Bytes) {
        if self.patterns.insert(pattern.clone()) {
            let s = self.subscriber();
            self.ps.add(true, pattern, self.client, s);
        }
    }

    /// Returns whether the client was subscribed to `channel`.
    pub fn unsubscribe(&mut self, channel: &[u8]) -> bool {
        let had = self.channels.remove(channel);
        if had {
            self.ps.remove(false, channel, self.client);
        }
        had
    }

    pub fn punsubscribe(&mut self, pattern: &[u8]) -> bool {
        let had = self.patterns.remove(pattern);
        if had {
            self.ps.remove(true, pattern, self.client);
        }
        had
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        for c in std::mem::take(&mut self.channels) {
            self.ps.remove(false, &c, self.client);
        }
        for p in std::mem::take(&mut self.patterns) {
            self.ps.remove(true, &p, self.client);
        }
    }
}

#[derive(Default)]
struct Inner {
    channels: HashMap<Bytes, HashMap<u64, Subscriber>>,
    patterns: HashMap<Bytes, HashMap<u64, Subscriber>>,
}

/// The server's pub/sub registry.
#[derive(Default)]
pub struct PubSub {
    inner: RwLock<Inner>,
    /// Subscriptions of all clients, so that publishing with none costs one load.
    total: AtomicUsize,
    /// `notify-keyspace-events`, as [`Flags`] bits.
    notify: AtomicU32,
}

impl PubSub {
    fn add(&self, pattern: bool, name: Bytes, client: u64, s: Subscriber) {
        let mut inner = self.inner.write();
        let map = if pattern {
            &mut inner.patterns
        } else {
            &mut inner.channels
        };
        map.entry(name).or_default().insert(client, s);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    fn remove(&self, pattern: bool, name: &[u8], client: u64) {
        let mut inner = self.inner.write();
        let map = if pattern {
            &mut inner.patterns
        } else {
            &mut inner.channels
        };
        if let Some(m) = map.get_mut(name) {
            if m.remove(&client).is_some() {
                self.total.fetch_sub(1, Ordering::Relaxed);
            }
            if m.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Deliver `payload` to the subscribers of `channel` and of every matching pattern.
    /// Returns how many received it, as `PUBLISH` replies.
    pub fn publish(&self, channel: &[u8], payload: &[u8]) -> usize {
        if self.total.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let inner = self.inner.read();
        let mut n = 0;
        let channel_b = Bytes::copy_from_slice(channel);
        let payload_b = Bytes::copy_from_slice(payload);
        if let Some(subs) = inner.channels.get(channel) {
            let msg = Arc::new(Message {
                pattern: None,
                channel: channel_b.clone(),
                payload: payload_b.clone(),
            });
            n += subs.values().filter(|s| s.deliver(&msg)).count();
        }
        for (pattern, subs) in &inner.patterns {
            if glob_match(pattern, channel, false) {
                let msg = Arc::new(Message {
                    pattern: Some(pattern.clone()),
                    channel: channel_b.clone(),
                    payload: payload_b.clone(),
                });
                n += subs.values().filter(|s| s.deliver(&msg)).count();
            }
        }
        n
    }

    /// `PUBSUB CHANNELS [pattern]`.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.inner
            .read()
            .channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    /// `PUBSUB NUMSUB`: subscribers of one channel.
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.inner
            .read()
            .channels
            .get(channel)
            .map_or(0, |m| m.len())
    }

    /// `PUBSUB NUMPAT`: patterns with at least one subscriber.
    pub fn numpat(&self) -> usize {
        self.inner.read().patterns.len()
    }

    // ---- keyspace notifications ------------------------------------------------------

    pub fn notify_flags(&self) -> u32 {
        self.notify.load(Ordering::Relaxed)
    }

    pub fn set_notify_flags(&self, flags: u32) {
        self.notify.store(flags, Ordering::Relaxed);
    }

    /// Whether events of `class` would be published at all.
    pub fn wants(&self, class: u32) -> bool {
        let f = self.notify.load(Ordering::Relaxed);
        f & class != 0 && f & (flags::KEYSPACE | flags::KEYEVENT) != 0
    }

    /// Publish a keyspace event of database 0, as Redis's `notifyKeyspaceEvent` does: to
    /// `__keyspace@0__:<key>` with the event as payload (flag `K`) and to
    /// `__keyevent@0__:<event>` with the key as payload (flag `E`).
    pub fn notify(&self, class: u32, event: &str, key: &[u8]) {
        self.notify_db(0, class, event, key);
    }

    /// [`PubSub::notify`] for a key of database `db` (`__keyspace@<db>__:<key>`).
    pub fn notify_db(&self, db: usize, class: u32, event: &str, key: &[u8]) {
        let f = self.notify.load(Ordering::Relaxed);
        if f & class == 0 || self.total.load(Ordering::Relaxed) == 0 {
            return;
        }
        let channel = |kind: &str, tail: &[u8]| {
            let mut ch = Vec::with_capacity(16 + tail.len());
            ch.extend_from_slice(format!("__{kind}@{db}__:").as_bytes());
            ch.extend_from_slice(tail);
            ch
        };
        if f & flags::KEYSPACE != 0 {
            self.publish(&channel("keyspace", key), event.as_bytes());
        }
        if f & flags::KEYEVENT != 0 {
            self.publish(&channel("keyevent", event.as_bytes()), key);
        }
    }
}

/// `notify-keyspace-events` classes, Redis's letters.
pub mod flags {
    pub const KEYSPACE: u32 = 1 << 0; // K
    pub const KEYEVENT: u32 = 1 << 1; // E
    pub const GENERIC: u32 = 1 << 2; // g
    pub const STRING: u32 = 1 << 3; // $
    pub const LIST: u32 = 1 << 4; // l
    pub const SET: u32 = 1 << 5; // s
    pub const HASH: u32 = 1 << 6; // h
    pub const ZSET: u32 = 1 << 7; // z
    pub const EXPIRED: u32 = 1 << 8; // x
    pub const EVICTED: u32 = 1 << 9; // e
    pub const STREAM: u32 = 1 << 10; // t
    pub const KEY_MISS: u32 = 1 << 11; // m
    pub const MODULE: u32 = 1 << 12; // d
    pub const NEW: u32 = 1 << 13; // n
    /// `A`: every class but `m` and `n`.
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

    /// Parse a flag string as `CONFIG SET notify-keyspace-events` takes it.
    pub fn parse(s: &[u8]) -> Option<u32> {
        let mut f = 0;
        for &c in s {
            f |= match c {
                b'A' => ALL,
                b'g' => GENERIC,
                b'$' => STRING,
                b'l' => LIST,
                b's' => SET,
                b'h' => HASH,
                b'z' => ZSET,
                b'x' => EXPIRED,
                b'e' => EVICTED,
                b'K' => KEYSPACE,
                b'E' => KEYEVENT,
                b't' => STREAM,
                b'm' => KEY_MISS,
                b'd' => MODULE,
                b'n' => NEW,
                _ => return None,
            };
        }
        Some(f)
    }

    /// The flag string `CONFIG GET` shows, in Redis's order.
    pub fn render(f: u32) -> String {
        let mut s = String::new();
        if f & ALL == ALL {
            s.push('A');
        } else {
            for (bit, c) in [
                (GENERIC, 'g'),
                (STRING, '$'),
                (LIST, 'l'),
                (SET, 's'),
                (HASH, 'h'),
                (ZSET, 'z'),
                (EXPIRED, 'x'),
                (EVICTED, 'e'),
                (STREAM, 't'),
                (MODULE, 'd'),
                (NEW, 'n'),
            ] {
                if f & bit != 0 {
                    s.push(c);
                }
            }
        }
        for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
            if f & bit != 0 {
                s.push(c);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_like_redis() {
        assert_eq!(flags::render(flags::parse(b"Egx").unwrap_or(0)), "gxE");
        assert_eq!(flags::render(flags::parse(b"KEA").unwrap_or(0)), "AKE");
        assert_eq!(flags::parse(b""), Some(0));
        assert_eq!(flags::parse(b"Q"), None);
    }

    #[tokio::test]
    async fn publish_reaches_channels_and_patterns_and_counts_them() {
        let ps = Arc::new(PubSub::default());
        let mut a = Subscription::new(ps.clone(), 1);
        let mut b = Subscription::new(ps.clone(), 2);
        a.subscribe(Bytes::from_static(b"news"));
        b.psubscribe(Bytes::from_static(b"n*"));
        assert_eq!(ps.publish(b"news", b"hi"), 2);
        assert_eq!(ps.publish(b"other", b"x"), 0);
        let m = a.rx.recv().await.expect("message");
        assert_eq!((&m.channel[..], &m.payload[..]), (&b"news"[..], &b"hi"[..]));
        let m = b.rx.recv().await.expect("pmessage");
        assert_eq!(m.pattern.as_deref(), Some(&b"n*"[..]));
        assert!(a.unsubscribe(b"news"));
        assert!(!a.unsubscribe(b"news"));
        drop(b);
        assert_eq!(ps.publish(b"news", b"hi"), 0);
        assert_eq!(ps.numpat(), 0);
    }
}
