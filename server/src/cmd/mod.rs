//! Commands: the table, argument parsing helpers, and dispatch.
//!
//! [`table`] lists every command with its typed flags and ACL categories; [`admit`] is
//! the one admission path whose token runs a handler. One family per file:
//! [`connection`], [`databases`], [`server`], [`info`], [`strings`], [`keys`], [`hashes`] with [`hfe`], [`sets`],
//! [`zsets`] with [`zranges`] and [`zalgebra`], [`transactions`], [`pubsub`], [`tracking`], [`cluster`], [`acl`]; [`collection`] holds what
//! the collection families share. Each handler gets a [`Ctx`] and the full argument
//! vector (name included, arity already checked), writes exactly one reply, and touches
//! the store only through `ctx.ks`, so the same handler runs alone or inside `EXEC`.

pub mod acl;
pub mod admit;
pub mod cluster;
pub mod collection;
pub mod connection;
pub mod databases;
pub mod dump;
pub mod hashes;
pub mod hfe;
pub mod info;
pub mod keys;
#[cfg(test)]
mod model_tests;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod strings;
pub mod table;
pub mod tracking;
pub mod transactions;
pub mod zalgebra;
pub mod zranges;
pub mod zsets;

use bytes::{Bytes, BytesMut};
use sessiond_protocol::encode;

pub use admit::{admit, Admitted, Refusal};
pub use table::{lookup, Flags, Kind, Spec, COMMANDS};

use crate::connection::Conn;
use crate::server::Shared;
use crate::store::{Keyspace, Loc};

/// Everything a handler may use.
pub struct Ctx<'a> {
    pub ks: &'a mut dyn Keyspace,
    pub out: &'a mut BytesMut,
    pub conn: &'a mut Conn,
    pub shared: &'a Shared,
    /// Unix ms, read once per command.
    pub now: u64,
}

pub type Handler = fn(&mut Ctx<'_>, &[Bytes]);

/// Redis's reply to an unknown command.
pub fn unknown_command(out: &mut BytesMut, args: &[Bytes]) {
    let mut msg = String::from("ERR unknown command '");
    msg.push_str(&printable(&args[0], 128));
    msg.push_str("', with args beginning with: ");
    let mut list = String::new();
    for a in &args[1..] {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        list.push('\'');
        list.push_str(&printable(a, room));
        list.push_str("' ");
    }
    msg.push_str(&list);
    encode::error(out, msg.as_bytes());
}

/// Text for an error message: lossy UTF-8, at most `max` bytes, CR/LF as spaces (Redis
/// never lets a newline into an error).
/// Like Redis's `%s`, the text ends at a zero byte.
pub fn printable(b: &[u8], max: usize) -> String {
    let b = b.split(|&c| c == 0).next().unwrap_or(b);
    let s = String::from_utf8_lossy(&b[..b.len().min(max)]);
    s.replace(['\r', '\n'], " ")
}

/// A `HELP` subcommand's reply: one status line each.
pub fn help_reply(out: &mut BytesMut, lines: &[&[u8]]) {
    encode::array_len(out, lines.len());
    for l in lines {
        encode::simple(out, l);
    }
}

pub fn wrong_arity(out: &mut BytesMut, name: &str) {
    let msg = format!("ERR wrong number of arguments for '{name}' command");
    encode::error(out, msg.as_bytes());
}

/// A known subcommand with arguments its handler refuses (admission has checked the
/// table's arity already): Redis's `addReplySubcommandSyntaxError`. `sub` as the client
/// sent it; `cmd` is upper-cased as Redis does.
pub fn sub_syntax_error(out: &mut BytesMut, cmd: &str, sub: &[u8]) {
    let msg = format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        printable(sub, 128),
        cmd.to_ascii_uppercase()
    );
    encode::error(out, msg.as_bytes());
}

/// Redis's reply to a subcommand it does not know; `cmd` as it is named in the hint
/// (`CONFIG`).
pub fn unknown_subcommand(out: &mut BytesMut, cmd: &str, sub: &[u8]) {
    let msg = format!(
        "ERR unknown subcommand '{}'. Try {cmd} HELP.",
        printable(sub, 128)
    );
    encode::error(out, msg.as_bytes());
}

