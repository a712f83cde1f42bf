//! Hash-field expiry (Redis 7.4): `HEXPIRE`, `HPEXPIRE`, `HEXPIREAT`, `HPEXPIREAT`,
//! `HTTL`, `HPTTL`, `HEXPIRETIME`, `HPEXPIRETIME`, `HPERSIST`. The deadlines live with the
//! hash (`store::hash::FieldTtl`) and fire from the shard's field wheel
//! (`store/fields.rs`). Replies and error texts follow Redis 7.4's `t_hash.c`.

use bytes::Bytes;
use sessiond_protocol::encode;

use super::{parse_i64, Ctx, ERR_NOT_INT, ERR_WRONGTYPE};
use crate::pubsub::flags::{GENERIC, HASH};
use crate::store::KeyType;

/// The largest deadline a field may have (Redis's `HFE_MAX_ABS_TIME_MSEC`).
const MAX_ABS_MS: i64 = 0x0000_FFFF_FFFF_FFFF >> 2;
const NO_FIELD: i64 = -2;
const NO_TTL: i64 = -1;
const FIELDS_MISSING: &[u8] =
    b"ERR Mandatory argument FIELDS is missing or not at the right position";
const FIELDS_COUNT: &[u8] = b"ERR The `numfields` parameter must match the number of arguments";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cond {
    Always,
    Nx,
    Xx,
    Gt,
    Lt,
}

/// Whether the key exists as a hash: `Ok(false)` when missing, WRONGTYPE replied
/// (`Err`) for another type.
fn check_hash(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<bool, ()> {
    let loc = ctx.locate(key);
    let now = ctx.now;
    let t = ctx
        .ks
        .shard(loc.shard)
        .get(loc.hash, key, now)
        .map(|e| e.key_type());
    match t {
        None => Ok(false),
        Some(KeyType::Hash) => Ok(true),
        Some(_) => {
            encode::error(ctx.out, ERR_WRONGTYPE);
            Err(())
        }
    }
}

/// `FIELDS numfields field...` from argument `at` (the `FIELDS` word): the fields, or
/// the error to reply. `count_err`: the text for a bad count.
fn fields<'a>(
    args: &'a [Bytes],
    at: usize,
    count_err: &'static [u8],
) -> Result<&'a [Bytes], &'static [u8]> {
    if !args[at].eq_ignore_ascii_case(b"fields") {
        return Err(FIELDS_MISSING);
    }
    let n = args
        .get(at + 1)
        .and_then(|a| parse_i64(a))
        .filter(|&n| n >= 1)
        .ok_or(count_err)?;
    if n as usize != args.len() - at - 2 {
        return Err(FIELDS_COUNT);
    }
    Ok(&args[at + 2..])
}

/// The reply's array header for `n` fields; for a missing key, also its `n` times -2.
/// Returns whether the caller goes on to answer field by field.
fn reply_header(ctx: &mut Ctx<'_>, n: usize, exists: bool) -> bool {
    encode::array_len(ctx.out, n);
    if !exists {
        (0..n).for_each(|_| encode::integer(ctx.out, NO_FIELD));
    }
    exists
}

/// `HTTL`'s and `HPERSIST`'s `key FIELDS n field...`, checked in Redis's order: whether
/// the hash exists, and the fields; `None` once an error is replied.
fn key_and_fields<'a>(ctx: &mut Ctx<'_>, args: &'a [Bytes]) -> Option<(bool, &'a [Bytes])> {
    let exists = check_hash(ctx, &args[1]).ok()?;
    match fields(args, 2, b"ERR Number of fields must be a positive integer") {
        Ok(f) => Some((exists, f)),
        Err(e) => {
            ctx.err(e);
            None
        }
    }
}

