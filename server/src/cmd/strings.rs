//! String commands: GET, SET (NX|XX, GET, EX|PX|EXAT|PXAT|KEEPTTL), SETEX, PSETEX, SETNX,
//! GETEX, GETDEL, GETSET, MGET, MSET, MSETNX, STRLEN, APPEND, INCR/DECR[BY].

use bytes::Bytes;
use sessiond_protocol::encode;

use super::{parse_i64, Ctx, ERR_NOT_INT, ERR_OVERFLOW, ERR_SYNTAX, ERR_WRONGTYPE};
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

pub fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let mut cond = Cond::Always;
    let mut get = false;
    let mut keepttl = false;
    // (index of the value argument, seconds?, absolute?)
    let mut expire: Option<(usize, bool, bool)> = None;
    let mut j = 3;
    while j < args.len() {
        let a = &args[j];
        let has_next = j + 1 < args.len();
        if a.eq_ignore_ascii_case(b"nx") && cond != Cond::Xx {
            cond = Cond::Nx;
        } else if a.eq_ignore_ascii_case(b"xx") && cond != Cond::Nx {
            cond = Cond::Xx;
        } else if a.eq_ignore_ascii_case(b"get") {
            get = true;
        } else if a.eq_ignore_ascii_case(b"keepttl") && expire.is_none() {
            keepttl = true;
        } else if has_next && !keepttl && expire.is_none() && a.eq_ignore_ascii_case(b"ex") {
            expire = Some((j + 1, true, false));
            j += 1;
        } else if has_next && !keepttl && expire.is_none() && a.eq_ignore_ascii_case(b"px") {
            expire = Some((j + 1, false, false));
            j += 1;
        } else if has_next && !keepttl && expire.is_none() && a.eq_ignore_ascii_case(b"exat") {
            expire = Some((j + 1, true, true));
            j += 1;
        } else if has_next && !keepttl && expire.is_none() && a.eq_ignore_ascii_case(b"pxat") {
            expire = Some((j + 1, false, true));
            j += 1;
        } else {
            ctx.err(ERR_SYNTAX);
            return;
        }
        j += 1;
    }
    let ttl = match expire {
        Some((i, secs, abs)) => match set_deadline_arg(ctx, &args[i], secs, abs, "set") {
            Some(d) => Ttl::At(d),
            None => return,
        },
        None if keepttl => Ttl::Keep,
        None => Ttl::Clear,
    };
    set_generic(ctx, &args[1], &args[2], SetOpts { cond, get, ttl });
}

fn set_generic(ctx: &mut Ctx<'_>, key: &[u8], value: &[u8], opts: SetOpts) {
    let loc = ctx.locate(key);
    let now = ctx.now;
    let r3 = ctx.conn.resp3;
    let mut shard = ctx.ks.shard(loc.shard);
    let existing = shard.get(loc.hash, key, now);
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
    enum Change {
        None,
        Persist,
        At(usize, bool, bool),
    }
    let mut change = Change::None;
    let mut j = 2;
    while j < args.len() {
        let a = &args[j];
        let has_next = j + 1 < args.len();
        let free = matches!(change, Change::None);
        if free && a.eq_ignore_ascii_case(b"persist") {
            change = Change::Persist;
        } else if free && has_next && a.eq_ignore_ascii_case(b"ex") {
            change = Change::At(j + 1, true, false);
            j += 1;
        } else if free && has_next && a.eq_ignore_ascii_case(b"px") {
            change = Change::At(j + 1, false, false);
            j += 1;
        } else if free && has_next && a.eq_ignore_ascii_case(b"exat") {
            change = Change::At(j + 1, true, true);
            j += 1;
        } else if free && has_next && a.eq_ignore_ascii_case(b"pxat") {
            change = Change::At(j + 1, false, true);
            j += 1;
        } else {
            ctx.err(ERR_SYNTAX);
            return;
        }
        j += 1;
    }
    let deadline = match change {
        Change::At(i, secs, abs) => match set_deadline_arg(ctx, &args[i], secs, abs, "getex") {
            Some(d) => Some(Some(d)),
            None => return,
        },
        Change::Persist => Some(None),
        Change::None => None,
    };
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let r3 = ctx.conn.resp3;
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
        }
        Some(d) => e.set_deadline(d),
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
        Some(KeyType::Hash) => encode::error(ctx.out, ERR_WRONGTYPE),
        Some(KeyType::String) => {
            if let Some(e) = shard.remove(loc.hash, key, now) {
                encode::bulk(ctx.out, e.as_str().unwrap_or_default());
            }
        }
    }
}

pub fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.conn.resp3;
    let now = ctx.now;
    encode::array_len(ctx.out, args.len() - 1);
    let (mut hits, mut misses) = (0, 0);
    for key in &args[1..] {
        let loc = ctx.ks.store().locate(key);
        let mut shard = ctx.ks.shard(loc.shard);
        match shard
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
