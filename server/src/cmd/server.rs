//! Server commands: COMMAND, CONFIG, INFO, DBSIZE, FLUSHDB/FLUSHALL, TIME, LASTSAVE,
//! SHUTDOWN.

use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use sessiond_protocol::encode;

use super::{lookup, printable, Ctx, Spec, COMMANDS, ERR_SYNTAX};
use crate::clock::now_us;
use crate::mem;

/// The Redis version sessiond reports, so clients enable the features it implements.
pub const REDIS_VERSION: &str = "7.4.0";

// ---- COMMAND ------------------------------------------------------------------------

fn acl_categories(s: &Spec) -> Vec<String> {
    s.cats().names().map(|c| format!("@{c}")).collect()
}

fn command_info(out: &mut BytesMut, s: &Spec, r3: bool) {
    encode::array_len(out, 10);
    encode::bulk(out, s.name.as_bytes());
    encode::integer(out, i64::from(s.arity));
    let flags: Vec<&str> = s.flags.names().collect();
    encode::set_len(out, flags.len(), r3);
    for f in flags {
        encode::simple(out, f.as_bytes());
    }
    encode::integer(out, i64::from(s.first_key));
    encode::integer(out, i64::from(s.last_key));
    encode::integer(out, i64::from(s.step));
    let cats = acl_categories(s);
    encode::set_len(out, cats.len(), r3);
    for c in cats {
        encode::simple(out, c.as_bytes());
    }
    encode::array_len(out, 0); // tips
    encode::array_len(out, 0); // key specs
    encode::array_len(out, 0); // subcommands
}

fn command_doc(out: &mut BytesMut, s: &Spec, r3: bool) {
    encode::bulk(out, s.name.as_bytes());
    encode::map_len(out, 4, r3);
    encode::bulk(out, b"summary");
    encode::bulk(out, s.summary.as_bytes());
    encode::bulk(out, b"since");
    encode::bulk(out, s.since.as_bytes());
    encode::bulk(out, b"group");
    encode::bulk(out, s.group.as_bytes());
    encode::bulk(out, b"complexity");
    encode::bulk(out, b"O(1)");
}

/// Every command and subcommand name, with its ACL categories.
fn all_command_names() -> Vec<(String, super::table::Cats)> {
    use super::table::{acl_entry, acl_ids};
    (0..acl_ids()).map(acl_entry).collect()
}

