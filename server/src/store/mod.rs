//! The sharded keyspace.
//!
//! Keys hash (foldhash) to one of [`SLOTS`] fixed slots. Slot `s` lives in lock stripe
//! (shard) `s & (shards - 1)`; each shard is a `parking_lot::Mutex` around a [`Shard`] that
//! owns its slots (one [`Table`] each, `table.rs`) and one [`TimerWheel`] for the TTLs of
//! its keys. Fixed slots give `SCAN` a cursor that survives table growth and shrinkage:
//! the cursor is the next slot to visit, and a slot is always visited whole.
//!
//! An [`Entry`] (`entry.rs`, its representation in `thin.rs`) is 16 bytes: a thin
//! pointer to one block holding the key's length, the key and the string value (or to a
//! box with the key and an [`Object`] for the other types: `hash.rs`, `set.rs`,
//! `zset.rs`), the block's length, and the id of the key's timer. Entries taken out
//! under a lock are freed after it (`reclaim.rs`). The numbered databases are stores of their own
//! (`Store::sibling`), sharing the hasher, so a key has the same shard in every one.
//! The expiry deadline lives only in the timer (absolute Unix milliseconds), so keys
//! without a TTL pay nothing for it. Every read checks the deadline (lazy expiry); the
//! expiry thread (`crate::expiry`) reclaims keys whose timers fire (active expiry).
//! Hash fields with deadlines have a second wheel per shard (`fields.rs`). What a store
//! tells the server (expired and new keys, expired fields, every change for client
//! tracking) goes through the hooks in `hooks.rs`; commands reach shards through
//! [`Keyspace`] (`keyspace.rs`).

mod entry;
mod evict;
mod fields;
pub mod hash;
mod hooks;
mod keyspace;
mod reclaim;
pub mod set;
pub mod snapshot;
mod table;
mod thin;
pub mod zset;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam::utils::CachePadded;
use hashbrown::DefaultHashBuilder;
use parking_lot::{Mutex, MutexGuard};
pub use table::{prefetch, Table};

use crate::wheel::{TimerId, TimerWheel, NO_TIMER};
pub use entry::{Entry, EntryMut, KeyType, Object};
use evict::content_digest;
pub use evict::Victim;
pub use hash::HashValue;
use hooks::{ExpiredHook, FieldsHook, Hooks};
pub use hooks::{OnExpired, OnFieldsExpired, OnTouch, TouchHook};
pub use keyspace::{shard_set, Direct, Exclusive, Keyspace, ShardRef, ShardSet};
pub use reclaim::Reclaimed;
pub use set::SetValue;
pub use zset::ZSetValue;

/// Number of fixed hash slots; a power of two.
pub const SLOTS: usize = 16384;
const SLOT_BITS: u32 = SLOTS.trailing_zeros();
/// Largest allowed shard count (every shard must own at least one slot).
pub const MAX_SHARDS: usize = 1024;

/// Which keys `maxmemory` evicts (besides `noeviction`, which refuses writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictPolicy {
    /// Keys with a TTL, nearest to expiry first: sessions about to end anyway.
    VolatileTtl,
    /// Any key, least recently used first (approximate: a clock sweep).
    AllkeysLru,
}

/// How a write treats the TTL of the key it replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// No TTL (plain `SET`).
    Clear,
    /// Keep the existing TTL (`KEEPTTL`).
    Keep,
    /// Expire at this absolute Unix ms.
    At(u64),
}

/// One lock stripe: a set of slots and the timing wheel for their keys.
pub struct Shard {
    slots: Vec<Table>,
    /// Per-slot write versions, for `WATCH`.
    versions: Vec<u64>,
    wheel: TimerWheel,
    /// One timer per hash with field deadlines (see `fields.rs`).
    fwheel: TimerWheel,
    expired_fields: u64,
    on_hexpired: FieldsHook,
    shard_bits: u32,
    len: usize,
    expired: u64,
    evicted: u64,
    fired: Vec<(TimerId, u64)>,
    /// Keys whose deadline is at or before this may be removed when a read finds them
    /// expired. `u64::MAX` on a single node. In a cluster only applying the log may
    /// change the state, so a read hides an expired key but leaves it, unless the log
    /// has already been applied past its deadline (then every replica agrees it is gone).
    horizon: Arc<AtomicU64>,
    /// Told the key of every key removed because its deadline passed.
    on_expired: ExpiredHook,
    /// Called with each key this shard creates (the `new` keyspace event).
    on_new: ExpiredHook,
    touch: Arc<TouchHook>,
}

