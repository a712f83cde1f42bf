//! Connection commands: PING, ECHO, QUIT, HELLO, AUTH, SELECT, CLIENT, RESET.

use bytes::Bytes;
use sessiond_protocol::encode;

use super::{printable, wrong_arity, Ctx};

pub fn ping(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    if ctx.conn.sub.is_some() && !ctx.conn.resp3 {
        // In RESP2 subscribed mode Redis answers `["pong", <message or "">]`.
        if args.len() > 2 {
            return wrong_arity(ctx.out, "ping");
        }
        encode::array_len(ctx.out, 2);
        encode::bulk(ctx.out, b"pong");
        encode::bulk(ctx.out, args.get(1).map_or(&b""[..], |a| &a[..]));
        return;
    }
    match args.len() {
        1 => ctx.out.extend_from_slice(b"+PONG\r\n"),
        2 => ctx.bulk(&args[1]),
        _ => wrong_arity(ctx.out, "ping"),
    }
}

pub fn echo(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    ctx.bulk(&args[1]);
}

pub fn quit(ctx: &mut Ctx<'_>, _args: &[Bytes]) {
    ctx.ok();
    ctx.conn.close = true;
}

const WRONGPASS: &[u8] = b"WRONGPASS invalid username-password pair or user is disabled.";

/// `AUTH <password>` (the default user) or `AUTH <user> <password>`.
pub fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let users = &ctx.shared.users;
    let (name, pass): (&[u8], &[u8]) = match args.len() {
        2 if !users.default_has_password() => {
            ctx.err(b"ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
            return;
        }
        2 => (b"default", &args[1]),
        3 => (&args[1], &args[2]),
        _ => {
            ctx.err(super::ERR_SYNTAX);
            return;
        }
    };
    match users.check(name, pass) {
        Some(u) => {
            ctx.conn.set_user(Some(u));
            ctx.ok();
        }
        None => auth_failed(ctx, name),
    }
}

