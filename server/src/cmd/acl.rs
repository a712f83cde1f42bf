//! `ACL SETUSER|GETUSER|DELUSER|USERS|LIST|WHOAMI|CAT|LOG|GENPASS|DRYRUN|SAVE|LOAD|HELP`.
//!
//! `SETUSER`, `DELUSER` and `LOAD` are replicated writes in a cluster (see
//! `Spec::kind_of`): they run on every replica as the log applies them, so every node
//! holds the same users. `LOAD` reads the ACL file of the node that received it, before
//! it is proposed ([`prepare_load`]), and the record carries the file's text.

use std::io::Read as _;

use bytes::Bytes;
use sessiond_protocol::encode;

use super::admit::{acl_check, Refusal};
use super::table::{acl_entry, acl_ids, Cats, CATEGORIES};
use super::{lookup, printable, sub_syntax_error, unknown_subcommand, Ctx};

pub fn acl(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let sub = args[1].to_ascii_lowercase();
    let n = args.len();
    match sub.as_slice() {
        b"setuser" if n >= 3 => setuser(ctx, args),
        b"getuser" if n == 3 => getuser(ctx, &args[2]),
        b"deluser" if n >= 3 => deluser(ctx, &args[2..]),
        b"users" if n == 2 => {
            let names = ctx.shared.users.names();
            encode::array_len(ctx.out, names.len());
            for name in names {
                ctx.bulk(name.as_bytes());
            }
        }
        b"list" if n == 2 => {
            let lines = ctx.shared.users.list();
            encode::array_len(ctx.out, lines.len());
            for l in lines {
                ctx.bulk(l.as_bytes());
            }
        }
        b"whoami" if n == 2 => match ctx.conn.user.clone() {
            Some(u) => ctx.bulk(u.name.as_bytes()),
            None => ctx.bulk(b"default"),
        },
        b"cat" if n <= 3 => cat(ctx, args.get(2)),
        b"log" if n <= 3 => log(ctx, args.get(2)),
        b"genpass" if n <= 3 => genpass(ctx, args.get(2)),
        b"dryrun" if n >= 4 => dryrun(ctx, args),
        b"save" if n == 2 => save(ctx),
        b"load" if n == 2 => load(ctx),
        // A replica applying the ACL LOAD that another node read: the text is in the record.
        b"load" if n == 3 && ctx.conn.replica => replace_users(ctx, "ACL LOAD", &args[2]),
        b"help" if n == 2 => super::help_reply(ctx.out, HELP),
        b"setuser" | b"getuser" | b"deluser" | b"users" | b"list" | b"whoami" | b"cat" | b"log"
        | b"genpass" | b"dryrun" | b"save" | b"load" | b"help" => {
            sub_syntax_error(ctx.out, "acl", &args[1])
        }
        _ => unknown_subcommand(ctx.out, "ACL", &args[1]),
    }
}

const HELP: &[&[u8]] = &[
    b"ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CAT [<category>]",
    b"    List all commands that belong to <category>, or all command categories",
    b"    when no category is specified.",
    b"DELUSER <username> [<username> ...]",
    b"    Delete a list of users.",
    b"DRYRUN <username> <command> [<arg> ...]",
    b"    Returns whether the user can execute the given command without executing the command.",
    b"GETUSER <username>",
    b"    Get the user's details.",
    b"GENPASS [<bits>]",
    b"    Generate a secure 256-bit user password. The optional `bits` argument can",
    b"    be used to specify a different size.",
    b"LIST",
    b"    Show users details in config file format.",
    b"LOAD",
    b"    Reload users from the ACL file.",
    b"LOG [<count> | RESET]",
    b"    Show the ACL log entries.",
    b"SAVE",
    b"    Save the current config to the ACL file.",
    b"SETUSER <username> <attribute> [<attribute> ...]",
    b"    Create or modify a user with the specified attributes.",
    b"USERS",
    b"    List all the registered usernames.",
    b"WHOAMI",
    b"    Return the current connection username.",
    b"HELP",
    b"    Print this help.",
];

