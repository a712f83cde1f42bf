//! Sorted-set ranges: ZRANGE (BYSCORE, BYLEX, REV, LIMIT) and its older forms
//! (ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX), ZRANGESTORE,
//! ZCOUNT, ZLEXCOUNT and ZREMRANGEBY{SCORE,RANK,LEX}: the range types, parsed as Redis
//! parses them, and one walk that selects a range from a sorted set.

use bytes::Bytes;
use sessiond_protocol::encode;

use super::collection::{compute_store, read};
use super::zsets::{owned, pick, reply_items, take};
use super::{Ctx, ERR_SYNTAX};
use crate::pubsub::flags::ZSET;
use crate::store::{Object, ZSetValue};

const ERR_RANGE_FLOAT: &[u8] = b"ERR min or max is not a float";
const ERR_RANGE_LEX: &[u8] = b"ERR min or max not valid string range item";

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

/// A lex range as Redis walks a compact set: from the first member past the starting
/// bound (`start`: at or above `min`, or at or below `max` walking down), which must also
/// be within the other bound, `offset` members are skipped whatever they are, then
/// members are taken while `within` the other bound. With members of different scores
/// these are not the members between the bounds.
fn lex_walk<'z>(
    it: impl Iterator<Item = (f64, &'z [u8])>,
    start: impl Fn(&[u8]) -> bool,
    within: impl Fn(&[u8]) -> bool,
    offset: usize,
    take: usize,
) -> Vec<(f64, &'z [u8])> {
    let mut it = it.skip_while(|(_, m)| !start(m)).peekable();
    if !it.peek().is_some_and(|(_, m)| within(m)) {
        return Vec::new();
    }
    it.skip(offset)
        .take_while(|(_, m)| within(m))
        .take(take)
        .collect()
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
        Range::Lex { min, max } if !rev => {
            return lex_walk(
                z.iter(),
                |m| min.above_min(m),
                |m| max.below_max(m),
                offset,
                take,
            )
        }
        Range::Lex { min, max } => {
            return lex_walk(
                z.iter().rev(),
                |m| max.below_max(m),
                |m| min.above_min(m),
                offset,
                take,
            )
        }
    };
    it.skip(offset).take(take).collect()
}

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
    if let Some(n) = compute_store(
        ctx,
        &args[1],
        &args[2..3],
        |o| pick(o).cloned(),
        compute,
        class,
    ) {
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
