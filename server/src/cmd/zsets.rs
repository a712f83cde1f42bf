//! Sorted set commands: ZADD, ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD, ZRANK, ZREVRANK,
//! ZPOPMIN, ZPOPMAX, ZMPOP, ZRANDMEMBER, ZSCAN (ranges: `zranges.rs`; union, intersection
//! and difference: `zalgebra.rs`). Spring Session's reactive repository indexes session
//! expiry in a sorted set.
//!
//! Scores are written as Redis 7.0 writes them: `%.17g` (`crate::float::fmt_g`).

use bytes::{Bytes, BytesMut};
use sessiond_protocol::encode;

use super::collection::{self, read};
use super::{Ctx, ERR_SYNTAX, ERR_WRONGTYPE};
use crate::float::{fmt_g, parse as parse_float};
use crate::pubsub::flags::{GENERIC, ZSET};
use crate::store::{Object, ZSetValue};

const ERR_FLOAT: &[u8] = b"ERR value is not a valid float";

pub(super) fn pick(o: &Object) -> Option<&ZSetValue> {
    match o {
        Object::ZSet(z) => Some(z),
        _ => None,
    }
}

/// A score as Redis 7.0 replies it: a bulk string (RESP2) or a double (RESP3).
pub fn reply_score(out: &mut BytesMut, v: f64, resp3: bool) {
    let text = fmt_g(v, 17);
    if resp3 {
        out.extend_from_slice(b",");
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    } else {
        encode::bulk(out, text.as_bytes());
    }
}

/// -0 is stored as 0 (Redis's compact encoding keeps it so).
fn norm(v: f64) -> f64 {
    if v == 0.0 {
        0.0
    } else {
        v
    }
}

// ---- ZADD, ZINCRBY, ZREM ----------------------------------------------------------------

#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

impl AddFlags {
    /// Whether an existing member's score may go from `cur` to `new`.
    fn may_update(self, cur: f64, new: f64) -> bool {
        !(self.nx || (self.gt && new <= cur) || (self.lt && new >= cur))
    }
}

/// What one element of a `ZADD` did.
enum Added {
    New(f64),
    Updated(f64),
    Same(f64),
    Skipped,
    Nan,
}

fn add_one(z: &mut ZSetValue, m: &[u8], score: f64, f: AddFlags) -> Added {
    match z.score(m) {
        None if f.xx => Added::Skipped,
        None => {
            z.insert(m, norm(score));
            Added::New(score)
        }
        Some(_) if f.nx => Added::Skipped,
        Some(cur) => {
            let new = if f.incr { cur + score } else { score };
            if new.is_nan() {
                return Added::Nan;
            }
            if (f.gt && new <= cur) || (f.lt && new >= cur) {
                return Added::Skipped;
            }
            if new == cur {
                return Added::Same(new);
            }
            z.insert(m, norm(new));
            Added::Updated(new)
        }
    }
}

