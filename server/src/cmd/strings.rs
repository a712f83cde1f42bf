//! String commands: GET, SET (NX|XX, GET, EX|PX|EXAT|PXAT|KEEPTTL), SETEX, PSETEX, SETNX,
//! GETEX, GETDEL, GETSET, MGET, MSET, MSETNX, STRLEN, APPEND, INCR/DECR[BY], INCRBYFLOAT,
//! GETRANGE/SUBSTR, SETRANGE.

use bytes::Bytes;
use sessiond_protocol::encode;

use super::{parse_i64, Ctx, ERR_NOT_INT, ERR_OVERFLOW, ERR_SYNTAX, ERR_WRONGTYPE};
use crate::pubsub::flags::{GENERIC, STRING};
use crate::store::{shard_set, KeyType, Ttl};

/// Turn an expire argument into an absolute deadline in Unix ms, replying Redis's error
/// and returning `None` when it is not valid for `SET`-like commands (which reject
/// non-positive values).
pub(super) fn set_deadline_arg(
    ctx: &mut Ctx<'_>,
    raw: &[u8],
    seconds: bool,
    absolute: bool,
    cmd: &str,
) -> Option<u64> {
    let v = ctx.int_arg(raw)?;
    let invalid = |ctx: &mut Ctx<'_>| {
        let msg = format!("ERR invalid expire time in '{cmd}' command");
        ctx.err(msg.as_bytes());
    };
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        invalid(ctx);
        return None;
    }
    let ms = if seconds { v * 1000 } else { v };
    if absolute {
        return Some(ms as u64);
    }
    let now = ctx.now as i64;
    if ms > i64::MAX - now {
        invalid(ctx);
        return None;
    }
    Some((ms + now) as u64)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cond {
    Always,
    Nx,
    Xx,
}

/// Options of `SET`.
struct SetOpts {
    cond: Cond,
    get: bool,
    ttl: Ttl,
}

pub fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let key = &args[1];
    let loc = ctx.locate(key);
    let r3 = ctx.conn.resp3;
    let mut shard = ctx.ks.shard(loc.shard);
    let hit = match shard.get(loc.hash, key, ctx.now) {
        Some(e) => match e.as_str() {
            Some(v) => {
                encode::bulk(ctx.out, v);
                true
            }
            None => {
                encode::error(ctx.out, ERR_WRONGTYPE);
                true
            }
        },
        None => {
            encode::null(ctx.out, r3);
            false
        }
    };
    drop(shard);
    ctx.hit(hit);
}

/// Which command's options [`parse_opts`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OptsFor {
    Set,
    GetEx,
}

/// Options of `SET` and `GETEX`, parsed the way Redis's
/// `parseExtendedStringArgumentsOrReply` does: an option may repeat (the last value wins),
/// but two different expire kinds, or an expire with KEEPTTL/PERSIST, or NX with XX, are
/// a syntax error.
#[derive(Default)]
struct Opts {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// (index of the value argument, seconds?, absolute?)
    expire: Option<(usize, bool, bool)>,
}

fn parse_opts(args: &[Bytes], from: usize, kind: OptsFor) -> Option<Opts> {
    let mut o = Opts::default();
    let mut j = from;
    let set = kind == OptsFor::Set;
    while j < args.len() {
        let a = &args[j];
        let has_next = j + 1 < args.len();
        let exp = [
            (&b"ex"[..], true, false),
            (b"px", false, false),
            (b"exat", true, true),
            (b"pxat", false, true),
        ]
        .into_iter()
        .find(|(name, _, _)| a.eq_ignore_ascii_case(name));
        if set && a.eq_ignore_ascii_case(b"nx") && !o.xx {
            o.nx = true;
        } else if set && a.eq_ignore_ascii_case(b"xx") && !o.nx {
            o.xx = true;
        } else if set && a.eq_ignore_ascii_case(b"get") {
            o.get = true;
        } else if set && a.eq_ignore_ascii_case(b"keepttl") && o.expire.is_none() {
            o.keepttl = true;
        } else if !set && a.eq_ignore_ascii_case(b"persist") && o.expire.is_none() {
            o.persist = true;
        } else if let Some((_, secs, abs)) = exp.filter(|_| has_next && !o.keepttl && !o.persist) {
            if o.expire.is_some_and(|(_, s, a)| (s, a) != (secs, abs)) {
                return None;
            }
            o.expire = Some((j + 1, secs, abs));
            j += 1;
        } else {
            return None;
        }
        j += 1;
    }
    Some(o)
}

