//! Lua scripting: `EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO` and `SCRIPT
//! LOAD|EXISTS|FLUSH|KILL|HELP`. The interpreter is `crate::script`.
//!
//! A script runs holding every shard: inside `EXEC` the keyspace already does; otherwise
//! this takes the gate (so the event loops stop starting commands) and then the shards.

use bytes::Bytes;
use sessiond_protocol::encode;

use super::{parse_i64, Ctx, ERR_NOT_INT};
use crate::script::{vm, Kill};
use crate::store::Exclusive;

pub fn eval(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    eval_generic(ctx, args, false, false);
}

pub fn evalsha(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    eval_generic(ctx, args, true, false);
}

pub fn eval_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    eval_generic(ctx, args, false, true);
}

pub fn evalsha_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    eval_generic(ctx, args, true, true);
}

/// The keys of an `EVAL` family call (`numkeys` at 2), for ACL checks; empty when
/// `numkeys` is not valid (the command then fails before it touches a key).
pub fn eval_keys(args: &[Bytes]) -> std::ops::Range<usize> {
    match args.get(2).and_then(|n| parse_i64(n)) {
        Some(n) if n >= 0 && (n as usize) <= args.len().saturating_sub(3) => 3..3 + n as usize,
        _ => 0..0,
    }
}

/// What a script's `#!lua flags=...` line declares.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ShebangFlags {
    /// The script has a shebang line (then memory is checked at its start).
    pub declared: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
}

/// Parse a script's shebang line, with Redis's errors.
pub fn shebang(body: &[u8]) -> Result<ShebangFlags, String> {
    if !body.starts_with(b"#!") {
        return Ok(ShebangFlags::default());
    }
    let Some(end) = body.iter().position(|&c| c == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_ascii_whitespace();
    match parts.next() {
        Some("#!lua") => {}
        Some(engine) => return Err(format!("ERR Unexpected engine in script shebang: {engine}")),
        None => return Err("ERR Invalid engine in script shebang".into()),
    }
    let mut f = ShebangFlags {
        declared: true,
        ..ShebangFlags::default()
    };
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {part}"));
        };
        for flag in list.split(',').filter(|s| !s.is_empty()) {
            match flag {
                "no-writes" => f.no_writes = true,
                "allow-oom" => f.allow_oom = true,
                // Redis Cluster and replica settings: nothing to change in sessiond.
                "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                other => return Err(format!("ERR Unexpected flag in script shebang: {other}")),
            }
        }
    }
    Ok(f)
}

fn eval_generic(ctx: &mut Ctx<'_>, args: &[Bytes], by_sha: bool, read_only: bool) {
    let Some(numkeys) = parse_i64(&args[2]) else {
        ctx.err(ERR_NOT_INT);
        return;
    };
    if numkeys < 0 {
        ctx.err(b"ERR Number of keys can't be negative");
        return;
    }
    if numkeys as usize > args.len() - 3 {
        ctx.err(b"ERR Number of keys can't be greater than number of args");
        return;
    }
    // MONITOR shows the script before the commands it runs.
    let addr = (!ctx.conn.replica).then_some(ctx.conn.info.addr);
    ctx.shared.monitors.feed(addr, args);
    let scripts = &ctx.shared.scripts;
    let (sha, body) = if by_sha {
        match scripts.get(&args[1]) {
            Some(body) => (String::from_utf8_lossy(&args[1]).to_ascii_lowercase(), body),
            None => {
                ctx.err(b"NOSCRIPT No matching script. Please use EVAL.");
                return;
            }
        }
    } else {
        (scripts.load(&args[1]), args[1].clone())
    };
    let flags = match shebang(&body) {
        Ok(f) => f,
        Err(e) => {
            ctx.err(e.as_bytes());
            return;
        }
    };
    // A script that declares its flags is refused at once when memory is over the
    // limit, unless it writes nothing or allows it (Redis 7's rule).
    if flags.declared
        && !flags.no_writes
        && !flags.allow_oom
        && ctx.shared.oom.load(std::sync::atomic::Ordering::Relaxed)
    {
        ctx.err(b"OOM command not allowed when used memory > 'maxmemory'.");
        return;
    }
    let n = 3 + numkeys as usize;
    let call = vm::Call {
        sha: &sha,
        body: &body,
        keys: &args[3..n],
        argv: &args[n..],
        read_only: read_only || flags.no_writes,
        allow_oom: flags.allow_oom,
    };
    if ctx.ks.holds_all() {
        vm::run(ctx, &call);
        return;
    }
    let shared = ctx.shared;
    // Close the gate first: no event loop starts a command now, and none waits on a
    // shard while the script holds them all.
    let gate = shared.scripts.gate.close();
    let mut all = Exclusive::new(shared.db(ctx.conn.db));
    let mut inner = Ctx {
        ks: &mut all,
        out: &mut *ctx.out,
        conn: &mut *ctx.conn,
        shared,
        now: ctx.now,
    };
    vm::run(&mut inner, &call);
    drop(all);
    drop(gate);
}

pub fn script(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"load" => {
            let sha = ctx.shared.scripts.load(&args[2]);
            ctx.bulk(sha.as_bytes());
        }
        b"exists" => {
            encode::array_len(ctx.out, args.len() - 2);
            for sha in &args[2..] {
                let n = i64::from(ctx.shared.scripts.exists(sha));
                ctx.int(n);
            }
        }
        b"flush" => {
            let ok = match args.get(2) {
                None => args.len() == 2,
                Some(m) => {
                    args.len() == 3
                        && (m.eq_ignore_ascii_case(b"sync") || m.eq_ignore_ascii_case(b"async"))
                }
            };
            if !ok {
                ctx.err(b"ERR SCRIPT FLUSH only support SYNC|ASYNC option");
                return;
            }
            ctx.shared.scripts.flush();
            ctx.ok();
        }
        b"kill" => match ctx.shared.scripts.kill() {
            Kill::NotBusy => ctx.err(b"NOTBUSY No scripts in execution right now."),
            Kill::Unkillable => ctx.err(b"UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."),
            Kill::Killed => ctx.ok(),
        },
        b"help" => super::help_reply(ctx.out, HELP),
        _ => super::unknown_subcommand(ctx.out, "SCRIPT", &args[1]),
    }
}

const HELP: &[&[u8]] = &[
    b"SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"EXISTS <sha1> [<sha1> ...]",
    b"    Return information about the existence of the scripts in the script cache.",
    b"FLUSH [ASYNC|SYNC]",
    b"    Flush the Lua scripts cache. Very dangerous on replicas.",
    b"    When called without the optional mode argument, the behavior is determined by the",
    b"    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    b"    * ASYNC: Asynchronously flush the scripts cache.",
    b"    * SYNC: Synchronously flush the scripts cache.",
    b"KILL",
    b"    Kill the currently executing Lua script.",
    b"LOAD <script>",
    b"    Load a script into the scripts cache without executing it.",
    b"HELP",
    b"    Print this help.",
];
