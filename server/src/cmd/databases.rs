//! Numbered databases: SELECT, MOVE, SWAPDB, FLUSHALL (every database) and the
//! `# Keyspace` lines of INFO. Each database is a store of its own (`Shared::db`), made on
//! first use; a command runs against its connection's database through `ctx.ks`.
//!
//! A command that touches two databases locks them in database order. Inside `EXEC` or
//! a script the current database's shards are already held, so the other database is
//! only tried for a while: a command never waits for ever on a lock while holding one.

use std::time::Duration;

use bytes::Bytes;
use parking_lot::MutexGuard;

use super::{Ctx, ERR_SYNTAX};
use crate::pubsub::flags::GENERIC;
use crate::server::DATABASES;
use crate::store::Shard;

const ERR_DB_RANGE: &[u8] = b"ERR DB index is out of range";
pub(super) const ERR_DB_BUSY: &[u8] =
    b"ERR the other database is busy in a transaction or script; try again";

/// How long a command that holds its own database waits for another's shard.
const OTHER_DB_WAIT: Duration = Duration::from_millis(200);

/// A database number argument, or Redis's error.
fn db_arg(ctx: &mut Ctx<'_>, b: &[u8]) -> Option<usize> {
    let n = ctx.int_arg(b)?;
    if n < 0 || n >= DATABASES as i64 {
        ctx.err(ERR_DB_RANGE);
        return None;
    }
    Some(n as usize)
}

/// Shard `idx` of database `db` (not the connection's own): locked at once when this
/// command holds nothing, tried for a while when it holds its own database.
pub(super) fn lock_other<'a>(
    ctx: &Ctx<'a>,
    db: usize,
    idx: usize,
) -> Option<MutexGuard<'a, Shard>> {
    let store = ctx.shared.db(db);
    if ctx.ks.holds_all() {
        store.try_lock_for(idx, OTHER_DB_WAIT)
    } else {
        Some(store.lock(idx))
    }
}

/// `SELECT index`
pub fn select(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some(db) = db_arg(ctx, &args[1]) else {
        return;
    };
    ctx.conn.db = db;
    ctx.conn.info.set_db(db);
    ctx.ok();
}

/// `MOVE key db`: 1 when moved, 0 when the key is missing here or present there.
pub fn move_key(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some(dst_db) = db_arg(ctx, &args[2]) else {
        return;
    };
    if dst_db == ctx.conn.db {
        return ctx.err(b"ERR source and destination objects are the same");
    }
    let key = &args[1];
    let now = ctx.now;
    let loc = ctx.locate(key);
    let held = ctx.ks.holds_all();
    let shared = ctx.shared;
    let target = shared.db(dst_db);
    // Lower database first. Inside EXEC or a script the source is held already, so the
    // target is only tried (the same hash places a key in the same shard everywhere).
    let mut dst_guard = None;
    if !held && dst_db < ctx.conn.db {
        dst_guard = Some(target.lock(loc.shard));
    }
    let mut src = ctx.ks.shard(loc.shard);
    let Some(deadline) = src.get(loc.hash, key, now).map(|e| e.deadline()) else {
        drop((src, dst_guard));
        return ctx.int(0);
    };
    if dst_guard.is_none() {
        dst_guard = if held {
            target.try_lock_for(loc.shard, OTHER_DB_WAIT)
        } else {
            Some(target.lock(loc.shard))
        };
    }
    let Some(mut dst) = dst_guard else {
        drop(src);
        return ctx.err(ERR_DB_BUSY);
    };
    if dst.contains(loc.hash, key, now) {
        drop((src, dst));
        return ctx.int(0);
    }
    if let Some(entry) = src.remove(loc.hash, key, now) {
        dst.insert_renamed(loc.hash, key, entry, deadline);
    }
    drop((src, dst));
    ctx.notify(GENERIC, "move_from", key);
    shared.pubsub.notify_db(dst_db, GENERIC, "move_to", key);
    ctx.int(1);
}

/// `SWAPDB index1 index2`
pub fn swapdb(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let (Some(a), Some(b)) = (
        super::parse_i64(&args[1]).filter(|n| (0..DATABASES as i64).contains(n)),
        super::parse_i64(&args[2]).filter(|n| (0..DATABASES as i64).contains(n)),
    ) else {
        let bad_first = super::parse_i64(&args[1]).is_none();
        let bad_second = super::parse_i64(&args[2]).is_none();
        return ctx.err(match (bad_first, bad_second) {
            (true, _) => b"ERR invalid first DB index",
            (false, true) => b"ERR invalid second DB index",
            _ => ERR_DB_RANGE,
        });
    };
    let (a, b) = (a as usize, b as usize);
    if a == b {
        return ctx.ok();
    }
    if ctx.ks.holds_all() {
        return ctx.err(b"ERR SWAPDB inside MULTI or a script is not supported by sessiond");
    }
    let (lo, hi) = (ctx.shared.db(a.min(b)), ctx.shared.db(a.max(b)));
    for i in 0..lo.shard_count() {
        let mut x = lo.lock(i);
        let mut y = hi.lock(i);
        crate::store::Store::swap_shards(&mut x, &mut y);
    }
    // Every key of both databases changed: as after a flush, all are invalid.
    ctx.shared.tracking.flush();
    ctx.ok();
}

/// `FLUSHALL [ASYNC|SYNC]`: every database.
pub fn flushall(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let ok = match args.len() {
        1 => true,
        2 => args[1].eq_ignore_ascii_case(b"async") || args[1].eq_ignore_ascii_case(b"sync"),
        _ => false,
    };
    if !ok {
        return ctx.err(ERR_SYNTAX);
    }
    let now = ctx.now;
    let dbs: Vec<usize> = ctx.shared.dbs().map(|(n, _)| n).collect();
    for db in dbs {
        for i in 0..ctx.ks.store().shard_count() {
            let old = if db == ctx.conn.db {
                ctx.ks.shard(i).clear(now)
            } else {
                match lock_other(ctx, db, i) {
                    Some(mut s) => s.clear(now),
                    None => return ctx.err(ERR_DB_BUSY),
                }
            };
            drop(old);
        }
    }
    crate::mem::trim();
    ctx.shared.tracking.flush();
    ctx.ok();
}

/// `INFO keyspace`'s lines: `db<n>:keys=..,expires=..,avg_ttl=0,subexpiry=..` for each database
/// that holds keys.
pub fn keyspace_lines(ctx: &mut Ctx<'_>, out: &mut String) {
    let dbs: Vec<usize> = ctx.shared.dbs().map(|(n, _)| n).collect();
    for db in dbs {
        let (mut keys, mut volatile, mut sub) = (0, 0, 0);
        for i in 0..ctx.ks.store().shard_count() {
            let (k, v, h) = if db == ctx.conn.db {
                let s = ctx.ks.shard(i);
                (s.len(), s.volatile(), s.volatile_hashes())
            } else {
                match lock_other(ctx, db, i) {
                    Some(s) => (s.len(), s.volatile(), s.volatile_hashes()),
                    None => (0, 0, 0),
                }
            };
            keys += k;
            volatile += v;
            sub += h;
        }
        if keys > 0 {
            // `subexpiry`: hashes with field deadlines (Redis 7.4).
            out.push_str(&format!(
                "db{db}:keys={keys},expires={volatile},avg_ttl=0,subexpiry={sub}\r\n"
            ));
        }
    }
}
