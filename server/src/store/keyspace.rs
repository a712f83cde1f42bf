//! How commands reach shards: [`Keyspace`] locks each shard on demand ([`Direct`]) or
//! hands out guards already held ([`Exclusive`], inside `EXEC` and scripts).

use parking_lot::MutexGuard;

use super::{Loc, Shard, Store};

/// Access to shards, either locking each on demand or through guards already held.
///
/// Commands are written against this trait so that the same code runs for a single
/// command (lock the one shard it needs) and inside `EXEC` (every shard is held).
pub trait Keyspace {
    fn store(&self) -> &Store;
    /// One shard, locked for the life of the returned reference.
    fn shard(&mut self, idx: usize) -> ShardRef<'_>;
    /// Several shards at once (sorted, deduplicated), for commands that must be atomic
    /// across keys (`MSET`, `MSETNX`, `RENAME`).
    fn shards(&mut self, idxs: &[usize]) -> ShardSet<'_>;
    /// Whether every shard is already held (inside `EXEC`, or a script).
    fn holds_all(&self) -> bool {
        false
    }
}

/// A locked shard.
pub enum ShardRef<'a> {
    Locked(MutexGuard<'a, Shard>),
    Held(&'a mut Shard),
}

impl std::ops::Deref for ShardRef<'_> {
    type Target = Shard;
    fn deref(&self) -> &Shard {
        match self {
            ShardRef::Locked(g) => g,
            ShardRef::Held(s) => s,
        }
    }
}

impl std::ops::DerefMut for ShardRef<'_> {
    fn deref_mut(&mut self) -> &mut Shard {
        match self {
            ShardRef::Locked(g) => g,
            ShardRef::Held(s) => s,
        }
    }
}

/// Several locked shards.
pub struct ShardSet<'a> {
    refs: Vec<(usize, ShardRef<'a>)>,
}

impl ShardSet<'_> {
    /// The shard `idx`, which must be among those requested.
    pub fn get(&mut self, idx: usize) -> &mut Shard {
        let pos = self
            .refs
            .binary_search_by_key(&idx, |(i, _)| *i)
            .unwrap_or_else(|_| panic!("shard {idx} was not locked"));
        &mut self.refs[pos].1
    }
}

/// Lock shards on demand.
pub struct Direct<'a>(pub &'a Store);

impl Keyspace for Direct<'_> {
    fn store(&self) -> &Store {
        self.0
    }

    fn shard(&mut self, idx: usize) -> ShardRef<'_> {
        ShardRef::Locked(self.0.lock(idx))
    }

    fn shards(&mut self, idxs: &[usize]) -> ShardSet<'_> {
        ShardSet {
            refs: idxs
                .iter()
                .map(|&i| (i, ShardRef::Locked(self.0.lock(i))))
                .collect(),
        }
    }
}

/// Every shard already locked (inside `EXEC`).
pub struct Exclusive<'a> {
    store: &'a Store,
    guards: Vec<MutexGuard<'a, Shard>>,
}

impl<'a> Exclusive<'a> {
    pub fn new(store: &'a Store) -> Self {
        Exclusive {
            store,
            guards: store.lock_all(),
        }
    }
}

impl Keyspace for Exclusive<'_> {
    fn store(&self) -> &Store {
        self.store
    }

    fn holds_all(&self) -> bool {
        true
    }

    fn shard(&mut self, idx: usize) -> ShardRef<'_> {
        ShardRef::Held(&mut self.guards[idx])
    }

    fn shards(&mut self, idxs: &[usize]) -> ShardSet<'_> {
        ShardSet {
            refs: self
                .guards
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| idxs.binary_search(i).is_ok())
                .map(|(i, g)| (i, ShardRef::Held(g)))
                .collect(),
        }
    }
}

/// Sorted, deduplicated shard indexes for a set of locations.
pub fn shard_set(locs: &[Loc]) -> Vec<usize> {
    let mut v: Vec<usize> = locs.iter().map(|l| l.shard).collect();
    v.sort_unstable();
    v.dedup();
    v
}
