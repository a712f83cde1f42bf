//! The store as bytes, for raft snapshots.
//!
//! ```text
//! magic "SDST1\n\0\0", then per key:
//!   kind u8 (0 string, 1 hash, 3 set, 4 sorted set) | key len u32 | key |
//!   deadline u64 (0: none), then
//!   string: value len u32 | value
//!   hash:   field count u32 | (field len u32 | field | value len u32 | value)*
//!   set:    member count u32 | (member len u32 | member)*
//!   zset:   member count u32 | (member len u32 | member | score f64 LE)*
//!   field deadlines (kind 5, after its hash, deadline 0): count u32 |
//!           (field len u32 | field | deadline u64 LE)*
//!   meta:   value len u32 | value  (the "key" names it, e.g. `acl`: the users, as
//!           `ACL LIST` lines; the store skips these and hands them to the caller)
//! ```
//!
//! [`dump`] locks one shard at a time. In a cluster that is a consistent picture as long
//! as nothing is applied meanwhile (the raft thread holds applying back while a snapshot
//! is taken): reads may still drop keys whose deadline the applied log has passed, and
//! those keys are dead on every replica either way.

use thiserror::Error;

use super::{HashValue, Object, SetValue, Shard, Store, Ttl, ZSetValue};
use crate::reader::ByteReader;

const MAGIC: &[u8; 8] = b"SDST1\n\0\0";
const STRING: u8 = 0;
const HASH: u8 = 1;
const META: u8 = 2;
const SET: u8 = 3;
const ZSET: u8 = 4;
const FIELD_TTLS: u8 = 5;

#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum LoadError {
    #[error("not a sessiond store snapshot")]
    Magic,
    #[error("snapshot truncated at byte {0}")]
    Truncated(usize),
    #[error("unknown key kind {kind} at byte {at}")]
    Kind { kind: u8, at: usize },
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Serialize every key.
pub fn dump(store: &Store) -> Vec<u8> {
    let mut out = Vec::new();
    dump_into(store, &mut out);
    out
}

/// Serialize every key, appending to `out`.
pub fn dump_into(store: &Store, out: &mut Vec<u8>) {
    dump_header(out);
    for i in 0..store.shard_count() {
        dump_shard(&store.lock(i), out);
    }
}

/// What a dump starts with.
pub fn dump_header(out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
}

/// A named piece of state that is not a key (the users), right after the header.
pub fn dump_meta(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(META);
    put_bytes(out, name);
    out.extend_from_slice(&0u64.to_le_bytes());
    put_bytes(out, value);
}

/// Serialize one shard's keys, appending to `out`. A dump is the header, then every
/// shard in index order.
pub fn dump_shard(shard: &Shard, out: &mut Vec<u8>) {
    for table in &shard.slots {
        // Every entry's bytes and timer are a miss of their own: ask for all of a
        // table's at once, then read them (applying waits while this runs).
        for e in table.iter() {
            super::prefetch(e.heap_ptr());
            shard.wheel.prefetch(e.timer);
        }
        for e in table.iter() {
            let deadline = shard.wheel.deadline(e.timer).unwrap_or(0);
            match (e.object(), e.as_str()) {
                (Some(o), _) => {
                    out.push(match o {
                        Object::Hash(_) => HASH,
                        Object::Set(_) => SET,
                        Object::ZSet(_) => ZSET,
                    });
                    put_bytes(out, e.key());
                    out.extend_from_slice(&deadline.to_le_bytes());
                    out.extend_from_slice(&(o.len() as u32).to_le_bytes());
                    match o {
                        Object::Hash(h) => h.iter().for_each(|(f, v)| {
                            put_bytes(out, f);
                            put_bytes(out, v);
                        }),
                        Object::Set(set) => set.iter().for_each(|m| put_bytes(out, m)),
                        Object::ZSet(z) => z.iter().for_each(|(score, m)| {
                            put_bytes(out, m);
                            out.extend_from_slice(&score.to_le_bytes());
                        }),
                    }
                    if let Object::Hash(h) = o {
                        if h.volatile_fields() > 0 {
                            out.push(FIELD_TTLS);
                            put_bytes(out, e.key());
                            out.extend_from_slice(&0u64.to_le_bytes());
                            out.extend_from_slice(&(h.volatile_fields() as u32).to_le_bytes());
                            for (f, d) in h.deadlines() {
                                put_bytes(out, f);
                                out.extend_from_slice(&d.to_le_bytes());
                            }
                        }
                    }
                }
                (None, Some(v)) => {
                    out.push(STRING);
                    put_bytes(out, e.key());
                    out.extend_from_slice(&deadline.to_le_bytes());
                    put_bytes(out, v);
                }
                (None, None) => {}
            }
        }
    }
}

/// Replace the store's content with a dump. Checks the whole dump before changing
/// anything, so a bad snapshot leaves the store as it was.
pub fn load(store: &Store, data: &[u8], now: u64) -> Result<usize, LoadError> {
    load_with_meta(store, data, now, |_, _| {})
}