impl Shard {
    fn new(slots: usize, shard_bits: u32, now: u64, hooks: Hooks) -> Shard {
        let Hooks {
            horizon,
            on_expired,
            on_new,
            touch,
            on_hexpired,
        } = hooks;
        Shard {
            fwheel: TimerWheel::new(now),
            expired_fields: 0,
            on_hexpired,
            horizon,
            on_expired,
            on_new,
            touch,
            slots: (0..slots).map(|_| Table::new()).collect(),
            versions: vec![0; slots],
            wheel: TimerWheel::new(now),
            shard_bits,
            len: 0,
            expired: 0,
            evicted: 0,
            fired: Vec::new(),
        }
    }

    fn expired_key(hook: &ExpiredHook, key: &[u8]) {
        if let Some(f) = hook.get() {
            f(key);
        }
    }

    fn local_slot(&self, hash: u64) -> usize {
        slot_of(hash) >> self.shard_bits
    }

    /// Number of keys, including logically expired keys not yet reclaimed.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keys with a TTL.
    pub fn volatile(&self) -> usize {
        self.wheel.len()
    }

    /// Hashes with field deadlines (one field timer each).
    pub fn volatile_hashes(&self) -> usize {
        self.fwheel.len()
    }

    /// Keys expired so far (lazily or by the expiry thread).
    pub fn expired(&self) -> u64 {
        self.expired
    }

    /// Heap held by the tables and the wheel (not the entries' buffers).
    pub fn table_bytes(&self) -> usize {
        self.slots
            .iter()
            .map(|t| t.allocation_size())
            .sum::<usize>()
            + self.wheel.heap_bytes()
            + self.fwheel.heap_bytes()
            + self.slots.capacity() * std::mem::size_of::<Table>()
    }

