//! Sorted set commands: ZADD, ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD, ZCOUNT, ZLEXCOUNT,
//! ZRANGE (BYSCORE, BYLEX, REV, LIMIT) and its older forms, ZRANGESTORE, ZRANK,
//! ZREVRANK, ZREMRANGEBY{SCORE,RANK,LEX}, ZPOPMIN, ZPOPMAX, ZMPOP, ZRANDMEMBER, ZSCAN. Spring
//! Session's reactive repository indexes session expiry in a sorted set.
//!
//! Scores are written as Redis 7.0 writes them: `%.17g` (`crate::float::fmt_g`).

use bytes::{Bytes, BytesMut};
use sessiond_protocol::encode;

use super::collection::{self, compute_store, read, scan_cursor, scan_opts};
use super::{Ctx, ERR_SYNTAX, ERR_WRONGTYPE};
use crate::float::{fmt_g, parse as parse_float};
use crate::pubsub::flags::{GENERIC, ZSET};
use crate::store::{Object, ZSetValue};

const ERR_FLOAT: &[u8] = b"ERR value is not a valid float";
const ERR_RANGE_FLOAT: &[u8] = b"ERR min or max is not a float";
const ERR_RANGE_LEX: &[u8] = b"ERR min or max not valid string range item";

fn pick(o: &Object) -> Option<&ZSetValue> {
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

// ---- ranges -----------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Lex {
    Min,
    Max,
    Incl(Bytes),
    Excl(Bytes),
}

impl Lex {
    fn parse(b: &Bytes) -> Option<Lex> {
        match b.first()? {
            b'-' if b.len() == 1 => Some(Lex::Min),
            b'+' if b.len() == 1 => Some(Lex::Max),
            b'[' => Some(Lex::Incl(b.slice(1..))),
            b'(' => Some(Lex::Excl(b.slice(1..))),
            _ => None,
        }
    }

    /// Whether a lex range selects nothing at all, as Redis decides before it looks:
    /// its minimum above its maximum, or the set's last member below the minimum or its
    /// first above the maximum (with mixed scores, the members are not in order).
    fn empty(min: &Lex, max: &Lex, z: &ZSetValue) -> bool {
        fn rank(l: &Lex) -> (i32, &[u8], bool) {
            match l {
                Lex::Min => (0, &b""[..], false),
                Lex::Max => (2, &b""[..], false),
                Lex::Incl(b) => (1, &b[..], false),
                Lex::Excl(b) => (1, &b[..], true),
            }
        }
        let (a, b) = (rank(min), rank(max));
        match (a.0, a.1).cmp(&(b.0, b.1)) {
            std::cmp::Ordering::Greater => return true,
            std::cmp::Ordering::Equal if a.2 || b.2 || a.0 != 1 => return true,
            _ => {}
        }
        let (Some(first), Some(last)) = (z.iter().next(), z.iter().next_back()) else {
            return true;
        };
        !min.above_min(last.1) || !max.below_max(first.1)
    }

    /// Whether `m` is above this bound taken as a minimum.
    fn above_min(&self, m: &[u8]) -> bool {
        match self {
            Lex::Min => true,
            Lex::Max => false,
            Lex::Incl(b) => m >= &b[..],
            Lex::Excl(b) => m > &b[..],
        }
    }

    /// Whether `m` is below this bound taken as a maximum.
    fn below_max(&self, m: &[u8]) -> bool {
        match self {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Incl(b) => m <= &b[..],
            Lex::Excl(b) => m < &b[..],
        }
    }
}

/// A score bound: the value, and whether it is exclusive (`(1.5`).
fn parse_bound(b: &[u8]) -> Option<(f64, bool)> {
    match b.first() {
        Some(b'(') => crate::float::strtod(&b[1..]).map(|v| (v, true)),
        _ => crate::float::strtod(b).map(|v| (v, false)),
    }
}

#[derive(Clone, Debug)]
enum Range {
    Rank(i64, i64),
    Score { min: (f64, bool), max: (f64, bool) },
    Lex { min: Lex, max: Lex },
}

impl Range {
    fn score(min: &[u8], max: &[u8]) -> Result<Range, &'static [u8]> {
        match (parse_bound(min), parse_bound(max)) {
            (Some(min), Some(max)) => Ok(Range::Score { min, max }),
            _ => Err(ERR_RANGE_FLOAT),
        }
    }

    fn lex(min: &Bytes, max: &Bytes) -> Result<Range, &'static [u8]> {
        match (Lex::parse(min), Lex::parse(max)) {
            (Some(min), Some(max)) => Ok(Range::Lex { min, max }),
            _ => Err(ERR_RANGE_LEX),
        }
    }

    fn score_in(&self, s: f64) -> (bool, bool) {
        let Range::Score { min, max } = self else {
            return (true, true);
        };
        let above = if min.1 { s > min.0 } else { s >= min.0 };
        let below = if max.1 { s < max.0 } else { s <= max.0 };
        (above, below)
    }
}