pub fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some(o) = parse_opts(args, 3, OptsFor::Set) else {
        ctx.err(ERR_SYNTAX);
        return;
    };
    let ttl = match o.expire {
        Some((i, secs, abs)) => match set_deadline_arg(ctx, &args[i], secs, abs, "set") {
            Some(d) => Ttl::At(d),
            None => return,
        },
        None if o.keepttl => Ttl::Keep,
        None => Ttl::Clear,
    };
    let cond = if o.nx {
        Cond::Nx
    } else if o.xx {
        Cond::Xx
    } else {
        Cond::Always
    };
    set_generic(
        ctx,
        &args[1],
        &args[2],
        SetOpts {
            cond,
            get: o.get,
            ttl,
        },
    );
}

fn set_generic(ctx: &mut Ctx<'_>, key: &[u8], value: &[u8], opts: SetOpts) {
    let loc = ctx.locate(key);
    let now = ctx.now;
    let r3 = ctx.conn.resp3;
    let mut shard = ctx.ks.shard(loc.shard);
    // A plain SET/SETEX neither reads the old value nor depends on it: set_str replaces
    // whatever is there in one table probe.
    let plain = !opts.get && opts.cond == Cond::Always;
    let existing = if plain {
        None
    } else {
        shard.get(loc.hash, key, now)
    };
    let exists = existing.is_some();
    if opts.get {
        match existing {
            Some(e) => match e.as_str() {
                Some(v) => encode::bulk(ctx.out, v),
                None => {
                    encode::error(ctx.out, ERR_WRONGTYPE);
                    return;
                }
            },
            None => encode::null(ctx.out, r3),
        }
    }
    let go = match opts.cond {
        Cond::Always => true,
        Cond::Nx => !exists,
        Cond::Xx => exists,
    };
    if go {
        shard.set_str(loc.hash, key, value, opts.ttl, now);
        ctx.shared.pubsub.notify_db(ctx.conn.db, STRING, "set", key);
        if matches!(opts.ttl, Ttl::At(_)) {
            ctx.shared
                .pubsub
                .notify_db(ctx.conn.db, GENERIC, "expire", key);
        }
    }
    if !opts.get {
        if go {
            ctx.out.extend_from_slice(b"+OK\r\n");
        } else {
            encode::null(ctx.out, r3);
        }
    }
}

/// `SETEX` and `PSETEX`: `SET key value EX|PX ttl`, with their own error names.
fn setex_generic(ctx: &mut Ctx<'_>, args: &[Bytes], seconds: bool, name: &str) {
    let Some(d) = set_deadline_arg(ctx, &args[2], seconds, false, name) else {
        return;
    };
    let opts = SetOpts {
        cond: Cond::Always,
        get: false,
        ttl: Ttl::At(d),
    };
    set_generic(ctx, &args[1], &args[3], opts);
}

pub fn setex(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    setex_generic(ctx, args, true, "setex");
}

pub fn psetex(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    setex_generic(ctx, args, false, "psetex");
}

pub fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let set = !shard.contains(loc.hash, key, now);
    if set {
        shard.set_str(loc.hash, key, &args[2], Ttl::Clear, now);
        ctx.shared.pubsub.notify_db(ctx.conn.db, STRING, "set", key);
    }
    drop(shard);
    ctx.int(i64::from(set));
}

pub fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    set_generic(
        ctx,
        &args[1],
        &args[2],
        SetOpts {
            cond: Cond::Always,
            get: true,
            ttl: Ttl::Clear,
        },
    );
}

