//! Hash commands: HSET, HMSET, HSETNX, HGET, HMGET, HGETALL, HDEL, HEXISTS, HLEN, HSTRLEN,
//! HINCRBY, HINCRBYFLOAT, HKEYS, HVALS, HRANDFIELD, HSCAN. Spring Session and ASP.NET Core keep sessions in hashes.

use bytes::Bytes;
use sessiond_protocol::encode;

use super::{parse_i64, wrong_arity, Ctx, ERR_OVERFLOW, ERR_WRONGTYPE};
use crate::pubsub::flags::{GENERIC, HASH};
use crate::store::{HashValue, Object};

/// Write fields into the hash at `key`, creating it; returns the number of new fields,
/// or `None` after replying WRONGTYPE.
fn write_fields(ctx: &mut Ctx<'_>, key: &[u8], pairs: &[Bytes], only_new: bool) -> Option<i64> {
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let mut e = match shard.get(loc.hash, key, now) {
        Some(e) => e,
        None => shard.create_hash(loc.hash, key),
    };
    let Some(h) = e.as_hash() else {
        encode::error(ctx.out, ERR_WRONGTYPE);
        return None;
    };
    // HSETNX on an existing field changes nothing (and must not disturb a WATCH).
    if only_new && pairs.chunks_exact(2).all(|p| h.get(&p[0]).is_some()) {
        return Some(0);
    }
    let Some(h) = e.hash_mut() else {
        return Some(0);
    };
    let mut added = 0;
    for pair in pairs.chunks_exact(2) {
        if only_new && h.get(&pair[0]).is_some() {
            continue;
        }
        if h.set(&pair[0], &pair[1]) {
            added += 1;
        }
    }
    Some(added)
}

pub fn hset(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    if !args.len().is_multiple_of(2) {
        wrong_arity(ctx.out, "hset");
        return;
    }
    if let Some(n) = write_fields(ctx, &args[1], &args[2..], false) {
        ctx.notify(HASH, "hset", &args[1]);
        ctx.int(n);
    }
}

pub fn hmset(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    if !args.len().is_multiple_of(2) {
        wrong_arity(ctx.out, "hmset");
        return;
    }
    if write_fields(ctx, &args[1], &args[2..], false).is_some() {
        ctx.notify(HASH, "hset", &args[1]);
        ctx.ok();
    }
}

pub fn hsetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    if let Some(n) = write_fields(ctx, &args[1], &args[2..], true) {
        if n > 0 {
            ctx.notify(HASH, "hset", &args[1]);
        }
        ctx.int(n);
    }
}

fn pick(o: &Object) -> Option<&HashValue> {
    match o {
        Object::Hash(h) => Some(h),
        _ => None,
    }
}

/// Run `f` on the hash at `key`: `Ok(None)` if the key is missing, and WRONGTYPE is
/// replied (returning `Err`) if it is not a hash.
fn with_hash<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&HashValue, &mut bytes::BytesMut) -> R,
) -> Result<Option<R>, ()> {
    super::collection::read(ctx, key, pick, f)
}

pub fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.conn.resp3;
    let field = &args[2];
    if let Ok(found) = with_hash(ctx, &args[1], |h, out| match h.get(field) {
        Some(v) => encode::bulk(out, v),
        None => encode::null(out, r3),
    }) {
        if found.is_none() {
            ctx.null();
        }
    }
}

pub fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.conn.resp3;
    let fields = &args[2..];
    let write = |h: Option<&HashValue>, out: &mut bytes::BytesMut| {
        encode::array_len(out, fields.len());
        for f in fields {
            match h.and_then(|h| h.get(f)) {
                Some(v) => encode::bulk(out, v),
                None => encode::null(out, r3),
            }
        }
    };
    if let Ok(found) = with_hash(ctx, &args[1], |h, out| write(Some(h), out)) {
        if found.is_none() {
            write(None, ctx.out);
        }
    }
}