    /// Look up a live key. An expired key is removed on the spot and reported absent.
    pub fn get(&mut self, hash: u64, key: &[u8], now: u64) -> Option<EntryMut<'_>> {
        let slot = self.local_slot(hash);
        let i = self.slots[slot].find(hash, |e| e.key() == key)?;
        // A hash whose fields are due loses them now (and goes when none is left).
        if self.slots[slot].get(i).has_field_deadlines() && self.purge_fields(slot, i, hash, now) {
            return None;
        }
        let Shard {
            slots,
            versions,
            wheel,
            len,
            expired,
            horizon,
            on_expired,
            touch,
            fwheel,
            ..
        } = self;
        let table = &mut slots[slot];
        let version = &mut versions[slot];
        let timer = table.get(i).timer;
        if let Some(d) = wheel.deadline(timer).filter(|&d| d <= now) {
            if d > horizon.load(Ordering::Relaxed) {
                return None;
            }
            wheel.cancel(timer);
            let dead = table.remove(i);
            fields::drop_timer(fwheel, &dead);
            Self::expired_key(on_expired, dead.key());
            touch.touch(dead.key(), false);
            *len -= 1;
            *expired += 1;
            *version += 1;
            return None;
        }
        let entry = table.get_mut(i);
        entry.mark_used();
        Some(EntryMut {
            entry,
            wheel,
            fwheel,
            hash,
            version,
            touch,
        })
    }

    /// True if a live key exists.
    pub fn contains(&mut self, hash: u64, key: &[u8], now: u64) -> bool {
        self.get(hash, key, now).is_some()
    }

    /// Remove a key. Returns the entry if it was live.
    pub fn remove(&mut self, hash: u64, key: &[u8], now: u64) -> Option<Entry> {
        let slot = self.local_slot(hash);
        let i = self.slots[slot].find(hash, |e| e.key() == key)?;
        let entry = self.slots[slot].remove(i);
        fields::drop_timer(&mut self.fwheel, &entry);
        self.len -= 1;
        self.versions[slot] += 1;
        self.touch.touch(key, true);
        self.slots[slot].maybe_shrink();
        let live = if entry.timer == NO_TIMER {
            true
        } else {
            let live = self.wheel.deadline(entry.timer).is_none_or(|d| d > now);
            self.wheel.cancel(entry.timer);
            live
        };
        if live {
            Some(entry)
        } else {
            Self::expired_key(&self.on_expired, entry.key());
            self.expired += 1;
            None
        }
    }

    /// Write a string value, replacing whatever the key held.
    pub fn set_str(&mut self, hash: u64, key: &[u8], value: &[u8], ttl: Ttl, now: u64) {
        let slot = self.local_slot(hash);
        self.versions[slot] += 1;
        self.touch.touch(key, true);
        let Shard {
            slots,
            wheel,
            len,
            expired: expired_count,
            ..
        } = self;
        let table = &mut slots[slot];
        match table.find(hash, |e| e.key() == key) {
            Some(i) => {
                let e = table.get_mut(i);
                let old_timer = e.timer;
                let old_deadline = if old_timer == NO_TIMER {
                    None
                } else {
                    wheel.deadline(old_timer)
                };
                let expired = old_deadline.is_some_and(|d| d <= now);
                if expired {
                    // Overwriting a key that had already expired counts as its expiry,
                    // as the lookup before a write would have counted it, and makes a
                    // new key.
                    *expired_count += 1;
                    Self::expired_key(&self.on_new, key);
                }
                let timer = match ttl {
                    Ttl::Keep if !expired => old_timer,
                    Ttl::Keep | Ttl::Clear => {
                        wheel.cancel(old_timer);
                        NO_TIMER
                    }
                    Ttl::At(d) if old_timer != NO_TIMER => wheel.reschedule(old_timer, d),
                    Ttl::At(d) => wheel.insert(d, hash),
                };
                // A session rewritten with a value of the same size (the common case)
                // is overwritten in place, with no allocation.
                if !e.overwrite_str(value) {
                    *e = Entry::string(key, value);
                }
                e.timer = timer;
            }
            None => {
                let mut new = Entry::string(key, value);
                if let Ttl::At(d) = ttl {
                    new.timer = wheel.insert(d, hash);
                }
                table.insert(hash, new);
                *len += 1;
                Self::expired_key(&self.on_new, key);
            }
        }
    }

    /// Create an empty hash under `key` (which must be absent) and return it.
    pub fn create_hash(&mut self, hash: u64, key: &[u8]) -> EntryMut<'_> {
        self.create(hash, key, Object::Hash(HashValue::default()))
    }

    /// Create `obj` under `key` (which must be absent) and return it.
    pub fn create(&mut self, hash: u64, key: &[u8], obj: Object) -> EntryMut<'_> {
        Self::expired_key(&self.on_new, key);
        self.touch.touch(key, true);
        let slot = self.local_slot(hash);
        let Shard {
            slots,
            versions,
            wheel,
            fwheel,
            len,
            touch,
            ..
        } = self;
        *len += 1;
        let version = &mut versions[slot];
        *version += 1;
        let table = &mut slots[slot];
        let i = table.insert(hash, Entry::with_object(key, obj));
        let entry = table.get_mut(i);
        fields::arm_arrival(fwheel, entry, hash);
        EntryMut {
            entry,
            wheel,
            fwheel,
            hash,
            version,
            touch,
        }
    }

    /// Put back an entry taken out with [`Shard::remove`] under a new key (for `RENAME`),
    /// with the given deadline. Any existing entry under `key` is replaced and returned.
    pub fn insert_renamed(
        &mut self,
        hash: u64,
        key: &[u8],
        mut entry: Entry,
        deadline: Option<u64>,
    ) -> Option<Entry> {
        let old = self.remove(hash, key, 0);
        if old.is_none() {
            Self::expired_key(&self.on_new, key);
        }
        let slot = self.local_slot(hash);
        entry.rekey(key);
        entry.timer = match deadline {
            Some(d) => self.wheel.insert(d, hash),
            None => NO_TIMER,
        };
        fields::arm_arrival(&mut self.fwheel, &mut entry, hash);
        self.slots[slot].insert(hash, entry);
        self.len += 1;
        self.versions[slot] += 1;
        self.touch.touch(key, true);
        old
    }

    /// Reclaim up to `budget` keys whose timers are due at `now`, moving them into `out`
    /// so that the caller can free them after releasing the lock.
    pub fn expire_due(&mut self, now: u64, budget: usize, out: &mut Reclaimed) -> usize {
        let mut fired = std::mem::take(&mut self.fired);
        fired.clear();
        self.wheel.poll_expired(now, budget, &mut fired);
        let mut n = 0;
        for (k, &(id, hash)) in fired.iter().enumerate() {
            // The keys are spread at random over the tables: start loading the bucket of
            // a key a few places ahead, so that misses overlap.
            if let Some(&(_, ahead)) = fired.get(k + EXPIRE_AHEAD) {
                self.slots[self.local_slot(ahead)].prefetch(ahead);
            }
            let slot = self.local_slot(hash);
            if let Some(i) = self.slots[slot].find(hash, |e| e.timer == id) {
                let entry = self.slots[slot].remove(i);
                fields::drop_timer(&mut self.fwheel, &entry);
                Self::expired_key(&self.on_expired, entry.key());
                self.touch.touch(entry.key(), false);
                out.push(entry);
                self.len -= 1;
                self.expired += 1;
                self.versions[slot] += 1;
                n += 1;
                // Free a table the moment it empties (on the free thread, with the
                // entries), but do not shrink it step by step here: shrinking rehashes
                // every remaining key, which would double the cost of a mass expiry.
                // Other removals shrink it later.
                if self.slots[slot].is_empty() {
                    out.tables.push(std::mem::take(&mut self.slots[slot]));
                }
            }
        }
        self.fired = fired;
        if self.wheel.is_empty() {
            self.wheel.shrink();
        }
        self.expire_due_fields(now, budget, out);
        n
    }

    /// Keys evicted for memory.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Cluster leader: report up to `budget` keys whose timers are due, as (key,
    /// deadline), without removing them. Their timers are parked: the keys keep their
    /// TTLs until the deletion the leader proposes is applied, and [`Shard::unpark`]
    /// re-arms the timers of deletions that were lost.
    pub fn collect_due(&mut self, now: u64, budget: usize, out: &mut Vec<(Vec<u8>, u64)>) -> usize {
        let mut fired = std::mem::take(&mut self.fired);
        fired.clear();
        self.wheel.park_expired(now, budget, &mut fired);
        for &(id, hash) in &fired {
            let slot = self.local_slot(hash);
            if let (Some(i), Some(d)) = (
                self.slots[slot].find(hash, |e| e.timer == id),
                self.wheel.deadline(id),
            ) {
                out.push((self.slots[slot].get(i).key().to_vec(), d));
            }
        }
        let n = fired.len();
        self.fired = fired;
        n
    }

    /// Re-arm parked timers (see [`Shard::collect_due`]).
    pub fn unpark(&mut self) -> usize {
        self.wheel.unpark_all() + self.fwheel.unpark_all()
    }

    /// Fields expired so far.
    pub fn expired_fields(&self) -> u64 {
        self.expired_fields
    }

    /// Apply a replicated expiry: remove `key` if its deadline is still exactly
    /// `deadline` (a key re-set or re-expired since the leader saw it survives).
    pub fn expire_guarded(&mut self, hash: u64, key: &[u8], deadline: u64) -> Option<Entry> {
        let slot = self.local_slot(hash);
        let i = self.slots[slot].find(hash, |e| e.key() == key)?;
        let timer = self.slots[slot].get(i).timer;
        if self.wheel.deadline(timer) != Some(deadline) {
            return None;
        }
        let entry = self.unlink_at(slot, i);
        Self::expired_key(&self.on_expired, entry.key());
        self.expired += 1;
        Some(entry)
    }

    /// Take the entry in bucket `i` of local slot `slot` out of the shard, with its
    /// timers, for a replicated expiry or eviction: tracking hears of it, `WATCH` sees
    /// the slot change, and a table left empty is freed.
    fn unlink_at(&mut self, slot: usize, i: usize) -> Entry {
        let entry = self.slots[slot].remove(i);
        fields::drop_timer(&mut self.fwheel, &entry);
        if entry.timer != NO_TIMER {
            self.wheel.cancel(entry.timer);
        }
        self.touch.touch(entry.key(), false);
        self.len -= 1;
        self.versions[slot] += 1;
        if self.slots[slot].is_empty() {
            self.slots[slot].maybe_shrink();
        }
        entry
    }

    /// The earliest pending deadline in this shard.
    pub fn next_deadline(&self) -> Option<u64> {
        match (self.wheel.next_deadline(), self.fwheel.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The write version of the slot holding `hash` (for `WATCH`).
    pub fn version(&self, hash: u64) -> u64 {
        self.versions[self.local_slot(hash)]
    }

    /// A fingerprint of a key's content at `now`: its type, value (a hash's fields in any
    /// order) and deadline; 0 when the key does not exist. The same on every replica for
    /// the same state, so a cluster's `WATCH` can be checked when `EXEC` is applied.
    pub fn digest(&mut self, hash: u64, key: &[u8], now: u64) -> u64 {
        let Some(e) = self.get(hash, key, now) else {
            return 0;
        };
        content_digest(e.deadline(), e.as_str(), e.object())
    }

    /// Visit the live keys of one local slot.
    pub fn for_each_in_slot(&self, local_slot: usize, now: u64, mut f: impl FnMut(&Entry)) {
        for e in self.slots[local_slot].iter() {
            let live = e.timer == NO_TIMER || self.wheel.deadline(e.timer).is_none_or(|d| d > now);
            if live {
                f(e)
            }
        }
    }

    /// Exchange keys and timers with another shard of the same layout; every slot's
    /// version moves on in both (a `WATCH` on either side sees the change).
    fn swap_keys(&mut self, other: &mut Shard) {
        // Table by table: each store's slot array stays where `slot_bases` found it.
        for (x, y) in self.slots.iter_mut().zip(other.slots.iter_mut()) {
            std::mem::swap(x, y);
        }
        std::mem::swap(&mut self.wheel, &mut other.wheel);
        std::mem::swap(&mut self.fwheel, &mut other.fwheel);
        std::mem::swap(&mut self.len, &mut other.len);
        for v in self.versions.iter_mut().chain(other.versions.iter_mut()) {
            *v += 1;
        }
    }

    /// Drop every key. Returns the old tables so the caller can free them unlocked.
    pub fn clear(&mut self, now: u64) -> Vec<Table> {
        // Only slots that held keys change (WATCH on a missing key survives a flush).
        for (v, t) in self.versions.iter_mut().zip(&self.slots) {
            if !t.is_empty() {
                *v += 1;
            }
        }
        // The tables are taken one by one so that `slots` itself stays where it is (see
        // `Store::slot_bases`).
        let old = self.slots.iter_mut().map(std::mem::take).collect();
        self.wheel = TimerWheel::new(now);
        self.fwheel = TimerWheel::new(now);
        self.len = 0;
        old
    }
}

/// The global slot of a key hash. Uses bits 32.. so that it is independent of the low 32
/// bits the slot's table uses for its tags and home buckets.
pub fn slot_of(hash: u64) -> usize {
    ((hash >> 32) as usize) & (SLOTS - 1)
}

// A timer gives back only the low `HASH_BITS` of its key's hash: enough for the slot and
// the tag.
const _: () = assert!(32 + SLOT_BITS <= crate::wheel::HASH_BITS);

/// How far ahead of the key it removes the expiry loop prefetches.
const EXPIRE_AHEAD: usize = 16;

/// Most keys one [`Store::prefetch`] call looks at.
pub const PREFETCH_MAX: usize = 32;

/// The whole keyspace: `shards` lock stripes.
pub struct Store {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    /// Where each shard's `slots` array lives, as an address. A shard allocates that array
    /// once and never moves it, so [`Store::prefetch`] can start loading a slot's table
    /// header before it takes the lock. Used only as a prefetch hint, which never reads
    /// into the program: a stale address would cost a wasted prefetch, nothing more.
    slot_bases: Box<[usize]>,
    shard_bits: u32,
    hasher: DefaultHashBuilder,
    horizon: Arc<AtomicU64>,
    on_expired: ExpiredHook,
    on_new: ExpiredHook,
    touch: Arc<TouchHook>,
    on_hexpired: FieldsHook,
}

/// Where a key lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    pub hash: u64,
    pub shard: usize,
}