/// Run one command from a client: admission, `MULTI` queueing, then the handler.
/// Returns whether the command was quick (O(1), Redis's `fast` flag, or rejected before
/// it ran), which lets the caller reuse its clock reading for the next command.
pub fn dispatch(ctx: &mut Ctx<'_>, args: Vec<Bytes>) -> bool {
    let cmd = match admit(ctx.conn, ctx.shared, &args) {
        Ok(cmd) => cmd,
        Err(refusal) => {
            let mark = ctx.out.len();
            refusal.reply(ctx.out, &args);
            let id = lookup(&args[0]).map(|s| table::acl_id(s, &args));
            ctx.shared.cmdstats.rejected(id, &ctx.out[mark..]);
            return true;
        }
    };
    run_admitted(ctx, &cmd, args)
}

/// Queue an admitted command inside `MULTI`, or run it (timed for the slow log), and
/// drop its reply if `CLIENT REPLY` says so.
pub fn run_admitted(ctx: &mut Ctx<'_>, cmd: &Admitted, args: Vec<Bytes>) -> bool {
    if !ctx.shared.tracking.active() {
        // No client tracks: nothing to remember, send or hand over.
        return run_with_reply_mode(ctx, cmd, args);
    }
    let _me = crate::tracking::enter(ctx.conn.id);
    // Invalidations that reached this client before its command go before its reply
    // (including those for keys evicted at admission, as Redis sends them).
    crate::tracking::drain(&ctx.conn.info, ctx.out);
    let quick = run_with_reply_mode(ctx, cmd, args);
    tracking::after_command(ctx, cmd.spec().name);
    quick
}

fn run_with_reply_mode(ctx: &mut Ctx<'_>, cmd: &Admitted, args: Vec<Bytes>) -> bool {
    use crate::connection::ReplyMode;
    let mode = ctx.conn.reply;
    if mode == ReplyMode::On {
        return run_or_queue(ctx, cmd, args);
    }
    let mark = ctx.out.len();
    // Subscription replies are pushed even with replies off, as Redis pushes them.
    let pushed = cmd.spec().is(Flags::PUBSUB) && cmd.spec().name.ends_with("subscribe");
    let quick = run_or_queue(ctx, cmd, args);
    let keep = pushed || ctx.conn.reply == ReplyMode::On;
    let mark = if keep { ctx.out.len() } else { mark };
    match (mode, ctx.conn.reply) {
        // CLIENT REPLY ON answers itself.
        (_, ReplyMode::On) => {}
        (ReplyMode::Skip, ReplyMode::Skip) => {
            ctx.out.truncate(mark);
            ctx.conn.reply = ReplyMode::On;
        }
        _ => ctx.out.truncate(mark),
    }
    quick
}

fn run_or_queue(ctx: &mut Ctx<'_>, cmd: &Admitted, args: Vec<Bytes>) -> bool {
    let spec = cmd.spec();
    ctx.conn.last_cmd = spec.name;
    if let Some(queue) = ctx.conn.multi.as_mut() {
        if !matches!(
            spec.name,
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        ) {
            queue.push(args);
            ctx.out.extend_from_slice(b"+QUEUED\r\n");
            return true;
        }
    }
    let fast = spec.is(Flags::FAST);
    let slowlog = ctx.shared.slowlog.times(fast) && !spec.is(Flags::SKIP_SLOWLOG);
    let mark = ctx.out.len();
    // One call in eight feeds INFO commandstats' times (scaled up there).
    let sampled = crate::cmdstats::sample_now();
    let timed = if slowlog || sampled {
        let t0 = std::time::Instant::now();
        cmd.run(ctx, &args);
        Some(t0.elapsed())
    } else {
        cmd.run(ctx, &args);
        None
    };
    // SKIP_MONITOR: scripts, which show themselves before the commands they run.
    if !spec.is(Flags::ADMIN) && !spec.is(Flags::SKIP_MONITOR) {
        ctx.shared.monitors.feed(Some(ctx.conn.info.addr), &args);
    }
    let failed = (ctx.out.get(mark) == Some(&b'-')).then(|| &ctx.out[mark..]);
    ctx.shared.cmdstats.ran(
        table::acl_id(spec, &args),
        timed.filter(|_| sampled).map(|d| d.as_secs_f64() * 1e6),
        failed,
    );
    if let (true, Some(d)) = (slowlog, timed) {
        let info = &ctx.conn.info;
        let name = info.name.lock().clone();
        ctx.shared
            .slowlog
            .record(d.as_micros() as u64, &args, info.addr.to_string(), name);
        return false;
    }
    fast
}