fn setuser(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Ok(name) = std::str::from_utf8(&args[2]) else {
        ctx.err(b"ERR Usernames can't contain spaces or null characters");
        return;
    };
    if name.is_empty() || name.contains([' ', '\0']) {
        ctx.err(b"ERR Usernames can't contain spaces or null characters");
        return;
    }
    let rules: Vec<String> = args[3..]
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect();
    match ctx.shared.users.set_user(name, &rules) {
        Ok(()) => ctx.ok(),
        Err(e) => ctx.err(format!("ERR {e}").as_bytes()),
    }
}

fn getuser(ctx: &mut Ctx<'_>, name: &[u8]) {
    let Some(u) = ctx.shared.users.get_bytes(name) else {
        ctx.null();
        return;
    };
    let r3 = ctx.resp3();
    encode::map_len(ctx.out, 6, r3);
    ctx.bulk(b"flags");
    let flags = u.flags();
    encode::set_len(ctx.out, flags.len(), ctx.resp3());
    for f in flags {
        ctx.bulk(f.as_bytes());
    }
    ctx.bulk(b"passwords");
    let hashes = u.password_hashes();
    encode::array_len(ctx.out, hashes.len());
    for h in hashes {
        ctx.bulk(h.as_bytes());
    }
    for (field, value) in [
        ("commands", u.command_rules()),
        ("keys", u.key_rules()),
        ("channels", u.channel_rules()),
    ] {
        ctx.bulk(field.as_bytes());
        ctx.bulk(value.as_bytes());
    }
    ctx.bulk(b"selectors");
    encode::array_len(ctx.out, 0);
}

fn deluser(ctx: &mut Ctx<'_>, names: &[Bytes]) {
    let names: Vec<String> = names
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    match ctx.shared.users.delete(&refs) {
        Ok(n) => ctx.int(n as i64),
        Err(e) => ctx.err(format!("ERR {e}").as_bytes()),
    }
}

fn cat(ctx: &mut Ctx<'_>, which: Option<&Bytes>) {
    let Some(which) = which else {
        encode::array_len(ctx.out, CATEGORIES.len());
        for c in CATEGORIES {
            ctx.bulk(c.as_bytes());
        }
        return;
    };
    let Some(c) = std::str::from_utf8(which).ok().and_then(Cats::named) else {
        let msg = format!("ERR Unknown category '{}'", printable(which, 128));
        ctx.err(msg.as_bytes());
        return;
    };
    let names: Vec<String> = (0..acl_ids())
        .map(acl_entry)
        .filter(|(_, cats)| cats.has(c))
        .map(|(n, _)| n)
        .collect();
    encode::array_len(ctx.out, names.len());
    for n in names {
        ctx.bulk(n.as_bytes());
    }
}

fn log(ctx: &mut Ctx<'_>, arg: Option<&Bytes>) {
    let count = match arg {
        None => 10,
        Some(a) if a.eq_ignore_ascii_case(b"reset") => {
            ctx.shared.users.log.reset();
            ctx.ok();
            return;
        }
        // Redis lists nothing for a negative count.
        Some(a) => match super::parse_i64(a) {
            Some(n) => n.max(0) as usize,
            None => {
                ctx.err(super::ERR_NOT_INT);
                return;
            }
        },
    };
    let entries = ctx.shared.users.log.newest(count);
    let r3 = ctx.resp3();
    let now = ctx.now;
    encode::array_len(ctx.out, entries.len());
    for e in entries {
        encode::map_len(ctx.out, 10, r3);
        ctx.bulk(b"count");
        ctx.int(e.count as i64);
        for (k, v) in [
            ("reason", e.reason.to_string()),
            ("context", e.context.to_string()),
            ("object", e.object.clone()),
            ("username", e.username.clone()),
        ] {
            ctx.bulk(k.as_bytes());
            ctx.bulk(v.as_bytes());
        }
        ctx.bulk(b"age-seconds");
        let age = now.saturating_sub(e.created_ms) as f64 / 1000.0;
        encode::double(ctx.out, age, r3);
        ctx.bulk(b"client-info");
        ctx.bulk(e.client_info.as_bytes());
        ctx.bulk(b"entry-id");
        ctx.int(e.entry_id as i64);
        ctx.bulk(b"timestamp-created");
        ctx.int(e.created_ms as i64);
        ctx.bulk(b"timestamp-last-updated");
        ctx.int(e.updated_ms as i64);
    }
}

