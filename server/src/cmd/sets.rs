//! Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER,
//! SMOVE, SINTER, SUNION, SDIFF and their STORE forms, SINTERCARD, SSCAN. Spring
//! Session's indexed repository keeps its principal index and expiry buckets in sets.
//!
//! `SPOP` writes, so it runs on every replica: its draws come from the per-record seed
//! (`cmd::random_u64`) and pick by the set's content-defined order (`store::set`).

use bytes::{Bytes, BytesMut};
use sessiond_protocol::encode;

use super::collection::{self, compute_store, read, read_all};
use super::{Ctx, ERR_SYNTAX, ERR_WRONGTYPE};
use crate::pubsub::flags::{GENERIC, SET};
use crate::store::{Object, SetValue};

fn pick(o: &Object) -> Option<&SetValue> {
    match o {
        Object::Set(s) => Some(s),
        _ => None,
    }
}

/// A set copied out (the set algebra's inputs).
fn copy(o: &Object) -> Option<SetValue> {
    pick(o).cloned()
}

fn members_reply(out: &mut BytesMut, items: &[&[u8]], resp3: bool) {
    encode::set_len(out, items.len(), resp3);
    for m in items {
        encode::bulk(out, m);
    }
}

pub fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let mut e = match shard.get(loc.hash, key, now) {
        Some(e) => e,
        None => shard.create(loc.hash, key, Object::Set(SetValue::default())),
    };
    let Some(s) = e.as_set() else {
        drop(shard);
        return ctx.err(ERR_WRONGTYPE);
    };
    // Adding only members already there changes nothing (a WATCH survives it).
    if args[2..].iter().all(|m| s.contains(m)) {
        drop(shard);
        return ctx.int(0);
    }
    let mut added = 0;
    if let Some(s) = e.set_mut() {
        for m in &args[2..] {
            added += i64::from(s.insert(m));
        }
    }
    drop(shard);
    ctx.notify(SET, "sadd", key);
    ctx.int(added);
}

pub fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let Some(mut e) = shard.get(loc.hash, key, now) else {
        drop(shard);
        return ctx.int(0);
    };
    let Some(s) = e.as_set() else {
        drop(shard);
        return ctx.err(ERR_WRONGTYPE);
    };
    if !args[2..].iter().any(|m| s.contains(m)) {
        drop(shard);
        return ctx.int(0);
    }
    let mut removed = 0;
    if let Some(s) = e.set_mut() {
        for m in &args[2..] {
            removed += i64::from(s.remove(m));
        }
    }
    let emptied = collection::drop_if_empty(&mut shard, loc.hash, key, now);
    drop(shard);
    ctx.notify(SET, "srem", key);
    if emptied {
        ctx.notify(GENERIC, "del", key);
    }
    ctx.int(removed);
}

pub fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.conn.resp3;
    if let Ok(None) = read(ctx, &args[1], pick, |s, out| {
        members_reply(out, &s.iter().collect::<Vec<_>>(), r3)
    }) {
        encode::set_len(ctx.out, 0, r3);
    }
}

pub fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let m = &args[2];
    if let Ok(found) = read(ctx, &args[1], pick, |s, _| s.contains(m)) {
        ctx.int(i64::from(found.unwrap_or(false)));
    }
}

pub fn smismember(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let ms = &args[2..];
    let write = |s: Option<&SetValue>, out: &mut BytesMut| {
        encode::array_len(out, ms.len());
        for m in ms {
            encode::integer(out, i64::from(s.is_some_and(|s| s.contains(m))));
        }
    };
    if let Ok(None) = read(ctx, &args[1], pick, |s, out| write(Some(s), out)) {
        write(None, ctx.out);
    }
}

pub fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    if let Ok(n) = read(ctx, &args[1], pick, |s, _| s.len()) {
        ctx.int(n.unwrap_or(0) as i64);
    }
}