/// Reply `WRONGPASS` and record the failure in `ACL LOG`.
fn auth_failed(ctx: &mut Ctx<'_>, name: &[u8]) {
    let now = ctx.now;
    let ctxname = if ctx.conn.multi.is_some() {
        "multi"
    } else {
        "toplevel"
    };
    ctx.shared.users.log.add(
        "auth",
        ctxname,
        "AUTH".into(),
        String::from_utf8_lossy(name).into_owned(),
        ctx.conn.info.line(now),
        now,
    );
    ctx.err(WRONGPASS);
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`
pub fn hello(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let mut proto = if ctx.conn.resp3 { 3 } else { 2 };
    let mut i = 1;
    if args.len() > 1 {
        match super::parse_i64(&args[1]) {
            Some(v) if v == 2 || v == 3 => proto = v,
            Some(_) => {
                ctx.err(b"NOPROTO unsupported protocol version");
                return;
            }
            None => {
                ctx.err(b"ERR Protocol version is not an integer or out of range");
                return;
            }
        }
        i = 2;
    }
    let mut name = None;
    let mut user = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if args[i].eq_ignore_ascii_case(b"AUTH") && more >= 2 {
            match ctx.shared.users.check(&args[i + 1], &args[i + 2]) {
                Some(u) => user = Some(u),
                None => {
                    let name = args[i + 1].clone();
                    auth_failed(ctx, &name);
                    return;
                }
            }
            i += 3;
        } else if args[i].eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
            if !valid_name(&args[i + 1]) {
                ctx.err(b"ERR Client names cannot contain spaces, newlines or special characters.");
                return;
            }
            name = Some(args[i + 1].clone());
            i += 2;
        } else {
            let msg = format!(
                "ERR Syntax error in HELLO option '{}'",
                printable(&args[i], 128)
            );
            ctx.err(msg.as_bytes());
            return;
        }
    }
    if user.is_none() && ctx.conn.user.is_none() {
        ctx.err(b"NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        return;
    }
    if user.is_some() {
        ctx.conn.set_user(user);
    }
    if let Some(n) = name {
        *ctx.conn.info.name.lock() = if n.is_empty() { None } else { Some(n) };
    }
    ctx.conn.set_resp3(proto == 3);
    let r3 = ctx.conn.resp3;
    let out = &mut *ctx.out;
    encode::map_len(out, 7, r3);
    encode::bulk(out, b"server");
    encode::bulk(out, b"redis");
    encode::bulk(out, b"version");
    encode::bulk(out, super::server::REDIS_VERSION.as_bytes());
    encode::bulk(out, b"proto");
    encode::integer(out, proto);
    encode::bulk(out, b"id");
    encode::integer(out, ctx.conn.id as i64);
    encode::bulk(out, b"mode");
    encode::bulk(out, b"standalone");
    encode::bulk(out, b"role");
    encode::bulk(out, b"master");
    encode::bulk(out, b"modules");
    encode::array_len(out, 0);
}

/// Redis allows client names of printable ASCII without spaces.
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

pub fn reset(ctx: &mut Ctx<'_>, _args: &[Bytes]) {
    ctx.conn.end_multi();
    ctx.conn.sub = None;
    if ctx.conn.monitor.take().is_some() {
        ctx.shared.monitors.remove(ctx.conn.id);
    }
    ctx.conn.reply = crate::connection::ReplyMode::On;
    // Redis's RESET turns client tracking off too.
    if ctx.conn.tracking.take().is_some() {
        ctx.shared.tracking.disable(ctx.conn.id);
    }
    let initial = ctx.shared.users.initial();
    ctx.conn.set_user(initial);
    *ctx.conn.info.name.lock() = None;
    ctx.conn.set_resp3(false);
    ctx.conn.db = 0;
    ctx.conn.info.set_db(0);
    ctx.out.extend_from_slice(b"+RESET\r\n");
}

/// `CLIENT SETNAME|GETNAME|ID|SETINFO|INFO|LIST|NO-EVICT|NO-TOUCH|HELP`
pub fn client(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let sub = args[1].to_ascii_lowercase();
    let n = args.len();
    match (sub.as_slice(), n) {
        (b"setname", 3) => {
            if !valid_name(&args[2]) {
                ctx.err(b"ERR Client names cannot contain spaces, newlines or special characters.");
                return;
            }
            let v = if args[2].is_empty() {
                None
            } else {
                Some(args[2].clone())
            };
            *ctx.conn.info.name.lock() = v;
            ctx.ok();
        }
        (b"getname", 2) => {
            let name = ctx.conn.info.name.lock().clone();
            match name {
                Some(n) => ctx.bulk(&n),
                None => ctx.null(),
            }
        }
        (b"id", 2) => ctx.int(ctx.conn.id as i64),
        (b"reply", 3) => {
            use crate::connection::ReplyMode;
            let mode = args[2].to_ascii_lowercase();
            ctx.conn.reply = match mode.as_slice() {
                b"on" => ReplyMode::On,
                b"off" => ReplyMode::Off,
                // Its own reply is not written either way: skip the next one.
                b"skip" => ReplyMode::Skip,
                _ => {
                    ctx.err(super::ERR_SYNTAX);
                    return;
                }
            };
            if ctx.conn.reply == ReplyMode::On {
                ctx.ok();
            }
        }
        (b"setinfo", 4) => {
            let attr = args[2].to_ascii_lowercase();
            let slot = match attr.as_slice() {
                b"lib-name" => &ctx.conn.info.lib_name,
                b"lib-ver" => &ctx.conn.info.lib_ver,
                _ => {
                    let msg = format!("ERR Unrecognized option '{}'", printable(&args[2], 128));
                    ctx.err(msg.as_bytes());
                    return;
                }
            };
            if !valid_name(&args[3]) && !args[3].is_empty() {
                let msg = format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    printable(&attr, 32)
                );
                ctx.err(msg.as_bytes());
                return;
            }
            *slot.lock() = if args[3].is_empty() {
                None
            } else {
                Some(args[3].clone())
            };
            ctx.ok();
        }
        (b"info", 2) => {
            *ctx.conn.info.last_cmd.lock() = "client|info";
            let mut line = ctx.conn.info.line(ctx.now);
            line.push('\n');
            let r3 = ctx.resp3();
            encode::verbatim(ctx.out, b"txt", line.as_bytes(), r3);
        }
        (b"list", _) => {
            *ctx.conn.info.last_cmd.lock() = "client|list";
            let Some(keep) = list_filter(ctx, &args[2..]) else {
                return;
            };
            let clients: Vec<_> = ctx.shared.clients.lock().values().cloned().collect();
            let mut text = String::new();
            for c in clients.into_iter().filter(|c| keep(c)) {
                text.push_str(&c.line(ctx.now));
                text.push('\n');
            }
            let r3 = ctx.resp3();
            encode::verbatim(ctx.out, b"txt", text.as_bytes(), r3);
        }
        (b"kill", 3..) => client_kill(ctx, &args[2..]),
        (b"tracking", 3..) => super::tracking::client_tracking(ctx, args),
        (b"caching", 3) => super::tracking::client_caching(ctx, args),
        (b"getredir", 2) => super::tracking::client_getredir(ctx),
        (b"trackinginfo", 2) => super::tracking::client_trackinginfo(ctx),
        (b"no-evict" | b"no-touch", 3) => {
            if args[2].eq_ignore_ascii_case(b"on") || args[2].eq_ignore_ascii_case(b"off") {
                ctx.ok();
            } else {
                ctx.err(super::ERR_SYNTAX);
            }
        }
        (b"help", 2) => {
            let lines: &[&[u8]] = &[
                b"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                b"GETNAME",
                b"    Return the name of the current connection.",
                b"ID",
                b"    Return the ID of the current connection.",
                b"INFO",
                b"    Return information about the current client connection.",
                b"KILL <ip:port>",
                b"    Kill connection made from <ip:port>.",
                b"KILL <option> <value> [<option> <value> [...]]",
                b"    Kill connections. Options are: ID <client-id>, ADDR <ip:port>,",
                b"    LADDR <ip:port>, USER <username>, SKIPME (YES|NO), MAXAGE <maxage>.",
                b"REPLY (ON|OFF|SKIP)",
                b"    Control the replies sent to the current connection.",
                b"LIST",
                b"    Return information about client connections.",
                b"SETINFO <option> <value>",
                b"    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
                b"SETNAME <name>",
                b"    Assign the name <name> to the current connection.",
                b"CACHING (YES|NO)",
                b"    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
                b"GETREDIR",
                b"    Return the client ID we are redirecting to when tracking is enabled.",
                b"TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
                b"         [OPTIN] [OPTOUT] [NOLOOP]",
                b"    Control server assisted client side caching.",
                b"TRACKINGINFO",
                b"    Report tracking status for the current connection.",
                b"HELP",
                b"    Print this help.",
            ];
            super::help_reply(ctx.out, lines);
        }
        (
            b"setname" | b"getname" | b"id" | b"setinfo" | b"info" | b"no-evict" | b"no-touch"
            | b"help" | b"kill" | b"reply" | b"tracking" | b"caching" | b"getredir"
            | b"trackinginfo",
            _,
        ) => {
            super::sub_syntax_error(ctx.out, "client", &args[1]);
        }
        _ => super::unknown_subcommand(ctx.out, "CLIENT", &args[1]),
    }
}

/// `CLIENT KILL ip:port` (the old form) or `CLIENT KILL <filter> <value> ...` with `ID`,
/// `ADDR`, `LADDR`, `USER`, `TYPE` and `SKIPME`.
fn client_kill(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let clients: Vec<_> = ctx.shared.clients.lock().values().cloned().collect();
    if args.len() == 1 {
        let addr = String::from_utf8_lossy(&args[0]);
        match clients.iter().find(|c| c.addr.to_string() == addr) {
            Some(c) => {
                kill_one(ctx, c);
                ctx.ok();
            }
            None => ctx.err(b"ERR No such client"),
        }
        return;
    }
    let (mut id, mut addr, mut laddr, mut user, mut kind) = (None, None, None, None, None);
    let mut skipme = true;
    // MAXAGE (Redis 7.4): only connections at least this many seconds old.
    let mut max_age = 0u64;
    // TYPE master or replica: sessiond has no such connections.
    let mut replicas = false;
    if !args.len().is_multiple_of(2) {
        return ctx.err(super::ERR_SYNTAX);
    }
    for pair in args.chunks_exact(2) {
        let v = &pair[1];
        match pair[0].to_ascii_lowercase().as_slice() {
            b"id" => match super::parse_i64(v).filter(|&n| n > 0) {
                Some(n) => id = Some(n as u64),
                None => return ctx.err(b"ERR client-id should be greater than 0"),
            },
            b"addr" => addr = Some(String::from_utf8_lossy(v).into_owned()),
            b"laddr" => laddr = Some(String::from_utf8_lossy(v).into_owned()),
            b"user" => match ctx.shared.users.get_bytes(v) {
                Some(u) => user = Some(u.name.clone()),
                None => {
                    let msg = format!("ERR No such user '{}'", printable(v, 128));
                    return ctx.err(msg.as_bytes());
                }
            },
            b"type" => match v.to_ascii_lowercase().as_slice() {
                b"normal" => kind = Some(false),
                b"pubsub" => kind = Some(true),
                b"master" | b"replica" | b"slave" => replicas = true,
                _ => {
                    let msg = format!("ERR Unknown client type '{}'", printable(v, 128));
                    return ctx.err(msg.as_bytes());
                }
            },
            b"maxage" => match super::parse_i64(v) {
                Some(n) if n > 0 => max_age = n as u64,
                Some(_) => return ctx.err(b"ERR maxage should be greater than 0"),
                None => return ctx.err(b"ERR maxage is not an integer or out of range"),
            },
            b"skipme" if v.eq_ignore_ascii_case(b"yes") => skipme = true,
            b"skipme" if v.eq_ignore_ascii_case(b"no") => skipme = false,
            _ => return ctx.err(super::ERR_SYNTAX),
        }
    }
    let mut killed = 0;
    for c in &clients {
        let pubsub = c.sub.load(std::sync::atomic::Ordering::Relaxed)
            + c.psub.load(std::sync::atomic::Ordering::Relaxed)
            > 0;
        let hit = !replicas
            && id.is_none_or(|i| c.id == i)
            && addr.as_ref().is_none_or(|a| c.addr.to_string() == *a)
            && laddr.as_ref().is_none_or(|a| c.laddr.to_string() == *a)
            && user.as_ref().is_none_or(|u| **c.user.lock() == **u)
            && kind.is_none_or(|p| p == pubsub)
            && c.created.elapsed().as_secs() >= max_age
            && !(skipme && c.id == ctx.conn.id);
        if hit {
            kill_one(ctx, c);
            killed += 1;
        }
    }
    ctx.int(killed);
}

fn kill_one(ctx: &mut Ctx<'_>, c: &crate::clients::ClientInfo) {
    if c.id == ctx.conn.id {
        // Closed once this reply is written, as Redis closes after the reply.
        ctx.conn.close = true;
    } else {
        c.kill();
    }
}

/// `CLIENT LIST [TYPE normal|master|replica|slave|pubsub] [ID id ...]`: which clients to
/// list, or `None` with the error written. sessiond's clients are all normal or pubsub.
#[allow(clippy::type_complexity)]
fn list_filter(
    ctx: &mut Ctx<'_>,
    rest: &[Bytes],
) -> Option<Box<dyn Fn(&crate::clients::ClientInfo) -> bool>> {
    let is_pubsub = |c: &crate::clients::ClientInfo| {
        c.sub.load(std::sync::atomic::Ordering::Relaxed)
            + c.psub.load(std::sync::atomic::Ordering::Relaxed)
            > 0
    };
    match rest {
        [] => Some(Box::new(|_| true)),
        [t, kind] if t.eq_ignore_ascii_case(b"type") => {
            match kind.to_ascii_lowercase().as_slice() {
                b"normal" => Some(Box::new(move |c| !is_pubsub(c))),
                b"pubsub" => Some(Box::new(is_pubsub)),
                b"master" | b"replica" | b"slave" => Some(Box::new(|_| false)),
                _ => {
                    let msg = format!("ERR Unknown client type '{}'", printable(kind, 128));
                    ctx.err(msg.as_bytes());
                    None
                }
            }
        }
        [t, ids @ ..] if t.eq_ignore_ascii_case(b"id") && !ids.is_empty() => {
            let mut want = Vec::with_capacity(ids.len());
            for id in ids {
                match super::parse_i64(id) {
                    Some(n) if n > 0 => want.push(n as u64),
                    _ => {
                        ctx.err(b"ERR Invalid client ID");
                        return None;
                    }
                }
            }
            Some(Box::new(move |c| want.contains(&c.id)))
        }
        _ => {
            ctx.err(super::ERR_SYNTAX);
            None
        }
    }
}
