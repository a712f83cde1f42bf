//! Generic key commands: DEL, UNLINK, EXISTS, TOUCH, TYPE, RENAME, RENAMENX, the EXPIRE
//! family with NX|XX|GT|LT, TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST, KEYS, SCAN, COPY,
//! RANDOMKEY, OBJECT, MEMORY USAGE.

use bytes::{Bytes, BytesMut};
use sessiond_protocol::encode;

use super::{printable, Ctx, ERR_SYNTAX};
use crate::pubsub::flags::GENERIC;
use crate::store::{shard_set, Loc, Object, Shard, SLOTS};

/// `DEL` and `UNLINK`: remove the keys atomically, free their values unlocked.
pub fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let now = ctx.now;
    let keys = &args[1..];
    let (locs, shards) = ctx.locate_all(keys.iter());
    let mut set = ctx.ks.shards(&shards);
    let mut dead = Vec::new();
    for (key, loc) in keys.iter().zip(&locs) {
        if let Some(e) = set.get(loc.shard).remove(loc.hash, key, now) {
            dead.push(e);
            ctx.shared
                .pubsub
                .notify_db(ctx.conn.db, GENERIC, "del", key);
        }
    }
    drop(set);
    ctx.int(dead.len() as i64);
}

/// `EXISTS` and `TOUCH`: how many of the keys exist (duplicates count each time).
pub fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let now = ctx.now;
    let keys = &args[1..];
    let (locs, shards) = ctx.locate_all(keys.iter());
    let mut set = ctx.ks.shards(&shards);
    let n = keys
        .iter()
        .zip(&locs)
        .filter(|(key, loc)| set.get(loc.shard).contains(loc.hash, key, now))
        .count();
    drop(set);
    ctx.int(n as i64);
}

pub fn type_(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let t = ctx
        .ks
        .shard(loc.shard)
        .get(loc.hash, key, now)
        .map(|e| e.key_type().name());
    encode::simple(ctx.out, t.unwrap_or("none").as_bytes());
}

fn rename_generic(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) {
    let (src, dst) = (&args[1], &args[2]);
    let now = ctx.now;
    let (ls, ld) = (ctx.locate(src), ctx.locate(dst));
    let idxs = shard_set(&[ls, ld]);
    let mut set = ctx.ks.shards(&idxs);
    let Some(deadline) = set
        .get(ls.shard)
        .get(ls.hash, src, now)
        .map(|e| e.deadline())
    else {
        drop(set);
        ctx.err(b"ERR no such key");
        return;
    };
    if src == dst {
        drop(set);
        if nx {
            ctx.int(0);
        } else {
            ctx.ok();
        }
        return;
    }
    if nx && set.get(ld.shard).contains(ld.hash, dst, now) {
        drop(set);
        ctx.int(0);
        return;
    }
    let Some(entry) = set.get(ls.shard).remove(ls.hash, src, now) else {
        drop(set);
        ctx.err(b"ERR no such key");
        return;
    };
    let old = set
        .get(ld.shard)
        .insert_renamed(ld.hash, dst, entry, deadline);
    drop(set);
    drop(old);
    ctx.notify(GENERIC, "rename_from", src);
    ctx.notify(GENERIC, "rename_to", dst);
    if nx {
        ctx.int(1);
    } else {
        ctx.ok();
    }
}

pub fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    rename_generic(ctx, args, false);
}

pub fn renamenx(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    rename_generic(ctx, args, true);
}

#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