/// `SPOP key [count]`
pub fn spop(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.conn.resp3;
    let count = match args.get(2) {
        None => None,
        Some(_) if args.len() > 3 => return ctx.err(ERR_SYNTAX),
        Some(a) => match super::parse_i64(a) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return ctx.err(super::ERR_NOT_POSITIVE),
        },
    };
    let key = &args[1];
    let loc = ctx.locate(key);
    let now = ctx.now;
    let mut shard = ctx.ks.shard(loc.shard);
    let Some(mut e) = shard.get(loc.hash, key, now) else {
        drop(shard);
        ctx.hit(false);
        return match count {
            None => ctx.null(),
            Some(_) => encode::set_len(ctx.out, 0, r3),
        };
    };
    let Some(s) = e.as_set() else {
        drop(shard);
        return ctx.err(ERR_WRONGTYPE);
    };
    if count == Some(0) {
        drop(shard);
        return encode::set_len(ctx.out, 0, r3);
    }
    let n = count.unwrap_or(1).min(s.len());
    let mut popped: Vec<Box<[u8]>> = Vec::with_capacity(n);
    if let Some(s) = e.set_mut() {
        for _ in 0..n {
            let Some(m) = s.pick(super::random_u64()).map(Box::<[u8]>::from) else {
                break;
            };
            s.remove(&m);
            popped.push(m);
        }
    }
    let emptied = collection::drop_if_empty(&mut shard, loc.hash, key, now);
    drop(shard);
    ctx.notify(SET, "spop", key);
    if emptied {
        ctx.notify(GENERIC, "del", key);
    }
    match count {
        None => ctx.bulk(&popped[0]),
        Some(_) => members_reply(
            ctx.out,
            &popped.iter().map(|m| &**m).collect::<Vec<_>>(),
            r3,
        ),
    }
}