/// `GETEX key [EX seconds | PX ms | EXAT ts | PXAT ms-ts | PERSIST]`
pub fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some(o) = parse_opts(args, 2, OptsFor::GetEx) else {
        ctx.err(ERR_SYNTAX);
        return;
    };
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let r3 = ctx.conn.resp3;
    // Redis looks the key up (nil, WRONGTYPE) before it checks the expire value.
    let found = ctx
        .ks
        .shard(loc.shard)
        .get(loc.hash, key, now)
        .map(|e| e.as_str().is_some());
    match found {
        None => {
            encode::null(ctx.out, r3);
            ctx.hit(false);
            return;
        }
        Some(false) => {
            encode::error(ctx.out, ERR_WRONGTYPE);
            return;
        }
        Some(true) => {}
    }
    let deadline = match o.expire {
        Some((i, secs, abs)) => match set_deadline_arg(ctx, &args[i], secs, abs, "getex") {
            Some(d) => Some(Some(d)),
            None => return,
        },
        None if o.persist => Some(None),
        None => None,
    };
    let mut shard = ctx.ks.shard(loc.shard);
    let Some(mut e) = shard.get(loc.hash, key, now) else {
        encode::null(ctx.out, r3);
        drop(shard);
        ctx.hit(false);
        return;
    };
    let Some(v) = e.as_str() else {
        encode::error(ctx.out, ERR_WRONGTYPE);
        return;
    };
    encode::bulk(ctx.out, v);
    match deadline {
        Some(Some(d)) if d <= now => {
            shard.remove(loc.hash, key, now);
            ctx.shared
                .pubsub
                .notify_db(ctx.conn.db, GENERIC, "del", key);
        }
        Some(d) => {
            e.set_deadline(d);
            ctx.shared.pubsub.notify_db(
                ctx.conn.db,
                GENERIC,
                if d.is_some() { "expire" } else { "persist" },
                key,
            );
        }
        None => {}
    }
    drop(shard);
    ctx.hit(true);
}

pub fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let r3 = ctx.conn.resp3;
    let mut shard = ctx.ks.shard(loc.shard);
    let kind = shard.get(loc.hash, key, now).map(|e| e.key_type());
    match kind {
        None => encode::null(ctx.out, r3),
        Some(KeyType::Hash | KeyType::Set | KeyType::ZSet) => encode::error(ctx.out, ERR_WRONGTYPE),
        Some(KeyType::String) => {
            if let Some(e) = shard.remove(loc.hash, key, now) {
                encode::bulk(ctx.out, e.as_str().unwrap_or_default());
                ctx.shared
                    .pubsub
                    .notify_db(ctx.conn.db, GENERIC, "del", key);
            }
        }
    }
}

/// `MGET`: every key read at the same instant (all their shards locked together).
pub fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.conn.resp3;
    let now = ctx.now;
    let keys = &args[1..];
    let (locs, shards) = ctx.locate_all(keys.iter());
    encode::array_len(ctx.out, keys.len());
    let (mut hits, mut misses) = (0, 0);
    let mut set = ctx.ks.shards(&shards);
    for (key, loc) in keys.iter().zip(&locs) {
        match set
            .get(loc.shard)
            .get(loc.hash, key, now)
            .as_ref()
            .and_then(|e| e.as_str())
        {
            Some(v) => {
                encode::bulk(ctx.out, v);
                hits += 1;
            }
            None => {
                encode::null(ctx.out, r3);
                misses += 1;
            }
        }
    }
    drop(set);
    ctx.conn.hits += hits;
    ctx.conn.misses += misses;
}

fn mset_pairs(ctx: &mut Ctx<'_>, args: &[Bytes], name: &str) -> Option<Vec<crate::store::Loc>> {
    if args.len() % 2 != 1 {
        super::wrong_arity(ctx.out, name);
        return None;
    }
    let store = ctx.ks.store();
    Some(
        args[1..]
            .iter()
            .step_by(2)
            .map(|k| store.locate(k))
            .collect(),
    )
}

