//! Client-side caching (`CLIENT TRACKING`): who read which key, and the invalidation
//! messages sent when those keys change.
//!
//! Redis 7's semantics, with one table per node:
//! - **Default mode.** Before a tracking client's read-only command runs, its keys are
//!   remembered against the client's id ([`Tracking::remember`]). Registering before the
//!   read (Redis, single-threaded, does it after) closes the race between a read on one
//!   thread and a write on another: a write that lands between the two still finds the
//!   key in the table. The table is keyed by key name alone, whatever the database.
//! - **BCAST.** Keys changed under a registered prefix collect per prefix and go out as
//!   one message per prefix at the end of the command that changed them
//!   ([`Tracking::broadcast`]).
//! - **Changes** reach the table through the stores' [`TouchHook`], which every change
//!   to a key passes (writes, expiry by the wheel or on read, eviction, `RENAME`,
//!   `MOVE`, `RESTORE`, scripts, and in a cluster every applied record). `FLUSHDB`,
//!   `FLUSHALL` and `SWAPDB` send one null invalidation to every tracking client
//!   instead ([`Tracking::flush`]).
//! - **Delivery.** A message goes to the client's own connection as a RESP3 push, or to
//!   its `REDIRECT` target (a RESP3 push, or a `__redis__:invalidate` pub/sub message
//!   for a RESP2 subscriber). It is appended to the target's inbox
//!   ([`ClientInfo::inbox`]), which the connection writes between commands, never
//!   inside a reply, or at once while it waits for input.
//! - **NOLOOP** needs the client whose command made the change: [`enter`] marks it for
//!   the thread running the command (a cluster's applier marks the origin a record
//!   carries).
//! - **Bounded.** The table holds at most `tracking-table-max-keys` keys; past it, keys
//!   are dropped with an invalidation, as if changed ([`Tracking::enforce_limit`]).
//!   A client that stops tracking or disconnects leaves nothing behind: its prefixes
//!   go at once, and its ids in the table are skipped and fall out with their keys (the
//!   whole table is dropped when no client tracks).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;
use parking_lot::Mutex;

use crate::clients::ClientInfo;
use crate::store::TouchHook;

/// The pub/sub channel a RESP2 redirect target receives invalidations on.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";
/// Redis's default `tracking-table-max-keys`.
pub const DEFAULT_MAX_KEYS: u64 = 1_000_000;
/// Bytes of pushes waiting for one client before it counts as too slow and is closed.
const INBOX_LIMIT: usize = 64 << 20;
/// `CLIENT LIST` flag bits in [`ClientInfo::tracking`].
pub const FLAG_ON: u8 = 1;
pub const FLAG_BROKEN: u8 = 2;
pub const FLAG_BCAST: u8 = 4;

/// How a client tracks (`CLIENT TRACKING ON ...`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mode {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// The client id invalidations go to; 0 for the client itself.
    pub redirect: u64,
}

/// A connection's own copy of its mode, for the checks on each command.
#[derive(Clone, Debug, Default)]
pub struct ConnTracking {
    pub mode: Mode,
    /// `CLIENT CACHING YES|NO` was given for the next command.
    pub caching: bool,
}

impl ConnTracking {
    /// Whether the next read's keys are remembered.
    pub fn remembers(&self) -> bool {
        let m = &self.mode;
        // OPTIN remembers only with CACHING YES given; OPTOUT unless CACHING NO given.
        let wanted = if m.optin {
            self.caching
        } else if m.optout {
            !self.caching
        } else {
            true
        };
        !m.bcast && wanted
    }
}

