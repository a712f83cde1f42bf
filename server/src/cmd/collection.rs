//! What the collection families (hashes, sets, sorted sets) share: reading a typed
//! object, the `*SCAN` preamble, the draws of `*RANDMEMBER`, and writing a computed
//! result under a key (`*STORE`).

use bytes::{Bytes, BytesMut};
use sessiond_protocol::encode;

use super::{Ctx, ERR_SYNTAX, ERR_WRONGTYPE};
use crate::glob::Glob;
use crate::pubsub::flags::GENERIC;
use crate::store::{Loc, Object, Shard, ShardSet};

/// Run `f` on the object at `key` when `pick` accepts its type: `Ok(None)` when the key
/// is missing; WRONGTYPE is replied (and `Err` returned) for another type.
pub(super) fn read<T, R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    pick: impl Fn(&Object) -> Option<&T>,
    f: impl FnOnce(&T, &mut BytesMut) -> R,
) -> Result<Option<R>, ()> {
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let r = match shard.get(loc.hash, key, now) {
        None => None,
        Some(e) => match e.object().and_then(&pick) {
            Some(v) => Some(f(v, ctx.out)),
            None => {
                encode::error(ctx.out, ERR_WRONGTYPE);
                return Err(());
            }
        },
    };
    drop(shard);
    ctx.hit(r.is_some());
    Ok(r)
}

/// Copy the objects at `keys` out of the store, all read at one instant: `extract`
/// turns each into the caller's value (`None`: another type), and a missing key gives
/// `None`. WRONGTYPE is replied (and `Err` returned) when any key holds another type,
/// as Redis checks every key first.
pub(super) fn read_all<T>(
    ctx: &mut Ctx<'_>,
    keys: &[Bytes],
    extract: impl Fn(&Object) -> Option<T>,
) -> Result<Vec<Option<T>>, ()> {
    let now = ctx.now;
    let (locs, idxs) = ctx.locate_all(keys.iter());
    let mut set = ctx.ks.shards(&idxs);
    let out = copy_out(&mut set, keys, &locs, now, extract);
    drop(set);
    if out.is_err() {
        encode::error(ctx.out, ERR_WRONGTYPE);
    }
    out
}

/// [`read_all`]'s reading, with the shards held by the caller.
fn copy_out<T>(
    set: &mut ShardSet<'_>,
    keys: &[Bytes],
    locs: &[Loc],
    now: u64,
    extract: impl Fn(&Object) -> Option<T>,
) -> Result<Vec<Option<T>>, ()> {
    let mut out = Vec::with_capacity(keys.len());
    for (key, loc) in keys.iter().zip(locs) {
        match set.get(loc.shard).get(loc.hash, key, now) {
            None => out.push(None),
            Some(e) => out.push(Some(e.object().and_then(&extract).ok_or(())?)),
        }
    }
    Ok(out)
}

/// Compute a value from the objects at `srcs` (extracted as in [`read_all`]) and put it
/// under `dst` in place of whatever was there (nothing when it is empty), all under one
/// lock, raising `event` (or `del` when an old value went and nothing replaced it).
/// Returns the result's size, or `None` after replying WRONGTYPE.
pub fn compute_store<T>(
    ctx: &mut Ctx<'_>,
    dst: &Bytes,
    srcs: &[Bytes],
    extract: impl Fn(&Object) -> Option<T>,
    compute: impl FnOnce(Vec<Option<T>>) -> Object,
    (event, class): (&str, u32),
) -> Option<usize> {
    let now = ctx.now;
    let (locs, idxs) = ctx.locate_all(srcs.iter().chain(std::iter::once(dst)));
    let mut set = ctx.ks.shards(&idxs);
    let Ok(inputs) = copy_out(&mut set, srcs, &locs, now, extract) else {
        drop(set);
        encode::error(ctx.out, ERR_WRONGTYPE);
        return None;
    };
    let obj = compute(inputs);
    let n = obj.len();
    let ld = locs[srcs.len()];
    let shard = set.get(ld.shard);
    let existed = shard.remove(ld.hash, dst, now).is_some();
    if n > 0 {
        shard.create(ld.hash, dst, obj);
    }
    drop(set);
    if n > 0 {
        ctx.notify(class, event, dst);
    } else if existed {
        ctx.notify(GENERIC, "del", dst);
    }
    Some(n)
}

/// The indexes a `*RANDMEMBER`-style `count` draws from `len` items, and how many: a
/// positive count gives distinct ones (at most `len`; a partial shuffle), a negative one
/// `|count|` with repeats, drawn as the caller takes them (it stops at its output limit).
pub fn random_picks(len: usize, count: i64) -> (usize, impl Iterator<Item = usize>) {
    let (n, mut distinct) = if count >= 0 {
        let n = (count as usize).min(len);
        let mut idx: Vec<usize> = (0..len).collect();
        for i in 0..n {
            let j = i + (super::random_u64() % (len - i) as u64) as usize;
            idx.swap(i, j);
        }
        idx.truncate(n);
        (n, idx)
    } else {
        (count.unsigned_abs() as usize, Vec::new())
    };
    distinct.reverse();
    let picks = (0..n).map(move |_| {
        distinct
            .pop()
            .unwrap_or_else(|| (super::random_u64() % len.max(1) as u64) as usize)
    });
    (n, picks)
}