// ---- argument helpers -------------------------------------------------------------

pub const ERR_SYNTAX: &[u8] = b"ERR syntax error";
pub const ERR_NOT_INT: &[u8] = b"ERR value is not an integer or out of range";
pub const ERR_WRONGTYPE: &[u8] =
    b"WRONGTYPE Operation against a key holding the wrong kind of value";
pub const ERR_OVERFLOW: &[u8] = b"ERR increment or decrement would overflow";
pub const ERR_NOT_POSITIVE: &[u8] = b"ERR value is out of range, must be positive";

/// A `SCAN`-family cursor as Redis reads it (`strtoul`): digits with an optional sign, a
/// negative one wrapping around; no spaces, nothing after, no overflow.
pub fn parse_cursor(b: &[u8]) -> Option<u64> {
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parse a signed 64-bit integer exactly as Redis's `string2ll` does: optional `-`, no
/// `+`, no spaces, no leading zeros, at most 20 characters.
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    if b == b"0" {
        return Some(0);
    }
    let (neg, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

impl Ctx<'_> {
    pub fn resp3(&self) -> bool {
        self.conn.resp3
    }

    pub fn err(&mut self, msg: &[u8]) {
        encode::error(self.out, msg);
    }

    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }

    pub fn null(&mut self) {
        let r3 = self.conn.resp3;
        encode::null(self.out, r3);
    }

    pub fn int(&mut self, n: i64) {
        encode::integer(self.out, n);
    }

    pub fn bulk(&mut self, b: &[u8]) {
        encode::bulk(self.out, b);
    }

    /// Parse an integer argument, replying Redis's error when it isn't one.
    pub fn int_arg(&mut self, b: &[u8]) -> Option<i64> {
        let v = parse_i64(b);
        if v.is_none() {
            self.err(ERR_NOT_INT);
        }
        v
    }

    pub fn locate(&self, key: &[u8]) -> Loc {
        self.ks.store().locate(key)
    }

    /// Where each key lives, and the sorted set of shards to lock so that a multi-key
    /// command sees (or changes) all its keys at one instant, as Redis does.
    pub fn locate_all<'k>(&self, keys: impl Iterator<Item = &'k Bytes>) -> (Vec<Loc>, Vec<usize>) {
        let store = self.ks.store();
        let locs: Vec<Loc> = keys.map(|k| store.locate(k)).collect();
        let shards = crate::store::shard_set(&locs);
        (locs, shards)
    }

    /// Raise a keyspace event for a key of this connection's database.
    pub fn notify(&self, class: u32, event: &str, key: &[u8]) {
        self.shared
            .pubsub
            .notify_db(self.conn.db, class, event, key);
    }

    /// Count a read hit or miss for `INFO stats`.
    pub fn hit(&mut self, hit: bool) {
        if hit {
            self.conn.hits += 1;
        } else {
            self.conn.misses += 1;
        }
    }
}

pub use crate::glob::glob_match;

thread_local! {
    static RANDOM: std::cell::Cell<u64> = std::cell::Cell::new({
        let t = crate::clock::now_us();
        let id = std::thread::current().id();
        let h = format!("{id:?}").bytes().fold(t, |a, b| a.rotate_left(5) ^ u64::from(b));
        h | 1
    });
}

/// Make this thread's [`random_u64`] draw a given sequence: a script that every replica
/// runs seeds it alike, so `RANDOMKEY` or `HRANDFIELD` inside it pick alike everywhere.
pub fn reseed_random(seed: u64) {
    RANDOM.with(|s| s.set(seed | 1));
}

/// A random number for commands that pick at random (`RANDOMKEY`, `HRANDFIELD`): a
/// per-thread xorshift seeded from the clock and the thread. Not for secrets.
pub fn random_u64() -> u64 {
    RANDOM.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"9223372036854775808"[..],
            b"+1",
            b" 1",
            b"01",
            b"-0",
            b"",
            b"1a",
            b"-",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