/// `SRANDMEMBER key [count]`: a positive count gives distinct members, a negative one
/// may repeat them (the reply stops at the client output limit).
pub fn srandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.conn.resp3;
    if args.len() > 3 {
        return ctx.err(ERR_SYNTAX);
    }
    let Some(a) = args.get(2) else {
        if let Ok(None) = read(ctx, &args[1], pick, |s, out| {
            match s.pick(super::random_u64()) {
                Some(m) => encode::bulk(out, m),
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
    if count == i64::MIN {
        return ctx.err(b"ERR value is out of range");
    }
    let limit = ctx.shared.config.client_output_limit as usize;
    if let Ok(None) = read(ctx, &args[1], pick, |s, out| {
        let all: Vec<&[u8]> = s.iter().collect();
        let (n, picks) = collection::random_picks(all.len(), count);
        encode::array_len(out, n);
        for i in picks {
            encode::bulk(out, all[i]);
            if out.len() > limit {
                break;
            }
        }
    }) {
        encode::array_len(ctx.out, 0);
    }
}

/// `SMOVE source destination member`
pub fn smove(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let (src, dst, m) = (&args[1], &args[2], &args[3]);
    let now = ctx.now;
    let (locs, idxs) = ctx.locate_all(args[1..3].iter());
    let (ls, ld) = (locs[0], locs[1]);
    let mut set = ctx.ks.shards(&idxs);
    let src_has = match set.get(ls.shard).get(ls.hash, src, now) {
        None => {
            drop(set);
            return ctx.int(0);
        }
        Some(e) => match e.as_set() {
            Some(s) => Some(s.contains(m)),
            None => {
                drop(set);
                return ctx.err(ERR_WRONGTYPE);
            }
        },
    };
    let dst_type_ok = set
        .get(ld.shard)
        .get(ld.hash, dst, now)
        .is_none_or(|e| e.as_set().is_some());
    if !dst_type_ok {
        drop(set);
        return ctx.err(ERR_WRONGTYPE);
    }
    if src_has != Some(true) || src == dst {
        drop(set);
        return ctx.int(i64::from(src_has == Some(true)));
    }
    if let Some(s) = set
        .get(ls.shard)
        .get(ls.hash, src, now)
        .as_mut()
        .and_then(|e| e.set_mut())
    {
        s.remove(m);
    }
    let emptied = collection::drop_if_empty(set.get(ls.shard), ls.hash, src, now);
    let shard = set.get(ld.shard);
    let mut e = match shard.get(ld.hash, dst, now) {
        Some(e) => e,
        None => shard.create(ld.hash, dst, Object::Set(SetValue::default())),
    };
    // A member the destination has already leaves it untouched (a WATCH on it holds).
    let added =
        !e.as_set().is_some_and(|s| s.contains(m)) && e.set_mut().is_some_and(|s| s.insert(m));
    drop(set);
    ctx.notify(SET, "srem", src);
    if emptied {
        ctx.notify(GENERIC, "del", src);
    }
    if added {
        ctx.notify(SET, "sadd", dst);
    }
    ctx.int(1);
}

#[derive(Clone, Copy)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// The result of `op` over the sets (a missing key is an empty set), stopping an
/// intersection at `limit` members.
fn combine(op: Op, sets: &[Option<SetValue>], limit: usize) -> SetValue {
    let empty = SetValue::default();
    let sets: Vec<&SetValue> = sets.iter().map(|s| s.as_ref().unwrap_or(&empty)).collect();
    let mut out = SetValue::default();
    match op {
        Op::Inter => {
            let Some(smallest) = sets.iter().min_by_key(|s| s.len()) else {
                return out;
            };
            for m in smallest.iter() {
                if out.len() >= limit {
                    break;
                }
                if sets.iter().all(|s| s.contains(m)) {
                    out.insert(m);
                }
            }
        }
        Op::Union => sets.iter().flat_map(|s| s.iter()).for_each(|m| {
            out.insert(m);
        }),
        Op::Diff => {
            for m in sets[0].iter() {
                if !sets[1..].iter().any(|s| s.contains(m)) {
                    out.insert(m);
                }
            }
        }
    }
    out
}

fn algebra(ctx: &mut Ctx<'_>, keys: &[Bytes], op: Op) {
    let r3 = ctx.conn.resp3;
    let Ok(sets) = read_all(ctx, keys, copy) else {
        return;
    };
    let r = combine(op, &sets, usize::MAX);
    members_reply(ctx.out, &r.iter().collect::<Vec<_>>(), r3);
}

fn algebra_store(ctx: &mut Ctx<'_>, args: &[Bytes], op: Op, event: &str) {
    let compute = |sets: Vec<Option<SetValue>>| Object::Set(combine(op, &sets, usize::MAX));
    if let Some(n) = compute_store(ctx, &args[1], &args[2..], copy, compute, (event, SET)) {
        ctx.int(n as i64);
    }
}

pub fn sinter(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    algebra(ctx, &args[1..], Op::Inter);
}

pub fn sunion(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    algebra(ctx, &args[1..], Op::Union);
}

pub fn sdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    algebra(ctx, &args[1..], Op::Diff);
}

pub fn sinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    algebra_store(ctx, args, Op::Inter, "sinterstore");
}

pub fn sunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    algebra_store(ctx, args, Op::Union, "sunionstore");
}

pub fn sdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    algebra_store(ctx, args, Op::Diff, "sdiffstore");
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`
pub fn sintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some((keys, limit)) = collection::intercard_args(ctx, args) else {
        return;
    };
    let Ok(sets) = read_all(ctx, &args[keys], copy) else {
        return;
    };
    ctx.int(combine(Op::Inter, &sets, limit).len() as i64);
}

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`: a small set in one page, as Redis
/// answers for its compact encodings; a large one by its order, the cursor being the
/// hash where the next page starts (a member present throughout is always returned).
pub fn sscan(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some((cursor, opts)) = collection::scan_start(ctx, args, pick, false) else {
        return;
    };
    let _ = read(ctx, &args[1], pick, |s, out| {
        let small = matches!(s, SetValue::Small(_));
        let mut it = s.iter_from(if small { 0 } else { cursor });
        let mut page: Vec<&[u8]> = Vec::new();
        let mut next = 0;
        for (visited, (h, m)) in it.by_ref().enumerate() {
            if !small && visited >= opts.count {
                next = h;
                break;
            }
            if opts.wants(m) {
                page.push(m);
            }
        }
        encode::array_len(out, 2);
        encode::bulk(out, itoa::Buffer::new().format(next).as_bytes());
        encode::array_len(out, page.len());
        page.iter().for_each(|m| encode::bulk(out, m));
    });
}
