//! Sorted-set algebra: ZUNION, ZINTER, ZDIFF, their STORE forms, and ZINTERCARD. Inputs
//! may be sorted sets or sets (whose members score 1), as in Redis.

use bytes::Bytes;
use hashbrown::HashMap;
use sessiond_protocol::encode;

use super::collection::{self, compute_store, read_all};
use super::zsets::reply_items;
use super::{Ctx, ERR_SYNTAX};
use crate::pubsub::flags::ZSET;
use crate::store::{Object, ZSetValue};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// An input, as (member, score) pairs: a sorted set, or a set with scores of 1.
type Input = Vec<(Bytes, f64)>;

/// An input read out of the store: a sorted set or a set.
fn input(o: &Object) -> Option<Input> {
    match o {
        Object::ZSet(z) => Some(
            z.iter()
                .map(|(s, m)| (Bytes::copy_from_slice(m), s))
                .collect(),
        ),
        Object::Set(s) => Some(s.iter().map(|m| (Bytes::copy_from_slice(m), 1.0)).collect()),
        _ => None,
    }
}

/// The parsed options of a ZUNION/ZINTER/ZDIFF (STORE) call.
struct Call {
    keys: std::ops::Range<usize>,
    weights: Vec<f64>,
    aggregate: Aggregate,
    with_scores: bool,
}

/// The keys named by `numkeys` at `at`, as the sorted-set algebra reads them (its
/// own errors: not those of `SINTERCARD`).
fn keys_at(ctx: &mut Ctx<'_>, args: &[Bytes], at: usize) -> Option<std::ops::Range<usize>> {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let n = match super::parse_i64(&args[at]) {
        Some(n) => n,
        None => {
            ctx.err(super::ERR_NOT_INT);
            return None;
        }
    };
    if n < 1 {
        ctx.err(format!("ERR at least 1 input key is needed for '{name}' command").as_bytes());
        return None;
    }
    if n as u64 > (args.len() - at - 1) as u64 {
        ctx.err(ERR_SYNTAX);
        return None;
    }
    Some(at + 1..at + 1 + n as usize)
}

/// Parse `numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
/// with `numkeys` at `at`, replying Redis's error when it is wrong.
fn parse(ctx: &mut Ctx<'_>, args: &[Bytes], at: usize, op: Op, store: bool) -> Option<Call> {
    let keys = keys_at(ctx, args, at)?;
    let mut call = Call {
        keys: keys.clone(),
        weights: vec![1.0; keys.len()],
        aggregate: Aggregate::Sum,
        with_scores: false,
    };
    let mut j = keys.end;
    while j < args.len() {
        let a = args[j].to_ascii_lowercase();
        let left = args.len() - j - 1;
        match a.as_slice() {
            b"weights" if op != Op::Diff && left >= keys.len() => {
                for (w, arg) in call.weights.iter_mut().zip(&args[j + 1..]) {
                    match crate::float::parse(arg) {
                        Some(v) => *w = v,
                        None => {
                            ctx.err(b"ERR weight value is not a float");
                            return None;
                        }
                    }
                }
                j += keys.len();
            }
            b"aggregate" if op != Op::Diff && left >= 1 => {
                call.aggregate = match args[j + 1].to_ascii_lowercase().as_slice() {
                    b"sum" => Aggregate::Sum,
                    b"min" => Aggregate::Min,
                    b"max" => Aggregate::Max,
                    _ => {
                        ctx.err(ERR_SYNTAX);
                        return None;
                    }
                };
                j += 1;
            }
            b"withscores" if !store => call.with_scores = true,
            _ => {
                ctx.err(ERR_SYNTAX);
                return None;
            }
        }
        j += 1;
    }
    Some(call)
}

fn fold(a: Aggregate, acc: f64, v: f64) -> f64 {
    match a {
        // +inf plus -inf is 0 here, as in Redis.
        Aggregate::Sum => Some(acc + v).filter(|s| !s.is_nan()).unwrap_or(0.0),
        Aggregate::Min => acc.min(v),
        Aggregate::Max => acc.max(v),
    }
}