pub fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.conn.resp3;
    if let Ok(found) = with_hash(ctx, &args[1], |h, out| {
        encode::map_len(out, h.len(), r3);
        for (f, v) in h.iter() {
            encode::bulk(out, f);
            encode::bulk(out, v);
        }
    }) {
        if found.is_none() {
            encode::map_len(ctx.out, 0, r3);
        }
    }
}

/// `HKEYS` (`fields`) and `HVALS` (`!fields`).
fn fields_or_values(ctx: &mut Ctx<'_>, key: &[u8], fields: bool) {
    if let Ok(found) = with_hash(ctx, key, |h, out| {
        encode::array_len(out, h.len());
        for (f, v) in h.iter() {
            encode::bulk(out, if fields { f } else { v });
        }
    }) {
        if found.is_none() {
            encode::array_len(ctx.out, 0);
        }
    }
}

pub fn hkeys(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    fields_or_values(ctx, &args[1], true);
}

pub fn hvals(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    fields_or_values(ctx, &args[1], false);
}

pub fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let field = &args[2];
    if let Ok(found) = with_hash(ctx, &args[1], |h, _| h.get(field).is_some()) {
        ctx.int(i64::from(found.unwrap_or(false)));
    }
}

pub fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    if let Ok(found) = with_hash(ctx, &args[1], |h, _| h.len()) {
        ctx.int(found.unwrap_or(0) as i64);
    }
}

pub fn hstrlen(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let field = &args[2];
    if let Ok(found) = with_hash(ctx, &args[1], |h, _| h.get(field).map_or(0, |v| v.len())) {
        ctx.int(found.unwrap_or(0) as i64);
    }
}

pub fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let Some(mut e) = shard.get(loc.hash, key, now) else {
        drop(shard);
        ctx.int(0);
        return;
    };
    let Some(h) = e.as_hash() else {
        encode::error(ctx.out, ERR_WRONGTYPE);
        return;
    };
    // Removing only absent fields changes nothing (and must not disturb a WATCH).
    if !args[2..].iter().any(|f| h.get(f).is_some()) {
        drop(shard);
        ctx.int(0);
        return;
    }
    let Some(h) = e.hash_mut() else {
        return;
    };
    let mut n = 0;
    for f in &args[2..] {
        if h.remove(f) {
            n += 1;
        }
    }
    let emptied = h.is_empty();
    if emptied {
        shard.remove(loc.hash, key, now);
    }
    drop(shard);
    ctx.notify(HASH, "hdel", key);
    if emptied {
        ctx.notify(GENERIC, "del", key);
    }
    ctx.int(n);
}

pub fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some(by) = ctx.int_arg(&args[3]) else {
        return;
    };
    let (key, field) = (&args[1], &args[2]);
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let mut e = match shard.get(loc.hash, key, now) {
        Some(e) => e,
        None => shard.create_hash(loc.hash, key),
    };
    let Some(h) = e.hash_mut() else {
        encode::error(ctx.out, ERR_WRONGTYPE);
        return;
    };
    let current = match h.get(field) {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(n) => n,
            None => {
                encode::error(ctx.out, b"ERR hash value is not an integer");
                return;
            }
        },
    };
    let Some(new) = current.checked_add(by) else {
        encode::error(ctx.out, ERR_OVERFLOW);
        return;
    };
    let mut buf = itoa::Buffer::new();
    // HINCRBY keeps the field's deadline (Redis 7.4).
    h.set_keep_ttl(field, buf.format(new).as_bytes());
    encode::integer(ctx.out, new);
    ctx.shared
        .pubsub
        .notify_db(ctx.conn.db, HASH, "hincrby", key);
}