/// `HEXPIRE key seconds [NX|XX|GT|LT] FIELDS n field...` and its siblings. `ms`: the
/// time is in milliseconds; `at`: it is absolute.
fn hexpire_generic(ctx: &mut Ctx<'_>, args: &[Bytes], name: &str, ms: bool, at: bool) {
    let key = &args[1];
    let Ok(exists) = check_hash(ctx, key) else {
        return;
    };
    let Some(mut when) = parse_i64(&args[2]) else {
        return ctx.err(ERR_NOT_INT);
    };
    if when < 0 {
        return ctx.err(b"ERR invalid expire time, must be >= 0");
    }
    let bad_time = format!("ERR invalid expire time in '{name}' command");
    if !ms {
        if when > MAX_ABS_MS / 1000 {
            return ctx.err(bad_time.as_bytes());
        }
        when *= 1000;
    }
    let base = if at { 0 } else { ctx.now as i64 };
    if when > MAX_ABS_MS - base {
        return ctx.err(bad_time.as_bytes());
    }
    let when = (when + base) as u64;
    let cond = match args[3].to_ascii_lowercase().as_slice() {
        b"nx" => Cond::Nx,
        b"xx" => Cond::Xx,
        b"gt" => Cond::Gt,
        b"lt" => Cond::Lt,
        _ => Cond::Always,
    };
    let at_fields = if cond == Cond::Always { 3 } else { 4 };
    let fields = match fields(
        args,
        at_fields,
        b"ERR Parameter `numFields` should be greater than 0",
    ) {
        Ok(f) => f,
        Err(e) => return ctx.err(e),
    };
    if !reply_header(ctx, fields.len(), exists) {
        return;
    }
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let Some(mut e) = shard.get(loc.hash, key, now) else {
        return;
    };
    let (mut updated, mut deleted) = (0, 0);
    for f in fields {
        let Some(h) = e.as_hash() else {
            encode::integer(ctx.out, NO_FIELD);
            continue;
        };
        if h.get(f).is_none() {
            encode::integer(ctx.out, NO_FIELD);
            continue;
        }
        let refused = match (h.deadline(f), cond) {
            (None, Cond::Xx | Cond::Gt) => true,
            (None, _) => false,
            (Some(_), Cond::Nx) => true,
            (Some(prev), Cond::Gt) => prev >= when,
            (Some(prev), Cond::Lt) => prev <= when,
            (Some(_), _) => false,
        };
        if refused {
            encode::integer(ctx.out, 0);
            continue;
        }
        if when <= now {
            // Already past: the field goes now.
            if let Some(h) = e.hash_mut() {
                h.remove(f);
            }
            deleted += 1;
            encode::integer(ctx.out, 2);
        } else {
            e.set_field_deadline(f, Some(when));
            updated += 1;
            encode::integer(ctx.out, 1);
        }
    }
    let emptied = e.as_hash().is_some_and(|h| h.is_empty());
    if emptied {
        shard.remove(loc.hash, key, now);
    }
    drop(shard);
    if updated + deleted == 0 {
        return;
    }
    if emptied {
        ctx.notify(HASH, "hdel", key);
        ctx.notify(GENERIC, "del", key);
    } else {
        ctx.notify(HASH, if deleted > 0 { "hdel" } else { "hexpire" }, key);
    }
}

pub fn hexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    hexpire_generic(ctx, args, "hexpire", false, false)
}

pub fn hpexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    hexpire_generic(ctx, args, "hpexpire", true, false)
}

pub fn hexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    hexpire_generic(ctx, args, "hexpireat", false, true)
}

pub fn hpexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    hexpire_generic(ctx, args, "hpexpireat", true, true)
}

/// `HTTL key FIELDS n field...` and its siblings: `ms` in milliseconds; `absolute`
/// gives the deadline itself.
fn httl_generic(ctx: &mut Ctx<'_>, args: &[Bytes], ms: bool, absolute: bool) {
    let key = &args[1];
    let Some((exists, fields)) = key_and_fields(ctx, args) else {
        return;
    };
    if !reply_header(ctx, fields.len(), exists) {
        return;
    }
    let loc = ctx.locate(key);
    let now = ctx.now;
    let base = if absolute { 0 } else { now as i64 };
    let mut shard = ctx.ks.shard(loc.shard);
    let h = shard.get(loc.hash, key, now);
    let h = h.as_ref().and_then(|e| e.as_hash());
    for f in fields {
        let v = match h.filter(|h| h.get(f).is_some()).map(|h| h.deadline(f)) {
            None => NO_FIELD,
            Some(None) => NO_TTL,
            Some(Some(d)) if d < now => NO_FIELD,
            Some(Some(d)) if ms => d as i64 - base,
            Some(Some(d)) => (d as i64 + 999 - base) / 1000,
        };
        encode::integer(ctx.out, v);
    }
}

pub fn httl(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    httl_generic(ctx, args, false, false)
}

pub fn hpttl(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    httl_generic(ctx, args, true, false)
}

pub fn hexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    httl_generic(ctx, args, false, true)
}

pub fn hpexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    httl_generic(ctx, args, true, true)
}

/// `HPERSIST key FIELDS n field...`: 1 persisted, -1 no deadline, -2 no field.
pub fn hpersist(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let key = &args[1];
    let Some((exists, fields)) = key_and_fields(ctx, args) else {
        return;
    };
    if !reply_header(ctx, fields.len(), exists) {
        return;
    }
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let Some(mut e) = shard.get(loc.hash, key, now) else {
        return;
    };
    let mut changed = false;
    for f in fields {
        let state = e
            .as_hash()
            .filter(|h| h.get(f).is_some())
            .map(|h| h.deadline(f));
        let v = match state {
            None => NO_FIELD,
            Some(None) => NO_TTL,
            Some(Some(d)) if d < now => NO_FIELD,
            Some(Some(_)) => {
                e.set_field_deadline(f, None);
                changed = true;
                1
            }
        };
        encode::integer(ctx.out, v);
    }
    drop(shard);
    if changed {
        ctx.notify(HASH, "hpersist", key);
    }
}