/// [`load`], handing each meta record (name, value) to `meta` first.
pub fn load_with_meta(
    store: &Store,
    data: &[u8],
    now: u64,
    meta: impl FnMut(&[u8], &[u8]),
) -> Result<usize, LoadError> {
    load_dbs(&|_| store, &[store], data, now, meta)
}

/// The meta record that sends the keys after it to numbered database `n` (before it,
/// keys go to database 0).
pub fn dump_db_marker(out: &mut Vec<u8>, n: usize) {
    dump_meta(out, DB_MARKER, n.to_string().as_bytes());
}

const DB_MARKER: &[u8] = b"db";

/// Load a dump of several databases: `db(n)` gives database `n` (made if need be),
/// `existing` the ones to empty first. Meta records other than the database markers go
/// to `meta`, before anything changes.
pub fn load_dbs<'s>(
    db: &dyn Fn(usize) -> &'s Store,
    existing: &[&'s Store],
    data: &[u8],
    now: u64,
    mut meta: impl FnMut(&[u8], &[u8]),
) -> Result<usize, LoadError> {
    walk(data, |kind, name, v| {
        if let (META, Value::Str(v, _)) = (kind, v) {
            if name != DB_MARKER {
                meta(name, v);
            }
        }
    })?;
    for store in existing {
        for i in 0..store.shard_count() {
            let old = store.lock(i).clear(now);
            drop(old);
        }
    }
    let mut store = db(0);
    walk(data, |kind, key, rest| {
        if kind == META {
            if let (DB_MARKER, Value::Str(v, _)) = (key, rest) {
                let n = std::str::from_utf8(v).ok().and_then(|t| t.parse().ok());
                store = db(n.unwrap_or(0));
            }
            return;
        }
        let loc = store.locate(key);
        let mut shard = store.lock(loc.shard);
        if kind == FIELD_TTLS {
            if let (Value::Items(items, _), Some(mut e)) = (rest, shard.get(loc.hash, key, 0)) {
                for (f, d) in items {
                    let bits = <[u8; 8]>::try_from(d).unwrap_or_default();
                    e.set_field_deadline(f, Some(u64::from_le_bytes(bits)));
                }
            }
            return;
        }
        match rest {
            Value::Str(v, deadline) => {
                let ttl = if deadline == 0 {
                    Ttl::Clear
                } else {
                    Ttl::At(deadline)
                };
                shard.set_str(loc.hash, key, v, ttl, 0);
            }
            Value::Items(items, deadline) => {
                let obj = match kind {
                    HASH => {
                        let mut h = HashValue::default();
                        items.iter().for_each(|(f, v)| {
                            h.set(f, v);
                        });
                        Object::Hash(h)
                    }
                    SET => {
                        let mut set = SetValue::default();
                        items.iter().for_each(|(m, _)| {
                            set.insert(m);
                        });
                        Object::Set(set)
                    }
                    _ => {
                        let mut z = ZSetValue::default();
                        for (m, score) in &items {
                            let bits = <[u8; 8]>::try_from(*score).unwrap_or_default();
                            z.insert(m, f64::from_le_bytes(bits));
                        }
                        Object::ZSet(z)
                    }
                };
                let mut e = shard.create(loc.hash, key, obj);
                if deadline != 0 {
                    e.set_deadline(Some(deadline));
                }
            }
        }
    })
}

enum Value<'a> {
    Str(&'a [u8], u64),
    /// A hash's (field, value), a set's (member, empty), a sorted set's (member, score
    /// as 8 bytes).
    Items(Vec<(&'a [u8], &'a [u8])>, u64),
}