/// The members `range` selects, in order (descending with `rev`), after `offset` of them
/// and at most `count` (negative: all).
fn select<'z>(
    z: &'z ZSetValue,
    range: &Range,
    rev: bool,
    offset: usize,
    count: i64,
) -> Vec<(f64, &'z [u8])> {
    let take = if count < 0 {
        usize::MAX
    } else {
        count as usize
    };
    let it: Box<dyn Iterator<Item = (f64, &[u8])>> = match range {
        Range::Rank(start, stop) => {
            let len = z.len() as i64;
            let start = if *start < 0 {
                (len + start).max(0)
            } else {
                *start
            };
            let stop = if *stop < 0 {
                len + stop
            } else {
                (*stop).min(len - 1)
            };
            if start > stop || start >= len {
                return Vec::new();
            }
            let n = (stop - start + 1) as usize;
            let base: Box<dyn Iterator<Item = _>> = if rev {
                Box::new(z.iter().rev())
            } else {
                Box::new(z.iter())
            };
            Box::new(base.skip(start as usize).take(n))
        }
        Range::Score { min, .. } if !rev => Box::new(
            z.from_score(min.0)
                .skip_while(move |(s, _)| min.1 && *s == min.0)
                .take_while(move |&(s, _)| range.score_in(s).1),
        ),
        Range::Score { max, .. } => Box::new(
            z.down_from_score(max.0)
                .skip_while(move |(s, _)| max.1 && *s == max.0)
                .take_while(move |&(s, _)| range.score_in(s).0),
        ),
        Range::Lex { min, max } if Lex::empty(min, max, z) => return Vec::new(),
        Range::Lex { min, max } if !rev => Box::new(
            z.iter()
                .skip_while(move |(_, m)| !min.above_min(m))
                .take_while(move |(_, m)| max.below_max(m)),
        ),
        Range::Lex { min, max } => Box::new(
            z.iter()
                .rev()
                .skip_while(move |(_, m)| !max.below_max(m))
                .take_while(move |(_, m)| min.above_min(m)),
        ),
    };
    it.skip(offset).take(take).collect()
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
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// A parsed range request: `ZRANGE`'s options, or what the older commands imply.
struct Request {
    range: Range,
    rev: bool,
    offset: usize,
    count: i64,
    with_scores: bool,
}

/// Parse `key min max [options]` from `args[1..]`: `by` and `rev` are what the command
/// implies; `zrange` allows BYSCORE, BYLEX and REV among the options.
fn parse_request(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    mut by: By,
    mut rev: bool,
    zrange: bool,
    scores_ok: bool,
) -> Option<Request> {
    let (mut limit, mut with_scores) = (None, false);
    let mut j = 4;
    while j < args.len() {
        let a = args[j].to_ascii_lowercase();
        match a.as_slice() {
            b"withscores" if scores_ok => with_scores = true,
            b"limit" if j + 2 < args.len() => {
                let off = ctx.int_arg(&args[j + 1])?;
                let cnt = ctx.int_arg(&args[j + 2])?;
                limit = Some((off, cnt));
                j += 2;
            }
            b"byscore" if zrange && by == By::Rank => by = By::Score,
            b"bylex" if zrange && by == By::Rank => by = By::Lex,
            b"rev" if zrange => rev = true,
            _ => {
                ctx.err(ERR_SYNTAX);
                return None;
            }
        }
        j += 1;
    }
    // Redis asks only that a rank range have no count: `LIMIT n -1` passes, unused.
    if limit.is_some_and(|(_, count)| count != -1) && by == By::Rank {
        ctx.err(b"ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
        return None;
    }
    if with_scores && by == By::Lex {
        ctx.err(b"ERR syntax error, WITHSCORES not supported in combination with BYLEX");
        return None;
    }
    // Reversed score and lex ranges name the maximum first.
    let (lo, hi) = if rev && by != By::Rank {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let range = match by {
        By::Rank => Range::Rank(ctx.int_arg(lo)?, ctx.int_arg(hi)?),
        By::Score => Range::score(lo, hi).map_err(|e| ctx.err(e)).ok()?,
        By::Lex => Range::lex(lo, hi).map_err(|e| ctx.err(e)).ok()?,
    };
    let (offset, count) = match by {
        By::Rank => (0, -1),
        _ => limit.unwrap_or((0, -1)),
    };
    Some(Request {
        range,
        rev,
        // A negative offset selects nothing.
        offset: usize::try_from(offset).unwrap_or(usize::MAX),
        count,
        with_scores,
    })
}

fn range_reply(ctx: &mut Ctx<'_>, args: &[Bytes], by: By, rev: bool, zrange: bool) {
    let r3 = ctx.conn.resp3;
    let Some(q) = parse_request(ctx, args, by, rev, zrange, true) else {
        return;
    };
    if let Ok(None) = read(ctx, &args[1], pick, |z, out| {
        let items = select(z, &q.range, q.rev, q.offset, q.count);
        reply_items(out, &items, q.with_scores, r3, true);
    }) {
        encode::array_len(ctx.out, 0);
    }
}

/// `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`
pub fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    range_reply(ctx, args, By::Rank, false, true);
}

pub fn zrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    range_reply(ctx, args, By::Rank, true, false);
}

pub fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    range_reply(ctx, args, By::Score, false, false);
}