/// The EXPIRE family. `base` is the time a relative value counts from (now, or 0 for the
/// `*AT` forms); `seconds` says the unit.
fn expire_generic(ctx: &mut Ctx<'_>, args: &[Bytes], base: i64, seconds: bool, name: &str) {
    let mut f = ExpireFlags::default();
    for a in &args[3..] {
        if a.eq_ignore_ascii_case(b"nx") {
            f.nx = true;
        } else if a.eq_ignore_ascii_case(b"xx") {
            f.xx = true;
        } else if a.eq_ignore_ascii_case(b"gt") {
            f.gt = true;
        } else if a.eq_ignore_ascii_case(b"lt") {
            f.lt = true;
        } else {
            let msg = format!("ERR Unsupported option {}", printable(a, 128));
            ctx.err(msg.as_bytes());
            return;
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        ctx.err(b"ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if f.gt && f.lt {
        ctx.err(b"ERR GT and LT options at the same time are not compatible");
        return;
    }
    let Some(mut when) = ctx.int_arg(&args[2]) else {
        return;
    };
    let invalid = |ctx: &mut Ctx<'_>| {
        let msg = format!("ERR invalid expire time in '{name}' command");
        ctx.err(msg.as_bytes());
    };
    if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            invalid(ctx);
            return;
        }
        when *= 1000;
    }
    if when > i64::MAX - base {
        invalid(ctx);
        return;
    }
    when += base;
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let Some(mut e) = shard.get(loc.hash, key, now) else {
        drop(shard);
        ctx.int(0);
        return;
    };
    let current = e.deadline().map(|d| d as i64);
    let refuse = (f.nx && current.is_some())
        || (f.xx && current.is_none())
        || (f.gt && current.is_none_or(|c| when <= c))
        || (f.lt && current.is_some_and(|c| when >= c));
    if refuse {
        drop(shard);
        ctx.int(0);
        return;
    }
    if when <= now as i64 {
        let old = shard.remove(loc.hash, key, now);
        drop(shard);
        drop(old);
        ctx.notify(GENERIC, "del", key);
    } else {
        e.set_deadline(Some(when as u64));
        drop(shard);
        ctx.notify(GENERIC, "expire", key);
    }
    ctx.int(1);
}

pub fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let now = ctx.now as i64;
    expire_generic(ctx, args, now, true, "expire");
}

pub fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let now = ctx.now as i64;
    expire_generic(ctx, args, now, false, "pexpire");
}

pub fn expireat(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    expire_generic(ctx, args, 0, true, "expireat");
}

pub fn pexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    expire_generic(ctx, args, 0, false, "pexpireat");
}

/// -2 when the key is missing, -1 when it has no TTL, else its deadline in Unix ms.
fn deadline_of(ctx: &mut Ctx<'_>, key: &[u8]) -> i64 {
    let loc = ctx.locate(key);
    let now = ctx.now;
    match ctx.ks.shard(loc.shard).get(loc.hash, key, now) {
        None => -2,
        Some(e) => e.deadline().map_or(-1, |d| d as i64),
    }
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME. As in Redis, seconds are rounded to the nearest
/// second, for the absolute forms too.
fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], ms: bool, absolute: bool) {
    let d = deadline_of(ctx, key);
    let v = if d < 0 {
        d
    } else {
        let t = if absolute {
            d
        } else {
            (d - ctx.now as i64).max(0)
        };
        if ms {
            t
        } else {
            (t + 500) / 1000
        }
    };
    ctx.int(v);
}

pub fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    ttl_generic(ctx, &args[1], false, false);
}

pub fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    ttl_generic(ctx, &args[1], true, false);
}

pub fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    ttl_generic(ctx, &args[1], false, true);
}

pub fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    ttl_generic(ctx, &args[1], true, true);
}

pub fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let changed = match shard.get(loc.hash, key, now) {
        Some(mut e) if e.deadline().is_some() => {
            e.set_deadline(None);
            true
        }
        _ => false,
    };
    drop(shard);
    if changed {
        ctx.notify(GENERIC, "persist", key);
    }
    ctx.int(i64::from(changed));
}