fn zadd_generic(ctx: &mut Ctx<'_>, args: &[Bytes], f: AddFlags, first: usize) {
    let r3 = ctx.conn.resp3;
    let pairs = &args[first..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return ctx.err(ERR_SYNTAX);
    }
    if f.xx && f.nx {
        return ctx.err(b"ERR XX and NX options at the same time are not compatible");
    }
    if [f.gt, f.lt, f.nx].iter().filter(|on| **on).count() > 1 {
        return ctx.err(b"ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && pairs.len() > 2 {
        return ctx.err(b"ERR INCR option supports a single increment-element pair");
    }
    let mut scores = Vec::with_capacity(pairs.len() / 2);
    for p in pairs.chunks_exact(2) {
        match parse_float(&p[0]) {
            Some(v) => scores.push(v),
            None => return ctx.err(ERR_FLOAT),
        }
    }
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let exists = match shard.get(loc.hash, key, now) {
        Some(e) if e.as_zset().is_none() => {
            drop(shard);
            return ctx.err(ERR_WRONGTYPE);
        }
        e => e.is_some(),
    };
    if !exists && f.xx {
        drop(shard);
        return if f.incr { ctx.null() } else { ctx.int(0) };
    }
    // Nothing would change (a WATCH survives it): decide on a copy-free dry run first.
    let changes = {
        let z = shard.get(loc.hash, key, now);
        let z = z.as_ref().and_then(|e| e.as_zset());
        pairs
            .chunks_exact(2)
            .zip(&scores)
            .any(|(p, &s)| match z.and_then(|z| z.score(&p[1])) {
                None => !f.xx,
                Some(cur) => {
                    let new = if f.incr { cur + s } else { s };
                    f.may_update(cur, new) && new != cur
                }
            })
    };
    let (mut added, mut updated, mut last) = (0i64, 0i64, None);
    if changes {
        let mut e = match shard.get(loc.hash, key, now) {
            Some(e) => e,
            None => shard.create(loc.hash, key, Object::ZSet(ZSetValue::default())),
        };
        if let Some(z) = e.zset_mut() {
            for (p, &s) in pairs.chunks_exact(2).zip(&scores) {
                match add_one(z, &p[1], s, f) {
                    Added::New(v) => (added, last) = (added + 1, Some(v)),
                    Added::Updated(v) => (updated, last) = (updated + 1, Some(v)),
                    Added::Same(v) => last = Some(v),
                    Added::Skipped => {}
                    Added::Nan => {
                        drop(shard);
                        return ctx.err(b"ERR resulting score is not a number (NaN)");
                    }
                }
            }
        }
    } else if f.incr {
        // An increment that changes nothing still answers the score it leaves.
        let z = shard.get(loc.hash, key, now);
        let cur = z
            .as_ref()
            .and_then(|e| e.as_zset())
            .and_then(|z| z.score(&pairs[1]));
        if let Some(cur) = cur {
            let new = cur + scores[0];
            if new.is_nan() {
                drop(shard);
                return ctx.err(b"ERR resulting score is not a number (NaN)");
            }
            if f.may_update(cur, new) {
                last = Some(new);
            }
        }
    }
    drop(shard);
    if added + updated > 0 {
        let event = if f.incr { "zincr" } else { "zadd" };
        ctx.notify(ZSET, event, key);
    }
    if f.incr {
        match last {
            Some(v) => reply_score(ctx.out, v, r3),
            None => ctx.null(),
        }
    } else {
        ctx.int(if f.ch { added + updated } else { added });
    }
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`
pub fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let mut f = AddFlags::default();
    let mut j = 2;
    while let Some(a) = args.get(j) {
        let a = a.to_ascii_lowercase();
        match a.as_slice() {
            b"nx" => f.nx = true,
            b"xx" => f.xx = true,
            b"gt" => f.gt = true,
            b"lt" => f.lt = true,
            b"ch" => f.ch = true,
            b"incr" => f.incr = true,
            _ => break,
        }
        j += 1;
    }
    zadd_generic(ctx, args, f, j);
}

/// `ZINCRBY key increment member`: `ZADD key INCR increment member`.
pub fn zincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let f = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    zadd_generic(ctx, args, f, 2);
}

/// Remove `members` from the sorted set at `key`, raising `event`; the count removed,
/// or `None` after replying WRONGTYPE.
fn remove_members(ctx: &mut Ctx<'_>, key: &[u8], members: &[Bytes], event: &str) -> Option<i64> {
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let Some(mut e) = shard.get(loc.hash, key, now) else {
        return Some(0);
    };
    let Some(z) = e.as_zset() else {
        drop(shard);
        ctx.err(ERR_WRONGTYPE);
        return None;
    };
    if !members.iter().any(|m| z.score(m).is_some()) {
        return Some(0);
    }
    let mut n = 0;
    if let Some(z) = e.zset_mut() {
        for m in members {
            n += i64::from(z.remove(m).is_some());
        }
    }
    let emptied = collection::drop_if_empty(&mut shard, loc.hash, key, now);
    drop(shard);
    ctx.notify(ZSET, event, key);
    if emptied {
        ctx.notify(GENERIC, "del", key);
    }
    Some(n)
}

pub fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    if let Some(n) = remove_members(ctx, &args[1], &args[2..], "zrem") {
        ctx.int(n);
    }
}

// ---- reads of single members ------------------------------------------------------------

pub fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.conn.resp3;
    let m = &args[2];
    if let Ok(s) = read(ctx, &args[1], pick, |z, _| z.score(m)) {
        match s.flatten() {
            Some(v) => reply_score(ctx.out, v, r3),
            None => ctx.null(),
        }
    }
}

pub fn zmscore(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.conn.resp3;
    let ms = &args[2..];
    let write = |z: Option<&ZSetValue>, out: &mut BytesMut| {
        encode::array_len(out, ms.len());
        for m in ms {
            match z.and_then(|z| z.score(m)) {
                Some(v) => reply_score(out, v, r3),
                None => encode::null(out, r3),
            }
        }
    };
    if let Ok(None) = read(ctx, &args[1], pick, |z, out| write(Some(z), out)) {
        write(None, ctx.out);
    }
}

pub fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    if let Ok(n) = read(ctx, &args[1], pick, |z, _| z.len()) {
        ctx.int(n.unwrap_or(0) as i64);
    }
}

fn rank(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) {
    let r3 = ctx.conn.resp3;
    let with_score = match args.get(3) {
        None => false,
        Some(a) if args.len() == 4 && a.eq_ignore_ascii_case(b"withscore") => true,
        Some(_) => return ctx.err(ERR_SYNTAX),
    };
    let m = &args[2];
    let r = read(ctx, &args[1], pick, |z, _| {
        z.rank(m).map(|r| {
            let r = if rev { z.len() - 1 - r } else { r };
            (r, z.score(m).unwrap_or(0.0))
        })
    });
    match r {
        Err(()) => {}
        Ok(Some(Some((r, s)))) if with_score => {
            encode::array_len(ctx.out, 2);
            ctx.int(r as i64);
            reply_score(ctx.out, s, r3);
        }
        Ok(Some(Some((r, _)))) => ctx.int(r as i64),
        Ok(_) if with_score => encode::null_array(ctx.out, r3),
        Ok(_) => ctx.null(),
    }
}

pub fn zrank(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    rank(ctx, args, false);
}

pub fn zrevrank(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    rank(ctx, args, true);
}

/// Members, with their scores after them (flat) or paired with them (`nested`, RESP3).
pub(super) fn reply_items(
    out: &mut BytesMut,
    items: &[(f64, &[u8])],
    with_scores: bool,
    r3: bool,
    nested: bool,
) {
    if with_scores && r3 && nested {
        encode::array_len(out, items.len());
        for (s, m) in items {
            encode::array_len(out, 2);
            encode::bulk(out, m);
            reply_score(out, *s, r3);
        }
        return;
    }
    encode::array_len(out, items.len() * if with_scores { 2 } else { 1 });
    for (s, m) in items {
        encode::bulk(out, m);
        if with_scores {
            reply_score(out, *s, r3);
        }
    }
}

/// How a range command was called.
/// Remove the members `choose` names from the sorted set at `key`, under one lock,
/// raising `event`; returns them with their scores (`None` after WRONGTYPE).
pub(super) fn take(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    choose: impl FnOnce(&ZSetValue) -> Vec<(f64, Bytes)>,
    event: &str,
) -> Option<Vec<(f64, Bytes)>> {
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let Some(mut e) = shard.get(loc.hash, key, now) else {
        return Some(Vec::new());
    };
    let Some(z) = e.as_zset() else {
        drop(shard);
        ctx.err(ERR_WRONGTYPE);
        return None;
    };
    let victims = choose(z);
    if victims.is_empty() {
        return Some(victims);
    }
    if let Some(z) = e.zset_mut() {
        for (_, m) in &victims {
            z.remove(m);
        }
    }
    let emptied = collection::drop_if_empty(&mut shard, loc.hash, key, now);
    drop(shard);
    ctx.notify(ZSET, event, key);
    if emptied {
        ctx.notify(GENERIC, "del", key);
    }
    Some(victims)
}

pub(super) fn owned(items: Vec<(f64, &[u8])>) -> Vec<(f64, Bytes)> {
    items
        .into_iter()
        .map(|(s, m)| (s, Bytes::copy_from_slice(m)))
        .collect()
}

// ---- ZPOPMIN, ZPOPMAX, ZRANDMEMBER, ZSCAN -----------------------------------------------

fn pop(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) {
    let r3 = ctx.conn.resp3;
    let count = match args.get(2) {
        None => None,
        Some(_) if args.len() > 3 => return ctx.err(ERR_SYNTAX),
        Some(a) => match super::parse_i64(a) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return ctx.err(super::ERR_NOT_POSITIVE),
        },
    };
    let event = if max { "zpopmax" } else { "zpopmin" };
    let Some(items) = take(
        ctx,
        &args[1],
        |z| {
            let n = count.unwrap_or(1);
            let it: Box<dyn Iterator<Item = (f64, &[u8])>> = if max {
                Box::new(z.iter().rev())
            } else {
                z.iter()
            };
            owned(it.take(n).collect())
        },
        event,
    ) else {
        return;
    };
    let refs: Vec<(f64, &[u8])> = items.iter().map(|(s, m)| (*s, &m[..])).collect();
    // RESP3 pairs each member with its score only when a count was given.
    reply_items(ctx.out, &refs, true, r3, count.is_some());
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]`: pop from the first non-empty
/// sorted set; `[key, [[member, score], ...]]`, or a null array.
pub fn zmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.conn.resp3;
    let n = match super::parse_i64(&args[1]) {
        Some(n) if n > 0 => n as usize,
        _ => return ctx.err(b"ERR numkeys should be greater than 0"),
    };
    let where_at = match n.checked_add(2) {
        Some(w) if w < args.len() => w,
        _ => return ctx.err(ERR_SYNTAX),
    };
    let max = match args[where_at].to_ascii_lowercase().as_slice() {
        b"min" => false,
        b"max" => true,
        _ => return ctx.err(ERR_SYNTAX),
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            match super::parse_i64(&args[j + 1]) {
                Some(c) if c > 0 => count = Some(c as usize),
                _ => return ctx.err(b"ERR count should be greater than 0"),
            }
            j += 2;
        } else {
            return ctx.err(ERR_SYNTAX);
        }
    }
    let count = count.unwrap_or(1);
    let event = if max { "zpopmax" } else { "zpopmin" };
    for key in &args[2..where_at] {
        let Some(items) = take(
            ctx,
            key,
            |z| {
                let it: Box<dyn Iterator<Item = (f64, &[u8])>> = if max {
                    Box::new(z.iter().rev())
                } else {
                    z.iter()
                };
                owned(it.take(count).collect())
            },
            event,
        ) else {
            return;
        };
        if items.is_empty() {
            continue;
        }
        encode::array_len(ctx.out, 2);
        encode::bulk(ctx.out, key);
        let refs: Vec<(f64, &[u8])> = items.iter().map(|(s, m)| (*s, &m[..])).collect();
        // Pairs in either protocol.
        encode::array_len(ctx.out, refs.len());
        for (s, m) in refs {
            encode::array_len(ctx.out, 2);
            encode::bulk(ctx.out, m);
            reply_score(ctx.out, s, r3);
        }
        return;
    }
    encode::null_array(ctx.out, r3);
}