fn walk<'a>(
    data: &'a [u8],
    mut f: impl FnMut(u8, &'a [u8], Value<'a>),
) -> Result<usize, LoadError> {
    let mut r = ByteReader::new(data);
    if r.take(MAGIC.len()) != Some(&MAGIC[..]) {
        return Err(LoadError::Magic);
    }
    let mut n = 0;
    while !r.is_done() {
        let at = r.at;
        // A record cut short is reported at its start.
        let cut = LoadError::Truncated(at);
        let kind = r.take(1).ok_or(cut)?[0];
        let key = r.bytes().ok_or(cut)?;
        let deadline = r.u64().ok_or(cut)?;
        match kind {
            STRING | META => {
                let v = r.bytes().ok_or(cut)?;
                f(kind, key, Value::Str(v, deadline));
                if kind == META {
                    continue;
                }
            }
            HASH | SET | ZSET | FIELD_TTLS => {
                let count = r.u32().ok_or(cut)? as usize;
                let mut items = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    let first = r.bytes().ok_or(cut)?;
                    let second = match kind {
                        HASH => r.bytes().ok_or(cut)?,
                        SET => &[],
                        _ => r.take(8).ok_or(cut)?,
                    };
                    items.push((first, second));
                }
                f(kind, key, Value::Items(items, deadline));
            }
            kind => return Err(LoadError::Kind { kind, at }),
        }
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hash-field deadlines survive a dump and load, and still fire afterwards.
    #[test]
    fn field_deadlines_survive_a_snapshot() {
        let a = Store::new(2, 1_000);
        let loc = a.locate(b"h");
        {
            let mut s = a.lock(loc.shard);
            let mut e = s.create_hash(loc.hash, b"h");
            if let Some(h) = e.hash_mut() {
                h.set(b"keep", b"1");
                h.set(b"go", b"2");
            }
            assert!(e.set_field_deadline(b"go", Some(5_000)));
        }
        let out = dump(&a);
        let b = Store::new(2, 1_000);
        load(&b, &out, 1_000).expect("load");
        // Another store hashes keys with its own seed.
        let loc = b.locate(b"h");
        let mut s = b.lock(loc.shard);
        let h = s
            .get(loc.hash, b"h", 1_000)
            .and_then(|e| e.as_hash().cloned());
        let h = h.expect("the hash");
        assert_eq!(
            (h.deadline(b"go"), h.deadline(b"keep")),
            (Some(5_000), None)
        );
        let mut dead = super::super::Reclaimed::default();
        s.expire_due(5_001, usize::MAX, &mut dead);
        let h = s
            .get(loc.hash, b"h", 5_001)
            .and_then(|e| e.as_hash().cloned());
        assert_eq!(
            h.map(|h| h.len()),
            Some(1),
            "the field fired from the loaded wheel"
        );
    }

    #[test]
    fn dump_then_load_gives_the_same_keys_values_and_deadlines() {
        let a = Store::new(4, 1_000);
        for i in 0..500u32 {
            let key = format!("k{i}");
            let loc = a.locate(key.as_bytes());
            let ttl = if i % 3 == 0 {
                Ttl::At(5_000 + u64::from(i))
            } else {
                Ttl::Clear
            };
            a.lock(loc.shard)
                .set_str(loc.hash, key.as_bytes(), &i.to_le_bytes(), ttl, 1_000);
        }
        let loc = a.locate(b"h");
        {
            let mut s = a.lock(loc.shard);
            let mut e = s.create_hash(loc.hash, b"h");
            if let Some(h) = e.hash_mut() {
                h.set(b"f1", b"v1");
                h.set(b"f2", b"");
            }
            e.set_deadline(Some(9_999));
        }
        let mut dumped = Vec::new();
        dump_header(&mut dumped);
        dump_meta(&mut dumped, b"acl", b"user default on nopass ~* &* +@all");
        let meta_len = dumped.len() - MAGIC.len();
        for i in 0..a.shard_count() {
            dump_shard(&a.lock(i), &mut dumped);
        }
        let b = Store::new(16, 1_000);
        let mut metas = Vec::new();
        let loaded = load_with_meta(&b, &dumped, 1_000, |n, v| {
            metas.push((n.to_vec(), v.to_vec()))
        });
        assert_eq!(loaded, Ok(501));
        assert_eq!(
            metas,
            vec![(
                b"acl".to_vec(),
                b"user default on nopass ~* &* +@all".to_vec()
            )]
        );
        for i in 0..500u32 {
            let key = format!("k{i}");
            let loc = b.locate(key.as_bytes());
            let mut s = b.lock(loc.shard);
            let e = s.get(loc.hash, key.as_bytes(), 1_000).expect("present");
            assert_eq!(e.as_str(), Some(&i.to_le_bytes()[..]));
            let want = (i % 3 == 0).then(|| 5_000 + u64::from(i));
            assert_eq!(e.deadline(), want);
        }
        let loc = b.locate(b"h");
        let mut s = b.lock(loc.shard);
        let e = s.get(loc.hash, b"h", 1_000).expect("hash");
        assert_eq!(e.deadline(), Some(9_999));
        let h = e.as_hash().expect("is a hash");
        assert_eq!(h.get(b"f1"), Some(&b"v1"[..]));
        assert_eq!(h.get(b"f2"), Some(&b""[..]));
        drop(s);
        // Dumps of equal content are equal in size (order may differ with the shards).
        assert_eq!(dump(&b).len(), dumped.len() - meta_len);
    }

    #[test]
    fn a_bad_dump_changes_nothing() {
        let a = Store::new(4, 0);
        let loc = a.locate(b"keep");
        a.lock(loc.shard)
            .set_str(loc.hash, b"keep", b"me", Ttl::Clear, 0);
        let mut bad = dump(&a);
        bad.truncate(bad.len() - 1);
        assert!(load(&a, &bad, 0).is_err());
        assert!(load(&a, b"nonsense", 0).is_err());
        assert!(a.lock(loc.shard).contains(loc.hash, b"keep", 0));
    }
}
