//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! `EXEC` locks every shard (in index order, so two `EXEC`s cannot deadlock) and runs
//! the queued commands against that [`Exclusive`] view, so no other client observes a
//! transaction half done. `WATCH` records the write version of the key's hash slot; a
//! write to any key of that slot aborts the `EXEC`. That can abort a transaction that
//! Redis would run (a false conflict, which clients already retry), never the reverse.
//!
//! In a cluster `WATCH` records a digest of each key's content instead, and the `EXEC`
//! record carries them: every replica aborts or runs the transaction alike when it
//! applies it. A key changed and then changed back (A→B→A) is not a conflict there.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use sessiond_protocol::encode;

use super::admit::admit_queued;
use super::Ctx;
use crate::store::{Exclusive, Keyspace};

pub fn multi(ctx: &mut Ctx<'_>, _args: &[Bytes]) {
    if ctx.conn.multi.is_some() {
        ctx.err(b"ERR MULTI calls can not be nested");
        return;
    }
    ctx.conn.multi = Some(Vec::new());
    ctx.conn.multi_failed = false;
    ctx.conn.info.in_multi.store(true, Ordering::Relaxed);
    ctx.ok();
}

pub fn discard(ctx: &mut Ctx<'_>, _args: &[Bytes]) {
    if ctx.conn.multi.is_none() {
        ctx.err(b"ERR DISCARD without MULTI");
        return;
    }
    ctx.conn.end_multi();
    ctx.ok();
}

pub fn exec(ctx: &mut Ctx<'_>, _args: &[Bytes]) {
    let Some(queue) = ctx.conn.multi.take() else {
        ctx.err(b"ERR EXEC without MULTI");
        return;
    };
    if ctx.conn.multi_failed {
        ctx.conn.end_multi();
        ctx.err(b"EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    let watched = std::mem::take(&mut ctx.conn.watched);
    let values = std::mem::take(&mut ctx.conn.watched_values);
    let other_db = ctx.conn.watch_db.is_some_and(|d| d != ctx.conn.db);
    ctx.conn.end_multi();
    let shared = ctx.shared;
    let store = shared.db(ctx.conn.db);
    let now = ctx.now;
    let mut all = Exclusive::new(store);
    let conflict = other_db
        || watched
            .iter()
            .any(|&(shard, hash, version)| all.shard(shard).version(hash) != version)
        || values.iter().any(|(key, digest)| {
            let loc = store.locate(key);
            all.shard(loc.shard).digest(loc.hash, key, now) != *digest
        });
    if conflict {
        drop(all);
        let r3 = ctx.conn.resp3;
        encode::null_array(ctx.out, r3);
        return;
    }
    encode::array_len(ctx.out, queue.len());
    for args in queue {
        // The user's rules may have changed since the command was queued.
        let cmd = match admit_queued(ctx.conn, ctx.shared, &args) {
            Ok(cmd) => cmd,
            Err(refusal) => {
                refusal.reply(ctx.out, &args);
                continue;
            }
        };
        let mut inner = Ctx {
            ks: &mut all,
            out: &mut *ctx.out,
            conn: &mut *ctx.conn,
            shared: ctx.shared,
            now: ctx.now,
        };
        let db = inner.conn.db;
        cmd.run(&mut inner, &args);
        if ctx.conn.db != db {
            // A queued SELECT: the rest runs against the database it chose.
            drop(all);
            all = Exclusive::new(shared.db(ctx.conn.db));
        }
        if !cmd.spec().is(super::Flags::ADMIN) && !cmd.spec().is(super::Flags::SKIP_MONITOR) {
            let addr = (!ctx.conn.replica).then_some(ctx.conn.info.addr);
            ctx.shared.monitors.feed(addr, &args);
        }
    }
}

pub fn watch(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    if ctx.conn.multi.is_some() {
        ctx.err(b"ERR WATCH inside MULTI is not allowed");
        return;
    }
    let db = ctx.conn.db;
    ctx.conn.watch_db = Some(match ctx.conn.watch_db {
        Some(d) if d != db => usize::MAX,
        _ => db,
    });
    if ctx.shared.cluster().is_some() {
        // Slot versions are local to a node; what every replica can check alike when it
        // applies the EXEC is the keys' content. (The connection took a read barrier
        // first, so this sees every write acknowledged before the WATCH.)
        let now = ctx.now;
        for key in &args[1..] {
            let loc = ctx.locate(key);
            let d = ctx.ks.shard(loc.shard).digest(loc.hash, key, now);
            ctx.conn.watched_values.push((key.clone(), d));
        }
        ctx.ok();
        return;
    }
    for key in &args[1..] {
        let loc = ctx.locate(key);
        let v = ctx.ks.shard(loc.shard).version(loc.hash);
        ctx.conn.watched.push((loc.shard, loc.hash, v));
    }
    ctx.ok();
}

pub fn unwatch(ctx: &mut Ctx<'_>, _args: &[Bytes]) {
    ctx.conn.watched.clear();
    ctx.conn.watched_values.clear();
    ctx.conn.watch_db = None;
    ctx.ok();
}