pub fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let pattern = &args[1];
    let all = pattern.as_ref() == b"*";
    let glob = crate::glob::Glob::new(pattern, false);
    let now = ctx.now;
    let mut body = BytesMut::new();
    let mut n = 0;
    let shards = ctx.ks.store().shard_count();
    for i in 0..shards {
        let shard = ctx.ks.shard(i);
        for local in 0..SLOTS / shards {
            shard.for_each_in_slot(local, now, |e| {
                if all || glob.matches(e.key()) {
                    encode::bulk(&mut body, e.key());
                    n += 1;
                }
            });
        }
    }
    encode::array_len(ctx.out, n);
    ctx.out.extend_from_slice(&body);
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
///
/// The cursor is the next hash slot to visit; a slot is always returned whole, so keys
/// that exist for the whole iteration are returned at least once however tables grow or
/// shrink in between.
pub fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let cursor = super::parse_cursor(&args[1]);
    let Some(cursor) = cursor else {
        ctx.err(b"ERR invalid cursor");
        return;
    };
    let mut pattern: Option<&Bytes> = None;
    let mut count: usize = 10;
    let mut type_filter: Option<Vec<u8>> = None;
    let mut j = 2;
    while j < args.len() {
        let has_next = j + 1 < args.len();
        let a = &args[j];
        if has_next && a.eq_ignore_ascii_case(b"count") {
            let Some(c) = ctx.int_arg(&args[j + 1]) else {
                return;
            };
            if c < 1 {
                ctx.err(ERR_SYNTAX);
                return;
            }
            count = c.min(1 << 30) as usize;
        } else if has_next && a.eq_ignore_ascii_case(b"match") {
            pattern = Some(&args[j + 1]);
        } else if has_next && a.eq_ignore_ascii_case(b"type") {
            type_filter = Some(args[j + 1].to_ascii_lowercase());
        } else {
            ctx.err(ERR_SYNTAX);
            return;
        }
        j += 2;
    }
    let pattern = pattern
        .filter(|p| p.as_ref() != b"*")
        .map(|p| crate::glob::Glob::new(p, false));
    let now = ctx.now;
    let mut slot = if cursor >= SLOTS as u64 {
        SLOTS
    } else {
        cursor as usize
    };
    let mut examined = 0usize;
    let mut body = BytesMut::new();
    let mut n = 0;
    while slot < SLOTS && examined < count {
        let (shard_idx, local) = ctx.ks.store().split_slot(slot);
        let shard = ctx.ks.shard(shard_idx);
        shard.for_each_in_slot(local, now, |e| {
            examined += 1;
            if let Some(t) = &type_filter {
                if e.key_type().name().as_bytes() != t.as_slice() {
                    return;
                }
            }
            if let Some(p) = &pattern {
                if !p.matches(e.key()) {
                    return;
                }
            }
            encode::bulk(&mut body, e.key());
            n += 1;
        });
        slot += 1;
    }
    let next = if slot >= SLOTS { 0 } else { slot };
    encode::array_len(ctx.out, 2);
    let mut buf = itoa::Buffer::new();
    encode::bulk(ctx.out, buf.format(next).as_bytes());
    encode::array_len(ctx.out, n);
    ctx.out.extend_from_slice(&body);
}

/// A value copied out of the store with its deadline (`COPY`).
enum Owned {
    Str(Vec<u8>),
    Obj(crate::store::Object),
}

impl Owned {
    fn of(e: &crate::store::EntryMut<'_>) -> (Owned, Option<u64>) {
        let v = match (e.as_str(), e.object()) {
            (Some(s), _) => Owned::Str(s.to_vec()),
            (None, Some(o)) => Owned::Obj(o.clone()),
            (None, None) => Owned::Str(Vec::new()),
        };
        (v, e.deadline())
    }

    /// Write the copy under `dst`, over an existing key only with `replace`; whether it
    /// was written.
    fn put(
        self,
        shard: &mut Shard,
        ld: Loc,
        dst: &[u8],
        deadline: Option<u64>,
        replace: bool,
        now: u64,
    ) -> bool {
        if shard.contains(ld.hash, dst, now) {
            if !replace {
                return false;
            }
            let old = shard.remove(ld.hash, dst, now);
            drop(old);
        }
        let ttl = deadline.map_or(crate::store::Ttl::Clear, crate::store::Ttl::At);
        match self {
            Owned::Str(v) => shard.set_str(ld.hash, dst, &v, ttl, now),
            Owned::Obj(o) => shard.create(ld.hash, dst, o).set_deadline(deadline),
        }
        true
    }
}