fn genpass(ctx: &mut Ctx<'_>, bits: Option<&Bytes>) {
    let bits = match bits.map(|b| super::parse_i64(b)) {
        None => 256,
        Some(Some(b)) if (1..=4096).contains(&b) => b as usize,
        Some(None) => {
            ctx.err(super::ERR_NOT_INT);
            return;
        }
        Some(Some(_)) => {
            ctx.err(b"ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096");
            return;
        }
    };
    let chars = bits.div_ceil(4);
    let mut raw = vec![0u8; chars.div_ceil(2)];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut raw));
    if read.is_err() {
        ctx.err(b"ERR could not read random bytes");
        return;
    }
    let mut hex = crate::acl::user::hex(&raw);
    hex.truncate(chars);
    ctx.bulk(hex.as_bytes());
}

fn dryrun(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let Some(user) = ctx.shared.users.get_bytes(&args[2]) else {
        let msg = format!("ERR User '{}' not found", printable(&args[2], 128));
        ctx.err(msg.as_bytes());
        return;
    };
    let cmd = &args[3..];
    let Some(spec) = lookup(&cmd[0]) else {
        let msg = format!("ERR Command '{}' not found", printable(&cmd[0], 128));
        ctx.err(msg.as_bytes());
        return;
    };
    if !spec.arity_ok(cmd.len()) {
        Refusal::Arity(spec.name.into()).reply(ctx.out, cmd);
        return;
    }
    match acl_check(&user, spec, cmd) {
        None => ctx.ok(),
        Some(d) => ctx.bulk(d.dryrun().as_bytes()),
    }
}

const NO_FILE: &[u8] = b"ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn save(ctx: &mut Ctx<'_>) {
    let Some(path) = ctx.shared.config.aclfile.clone() else {
        ctx.err(NO_FILE);
        return;
    };
    let mut text = ctx.shared.users.list().join("\n");
    text.push('\n');
    let tmp = format!("{path}.tmp-{}", std::process::id());
    let res = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path));
    match res {
        Ok(()) => ctx.ok(),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            ctx.err(format!("ERR There was an error trying to save the ACLs. Please check the server logs for more information ({e})").as_bytes());
        }
    }
}

fn load(ctx: &mut Ctx<'_>) {
    match read_acl_file(ctx.shared) {
        Ok((path, text)) => replace_users(ctx, &path, text.as_bytes()),
        Err(e) => ctx.err(&e),
    }
}

fn read_acl_file(shared: &crate::server::Shared) -> Result<(String, String), Vec<u8>> {
    let Some(path) = shared.config.aclfile.clone() else {
        return Err(NO_FILE.to_vec());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((path, text)),
        Err(e) => Err(format!("ERR {path}: {e}").into_bytes()),
    }
}

/// Replace every user with those `text` (an ACL file) defines, or change nothing.
fn replace_users(ctx: &mut Ctx<'_>, path: &str, text: &[u8]) {
    let parsed = std::str::from_utf8(text)
        .map_err(|_| format!("{path}: not UTF-8"))
        .and_then(|t| crate::acl::parse_acl_file(t).map_err(|e| format!("{path}:{e}")));
    match parsed {
        Ok(users) => {
            ctx.shared.users.replace(users);
            ctx.ok();
        }
        Err(e) => ctx.err(format!("ERR {e}").as_bytes()),
    }
}

/// `ACL LOAD`, as a client sends it.
pub fn is_load(args: &[Bytes]) -> bool {
    args.len() == 2 && args[0].eq_ignore_ascii_case(b"acl") && args[1].eq_ignore_ascii_case(b"load")
}

/// In a cluster, `ACL LOAD` is read here, on the node that received it, and checked;
/// the file's text goes in the record, so every replica loads the same users. Other
/// commands pass unchanged. An error is the reply, and nothing is proposed.
pub fn prepare_load(shared: &crate::server::Shared, args: &mut Vec<Bytes>) -> Result<(), Vec<u8>> {
    if !is_load(args) {
        return Ok(());
    }
    let (path, text) = read_acl_file(shared)?;
    if let Err(e) = crate::acl::parse_acl_file(&text) {
        return Err(format!("ERR {path}:{e}").into_bytes());
    }
    args.push(Bytes::from(text));
    Ok(())
}