impl Store {
    /// A store with `shards` stripes (rounded up to a power of two, 1..=[`MAX_SHARDS`]).
    pub fn new(shards: usize, now: u64) -> Store {
        let horizon = Arc::new(AtomicU64::new(u64::MAX));
        let touch = Arc::new(TouchHook::default());
        Store::build(shards, now, horizon, DefaultHashBuilder::default(), touch)
    }

    /// Another database of the same node: the same shards, the same key hashes (so a
    /// key keeps its place when `MOVE` or `SWAPDB` carries it over), and the same read
    /// horizon (the one the cluster sets).
    pub fn sibling(&self, now: u64) -> Store {
        let shards = self.shard_count();
        Store::build(
            shards,
            now,
            self.horizon.clone(),
            self.hasher,
            self.touch.clone(),
        )
    }

    fn build(
        shards: usize,
        now: u64,
        horizon: Arc<AtomicU64>,
        hasher: DefaultHashBuilder,
        touch: Arc<TouchHook>,
    ) -> Store {
        let n = shards.clamp(1, MAX_SHARDS).next_power_of_two();
        let shard_bits = n.trailing_zeros();
        let per = SLOTS >> shard_bits;
        let on_expired = ExpiredHook::default();
        let on_new = ExpiredHook::default();
        let on_hexpired = FieldsHook::default();
        let shards: Box<[CachePadded<Mutex<Shard>>]> = (0..n)
            .map(|_| {
                CachePadded::new(Mutex::new(Shard::new(
                    per,
                    shard_bits,
                    now,
                    Hooks {
                        horizon: horizon.clone(),
                        on_expired: on_expired.clone(),
                        on_new: on_new.clone(),
                        touch: touch.clone(),
                        on_hexpired: on_hexpired.clone(),
                    },
                )))
            })
            .collect();
        debug_assert!(shard_bits <= SLOT_BITS);
        let slot_bases = shards
            .iter()
            .map(|s| s.lock().slots.as_ptr() as usize)
            .collect();
        Store {
            shards,
            slot_bases,
            shard_bits,
            hasher,
            horizon,
            on_expired,
            on_new,
            touch,
            on_hexpired,
        }
    }