/// The result of `op` over the inputs (`None`: a missing key, an empty input).
fn combine(op: Op, inputs: &[Option<Input>], call: &Call) -> ZSetValue {
    let weighted = |i: usize, s: f64| {
        Some(call.weights[i] * s)
            .filter(|v| !v.is_nan())
            .unwrap_or(0.0)
    };
    let empty = Vec::new();
    let inputs: Vec<&Input> = inputs
        .iter()
        .map(|i| i.as_ref().unwrap_or(&empty))
        .collect();
    let mut out = ZSetValue::default();
    match op {
        Op::Union => {
            let mut acc: HashMap<&[u8], f64> = HashMap::new();
            for (i, input) in inputs.iter().enumerate() {
                for (m, s) in input.iter() {
                    let v = weighted(i, *s);
                    acc.entry(&m[..])
                        .and_modify(|a| *a = fold(call.aggregate, *a, v))
                        .or_insert(v);
                }
            }
            acc.into_iter().for_each(|(m, s)| {
                out.insert(m, s);
            });
        }
        Op::Inter => {
            let maps: Vec<HashMap<&[u8], f64>> = inputs
                .iter()
                .map(|i| i.iter().map(|(m, s)| (&m[..], *s)).collect())
                .collect();
            for (m, s) in inputs[0].iter() {
                let mut v = weighted(0, *s);
                let mut all = true;
                for (i, map) in maps.iter().enumerate().skip(1) {
                    match map.get(&m[..]) {
                        Some(s) => v = fold(call.aggregate, v, weighted(i, *s)),
                        None => {
                            all = false;
                            break;
                        }
                    }
                }
                if all {
                    out.insert(m, v);
                }
            }
        }
        Op::Diff => {
            let others: Vec<HashMap<&[u8], f64>> = inputs[1..]
                .iter()
                .map(|i| i.iter().map(|(m, s)| (&m[..], *s)).collect())
                .collect();
            for (m, s) in inputs[0].iter() {
                if !others.iter().any(|o| o.contains_key(&m[..])) {
                    out.insert(m, *s);
                }
            }
        }
    }
    out
}

fn reply(ctx: &mut Ctx<'_>, args: &[Bytes], op: Op) {
    let r3 = ctx.conn.resp3;
    let Some(call) = parse(ctx, args, 1, op, false) else {
        return;
    };
    let Ok(inputs) = read_all(ctx, &args[call.keys.clone()], input) else {
        return;
    };
    let z = combine(op, &inputs, &call);
    let items: Vec<(f64, &[u8])> = z.iter().collect();
    reply_items(ctx.out, &items, call.with_scores, r3, true);
}

fn store(ctx: &mut Ctx<'_>, args: &[Bytes], op: Op, event: &str) {
    let Some(call) = parse(ctx, args, 2, op, true) else {
        return;
    };
    let compute = |inputs: Vec<Option<Input>>| Object::ZSet(combine(op, &inputs, &call));
    let srcs = &args[call.keys.clone()];
    if let Some(n) = compute_store(ctx, &args[1], srcs, input, compute, (event, ZSET)) {
        ctx.int(n as i64);
    }
}

pub fn zunion(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    reply(ctx, args, Op::Union);
}

pub fn zinter(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    reply(ctx, args, Op::Inter);
}

pub fn zdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    reply(ctx, args, Op::Diff);
}

pub fn zunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    store(ctx, args, Op::Union, "zunionstore");
}

pub fn zinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    store(ctx, args, Op::Inter, "zinterstore");
}

pub fn zdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    store(ctx, args, Op::Diff, "zdiffstore");
}

/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`
pub fn zintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some(keys) = keys_at(ctx, args, 1) else {
        return;
    };
    let Some(limit) = collection::limit_arg(ctx, args, keys.end) else {
        return;
    };
    let Ok(inputs) = read_all(ctx, &args[keys.clone()], input) else {
        return;
    };
    let call = Call {
        weights: vec![1.0; keys.len()],
        keys,
        aggregate: Aggregate::Sum,
        with_scores: false,
    };
    let n = combine(Op::Inter, &inputs, &call).len().min(limit);
    encode::integer(ctx.out, n as i64);
}