/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]`
fn command_list(ctx: &mut Ctx<'_>, rest: &[Bytes]) {
    let names = all_command_names();
    let keep: Vec<&String> = match rest {
        [] => names.iter().map(|(n, _)| n).collect(),
        [f, kind, value] if f.eq_ignore_ascii_case(b"filterby") => {
            let kind = kind.to_ascii_lowercase();
            match kind.as_slice() {
                b"module" => Vec::new(),
                b"aclcat" => match std::str::from_utf8(value)
                    .ok()
                    .and_then(super::table::Cats::named)
                {
                    Some(c) => names
                        .iter()
                        .filter(|(_, cats)| cats.has(c))
                        .map(|(n, _)| n)
                        .collect(),
                    None => Vec::new(),
                },
                b"pattern" => {
                    let g = crate::glob::Glob::new(value, true);
                    names
                        .iter()
                        .filter(|(n, _)| g.matches(n.as_bytes()))
                        .map(|(n, _)| n)
                        .collect()
                }
                _ => return ctx.err(ERR_SYNTAX),
            }
        }
        _ => return ctx.err(ERR_SYNTAX),
    };
    encode::array_len(ctx.out, keep.len());
    for n in keep {
        encode::bulk(ctx.out, n.as_bytes());
    }
}

/// `COMMAND GETKEYS command [arg ...]`
fn command_getkeys(ctx: &mut Ctx<'_>, cmd: &[Bytes]) {
    let Some(spec) = lookup(&cmd[0]) else {
        return ctx.err(b"ERR Invalid command specified");
    };
    if !spec.arity_ok(cmd.len()) {
        return ctx.err(b"ERR Invalid number of arguments specified for command");
    }
    let keys: Vec<usize> = super::admit::key_positions(spec, cmd).collect();
    // A command whose keys are counted by an argument (EVAL's numkeys) may have none.
    if keys.is_empty() && !spec.is(super::Flags::MOVABLE_KEYS) {
        return ctx.err(b"ERR The command has no key arguments");
    }
    encode::array_len(ctx.out, keys.len());
    for i in keys {
        encode::bulk(ctx.out, &cmd[i]);
    }
}

/// `COMMAND`, `COMMAND COUNT|INFO|DOCS|LIST|GETKEYS|HELP`
pub fn command(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let r3 = ctx.resp3();
    if args.len() == 1 {
        encode::array_len(ctx.out, COMMANDS.len());
        for s in COMMANDS {
            command_info(ctx.out, s, r3);
        }
        return;
    }
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"count" if args.len() == 2 => ctx.int(COMMANDS.len() as i64),
        b"list" => command_list(ctx, &args[2..]),
        b"getkeys" if args.len() >= 3 => command_getkeys(ctx, &args[2..]),
        b"info" => {
            if args.len() == 2 {
                encode::array_len(ctx.out, COMMANDS.len());
                for s in COMMANDS {
                    command_info(ctx.out, s, r3);
                }
                return;
            }
            encode::array_len(ctx.out, args.len() - 2);
            for name in &args[2..] {
                match lookup(name) {
                    Some(s) => command_info(ctx.out, s, r3),
                    None => encode::null(ctx.out, r3),
                }
            }
        }
        b"docs" => {
            let specs: Vec<&Spec> = if args.len() == 2 {
                COMMANDS.iter().collect()
            } else {
                args[2..].iter().filter_map(|n| lookup(n)).collect()
            };
            encode::map_len(ctx.out, specs.len(), r3);
            for s in specs {
                command_doc(ctx.out, s, r3);
            }
        }
        b"help" if args.len() == 2 => {
            let lines: &[&[u8]] = &[
                b"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                b"(no subcommand)",
                b"    Return details about all commands.",
                b"COUNT",
                b"    Return the total number of commands in this server.",
                b"LIST",
                b"    Return a list of all commands in this server.",
                b"INFO [<command-name> ...]",
                b"    Return details about multiple commands.",
                b"DOCS [<command-name> ...]",
                b"    Return documentation details about multiple commands.",
                b"HELP",
                b"    Print this help.",
            ];
            super::help_reply(ctx.out, lines);
        }
        b"count" | b"help" => super::sub_syntax_error(ctx.out, "command", &args[1]),
        _ => super::unknown_subcommand(ctx.out, "COMMAND", &args[1]),
    }
}

// ---- CONFIG -------------------------------------------------------------------------

/// Settings Redis has that describe its encodings or background work. sessiond stores
/// values as it always does, so these change nothing; they are accepted (integers),
/// stored and reported so that clients and tests that tune them keep working.
pub const TUNABLES: &[(&str, &str)] = &[
    ("hash-max-listpack-entries", "128"),
    ("hash-max-listpack-value", "64"),
    ("hash-max-ziplist-entries", "128"),
    ("hash-max-ziplist-value", "64"),
    ("set-max-intset-entries", "512"),
    ("set-max-listpack-entries", "128"),
    ("set-max-listpack-value", "64"),
    ("zset-max-listpack-entries", "128"),
    ("zset-max-listpack-value", "64"),
    ("zset-max-ziplist-entries", "128"),
    ("zset-max-ziplist-value", "64"),
    ("list-max-listpack-size", "-2"),
    ("list-max-ziplist-size", "-2"),
    ("list-compress-depth", "0"),
    ("stream-node-max-bytes", "4096"),
    ("stream-node-max-entries", "100"),
    ("hll-sparse-max-bytes", "3000"),
    ("active-expire-effort", "1"),
    ("lazyfree-lazy-eviction", "no"),
    ("lazyfree-lazy-expire", "no"),
    ("lazyfree-lazy-server-del", "no"),
    ("lazyfree-lazy-user-del", "no"),
    ("lazyfree-lazy-user-flush", "no"),
    ("activerehashing", "yes"),
    ("latency-tracking", "yes"),
    ("lua-time-limit", "5000"),
    ("busy-reply-threshold", "5000"),
    ("acllog-max-len", "128"),
];

/// Settings that can only be given at start (Redis's words for them at CONFIG SET).
const IMMUTABLE: &[&str] = &[
    "bind",
    "port",
    "databases",
    "daemonize",
    "io-threads",
    "shards",
    "cluster-enabled",
];

/// Start-time settings that CONFIG SET accepts at the value they have: Redis's `bind`
/// and `port` (mutable in Redis, see the README) and sessiond's own `shards`, which
/// Redis's tools do not know to skip.
const SAME_VALUE_OK: &[&str] = &["bind", "port", "shards"];

/// Settings Redis refuses unless `enable-protected-configs` is set, which sessiond does
/// not offer.
const PROTECTED: &[&str] = &["dir", "dbfilename"];

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Every parameter `CONFIG GET` knows, with its current value.
fn config_params(ctx: &Ctx<'_>) -> Vec<(&'static str, String)> {
    let c = &ctx.shared.config;
    let rt = &ctx.shared.runtime;
    vec![
        ("bind", c.bind.clone()),
        ("port", c.port.to_string()),
        ("databases", crate::server::DATABASES.to_string()),
        ("save", String::new()),
        ("appendonly", "no".into()),
        ("appendfsync", rt.appendfsync().into()),
        ("maxmemory", rt.maxmemory().to_string()),
        ("maxmemory-policy", rt.policy().name().into()),
        ("maxclients", rt.maxclients().to_string()),
        ("timeout", rt.timeout().to_string()),
        (
            "protected-mode",
            if rt.protected_mode() { "yes" } else { "no" }.into(),
        ),
        ("tcp-keepalive", rt.tcp_keepalive().to_string()),
        (
            "notify-keyspace-events",
            crate::pubsub::flags::render(ctx.shared.pubsub.notify_flags()),
        ),
        ("replica-read-only", yes_no(rt.replica_read_only()).into()),
        ("slave-read-only", yes_no(rt.replica_read_only()).into()),
        ("cluster-enabled", "no".into()),
        (
            "proto-max-bulk-len",
            ctx.shared.proto_max_bulk_len().to_string(),
        ),
        ("hz", rt.hz().to_string()),
        (
            "slowlog-log-slower-than",
            ctx.shared.slowlog.threshold_us().to_string(),
        ),
        ("slowlog-max-len", ctx.shared.slowlog.max_len().to_string()),
        (
            "tracking-table-max-keys",
            ctx.shared.tracking.max_keys().to_string(),
        ),
        ("loglevel", rt.loglevel().into()),
        (
            "dir",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        ),
        ("dbfilename", "dump.rdb".into()),
        ("io-threads", c.threads.to_string()),
        ("shards", c.shards.to_string()),
        ("daemonize", "no".into()),
    ]
    .into_iter()
    .chain(
        ctx.shared
            .tunables
            .lock()
            .iter()
            .map(|(k, v)| (*k, v.clone())),
    )
    .collect()
}

/// `CONFIG GET pattern [pattern ...]`, `CONFIG SET param value [param value ...]`,
/// `CONFIG RESETSTAT`, `CONFIG REWRITE`, `CONFIG HELP`.
pub fn config(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"get" if args.len() >= 3 => {
            let params = config_params(ctx);
            // Each pattern compiled once, not once per parameter.
            let globs: Vec<crate::glob::Glob> = args[2..]
                .iter()
                .map(|p| crate::glob::Glob::new(p, true))
                .collect();
            let hits: Vec<&(&str, String)> = params
                .iter()
                .filter(|(name, _)| globs.iter().any(|g| g.matches(name.as_bytes())))
                .collect();
            let r3 = ctx.resp3();
            encode::map_len(ctx.out, hits.len(), r3);
            for (name, value) in hits {
                encode::bulk(ctx.out, name.as_bytes());
                encode::bulk(ctx.out, value.as_bytes());
            }
        }
        b"set" if args.len().is_multiple_of(2) => config_set(ctx, &args[2..]),
        b"set" => ctx.err(super::ERR_SYNTAX),
        b"resetstat" if args.len() == 2 => {
            let st = &ctx.shared.stats;
            for c in [
                &st.commands,
                &st.connections_received,
                &st.keyspace_hits,
                &st.keyspace_misses,
                &st.net_input_bytes,
                &st.net_output_bytes,
                &st.rejected_connections,
                &ctx.shared.expirer.max_lag_ms,
            ] {
                c.store(0, Ordering::Relaxed);
            }
            ctx.shared.cmdstats.reset();
            ctx.ok();
        }
        b"rewrite" if args.len() == 2 => {
            if ctx.shared.config.config_file.is_none() {
                ctx.err(b"ERR The server is running without a config file");
            } else {
                ctx.err(b"ERR Rewriting config file is not supported by sessiond: edit the file (see the README's Differences)");
            }
        }
        b"help" if args.len() == 2 => {
            let lines: &[&[u8]] = &[
                b"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                b"GET <pattern>",
                b"    Return parameters matching the glob-like <pattern> and their values.",
                b"SET <directive> <value>",
                b"    Set the configuration <directive> to <value>.",
                b"RESETSTAT",
                b"    Reset statistics reported by the INFO command.",
                b"HELP",
                b"    Print this help.",
            ];
            super::help_reply(ctx.out, lines);
        }
        b"get" | b"resetstat" | b"rewrite" | b"help" => {
            super::sub_syntax_error(ctx.out, "config", &args[1])
        }
        _ => super::unknown_subcommand(ctx.out, "CONFIG", &args[1]),
    }
}

fn config_set(ctx: &mut Ctx<'_>, pairs: &[Bytes]) {
    // Validate everything first: CONFIG SET is all or nothing.
    let mut bulk_len = None;
    let mut notify = None;
    let mut slower_than = None;
    let mut slow_len = None;
    let mut tracking_max = None;
    let mut tunables: Vec<(&'static str, String)> = Vec::new();
    let mut runtime = Vec::new();
    let current = config_params(ctx);
    // Redis looks every name up before it reads any value: unknown, immutable, protected
    // and duplicate names are refused first, in order.
    let mut seen: Vec<String> = Vec::new();
    for pair in pairs.chunks_exact(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let why = if !current.iter().any(|(k, _)| *k == name) {
            let msg = format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                printable(&pair[0], 128)
            );
            ctx.err(msg.as_bytes());
            return;
        } else if IMMUTABLE.contains(&name.as_str()) && !SAME_VALUE_OK.contains(&name.as_str()) {
            "can't set immutable config"
        } else if PROTECTED.contains(&name.as_str()) {
            "can't set protected config"
        } else if seen.contains(&name) {
            "duplicate parameter"
        } else {
            seen.push(name);
            continue;
        };
        let msg = format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}");
        ctx.err(msg.as_bytes());
        return;
    }
    for pair in pairs.chunks_exact(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        let fail = |ctx: &mut Ctx<'_>, why: &str| {
            let msg =
                format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}");
            ctx.err(msg.as_bytes());
        };
        match name.as_str() {
            "proto-max-bulk-len" => match crate::config::parse_memory(&value) {
                Some(v) if (1024 * 1024..=i64::MAX as u64).contains(&v) => bulk_len = Some(v),
                Some(_) => {
                    return fail(
                        ctx,
                        "argument must be between 1048576 and 9223372036854775807 inclusive",
                    )
                }
                None => return fail(ctx, "argument must be a memory value"),
            },
            // Settings that already describe sessiond: accept their current value.
            "save" if value.trim().is_empty() => {}
            "appendonly" if value.eq_ignore_ascii_case("no") => {}
            n if crate::runtime::parse(n, &value).is_some() => {
                match crate::runtime::parse(n, &value) {
                    Some(Ok(c)) => runtime.push(c),
                    Some(Err(why)) => return fail(ctx, &why),
                    None => {}
                }
            }
            "slowlog-log-slower-than" => match super::parse_i64(&pair[1]) {
                Some(v) => slower_than = Some(v),
                None => return fail(ctx, "argument couldn't be parsed into an integer"),
            },
            "tracking-table-max-keys" => match super::parse_i64(&pair[1]) {
                Some(v) if v >= 0 => tracking_max = Some(v as u64),
                Some(_) => {
                    return fail(
                        ctx,
                        "argument must be between 0 and 9223372036854775807 inclusive",
                    )
                }
                None => return fail(ctx, "argument couldn't be parsed into an integer"),
            },
            "slowlog-max-len" => match super::parse_i64(&pair[1]) {
                Some(v) if v >= 0 => slow_len = Some(v as usize),
                Some(_) => {
                    return fail(
                        ctx,
                        "argument must be between 0 and 9223372036854775807 inclusive",
                    )
                }
                None => return fail(ctx, "argument couldn't be parsed into an integer"),
            },
            "notify-keyspace-events" => match crate::pubsub::flags::parse(&pair[1]) {
                Some(f) => notify = Some(f),
                None => return fail(ctx, "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."),
            },
            "save" | "appendonly" => {
                return fail(ctx, "this value is not supported by sessiond yet");
            }
            // Redis can move its listener; sessiond cannot (see the README), but setting
            // the address it has changes nothing.
            n if SAME_VALUE_OK.contains(&n)
                && current.iter().any(|(k, v)| *k == n && *v == value) => {}
            n if IMMUTABLE.contains(&n) => return fail(ctx, "can't set immutable config"),
            n if PROTECTED.contains(&n) => return fail(ctx, "can't set protected config"),
            n if TUNABLES.iter().any(|(t, _)| *t == n) => {
                let Some(&(key, default)) = TUNABLES.iter().find(|(t, _)| *t == n) else {
                    return fail(ctx, "unknown");
                };
                let v = if default == "yes" || default == "no" {
                    match value.to_ascii_lowercase().as_str() {
                        "yes" | "no" => value.to_ascii_lowercase(),
                        _ => return fail(ctx, "argument must be 'yes' or 'no'"),
                    }
                } else {
                    match super::parse_i64(&pair[1]) {
                        Some(v) => v.to_string(),
                        None => return fail(ctx, "argument couldn't be parsed into an integer"),
                    }
                };
                tunables.push((key, v));
            }
            _ => {
                let msg = format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                    printable(&pair[0], 128)
                );
                ctx.err(msg.as_bytes());
                return;
            }
        }
    }
    if let Some(v) = bulk_len {
        ctx.shared.proto_max_bulk_len.store(v, Ordering::Relaxed);
    }
    if let Some(f) = notify {
        ctx.shared.pubsub.set_notify_flags(f);
    }
    if let Some(v) = slower_than {
        ctx.shared.slowlog.set_threshold_us(v);
    }
    if let Some(n) = slow_len {
        ctx.shared.slowlog.set_max_len(n);
    }
    if let Some(n) = tracking_max {
        ctx.shared.tracking.set_max_keys(n);
    }
    for c in runtime {
        ctx.shared.runtime.apply(c);
        if let crate::runtime::Change::Maxmemory(limit) = c {
            // Over the new limit, writes are refused from the next command on, as in
            // Redis; the expiry thread evicts (under an eviction policy) and clears the
            // flag once memory is back under the limit.
            let over = limit > 0 && crate::mem::allocated() > limit;
            ctx.shared.oom.store(over, Ordering::Relaxed);
        }
    }
    if !tunables.is_empty() {
        let mut t = ctx.shared.tunables.lock();
        for (k, v) in tunables {
            // Redis 7's names for one setting.
            match k {
                "lua-time-limit" => t.insert("busy-reply-threshold", v.clone()),
                "busy-reply-threshold" => t.insert("lua-time-limit", v.clone()),
                _ => None,
            };
            t.insert(k, v);
        }
    }
    ctx.ok();
}

// ---- the rest -----------------------------------------------------------------------

pub fn dbsize(ctx: &mut Ctx<'_>, _args: &[Bytes]) {
    let (keys, _, _, _) = super::info::keyspace_totals(ctx);
    ctx.int(keys as i64);
}

/// `FLUSHDB [ASYNC|SYNC]` and `FLUSHALL [ASYNC|SYNC]` (there is one database).
pub fn flushdb(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let ok = match args.len() {
        1 => true,
        2 => args[1].eq_ignore_ascii_case(b"async") || args[1].eq_ignore_ascii_case(b"sync"),
        _ => false,
    };
    if !ok {
        ctx.err(ERR_SYNTAX);
        return;
    }
    let now = ctx.now;
    for i in 0..ctx.ks.store().shard_count() {
        let old = ctx.ks.shard(i).clear(now);
        // Free the old tables with the lock released.
        drop(old);
    }
    mem::trim();
    ctx.shared.tracking.flush();
    ctx.ok();
}

pub fn time(ctx: &mut Ctx<'_>, _args: &[Bytes]) {
    let us = now_us();
    let mut b = itoa::Buffer::new();
    encode::array_len(ctx.out, 2);
    encode::bulk(ctx.out, b.format(us / 1_000_000).as_bytes());
    encode::bulk(ctx.out, b.format(us % 1_000_000).as_bytes());
}

/// `LASTSAVE`: in a cluster, when this node last took or installed a snapshot; a
/// single node saves nothing, so its start.
pub fn lastsave(ctx: &mut Ctx<'_>, _args: &[Bytes]) {
    let snap = ctx
        .shared
        .cluster()
        .map_or(0, |c| c.status.snapshot_ms.load(Ordering::Relaxed));
    let ms = if snap > 0 {
        snap
    } else {
        ctx.shared.started_ms
    };
    ctx.int((ms / 1000) as i64);
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`: there is nothing to save, so every
/// form but ABORT stops the server. The connection closes without a reply, as in Redis.
pub fn shutdown(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    for a in &args[1..] {
        let a = a.to_ascii_lowercase();
        match a.as_slice() {
            b"nosave" | b"save" | b"now" | b"force" => {}
            b"abort" => {
                ctx.err(b"ERR No shutdown in progress.");
                return;
            }
            _ => {
                ctx.err(ERR_SYNTAX);
                return;
            }
        }
    }
    if ctx
        .shared
        .scripts
        .running_for(crate::clock::now_ms())
        .is_some()
    {
        // SHUTDOWN NOSAVE during a runaway script (the only form allowed then): the
        // script holds the store, so an orderly stop would wait for it. Exit now, as
        // Redis does; a cluster node's log is on disk already.
        tracing::warn!("SHUTDOWN NOSAVE while a script runs: exiting at once");
        std::process::exit(0);
    }
    ctx.shared.request_shutdown();
    ctx.conn.close = true;
}

