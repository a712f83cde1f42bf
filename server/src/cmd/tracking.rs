//! `CLIENT TRACKING`, `CLIENT CACHING`, `CLIENT GETREDIR` and `CLIENT TRACKINGINFO`, and
//! the per-command steps of client-side caching: remembering a read's keys, resetting
//! `CACHING`, writing waiting invalidations. The table itself is `crate::tracking`.

use bytes::Bytes;
use sessiond_protocol::encode;

use super::table::{Flags, Spec};
use super::{printable, Ctx, ERR_SYNTAX};
use crate::connection::Conn;
use crate::server::Shared;
use crate::tracking::{ConnTracking, Mode};

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP]`
pub fn client_tracking(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let mut mode = Mode::default();
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j];
        if a.eq_ignore_ascii_case(b"redirect") && more {
            j += 1;
            if mode.redirect != 0 {
                return ctx.err(b"ERR A client can only redirect to a single other client");
            }
            let Some(id) = super::parse_i64(&args[j]) else {
                return ctx.err(super::ERR_NOT_INT);
            };
            if id <= 0 || !ctx.shared.tracking.exists(id as u64) {
                return ctx.err(b"ERR The client ID you want redirect to does not exist");
            }
            mode.redirect = id as u64;
        } else if a.eq_ignore_ascii_case(b"bcast") {
            mode.bcast = true;
        } else if a.eq_ignore_ascii_case(b"optin") {
            mode.optin = true;
        } else if a.eq_ignore_ascii_case(b"optout") {
            mode.optout = true;
        } else if a.eq_ignore_ascii_case(b"noloop") {
            mode.noloop = true;
        } else if a.eq_ignore_ascii_case(b"prefix") && more {
            j += 1;
            prefixes.push(args[j].clone());
        } else {
            return ctx.err(ERR_SYNTAX);
        }
        j += 1;
    }
    if args[2].eq_ignore_ascii_case(b"off") {
        ctx.shared.tracking.disable(ctx.conn.id);
        ctx.conn.tracking = None;
        return ctx.ok();
    }
    if !args[2].eq_ignore_ascii_case(b"on") {
        return ctx.err(ERR_SYNTAX);
    }
    if let Err(e) = check_on(ctx, &mode, &prefixes) {
        return ctx.err(e.as_bytes());
    }
    ctx.shared
        .tracking
        .enable(&ctx.conn.info, mode.clone(), &prefixes);
    ctx.conn.tracking = Some(Box::new(ConnTracking {
        mode,
        caching: false,
    }));
    // In a cluster, writes through any node now wait for this node to apply them.
    if let Some(c) = ctx.shared.cluster() {
        c.caching_changed();
    }
    ctx.ok()
}

/// Redis's checks before tracking is turned on, in its order.
fn check_on(ctx: &Ctx<'_>, mode: &Mode, prefixes: &[Bytes]) -> Result<(), String> {
    if !mode.bcast && !prefixes.is_empty() {
        return Err("ERR PREFIX option requires BCAST mode to be enabled".into());
    }
    let old = ctx.conn.tracking.as_ref().map(|t| &t.mode);
    if old.is_some_and(|o| o.bcast != mode.bcast) {
        return Err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    if mode.bcast && (mode.optin || mode.optout) {
        return Err("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
    }
    if mode.optin && mode.optout {
        return Err("ERR You can't specify both OPTIN mode and OPTOUT mode".into());
    }
    if old.is_some_and(|o| (mode.optin && o.optout) || (mode.optout && o.optin)) {
        return Err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    if mode.bcast {
        let overlaps = |a: &[u8], b: &[u8]| {
            let n = a.len().min(b.len());
            a[..n] == b[..n]
        };
        let existing = ctx.shared.tracking.prefixes_of(ctx.conn.id);
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(e) = existing.iter().find(|e| overlaps(e, p)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    printable(p, 256),
                    printable(e, 256)
                ));
            }
            if let Some(q) = prefixes[i + 1..].iter().find(|q| overlaps(p, q)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    printable(p, 256),
                    printable(q, 256)
                ));
            }
        }
    }
    Ok(())
}

/// `CLIENT CACHING YES|NO`
pub fn client_caching(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some(t) = ctx.conn.tracking.as_mut() else {
        return ctx.err(b"ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    };
    if args[2].eq_ignore_ascii_case(b"yes") {
        if !t.mode.optin {
            return ctx.err(
                b"ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
        }
    } else if args[2].eq_ignore_ascii_case(b"no") {
        if !t.mode.optout {
            return ctx.err(
                b"ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
        }
    } else {
        return ctx.err(ERR_SYNTAX);
    }
    t.caching = true;
    ctx.ok()
}

/// `CLIENT GETREDIR`: -1 when not tracking, else the redirect (0: none).
pub fn client_getredir(ctx: &mut Ctx<'_>) {
    let v = ctx
        .conn
        .tracking
        .as_ref()
        .map_or(-1, |t| t.mode.redirect as i64);
    ctx.int(v)
}

/// `CLIENT TRACKINGINFO`: flags (a set), redirect, prefixes.
pub fn client_trackinginfo(ctx: &mut Ctx<'_>) {
    let r3 = ctx.resp3();
    let mut flags: Vec<&[u8]> = Vec::new();
    let (redirect, prefixes) = match ctx.conn.tracking.as_ref() {
        None => {
            flags.push(b"off");
            (-1, Vec::new())
        }
        Some(t) => {
            let m = &t.mode;
            flags.push(b"on");
            if m.bcast {
                flags.push(b"bcast");
            }
            if m.optin {
                flags.push(b"optin");
                if t.caching {
                    flags.push(b"caching-yes");
                }
            }
            if m.optout {
                flags.push(b"optout");
                if t.caching {
                    flags.push(b"caching-no");
                }
            }
            if m.noloop {
                flags.push(b"noloop");
            }
            if ctx.shared.tracking.broken(ctx.conn.id) {
                flags.push(b"broken_redirect");
            }
            let prefixes = if m.bcast {
                ctx.shared.tracking.prefixes_of(ctx.conn.id)
            } else {
                Vec::new()
            };
            (m.redirect as i64, prefixes)
        }
    };
    encode::map_len(ctx.out, 3, r3);
    encode::bulk(ctx.out, b"flags");
    encode::set_len(ctx.out, flags.len(), r3);
    for f in flags {
        encode::bulk(ctx.out, f);
    }
    encode::bulk(ctx.out, b"redirect");
    encode::integer(ctx.out, redirect);
    encode::bulk(ctx.out, b"prefixes");
    encode::array_len(ctx.out, prefixes.len());
    for p in prefixes {
        encode::bulk(ctx.out, &p);
    }
}

/// Before a command runs: a tracking client's read remembers its keys (the `EVAL`
/// family's are remembered only when the script reads, see [`script_read`]).
pub fn before_run(ctx: &Ctx<'_>, spec: &Spec, args: &[Bytes]) {
    let Some(t) = ctx.conn.tracking.as_ref() else {
        return;
    };
    if !spec.is(Flags::READONLY) || !t.remembers() || matches!(spec.name, "eval_ro" | "evalsha_ro")
    {
        return;
    }
    let keys = super::admit::key_positions(spec, args).filter_map(|i| args.get(i));
    ctx.shared
        .tracking
        .remember(ctx.conn.id, keys.map(|k| &k[..]));
}

/// A script of a tracking client called a read-only command: the script's declared
/// keys are remembered, as Redis does.
pub fn script_read(shared: &Shared, caller: &Conn, keys: &[Bytes]) {
    if caller.tracking.as_ref().is_some_and(|t| t.remembers()) {
        shared
            .tracking
            .remember(caller.id, keys.iter().map(|k| &k[..]));
    }
}

/// After a client's command: `CACHING` lasts one command (or one transaction), BCAST
/// changes go out, and waiting invalidations follow the reply.
pub fn after_command(ctx: &mut Ctx<'_>, spec_name: &str) {
    if let Some(t) = ctx.conn.tracking.as_mut() {
        if ctx.conn.multi.is_none() && spec_name != "client" {
            t.caching = false;
        }
    }
    ctx.shared.tracking.broadcast();
    crate::tracking::drain(&ctx.conn.info, ctx.out);
}