thread_local! {
    /// The client whose command runs on this thread (0: none, or the system).
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

/// Marks `client` as the one running commands on this thread until dropped.
pub struct Scope(u64);

pub fn enter(client: u64) -> Scope {
    Scope(CURRENT.with(|c| c.replace(client)))
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

fn current() -> u64 {
    CURRENT.with(Cell::get)
}

struct Client {
    info: Arc<ClientInfo>,
    mode: Mode,
    /// BCAST prefixes, sorted.
    prefixes: BTreeSet<Bytes>,
    broken: bool,
}

#[derive(Default)]
struct Prefix {
    clients: BTreeSet<u64>,
    /// Keys changed since the last broadcast, with the client that changed each last
    /// (0: expiry, eviction or the log), for NOLOOP.
    keys: BTreeMap<Bytes, u64>,
}

#[derive(Default)]
struct State {
    /// Key → ids of the clients that may cache it.
    keys: HashMap<Bytes, Vec<u64>>,
    items: usize,
    prefixes: HashMap<Bytes, Prefix>,
    /// Prefix length → number of prefixes of that length: a changed key is looked up
    /// once per length, not once per prefix.
    prefix_lens: BTreeMap<usize, usize>,
    clients: HashMap<u64, Client>,
}

/// What an invalidation carries.
enum Payload<'a> {
    Key(&'a [u8]),
    /// Already RESP: an array of keys (BCAST).
    Proto(&'a [u8]),
    /// Every key (a flush): RESP null in the tracking client's protocol.
    All,
}

/// The node's tracking table.
pub struct Tracking {
    hook: Arc<TouchHook>,
    state: Mutex<State>,
    registry: Arc<Mutex<BTreeMap<u64, Arc<ClientInfo>>>>,
    max_keys: AtomicU64,
    clients: AtomicUsize,
    bcast_pending: AtomicBool,
}

impl Tracking {
    pub fn new(
        hook: Arc<TouchHook>,
        registry: Arc<Mutex<BTreeMap<u64, Arc<ClientInfo>>>>,
    ) -> Arc<Tracking> {
        let t = Arc::new(Tracking {
            hook: hook.clone(),
            state: Mutex::new(State::default()),
            registry,
            max_keys: AtomicU64::new(DEFAULT_MAX_KEYS),
            clients: AtomicUsize::new(0),
            bcast_pending: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&t);
        hook.set(Box::new(move |key, by_client| {
            if let Some(t) = weak.upgrade() {
                t.touched(key, by_client);
            }
        }));
        t
    }

    /// Whether any client tracks (commands skip tracking's steps otherwise).
    #[inline]
    pub fn active(&self) -> bool {
        self.hook.is_on()
    }

    pub fn max_keys(&self) -> u64 {
        self.max_keys.load(Relaxed)
    }

    /// `CONFIG SET tracking-table-max-keys` (0: no limit); applied at once.
    pub fn set_max_keys(&self, n: u64) {
        self.max_keys.store(n, Relaxed);
        self.enforce_limit();
    }

    /// `tracking_clients`.
    pub fn clients(&self) -> usize {
        self.clients.load(Relaxed)
    }

    /// `tracking_total_keys`, `tracking_total_items`, `tracking_total_prefixes`.
    pub fn totals(&self) -> (usize, usize, usize) {
        let st = self.state.lock();
        (st.keys.len(), st.items, st.prefixes.len())
    }

    /// The BCAST prefixes `id` tracks, sorted.
    pub fn prefixes_of(&self, id: u64) -> Vec<Bytes> {
        let st = self.state.lock();
        st.clients
            .get(&id)
            .map(|c| c.prefixes.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether `id`'s redirect target has gone (`broken_redirect`).
    pub fn broken(&self, id: u64) -> bool {
        self.state.lock().clients.get(&id).is_some_and(|c| c.broken)
    }

    /// Whether a client with this id is connected (a `REDIRECT` target must be).
    pub fn exists(&self, id: u64) -> bool {
        self.registry.lock().contains_key(&id)
    }

    /// `CLIENT TRACKING ON`: start, or change the options of, tracking for `info`'s
    /// client. BCAST prefixes add to those it has (none given: the empty prefix).
    pub fn enable(&self, info: &Arc<ClientInfo>, mode: Mode, prefixes: &[Bytes]) {
        let mut st = self.state.lock();
        let id = info.id;
        if !st.clients.contains_key(&id) {
            self.clients.fetch_add(1, Relaxed);
        }
        let bcast = mode.bcast;
        let redirect = mode.redirect;
        let c = st.clients.entry(id).or_insert_with(|| Client {
            info: info.clone(),
            mode: Mode::default(),
            prefixes: BTreeSet::new(),
            broken: false,
        });
        c.mode = mode;
        c.broken = false;
        let mut added = Vec::new();
        if bcast {
            let wanted: Vec<Bytes> = if prefixes.is_empty() {
                vec![Bytes::new()]
            } else {
                prefixes.to_vec()
            };
            for p in wanted {
                if c.prefixes.insert(p.clone()) {
                    added.push(p);
                }
            }
        }
        let State {
            prefixes: table,
            prefix_lens,
            ..
        } = &mut *st;
        for p in added {
            let len = p.len();
            let entry = table.entry(p).or_default();
            if entry.clients.is_empty() {
                *prefix_lens.entry(len).or_default() += 1;
            }
            entry.clients.insert(id);
        }
        info.tracking
            .store(FLAG_ON | if bcast { FLAG_BCAST } else { 0 }, Relaxed);
        info.redirect.store(redirect as i64, Relaxed);
        self.hook.enable(true);
    }

    /// `CLIENT TRACKING OFF`, or the client disconnected.
    pub fn disable(&self, id: u64) {
        let mut st = self.state.lock();
        let Some(c) = st.clients.remove(&id) else {
            return;
        };
        self.clients.fetch_sub(1, Relaxed);
        c.info.tracking.store(0, Relaxed);
        c.info.redirect.store(-1, Relaxed);
        for p in &c.prefixes {
            let gone = match st.prefixes.get_mut(p) {
                Some(entry) => {
                    entry.clients.remove(&id);
                    entry.clients.is_empty()
                }
                None => false,
            };
            if gone {
                st.prefixes.remove(p);
                if let Some(n) = st.prefix_lens.get_mut(&p.len()) {
                    *n -= 1;
                    if *n == 0 {
                        st.prefix_lens.remove(&p.len());
                    }
                }
            }
        }
        if st.clients.is_empty() {
            // Nobody can be told any more: drop the table, and stop the hook.
            st.keys = HashMap::new();
            st.items = 0;
            self.hook.enable(false);
        }
    }

    /// Remember that client `id` may cache `keys` (called before its read runs).
    pub fn remember<'k>(&self, id: u64, keys: impl Iterator<Item = &'k [u8]>) {
        let over = {
            let mut st = self.state.lock();
            if !st.clients.contains_key(&id) {
                return;
            }
            for k in keys {
                let ids = match st.keys.get_mut(k) {
                    Some(ids) => ids,
                    None => st.keys.entry(Bytes::copy_from_slice(k)).or_default(),
                };
                if !ids.contains(&id) {
                    ids.push(id);
                    st.items += 1;
                }
            }
            let max = self.max_keys();
            max != 0 && st.keys.len() as u64 > max
        };
        if over {
            self.enforce_limit();
        }
    }

    /// Drop keys from a table over `tracking-table-max-keys`, invalidating each for the
    /// clients that held it. Bounded per call; the periodic task calls it again.
    pub fn enforce_limit(&self) {
        let max = self.max_keys() as usize;
        if max == 0 {
            return;
        }
        let mut st = self.state.lock();
        let excess = st.keys.len().saturating_sub(max).min(100_000);
        if excess == 0 {
            return;
        }
        let doomed: Vec<Bytes> = st.keys.keys().take(excess).cloned().collect();
        for key in doomed {
            self.invalidate(&mut st, &key, 0);
        }
    }

    /// A key changed (the stores' hook; the caller holds the key's shard).
    fn touched(&self, key: &[u8], by_client: bool) {
        let me = current();
        let mut st = self.state.lock();
        if !st.prefixes.is_empty() {
            let writer = if by_client { me } else { 0 };
            let State {
                prefixes,
                prefix_lens,
                ..
            } = &mut *st;
            for &len in prefix_lens.range(..=key.len()).map(|(l, _)| l) {
                if let Some(p) = prefixes.get_mut(&key[..len]) {
                    p.keys.insert(Bytes::copy_from_slice(key), writer);
                    self.bcast_pending.store(true, Relaxed);
                }
            }
        }
        self.invalidate(&mut st, key, me);
    }

    /// Tell the default-mode clients holding `key` (but `me`, if it asked for NOLOOP)
    /// that it changed, and forget it.
    fn invalidate(&self, st: &mut State, key: &[u8], me: u64) {
        let Some(ids) = st.keys.remove(key) else {
            return;
        };
        st.items -= ids.len();
        for id in ids {
            let Some(c) = st.clients.get_mut(&id) else {
                continue;
            };
            if c.mode.bcast || (c.mode.noloop && id == me) {
                continue;
            }
            self.send(c, Payload::Key(key));
        }
    }

    /// Send the keys collected under each BCAST prefix since the last call.
    pub fn broadcast(&self) {
        // Every command calls this: a plain load keeps the line shared between threads.
        if !self.bcast_pending.load(Relaxed) || !self.bcast_pending.swap(false, Relaxed) {
            return;
        }
        let mut st = self.state.lock();
        let State {
            prefixes, clients, ..
        } = &mut *st;
        for p in prefixes.values_mut() {
            if p.keys.is_empty() {
                continue;
            }
            let keys = std::mem::take(&mut p.keys);
            let all = keys_proto(&keys, 0);
            for id in &p.clients {
                let Some(c) = clients.get_mut(id) else {
                    continue;
                };
                if c.mode.noloop {
                    if let Some(mine) = keys_proto_opt(&keys, *id) {
                        self.send(c, Payload::Proto(&mine));
                    }
                } else {
                    self.send(c, Payload::Proto(&all));
                }
            }
        }
    }

    /// A flush: every tracking client is told that every key is invalid, and the table
    /// is emptied.
    pub fn flush(&self) {
        let mut st = self.state.lock();
        for c in st.clients.values_mut() {
            self.send(c, Payload::All);
        }
        st.keys = HashMap::new();
        st.items = 0;
    }

    /// Encode and deliver one invalidation for tracking client `c`.
    fn send(&self, c: &mut Client, payload: Payload<'_>) {
        let mut target = c.info.clone();
        let redirected = c.mode.redirect != 0;
        if redirected {
            let found = self.registry.lock().get(&c.mode.redirect).cloned();
            match found {
                Some(t) => target = t,
                None => {
                    c.broken = true;
                    c.info.tracking.fetch_or(FLAG_BROKEN, Relaxed);
                    if c.info.resp.load(Relaxed) == 3 {
                        let mut m = BytesMut::new();
                        m.extend_from_slice(b">2\r\n$21\r\ntracking-redir-broken\r\n");
                        m.extend_from_slice(format!(":{}\r\n", c.mode.redirect).as_bytes());
                        deliver(&c.info, &m);
                    }
                    return;
                }
            }
        }
        let mut m = BytesMut::with_capacity(64);
        if target.resp.load(Relaxed) == 3 {
            m.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
        } else if redirected && target.sub.load(Relaxed) + target.psub.load(Relaxed) > 0 {
            m.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
        } else {
            return;
        }
        match payload {
            Payload::Key(k) => {
                m.extend_from_slice(b"*1\r\n");
                bulk(&mut m, k);
            }
            Payload::Proto(p) => m.extend_from_slice(p),
            Payload::All => m.extend_from_slice(if c.info.resp.load(Relaxed) == 3 {
                b"_\r\n"
            } else {
                b"$-1\r\n"
            }),
        }
        deliver(&target, &m);
    }
}

fn bulk(out: &mut BytesMut, b: &[u8]) {
    out.extend_from_slice(b"$");
    out.extend_from_slice(itoa::Buffer::new().format(b.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// The keys as a RESP array, leaving out those last changed by `skip` (0: none).
fn keys_proto(keys: &BTreeMap<Bytes, u64>, skip: u64) -> BytesMut {
    let n = keys.values().filter(|&&w| skip == 0 || w != skip).count();
    let mut m = BytesMut::with_capacity(16 + keys.len() * 16);
    m.extend_from_slice(format!("*{n}\r\n").as_bytes());
    for (k, &w) in keys {
        if skip == 0 || w != skip {
            bulk(&mut m, k);
        }
    }
    m
}

/// [`keys_proto`] for a NOLOOP client `me`: `None` when every key was its own change.
fn keys_proto_opt(keys: &BTreeMap<Bytes, u64>, me: u64) -> Option<BytesMut> {
    keys.values()
        .any(|&w| w != me)
        .then(|| keys_proto(keys, me))
}

// A cluster follower reports a write applied to the invalidation fence only once the
// pushes that applying it produced have been written to their clients' sockets, so that
// the writer's reply follows them onto the wire (see `sessiond_cluster`'s fence). Pushes
// are counted by epoch: [`mark`] closes one, [`settled`] says whether every inbox filled
// in it or before has been written out ([`written`]). Process-wide: one server per
// process.
static EPOCH: AtomicU64 = AtomicU64::new(1);
/// Inboxes not yet written out, by the epoch they filled in.
static PENDING: Mutex<BTreeMap<u64, usize>> = Mutex::new(BTreeMap::new());
/// The epoch the fence waits on (0: none).
static SETTLE_WANTED: AtomicU64 = AtomicU64::new(0);
/// What tells the fence (the cluster handle's `caching_changed`).
static SETTLED_HOOK: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>> = std::sync::OnceLock::new();

/// Set what is called when the epoch the fence waits on has settled (once).
pub fn on_settled(f: Box<dyn Fn() + Send + Sync>) {
    let _ = SETTLED_HOOK.set(f);
}

/// Close the current epoch: pushes delivered so far belong to it or earlier ones.
pub fn mark() -> u64 {
    EPOCH.fetch_add(1, Relaxed)
}

/// Whether every push of epoch `epoch` and before has been written; if not, the hook set
/// by [`on_settled`] runs when that happens.
pub fn settled(epoch: u64) -> bool {
    let pending = PENDING.lock();
    let done = pending.keys().next().is_none_or(|&first| first > epoch);
    if !done {
        SETTLE_WANTED.fetch_max(epoch, Relaxed);
    }
    done
}

/// Append a push to a client's inbox and wake its connection. A client this far
/// behind is closed, as Redis closes one past its output buffer limit.
pub fn deliver(info: &ClientInfo, bytes: &[u8]) {
    let mut inbox = info.inbox.lock();
    if inbox.len() + bytes.len() > INBOX_LIMIT {
        drop(inbox);
        info.kill();
        return;
    }
    inbox.extend_from_slice(bytes);
    if !info.inbox_ready.swap(true, Relaxed) {
        if info.proposing.load(Relaxed) {
            info.inbox_epoch.store(0, Relaxed);
        } else {
            let e = EPOCH.load(Relaxed);
            info.inbox_epoch.store(e, Relaxed);
            *PENDING.lock().entry(e).or_default() += 1;
        }
    }
    drop(inbox);
    // The client whose command runs here takes its inbox after the command: no wake-up.
    if current() != info.id {
        info.wake.notify_one();
    }
}

/// Move what waits in a client's inbox to its output. The pushes count as handed over
/// (for the invalidation fence) once the output is written: [`written`].
#[inline]
pub fn drain(info: &ClientInfo, out: &mut BytesMut) {
    if !info.inbox_ready.load(Relaxed) {
        return;
    }
    let mut inbox = info.inbox.lock();
    out.extend_from_slice(&inbox);
    inbox.clear();
    if info.inbox_ready.swap(false, Relaxed) {
        let e = info.inbox_epoch.swap(0, Relaxed);
        if e != 0 {
            let prev = info.out_epoch.load(Relaxed);
            if prev == 0 || e < prev {
                info.out_epoch.store(e, Relaxed);
                if prev != 0 {
                    release_epoch(prev);
                }
            } else {
                // An older epoch already waits on this output: it covers this one.
                release_epoch(e);
            }
        }
    }
}

/// The connection wrote its output: the pushes drained into it are handed over.
#[inline]
pub fn written(info: &ClientInfo) {
    if info.out_epoch.load(Relaxed) == 0 {
        return;
    }
    let e = info.out_epoch.swap(0, Relaxed);
    if e != 0 {
        release_epoch(e);
    }
}

/// A closed connection's inbox: dropped.
pub fn discard(info: &ClientInfo) {
    let mut inbox = info.inbox.lock();
    *inbox = BytesMut::new();
    if info.inbox_ready.swap(false, Relaxed) {
        let e = info.inbox_epoch.swap(0, Relaxed);
        if e != 0 {
            release_epoch(e);
        }
    }
    drop(inbox);
    written(info);
}

/// One inbox of epoch `e` is handed over; tell the fence when what it waits on settled.
fn release_epoch(e: u64) {
    let first = {
        let mut pending = PENDING.lock();
        if let Some(n) = pending.get_mut(&e) {
            *n -= 1;
            if *n == 0 {
                pending.remove(&e);
            }
        }
        pending.keys().next().copied()
    };
    let wanted = SETTLE_WANTED.load(Relaxed);
    if wanted != 0
        && first.is_none_or(|f| f > wanted)
        && SETTLE_WANTED
            .compare_exchange(wanted, 0, Relaxed, Relaxed)
            .is_ok()
    {
        if let Some(f) = SETTLED_HOOK.get() {
            f();
        }
    }
}