    /// Set what happens when fields of a hash expire (once).
    pub fn on_hexpired(&self, f: OnFieldsExpired) {
        let _ = self.on_hexpired.set(f);
    }

    /// The change hook shared by this store and its siblings (client tracking).
    pub fn touch_hook(&self) -> &Arc<TouchHook> {
        &self.touch
    }

    /// Set what happens to the key of each key removed because it expired (once).
    pub fn on_expired(&self, f: OnExpired) {
        let _ = self.on_expired.set(f);
    }

    /// Set what happens to the key of each key created (once).
    pub fn on_new(&self, f: OnExpired) {
        let _ = self.on_new.set(f);
    }

    /// Let reads remove expired keys only up to `ms` (see `Shard::horizon`). A cluster
    /// node sets this to the stamp of the last entry it applied.
    pub fn set_horizon(&self, ms: u64) {
        self.horizon.store(ms, Ordering::Relaxed);
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub fn locate(&self, key: &[u8]) -> Loc {
        let hash = self.hasher.hash_one(key);
        Loc {
            hash,
            shard: slot_of(hash) & (self.shards.len() - 1),
        }
    }

    pub fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        self.shards[shard].lock()
    }

    /// [`Store::lock`], giving up after `wait` (for a caller that already holds another
    /// database's shards and so must not wait for ever).
    pub fn try_lock_for(
        &self,
        shard: usize,
        wait: std::time::Duration,
    ) -> Option<MutexGuard<'_, Shard>> {
        self.shards[shard].try_lock_for(wait)
    }

    /// Exchange every key with `other`'s (`SWAPDB`), shard by shard; both stores have
    /// the same layout. The caller holds the pairs of guards.
    pub fn swap_shards(a: &mut Shard, b: &mut Shard) {
        a.swap_keys(b);
    }

    /// Start loading what commands on these keys are about to touch, so that their cache
    /// misses overlap instead of coming one after another (a key's slot table, its bucket,
    /// its bytes and its timer are four misses in a row on a big keyspace). Three passes:
    /// the slot tables' headers, without locks (by address only); the home buckets of
    /// every key; then each matching entry's bytes and timer, which the pass before has
    /// brought in by then. Taking a shard's lock is a full barrier that waits for every
    /// load before it, so the first pass is what lets the header misses overlap. Only a
    /// hint: a key given here need not exist, and nothing changes.
    pub fn prefetch<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) {
        let mut locs = [Loc { hash: 0, shard: 0 }; PREFETCH_MAX];
        let mut n = 0;
        for key in keys.take(PREFETCH_MAX) {
            let loc = self.locate(key);
            let base = self.slot_bases[loc.shard] as *const Table;
            prefetch(base.wrapping_add(self.split_slot(slot_of(loc.hash)).1));
            locs[n] = loc;
            n += 1;
        }
        for loc in &locs[..n] {
            let shard = self.shards[loc.shard].lock();
            shard.slots[shard.local_slot(loc.hash)].prefetch(loc.hash);
        }
        for loc in &locs[..n] {
            let shard = self.shards[loc.shard].lock();
            if let Some(e) = shard.slots[shard.local_slot(loc.hash)].prefetch_entry(loc.hash) {
                shard.wheel.prefetch(e.timer);
            }
        }
    }

    /// Lock every shard, in index order (for `EXEC`).
    pub fn lock_all(&self) -> Vec<MutexGuard<'_, Shard>> {
        self.shards.iter().map(|s| s.lock()).collect()
    }

    /// Map a `SCAN` cursor slot to (shard, local slot).
    pub fn split_slot(&self, slot: usize) -> (usize, usize) {
        (slot & (self.shards.len() - 1), slot >> self.shard_bits)
    }
}

#[cfg(test)]
mod tests;