pub fn zpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    pop(ctx, args, false);
}

pub fn zpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    pop(ctx, args, true);
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`
pub fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.conn.resp3;
    let Some(a) = args.get(2) else {
        if let Ok(None) = read(ctx, &args[1], pick, |z, out| {
            let i = (super::random_u64() % z.len().max(1) as u64) as usize;
            match z.iter().nth(i) {
                Some((_, m)) => encode::bulk(out, m),
                None => encode::null(out, r3),
            }
        }) {
            ctx.null();
        }
        return;
    };
    let Some(count) = ctx.int_arg(a) else {
        return;
    };
    let with_scores = match args.get(3) {
        None => false,
        Some(w) if args.len() == 4 && w.eq_ignore_ascii_case(b"withscores") => true,
        Some(_) => return ctx.err(ERR_SYNTAX),
    };
    let limit = i64::MAX / if with_scores { 2 } else { 1 };
    if count < -limit || count > limit {
        return ctx.err(b"ERR value is out of range");
    }
    let out_limit = ctx.shared.config.client_output_limit as usize;
    if let Ok(None) = read(ctx, &args[1], pick, |z, out| {
        let all: Vec<(f64, &[u8])> = z.iter().collect();
        let (n, picks) = collection::random_picks(all.len(), count);
        let pair3 = with_scores && r3;
        // Picks that repeat members (more of them than members) format each score once:
        // formatting it per pick made `-2000000000 WITHSCORES` take 9 s to reach the limit.
        let scores: Vec<BytesMut> = if with_scores && n > all.len() {
            all.iter()
                .map(|&(s, _)| {
                    let mut b = BytesMut::new();
                    reply_score(&mut b, s, r3);
                    b
                })
                .collect()
        } else {
            Vec::new()
        };
        encode::array_len(out, n * if with_scores && !r3 { 2 } else { 1 });
        for i in picks {
            let (s, m) = all[i];
            if pair3 {
                encode::array_len(out, 2);
            }
            encode::bulk(out, m);
            match scores.get(i) {
                Some(b) => out.extend_from_slice(b),
                None if with_scores => reply_score(out, s, r3),
                None => {}
            }
            if out.len() > out_limit {
                break;
            }
        }
    }) {
        encode::array_len(ctx.out, 0);
    }
}

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`: every matching member in one page
/// (cursor 0), as Redis answers for its compact encoding.
pub fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some((_, opts)) = collection::scan_start(ctx, args, pick, false) else {
        return;
    };
    let _ = read(ctx, &args[1], pick, |z, out| {
        let hits: Vec<(f64, &[u8])> = z.iter().filter(|(_, m)| opts.wants(m)).collect();
        encode::array_len(out, 2);
        encode::bulk(out, b"0");
        encode::array_len(out, hits.len() * 2);
        for (s, m) in hits {
            encode::bulk(out, m);
            encode::bulk(out, fmt_g(s, 17).as_bytes());
        }
    });
}
