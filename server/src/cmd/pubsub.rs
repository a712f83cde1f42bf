//! Pub/sub: `SUBSCRIBE`, `PSUBSCRIBE`, `UNSUBSCRIBE`, `PUNSUBSCRIBE`, `PUBLISH`, `PUBSUB`.
//!
//! A connection's subscriptions live in its `Conn` (see [`crate::pubsub`]); the
//! connection loop writes the messages as they arrive. In RESP2 a subscribed connection
//! may only (un)subscribe, `PING`, `QUIT` and `RESET` (checked in `dispatch`); in RESP3
//! messages are pushes and every command stays available.

use bytes::Bytes;
use sessiond_protocol::encode;

use super::Ctx;
use crate::pubsub::Subscription;

/// One confirmation: `[kind, name, count]`, a push in RESP3.
fn confirm(ctx: &mut Ctx<'_>, kind: &[u8], name: Option<&[u8]>, count: usize) {
    let r3 = ctx.conn.resp3;
    encode::push_len(ctx.out, 3, r3);
    encode::bulk(ctx.out, kind);
    match name {
        Some(n) => encode::bulk(ctx.out, n),
        None => encode::null(ctx.out, r3),
    }
    encode::integer(ctx.out, count as i64);
}

fn subscription<'c>(ctx: &'c mut Ctx<'_>) -> &'c mut Subscription {
    let (ps, id) = (ctx.shared.pubsub.clone(), ctx.conn.id);
    ctx.conn
        .sub
        .get_or_insert_with(|| Box::new(Subscription::new(ps, id)))
}

pub fn subscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    for ch in &args[1..] {
        let sub = subscription(ctx);
        sub.subscribe(ch.clone());
        let n = sub.count();
        confirm(ctx, b"subscribe", Some(ch), n);
    }
}

pub fn psubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    for p in &args[1..] {
        let sub = subscription(ctx);
        sub.psubscribe(p.clone());
        let n = sub.count();
        confirm(ctx, b"psubscribe", Some(p), n);
    }
}

pub fn unsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    unsubscribe_generic(ctx, args, false);
}

pub fn punsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    unsubscribe_generic(ctx, args, true);
}

fn unsubscribe_generic(ctx: &mut Ctx<'_>, args: &[Bytes], pattern: bool) {
    let kind: &[u8] = if pattern {
        b"punsubscribe"
    } else {
        b"unsubscribe"
    };
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        match &ctx.conn.sub {
            Some(s) if pattern => s.patterns.iter().cloned().collect(),
            Some(s) => s.channels.iter().cloned().collect(),
            None => Vec::new(),
        }
    };
    if names.is_empty() {
        // Nothing to leave: one reply with a null name, as Redis does.
        let n = ctx.conn.sub.as_ref().map_or(0, |s| s.count());
        confirm(ctx, kind, None, n);
        return;
    }
    for name in names {
        let n = match ctx.conn.sub.as_mut() {
            Some(s) => {
                if pattern {
                    s.punsubscribe(&name);
                } else {
                    s.unsubscribe(&name);
                }
                s.count()
            }
            None => 0,
        };
        confirm(ctx, kind, Some(&name), n);
    }
    if ctx.conn.sub.as_ref().is_some_and(|s| s.count() == 0) {
        ctx.conn.sub = None;
    }
}

pub fn publish(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let n = ctx.shared.pubsub.publish(&args[1], &args[2]);
    ctx.int(n as i64);
}

/// `PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | SHARDCHANNELS |
/// SHARDNUMSUB | HELP`
pub fn pubsub(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let sub = args[1].to_ascii_lowercase();
    let ps = ctx.shared.pubsub.clone();
    match (sub.as_slice(), args.len()) {
        (b"channels", 2 | 3) => {
            let list = ps.channels(args.get(2).map(|b| &b[..]));
            encode::array_len(ctx.out, list.len());
            for c in list {
                encode::bulk(ctx.out, &c);
            }
        }
        (b"numsub", _) => {
            let r3 = ctx.conn.resp3;
            encode::map_len(ctx.out, args.len() - 2, r3);
            for c in &args[2..] {
                encode::bulk(ctx.out, c);
                encode::integer(ctx.out, ps.numsub(c) as i64);
            }
        }
        (b"numpat", 2) => ctx.int(ps.numpat() as i64),
        (b"shardchannels", 2 | 3) => encode::array_len(ctx.out, 0),
        (b"shardnumsub", _) => {
            let r3 = ctx.conn.resp3;
            encode::map_len(ctx.out, args.len() - 2, r3);
            for c in &args[2..] {
                encode::bulk(ctx.out, c);
                encode::integer(ctx.out, 0);
            }
        }
        (b"help", 2) => super::help_reply(
            ctx.out,
            &[
                b"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                b"CHANNELS [<pattern>]",
                b"    Return the currently active channels matching a <pattern> (default: '*').",
                b"NUMPAT",
                b"    Return number of subscriptions to patterns.",
                b"NUMSUB [<channel> ...]",
                b"    Return the number of subscribers for the specified channels, excluding",
                b"    pattern subscriptions(default: no channels).",
                b"HELP",
                b"    Print this help.",
            ],
        ),
        (b"channels" | b"numpat" | b"shardchannels" | b"help", _) => {
            super::sub_syntax_error(ctx.out, "pubsub", &args[1])
        }
        _ => super::unknown_subcommand(ctx.out, "PUBSUB", &args[1]),
    }
}