pub fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    range_reply(ctx, args, By::Score, true, false);
}

pub fn zrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.conn.resp3;
    let Some(q) = parse_request(ctx, args, By::Lex, false, false, false) else {
        return;
    };
    if let Ok(None) = read(ctx, &args[1], pick, |z, out| {
        reply_items(
            out,
            &select(z, &q.range, false, q.offset, q.count),
            false,
            r3,
            true,
        );
    }) {
        encode::array_len(ctx.out, 0);
    }
}

pub fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.conn.resp3;
    let Some(q) = parse_request(ctx, args, By::Lex, true, false, false) else {
        return;
    };
    if let Ok(None) = read(ctx, &args[1], pick, |z, out| {
        reply_items(
            out,
            &select(z, &q.range, true, q.offset, q.count),
            false,
            r3,
            true,
        );
    }) {
        encode::array_len(ctx.out, 0);
    }
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`
pub fn zrangestore(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    // Parse as ZRANGE over `src min max ...` (the arguments after `dst`).
    let Some(q) = parse_request(ctx, &args[1..], By::Rank, false, true, false) else {
        return;
    };
    let compute = |src: Vec<Option<ZSetValue>>| {
        let mut out = ZSetValue::default();
        if let Some(z) = &src[0] {
            for (s, m) in select(z, &q.range, q.rev, q.offset, q.count) {
                out.insert(m, s);
            }
        }
        Object::ZSet(out)
    };
    let class = ("zrangestore", ZSET);
    if let Some(n) = compute_store(ctx, &args[1], &args[2..3], pick, compute, class) {
        ctx.int(n as i64);
    }
}

fn count_in(ctx: &mut Ctx<'_>, args: &[Bytes], range: Result<Range, &'static [u8]>) {
    let range = match range {
        Ok(r) => r,
        Err(e) => return ctx.err(e),
    };
    if let Ok(n) = read(ctx, &args[1], pick, |z, _| {
        select(z, &range, false, 0, -1).len()
    }) {
        ctx.int(n.unwrap_or(0) as i64);
    }
}

pub fn zcount(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    count_in(ctx, args, Range::score(&args[2], &args[3]));
}

pub fn zlexcount(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    count_in(ctx, args, Range::lex(&args[2], &args[3]));
}

/// Remove the members `choose` names from the sorted set at `key`, under one lock,
/// raising `event`; returns them with their scores (`None` after WRONGTYPE).
fn take(
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

fn owned(items: Vec<(f64, &[u8])>) -> Vec<(f64, Bytes)> {
    items
        .into_iter()
        .map(|(s, m)| (s, Bytes::copy_from_slice(m)))
        .collect()
}

fn remove_range(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    range: Result<Range, &'static [u8]>,
    event: &str,
) {
    let range = match range {
        Ok(r) => r,
        Err(e) => return ctx.err(e),
    };
    if let Some(v) = take(
        ctx,
        &args[1],
        |z| owned(select(z, &range, false, 0, -1)),
        event,
    ) {
        ctx.int(v.len() as i64);
    }
}

pub fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    remove_range(
        ctx,
        args,
        Range::score(&args[2], &args[3]),
        "zremrangebyscore",
    );
}

pub fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    remove_range(ctx, args, Range::lex(&args[2], &args[3]), "zremrangebylex");
}

pub fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some(a) = ctx.int_arg(&args[2]) else {
        return;
    };
    let Some(b) = ctx.int_arg(&args[3]) else {
        return;
    };
    remove_range(ctx, args, Ok(Range::Rank(a, b)), "zremrangebyrank");
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
        let n = if count >= 0 {
            (count as usize).min(all.len())
        } else {
            count.unsigned_abs() as usize
        };
        let mut idx: Vec<usize> = Vec::new();
        if count >= 0 {
            idx = (0..all.len()).collect();
            for i in 0..n {
                let j = i + (super::random_u64() % (all.len() - i) as u64) as usize;
                idx.swap(i, j);
            }
        }
        let pair3 = with_scores && r3;
        encode::array_len(out, n * if with_scores && !r3 { 2 } else { 1 });
        let mut distinct = idx.into_iter();
        for _ in 0..n {
            let i = distinct
                .next()
                .unwrap_or_else(|| (super::random_u64() % all.len() as u64) as usize);
            let (s, m) = all[i];
            if pair3 {
                encode::array_len(out, 2);
            }
            encode::bulk(out, m);
            if with_scores {
                reply_score(out, s, r3);
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
    if scan_cursor(ctx, &args[2]).is_none() {
        return;
    }
    match read(ctx, &args[1], pick, |_, _| ()) {
        Err(()) => return,
        Ok(None) => return collection::empty_scan(ctx.out),
        Ok(Some(())) => {}
    }
    let Some(opts) = scan_opts(ctx, args, false) else {
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