/// `COPY source destination [DB destination-db] [REPLACE]`
pub fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let mut replace = false;
    let mut dst_db = ctx.conn.db;
    let mut j = 3;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"replace") {
            replace = true;
            j += 1;
        } else if args[j].eq_ignore_ascii_case(b"db") && j + 1 < args.len() {
            let Some(db) = ctx.int_arg(&args[j + 1]) else {
                return;
            };
            if !(0..crate::server::DATABASES as i64).contains(&db) {
                ctx.err(b"ERR DB index is out of range");
                return;
            }
            dst_db = db as usize;
            j += 2;
        } else {
            ctx.err(ERR_SYNTAX);
            return;
        }
    }
    let (src, dst) = (&args[1], &args[2]);
    if dst_db != ctx.conn.db {
        return copy_to_db(ctx, src, dst, dst_db, replace);
    }
    if src == dst {
        ctx.err(b"ERR source and destination objects are the same");
        return;
    }
    let now = ctx.now;
    let (ls, ld) = (ctx.locate(src), ctx.locate(dst));
    let idxs = shard_set(&[ls, ld]);
    let mut set = ctx.ks.shards(&idxs);
    let Some((value, deadline)) = set
        .get(ls.shard)
        .get(ls.hash, src, now)
        .map(|e| Owned::of(&e))
    else {
        drop(set);
        ctx.int(0);
        return;
    };
    let written = value.put(set.get(ld.shard), ld, dst, deadline, replace, now);
    drop(set);
    if written {
        ctx.notify(GENERIC, "copy_to", dst);
    }
    ctx.int(i64::from(written));
}

/// `COPY ... DB n` into another database: the value is copied out under the source's
/// lock, then written under the target's (the two are never held together).
fn copy_to_db(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], db: usize, replace: bool) {
    let now = ctx.now;
    let (ls, ld) = (ctx.locate(src), ctx.locate(dst));
    let copied = ctx
        .ks
        .shard(ls.shard)
        .get(ls.hash, src, now)
        .map(|e| Owned::of(&e));
    let Some((value, deadline)) = copied else {
        return ctx.int(0);
    };
    let Some(mut shard) = super::databases::lock_other(ctx, db, ld.shard) else {
        return ctx.err(super::databases::ERR_DB_BUSY);
    };
    let written = value.put(&mut shard, ld, dst, deadline, replace, now);
    drop(shard);
    if written {
        ctx.shared.pubsub.notify_db(db, GENERIC, "copy_to", dst);
    }
    ctx.int(i64::from(written));
}

/// `RANDOMKEY`: a key from a random slot onwards, or nil when there is none.
pub fn randomkey(ctx: &mut Ctx<'_>, _args: &[Bytes]) {
    let now = ctx.now;
    let start = (super::random_u64() % SLOTS as u64) as usize;
    for i in 0..SLOTS {
        let slot = (start + i) % SLOTS;
        let (shard_idx, local) = ctx.ks.store().split_slot(slot);
        let mut found: Option<Vec<u8>> = None;
        let mut seen = 0u64;
        ctx.ks.shard(shard_idx).for_each_in_slot(local, now, |e| {
            // Reservoir sampling: each key of the slot equally likely.
            seen += 1;
            if super::random_u64().is_multiple_of(seen) {
                found = Some(e.key().to_vec());
            }
        });
        if let Some(k) = found {
            ctx.bulk(&k);
            return;
        }
    }
    ctx.null();
}