pub fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some(locs) = mset_pairs(ctx, args, "mset") else {
        return;
    };
    let idxs = shard_set(&locs);
    let now = ctx.now;
    let mut set = ctx.ks.shards(&idxs);
    for (i, loc) in locs.iter().enumerate() {
        let (k, v) = (&args[1 + 2 * i], &args[2 + 2 * i]);
        set.get(loc.shard).set_str(loc.hash, k, v, Ttl::Clear, now);
        ctx.shared.pubsub.notify_db(ctx.conn.db, STRING, "set", k);
    }
    drop(set);
    ctx.ok();
}

pub fn msetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some(locs) = mset_pairs(ctx, args, "msetnx") else {
        return;
    };
    let idxs = shard_set(&locs);
    let now = ctx.now;
    let mut set = ctx.ks.shards(&idxs);
    let any = locs
        .iter()
        .enumerate()
        .any(|(i, loc)| set.get(loc.shard).contains(loc.hash, &args[1 + 2 * i], now));
    if !any {
        for (i, loc) in locs.iter().enumerate() {
            let (k, v) = (&args[1 + 2 * i], &args[2 + 2 * i]);
            set.get(loc.shard).set_str(loc.hash, k, v, Ttl::Clear, now);
            ctx.shared.pubsub.notify_db(ctx.conn.db, STRING, "set", k);
        }
    }
    drop(set);
    ctx.int(i64::from(!any));
}

pub fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    match shard.get(loc.hash, key, now) {
        None => encode::integer(ctx.out, 0),
        Some(e) => match e.as_str() {
            Some(v) => encode::integer(ctx.out, v.len() as i64),
            None => encode::error(ctx.out, ERR_WRONGTYPE),
        },
    }
}

pub fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let max = ctx.shared.proto_max_bulk_len() as usize;
    let mut shard = ctx.ks.shard(loc.shard);
    match shard.get(loc.hash, key, now) {
        None => {
            shard.set_str(loc.hash, key, &args[2], Ttl::Clear, now);
            encode::integer(ctx.out, args[2].len() as i64);
            ctx.shared
                .pubsub
                .notify_db(ctx.conn.db, STRING, "append", key);
        }
        Some(mut e) => match e.as_str() {
            None => encode::error(ctx.out, ERR_WRONGTYPE),
            Some(v) if v.len() + args[2].len() > max => encode::error(
                ctx.out,
                b"ERR string exceeds maximum allowed size (proto-max-bulk-len)",
            ),
            Some(_) => {
                let n = e.append(&args[2]);
                encode::integer(ctx.out, n as i64);
                ctx.shared
                    .pubsub
                    .notify_db(ctx.conn.db, STRING, "append", key);
            }
        },
    }
}

fn incr_generic(ctx: &mut Ctx<'_>, key: &[u8], by: i64) {
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let current = match shard.get(loc.hash, key, now) {
        None => None,
        Some(e) => match e.as_str() {
            None => {
                encode::error(ctx.out, ERR_WRONGTYPE);
                return;
            }
            Some(v) => match parse_i64(v) {
                Some(n) => Some(n),
                None => {
                    encode::error(ctx.out, ERR_NOT_INT);
                    return;
                }
            },
        },
    };
    let Some(new) = current.unwrap_or(0).checked_add(by) else {
        encode::error(ctx.out, ERR_OVERFLOW);
        return;
    };
    let mut buf = itoa::Buffer::new();
    let text = buf.format(new).as_bytes();
    match shard.get(loc.hash, key, now) {
        Some(mut e) => e.set_str(text),
        None => shard.set_str(loc.hash, key, text, Ttl::Clear, now),
    }
    encode::integer(ctx.out, new);
    ctx.shared
        .pubsub
        .notify_db(ctx.conn.db, STRING, "incrby", key);
}

pub fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    incr_generic(ctx, &args[1], 1);
}

pub fn decr(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    incr_generic(ctx, &args[1], -1);
}