/// `HINCRBYFLOAT key field increment`, in `long double` as Redis (see
/// `crate::longdouble`).
pub fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    use crate::longdouble::{add, FloatError};
    // The increment first (a float, and finite), then the type, then the field.
    match add(None, &args[3], true) {
        Ok(_) => {}
        Err(FloatError::IncrementNotFinite) => return ctx.err(b"ERR value is NaN or Infinity"),
        Err(_) => return ctx.err(super::strings::ERR_NOT_FLOAT),
    }
    let (key, field) = (&args[1], &args[2]);
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let sum = match shard.get(loc.hash, key, now) {
        None => add(None, &args[3], false),
        Some(e) => match e.as_hash() {
            None => {
                encode::error(ctx.out, ERR_WRONGTYPE);
                return;
            }
            Some(h) => add(h.get(field), &args[3], false),
        },
    };
    let text = match sum {
        Ok(t) => t,
        Err(FloatError::Current) => {
            return encode::error(ctx.out, b"ERR hash value is not a float");
        }
        Err(FloatError::Sum) => return encode::error(ctx.out, super::strings::ERR_NAN),
        Err(_) => return encode::error(ctx.out, super::strings::ERR_NOT_FLOAT),
    };
    let mut e = match shard.get(loc.hash, key, now) {
        Some(e) => e,
        None => shard.create_hash(loc.hash, key),
    };
    if let Some(h) = e.hash_mut() {
        h.set_keep_ttl(field, &text);
    }
    encode::bulk(ctx.out, &text);
    ctx.shared
        .pubsub
        .notify_db(ctx.conn.db, HASH, "hincrbyfloat", key);
}

/// `HRANDFIELD key [count [WITHVALUES]]`: a positive count gives distinct fields, a
/// negative one may repeat them.
pub fn hrandfield(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.conn.resp3;
    if args.len() == 2 {
        if let Ok(found) = with_hash(ctx, &args[1], |h, out| {
            let i = (super::random_u64() % h.len().max(1) as u64) as usize;
            match h.iter().nth(i) {
                Some((f, _)) => encode::bulk(out, f),
                None => encode::null(out, r3),
            }
        }) {
            if found.is_none() {
                ctx.null();
            }
        }
        return;
    }
    // The count first, then the option, as Redis checks them.
    let Some(count) = ctx.int_arg(&args[2]) else {
        return;
    };
    let with_values = match args.get(3) {
        None => false,
        Some(a) if args.len() == 4 && a.eq_ignore_ascii_case(b"withvalues") => true,
        Some(_) => {
            ctx.err(super::ERR_SYNTAX);
            return;
        }
    };
    let limit = i64::MAX / if with_values { 2 } else { 1 };
    if count < -limit || count > limit {
        ctx.err(b"ERR value is out of range");
        return;
    }
    // A negative count may ask for more fields than memory holds: the reply is written
    // as it is drawn and stops once it passes the client output limit (the connection
    // is then closed, as Redis closes a client past its output buffer limit).
    let limit = ctx.shared.config.client_output_limit as usize;
    if let Ok(found) = with_hash(ctx, &args[1], |h, out| {
        let all: Vec<(&[u8], &[u8])> = h.iter().collect();
        let (n, picks) = super::collection::random_picks(all.len(), count);
        let pair3 = with_values && r3;
        encode::array_len(out, n * if with_values && !r3 { 2 } else { 1 });
        for i in picks {
            let (f, v) = all[i];
            if pair3 {
                encode::array_len(out, 2);
            }
            encode::bulk(out, f);
            if with_values {
                encode::bulk(out, v);
            }
            if out.len() > limit {
                break;
            }
        }
    }) {
        if found.is_none() {
            encode::array_len(ctx.out, 0);
        }
    }
}

/// `HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]`: one page with every
/// matching field (cursor 0), as Redis answers for a small hash.
pub fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some((_, opts)) = super::collection::scan_start(ctx, args, pick, true) else {
        return;
    };
    let novalues = opts.novalues;
    let r = with_hash(ctx, &args[1], |h, out| {
        let hits: Vec<(&[u8], &[u8])> = h.iter().filter(|(f, _)| opts.wants(f)).collect();
        encode::array_len(out, 2);
        encode::bulk(out, b"0");
        encode::array_len(out, hits.len() * if novalues { 1 } else { 2 });
        for (f, v) in hits {
            encode::bulk(out, f);
            if !novalues {
                encode::bulk(out, v);
            }
        }
    });
    if let Ok(None) = r {
        super::collection::empty_scan(ctx.out);
    }
}