/// What `OBJECT ENCODING` says of a value: the names Redis 7.0 would use (it has no
/// listpack sets).
fn encoding(s: Option<&[u8]>, o: Option<&Object>) -> &'static str {
    let small = |n: usize, mut all: Box<dyn Iterator<Item = usize> + '_>| {
        n <= 128 && all.all(|len| len <= 64)
    };
    match (s, o) {
        (Some(v), _) if v.len() <= 20 && super::parse_i64(v).is_some() => "int",
        (Some(v), _) if v.len() <= 44 => "embstr",
        (Some(_), _) => "raw",
        (None, Some(Object::Hash(h)))
            if small(
                h.len(),
                Box::new(h.iter().map(|(f, v)| f.len().max(v.len()))),
            ) =>
        {
            "listpack"
        }
        (None, Some(Object::Set(set)))
            if set.len() <= 512 && set.iter().all(|m| super::parse_i64(m).is_some()) =>
        {
            "intset"
        }
        (None, Some(Object::ZSet(z)))
            if small(z.len(), Box::new(z.iter().map(|(_, m)| m.len()))) =>
        {
            "listpack"
        }
        (None, Some(Object::ZSet(_))) => "skiplist",
        _ => "hashtable",
    }
}

/// `OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ|HELP`
pub fn object(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let sub = args[1].to_ascii_lowercase();
    if sub == b"help" && args.len() == 2 {
        super::help_reply(
            ctx.out,
            &[
                b"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                b"ENCODING <key>",
                b"    Return the kind of internal representation used in order to store the value",
                b"    associated with a <key>.",
                b"FREQ <key>",
                b"    Return the access logarithmic access frequency counter of a <key>.",
                b"IDLETIME <key>",
                b"    Return the idle time of a <key>, that is the approximated number of",
                b"    seconds elapsed since the last access to the key.",
                b"REFCOUNT <key>",
                b"    Return the number of references of the value associated with the specified",
                b"    <key>.",
                b"HELP",
                b"    Print this help.",
            ],
        );
        return;
    }
    if !matches!(
        sub.as_slice(),
        b"encoding" | b"refcount" | b"idletime" | b"freq"
    ) || args.len() != 3
    {
        super::unknown_subcommand(ctx.out, "OBJECT", &args[1]);
        return;
    }
    let key = &args[2];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let Some(e) = shard.get(loc.hash, key, now) else {
        drop(shard);
        ctx.null();
        return;
    };
    let enc = encoding(e.as_str(), e.object());
    drop(shard);
    match sub.as_slice() {
        b"encoding" => ctx.bulk(enc.as_bytes()),
        b"refcount" => ctx.int(1),
        b"idletime" => ctx.int(0),
        _ => ctx.err(b"ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."),
    }
}

/// `MEMORY USAGE key [SAMPLES n]`, `MEMORY HELP`: the bytes a key takes (its entry,
/// key and value), or nil.
pub fn memory(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"usage" if args.len() == 3 || args.len() == 5 => {
            if args.len() == 5 {
                if !args[3].eq_ignore_ascii_case(b"samples") {
                    ctx.err(ERR_SYNTAX);
                    return;
                }
                if ctx.int_arg(&args[4]).is_none() {
                    return;
                }
            }
            let key = &args[2];
            let loc = ctx.locate(key);
            let now = ctx.now;
            let size = ctx.ks.shard(loc.shard).get(loc.hash, key, now).map(|e| {
                let value =
                    e.as_str().map_or(0, <[u8]>::len) + e.object().map_or(0, Object::heap_size);
                // The entry, its table slot and timer, and the allocation's header.
                48 + key.len() + value
            });
            match size {
                Some(n) => ctx.int(n as i64),
                None => ctx.null(),
            }
        }
        b"help" if args.len() == 2 => super::help_reply(
            ctx.out,
            &[
                b"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                b"USAGE <key> [SAMPLES <count>]",
                b"    Return memory in bytes used by <key> and its value. Nested values are",
                b"    sampled up to <count> times (default: 5, 0 means sample all).",
                b"HELP",
                b"    Print this help.",
            ],
        ),
        _ => super::unknown_subcommand(ctx.out, "MEMORY", &args[1]),
    }
}