pub fn incrby(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some(by) = ctx.int_arg(&args[2]) else {
        return;
    };
    incr_generic(ctx, &args[1], by);
}

pub fn decrby(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some(by) = ctx.int_arg(&args[2]) else {
        return;
    };
    let Some(neg) = by.checked_neg() else {
        ctx.err(b"ERR decrement would overflow");
        return;
    };
    incr_generic(ctx, &args[1], neg);
}

pub const ERR_NOT_FLOAT: &[u8] = b"ERR value is not a valid float";
pub const ERR_NAN: &[u8] = b"ERR increment would produce NaN or Infinity";

/// `INCRBYFLOAT key increment`, in `long double` as Redis (see `crate::longdouble`).
pub fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    use crate::longdouble::{add, FloatError};
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    // The type, then the value, then the increment, as Redis checks them.
    let sum = match shard.get(loc.hash, key, now) {
        None => add(None, &args[2], false),
        Some(e) => match e.as_str() {
            None => {
                encode::error(ctx.out, ERR_WRONGTYPE);
                return;
            }
            Some(v) => add(Some(v), &args[2], false),
        },
    };
    let text = match sum {
        Ok(t) => t,
        Err(FloatError::Sum) => return encode::error(ctx.out, ERR_NAN),
        Err(_) => return encode::error(ctx.out, ERR_NOT_FLOAT),
    };
    match shard.get(loc.hash, key, now) {
        Some(mut e) => e.set_str(&text),
        None => shard.set_str(loc.hash, key, &text, Ttl::Clear, now),
    }
    drop(shard);
    encode::bulk(ctx.out, &text);
    ctx.notify(STRING, "incrbyfloat", key);
}

/// `GETRANGE key start end` (and `SUBSTR`), with Redis's clamping.
pub fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let (Some(mut start), Some(mut end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        ctx.err(ERR_NOT_INT);
        return;
    };
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let Some(e) = shard.get(loc.hash, key, now) else {
        encode::bulk(ctx.out, b"");
        return;
    };
    let Some(v) = e.as_str() else {
        encode::error(ctx.out, ERR_WRONGTYPE);
        return;
    };
    if start < 0 && end < 0 && start > end {
        encode::bulk(ctx.out, b"");
        return;
    }
    let len = v.len() as i64;
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0).min(len - 1);
    if len == 0 || start > end {
        encode::bulk(ctx.out, b"");
        return;
    }
    encode::bulk(ctx.out, &v[start as usize..=end as usize]);
}

/// `SETRANGE key offset value`: overwrite from `offset`, padding with zero bytes.
pub fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some(offset) = parse_i64(&args[2]) else {
        ctx.err(ERR_NOT_INT);
        return;
    };
    if offset < 0 {
        ctx.err(b"ERR offset is out of range");
        return;
    }
    let (key, value) = (&args[1], &args[3]);
    let max = ctx.shared.proto_max_bulk_len();
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let old = match shard.get(loc.hash, key, now) {
        None => None,
        Some(e) => match e.as_str() {
            None => {
                encode::error(ctx.out, ERR_WRONGTYPE);
                return;
            }
            Some(v) => Some(v.to_vec()),
        },
    };
    if value.is_empty() {
        encode::integer(ctx.out, old.map_or(0, |v| v.len() as i64));
        return;
    }
    if offset as u64 + value.len() as u64 > max {
        encode::error(
            ctx.out,
            b"ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        );
        return;
    }
    let offset = offset as usize;
    let mut v = old.unwrap_or_default();
    if v.len() < offset + value.len() {
        v.resize(offset + value.len(), 0);
    }
    v[offset..offset + value.len()].copy_from_slice(value);
    match shard.get(loc.hash, key, now) {
        Some(mut e) => e.set_str(&v),
        None => shard.set_str(loc.hash, key, &v, Ttl::Clear, now),
    }
    drop(shard);
    encode::integer(ctx.out, v.len() as i64);
    ctx.notify(STRING, "setrange", key);
}