/// Remove `key` if its object emptied; true when it did (the caller raises `del`).
pub fn drop_if_empty(shard: &mut Shard, hash: u64, key: &[u8], now: u64) -> bool {
    let empty = shard
        .get(hash, key, now)
        .and_then(|e| e.object().map(Object::is_empty))
        .unwrap_or(false);
    if empty {
        shard.remove(hash, key, now);
    }
    empty
}

/// `MATCH`, `COUNT` and (for `HSCAN`) `NOVALUES` of a `*SCAN` command.
pub struct ScanOpts {
    pub pattern: Option<Glob>,
    pub count: usize,
    pub novalues: bool,
}

impl ScanOpts {
    pub fn wants(&self, item: &[u8]) -> bool {
        self.pattern.as_ref().is_none_or(|p| p.matches(item))
    }
}

/// Parse the options from `args[3..]`, replying Redis's error when they are wrong.
fn scan_opts(ctx: &mut Ctx<'_>, args: &[Bytes], novalues_ok: bool) -> Option<ScanOpts> {
    let mut o = ScanOpts {
        pattern: None,
        count: 10,
        novalues: false,
    };
    let mut j = 3;
    while j < args.len() {
        let a = &args[j];
        if novalues_ok && a.eq_ignore_ascii_case(b"novalues") {
            o.novalues = true;
            j += 1;
            continue;
        }
        match args.get(j + 1) {
            Some(n) if a.eq_ignore_ascii_case(b"count") => {
                let c = ctx.int_arg(n)?;
                if c < 1 {
                    ctx.err(ERR_SYNTAX);
                    return None;
                }
                o.count = c as usize;
            }
            Some(n) if a.eq_ignore_ascii_case(b"match") => {
                o.pattern = Some(Glob::new(n, false)).filter(|_| n.as_ref() != b"*");
            }
            _ => {
                ctx.err(ERR_SYNTAX);
                return None;
            }
        }
        j += 2;
    }
    Some(o)
}

/// The cursor argument of a `*SCAN` command; replies the error when it is not one.
fn scan_cursor(ctx: &mut Ctx<'_>, arg: &[u8]) -> Option<u64> {
    let c = super::parse_cursor(arg);
    if c.is_none() {
        ctx.err(b"ERR invalid cursor");
    }
    c
}

/// What every `*SCAN` checks before it pages, in Redis's order: the cursor, then the key
/// (a missing key is an empty page, another type WRONGTYPE, whatever the options say),
/// then the options. `None` once a reply is written.
pub(super) fn scan_start<T>(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    pick: impl Fn(&Object) -> Option<&T>,
    novalues_ok: bool,
) -> Option<(u64, ScanOpts)> {
    let cursor = scan_cursor(ctx, &args[2])?;
    match read(ctx, &args[1], pick, |_, _| ()) {
        Err(()) => return None,
        Ok(None) => {
            empty_scan(ctx.out);
            return None;
        }
        Ok(Some(())) => {}
    }
    Some((cursor, scan_opts(ctx, args, novalues_ok)?))
}

/// A `*SCAN` page with no items and cursor 0.
pub fn empty_scan(out: &mut BytesMut) {
    encode::array_len(out, 2);
    encode::bulk(out, b"0");
    encode::array_len(out, 0);
}

/// The key range of a `numkeys key [key ...]` command (`SINTERCARD`, `ZUNION`...): the
/// count at `at`, the keys after it; `Err` holds Redis's error.
pub fn numkeys(args: &[Bytes], at: usize) -> Result<std::ops::Range<usize>, &'static [u8]> {
    let n = args.get(at).and_then(|a| super::parse_i64(a)).unwrap_or(0);
    if n <= 0 {
        return Err(b"ERR numkeys should be greater than 0");
    }
    if n as u64 > (args.len() - at - 1) as u64 {
        return Err(b"ERR Number of keys can't be greater than number of args");
    }
    Ok(at + 1..at + 1 + n as usize)
}

/// `SINTERCARD`'s and `ZINTERCARD`'s arguments: the keys, and the limit (0: none).
pub fn intercard_args(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
) -> Option<(std::ops::Range<usize>, usize)> {
    let keys = match numkeys(args, 1) {
        Ok(k) => k,
        Err(e) => {
            ctx.err(e);
            return None;
        }
    };
    let limit = limit_arg(ctx, args, keys.end)?;
    Some((keys, limit))
}

/// An intersection's `[LIMIT limit]` from `args[from..]` (0 or none: no limit).
pub fn limit_arg(ctx: &mut Ctx<'_>, args: &[Bytes], from: usize) -> Option<usize> {
    let mut limit = usize::MAX;
    let mut j = from;
    while j < args.len() {
        match args.get(j + 1) {
            Some(v) if args[j].eq_ignore_ascii_case(b"limit") => {
                let l = super::parse_i64(v).unwrap_or(-1);
                if l < 0 {
                    ctx.err(b"ERR LIMIT can't be negative");
                    return None;
                }
                limit = if l == 0 { usize::MAX } else { l as usize };
            }
            _ => {
                ctx.err(ERR_SYNTAX);
                return None;
            }
        }
        j += 2;
    }
    Some(limit)
}
