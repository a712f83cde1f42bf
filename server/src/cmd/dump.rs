//! `DUMP` and `RESTORE`: values in Redis's serialization (`crate::rdb`), so that keys move
//! between Redis and sessiond in either direction (`MIGRATE` from Redis, `sessiond-cli
//! import`).

use bytes::Bytes;

use super::{Ctx, ERR_SYNTAX};
use crate::pubsub::flags::GENERIC;
use crate::rdb;
use crate::store::Ttl;

/// `DUMP key`: the serialized value, or nil.
pub fn dump(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let key = &args[1];
    let now = ctx.now;
    let loc = ctx.locate(key);
    let payload = {
        let mut shard = ctx.ks.shard(loc.shard);
        shard
            .get(loc.hash, key, now)
            .map(|e| match (e.as_str(), e.object()) {
                (Some(s), _) => rdb::dump_string(s),
                (None, Some(o)) => rdb::dump_object(o),
                (None, None) => rdb::dump_string(b""),
            })
    };
    match payload {
        Some(p) => ctx.bulk(&p),
        None => ctx.null(),
    }
}

/// `RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]`, with Redis's
/// checks in Redis's order. `IDLETIME` and `FREQ` are checked and accepted; sessiond
/// keeps neither (see `OBJECT`).
pub fn restore(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let (mut replace, mut absttl, mut idle, mut freq) = (false, false, false, false);
    let mut j = 4;
    while j < args.len() {
        let a = &args[j];
        if a.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if a.eq_ignore_ascii_case(b"absttl") {
            absttl = true;
        } else if a.eq_ignore_ascii_case(b"idletime") && j + 1 < args.len() && !freq {
            j += 1;
            let Some(v) = ctx.int_arg(&args[j]) else {
                return;
            };
            if v < 0 {
                ctx.err(b"ERR Invalid IDLETIME value, must be >= 0");
                return;
            }
            idle = true;
        } else if a.eq_ignore_ascii_case(b"freq") && j + 1 < args.len() && !idle {
            j += 1;
            let Some(v) = ctx.int_arg(&args[j]) else {
                return;
            };
            if !(0..=255).contains(&v) {
                ctx.err(b"ERR Invalid FREQ value, must be >= 0 and <= 255");
                return;
            }
            freq = true;
        } else {
            ctx.err(ERR_SYNTAX);
            return;
        }
        j += 1;
    }
    let key = &args[1];
    let now = ctx.now;
    let loc = ctx.locate(key);
    if !replace && ctx.ks.shard(loc.shard).contains(loc.hash, key, now) {
        ctx.err(b"BUSYKEY Target key name already exists.");
        return;
    }
    let Some(ttl) = ctx.int_arg(&args[2]) else {
        return;
    };
    if ttl < 0 {
        ctx.err(b"ERR Invalid TTL value, must be >= 0");
        return;
    }
    let value = match rdb::load(&args[3]) {
        Ok(v) => v,
        Err(rdb::RdbError::Footer) => {
            ctx.err(b"ERR DUMP payload version or checksum are wrong");
            return;
        }
        Err(rdb::RdbError::Format) => {
            ctx.err(b"ERR Bad data format");
            return;
        }
    };
    let deadline = match ttl {
        0 => None,
        t if absttl => Some(t as u64),
        t => Some(now.saturating_add(t as u64)),
    };
    let mut shard = ctx.ks.shard(loc.shard);
    let deleted = shard.remove(loc.hash, key, now).is_some();
    if deadline.is_some_and(|d| d <= now) {
        // Already expired: nothing is created (the old value, replaced, is gone).
        drop(shard);
        if deleted {
            ctx.notify(GENERIC, "del", key);
        }
        ctx.ok();
        return;
    }
    match value.into_object() {
        Ok(s) => {
            let t = deadline.map_or(Ttl::Clear, Ttl::At);
            shard.set_str(loc.hash, key, &s, t, now);
        }
        Err(obj) => shard.create(loc.hash, key, obj).set_deadline(deadline),
    }
    drop(shard);
    ctx.notify(GENERIC, "restore", key);
    ctx.ok();
}