/// `SLOWLOG GET [count] | LEN | RESET | HELP`
pub fn slowlog(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let sub = args[1].to_ascii_lowercase();
    let log = &ctx.shared.slowlog;
    match (sub.as_slice(), args.len()) {
        (b"get", 2 | 3) => {
            let count = match args.get(2) {
                None => Some(10),
                Some(a) => match super::parse_i64(a) {
                    Some(-1) => None,
                    Some(n) if n >= 0 => Some(n as usize),
                    _ => {
                        ctx.err(b"ERR count should be greater than or equal to -1");
                        return;
                    }
                },
            };
            let out = &mut *ctx.out;
            log.with_entries(count, |entries| {
                encode::array_len(out, entries.len());
                for e in entries {
                    encode::array_len(out, 6);
                    encode::integer(out, e.id as i64);
                    encode::integer(out, e.unix_s as i64);
                    encode::integer(out, e.micros as i64);
                    encode::array_len(out, e.args.len());
                    for a in &e.args {
                        encode::bulk(out, a);
                    }
                    encode::bulk(out, e.addr.as_bytes());
                    encode::bulk(out, &e.name);
                }
            });
        }
        (b"len", 2) => {
            let n = log.len();
            ctx.int(n as i64);
        }
        (b"reset", 2) => {
            log.reset();
            ctx.ok();
        }
        (b"help", 2) => super::help_reply(
            ctx.out,
            &[
                b"SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                b"GET [<count>]",
                b"    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                b"    Entries are made of:",
                b"    id, timestamp, time in microseconds, arguments array, client IP and port,",
                b"    client name",
                b"LEN",
                b"    Return the length of the slowlog.",
                b"RESET",
                b"    Reset the slowlog.",
                b"HELP",
                b"    Print this help.",
            ],
        ),
        (b"get" | b"len" | b"reset" | b"help", _) => {
            super::sub_syntax_error(ctx.out, "slowlog", &args[1])
        }
        _ => super::unknown_subcommand(ctx.out, "SLOWLOG", &args[1]),
    }
}

/// `MONITOR`: from now on this connection is fed every command that runs.
pub fn monitor(ctx: &mut Ctx<'_>, _args: &[Bytes]) {
    if ctx.conn.monitor.is_none() {
        ctx.conn.monitor = Some(ctx.shared.monitors.add(ctx.conn.id));
    }
    ctx.ok();
}
