//! Admission: the one place that decides whether a command may run. It covers lookup
//! and arity, `MULTI`'s rules, authentication, the user's ACL (commands, keys,
//! channels), `-OOM`, and subscribed mode, in Redis's order, and returns an
//! [`Admitted`] token. A handler runs only through a token ([`Admitted::run`]; `Spec`'s
//! handler is private to `cmd`), so every path is checked the same way: single-node
//! dispatch, each command of a cluster connection's write batch, queued commands
//! again at `EXEC`, and every command a replica applies from the log.

use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use sessiond_protocol::encode;

use super::table::{acl_entry, acl_id, Flags, Spec};
use super::{lookup, unknown_command, wrong_arity, Ctx};
use crate::acl::User;
use crate::connection::Conn;
use crate::server::Shared;

/// Proof that a command passed admission; the only way to run its handler.
pub struct Admitted {
    spec: &'static Spec,
}

impl Admitted {
    pub fn spec(&self) -> &'static Spec {
        self.spec
    }

    pub fn run(&self, ctx: &mut Ctx<'_>, args: &[Bytes]) {
        super::tracking::before_run(ctx, self.spec, args);
        (self.spec.run)(ctx, args)
    }
}

/// Why a command may not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    /// The command's name as the error gives it (`get`, `config|get`).
    Arity(String),
    /// An error reply, without its `-`.
    Error(String),
    /// Subscribed mode's refusal: not a failure of a transaction.
    Context(String),
}

impl Refusal {
    pub fn reply(&self, out: &mut BytesMut, args: &[Bytes]) {
        match self {
            Refusal::Unknown => unknown_command(out, args),
            Refusal::Arity(name) => wrong_arity(out, name),
            Refusal::Error(e) | Refusal::Context(e) => encode::error(out, e.as_bytes()),
        }
    }
}

/// What the ACL refused, as `ACL LOG` and `ACL DRYRUN` name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    Command(String),
    Key(Bytes),
    Channel(Bytes),
}

impl Denial {
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::Command(_) => "command",
            Denial::Key(_) => "key",
            Denial::Channel(_) => "channel",
        }
    }

    pub fn object(&self) -> String {
        match self {
            Denial::Command(c) => c.clone(),
            Denial::Key(k) | Denial::Channel(k) => String::from_utf8_lossy(k).into_owned(),
        }
    }

    /// The `-NOPERM` text a client gets (Redis 7.2's words).
    pub fn noperm(&self, user: &str) -> String {
        match self {
            Denial::Command(c) => {
                format!("NOPERM User {user} has no permissions to run the '{c}' command")
            }
            Denial::Key(_) => "NOPERM No permissions to access a key".into(),
            Denial::Channel(_) => "NOPERM No permissions to access a channel".into(),
        }
    }

    /// `ACL DRYRUN`'s text.
    pub fn dryrun(&self) -> String {
        match self {
            Denial::Command(c) => format!("This user has no permissions to run the '{c}' command"),
            Denial::Key(_) | Denial::Channel(_) => format!(
                "This user has no permissions to access the '{}' {}",
                self.object(),
                self.reason()
            ),
        }
    }
}

/// The argument positions of a command's keys.
pub fn key_positions(spec: &Spec, args: &[Bytes]) -> impl Iterator<Item = usize> {
    let argc = args.len();
    let (mut first, mut last_key) = (spec.first_key, spec.last_key);
    // MEMORY USAGE names its key after the subcommand.
    if spec.name == "memory"
        && args
            .get(1)
            .is_some_and(|s| s.eq_ignore_ascii_case(b"usage"))
    {
        (first, last_key) = (2, 2);
    }
    // The EVAL family and the set algebra name their keys with `numkeys`; the STORE
    // forms of the sorted-set algebra name their destination first.
    let mut dest = None;
    let numbered = match spec.name {
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" => Some(super::scripting::eval_keys(args)),
        "sintercard" | "zunion" | "zinter" | "zdiff" | "zintercard" | "zmpop" => {
            Some(super::collection::numkeys(args, 1).unwrap_or(0..0))
        }
        "zunionstore" | "zinterstore" | "zdiffstore" => {
            dest = (argc > 1).then_some(1);
            Some(super::collection::numkeys(args, 2).unwrap_or(0..0))
        }
        _ => None,
    };
    if let Some(keys) = numbered {
        (first, last_key) = if keys.is_empty() {
            (0, 0)
        } else {
            (keys.start as i32, keys.end as i32 - 1)
        };
    }
    let step = spec.step.max(1);
    let last = if last_key < 0 {
        argc as i32 + last_key
    } else {
        last_key.min(argc as i32 - 1)
    };
    let n = if first > 0 && last >= first {
        ((last - first) / step + 1) as usize
    } else {
        0
    };
    dest.into_iter()
        .chain((0..n).map(move |i| (first + i as i32 * step) as usize))
}

/// Whether a key at `pos` is read (Redis's `ACCESS` key flag), written, or both.
fn key_access(spec: &Spec, pos: usize) -> (bool, bool) {
    // The sources of a STORE command are only read.
    if pos != 1
        && matches!(
            spec.name,
            "sinterstore"
                | "sunionstore"
                | "sdiffstore"
                | "zunionstore"
                | "zinterstore"
                | "zdiffstore"
                | "zrangestore"
        )
    {
        return (true, false);
    }
    let write = spec.is(Flags::WRITE);
    let read = spec.is(Flags::READONLY)
        || matches!(
            spec.name,
            "getset"
                | "getdel"
                | "getex"
                | "incr"
                | "incrby"
                | "decr"
                | "decrby"
                | "incrbyfloat"
                | "hincrby"
                | "hincrbyfloat"
                | "setrange"
                | "spop"
                | "zpopmin"
                | "zpopmax"
        )
        || (spec.name == "smove" && pos == 1)
        || (matches!(spec.name, "rename" | "renamenx" | "copy") && pos == 1);
    (read, write)
}

/// What `user` may not do in this command, if anything.
pub fn acl_check(user: &User, spec: &Spec, args: &[Bytes]) -> Option<Denial> {
    if user.unrestricted() {
        return None;
    }
    let id = acl_id(spec, args);
    if !user.allows_id(id) {
        return Some(Denial::Command(acl_entry(id).0));
    }
    if !user.all_keys {
        for pos in key_positions(spec, args) {
            let (r, w) = key_access(spec, pos);
            if !user.key_ok(&args[pos], r, w) {
                return Some(Denial::Key(args[pos].clone()));
            }
        }
    }
    if !user.all_channels {
        let (channels, literal) = match spec.name {
            "publish" => (&args[1..2], false),
            "subscribe" => (&args[1..], false),
            "psubscribe" => (&args[1..], true),
            _ => (&args[..0], false),
        };
        if let Some(c) = channels.iter().find(|c| !user.channel_ok(c, literal)) {
            return Some(Denial::Channel(c.clone()));
        }
    }
    None
}

/// Admit a command from a client (see the module docs). A refusal inside `MULTI` marks
/// the transaction failed, as Redis does; a refused `EXEC` aborts it.
pub fn admit(conn: &mut Conn, shared: &Shared, args: &[Bytes]) -> Result<Admitted, Refusal> {
    conn.refresh_user(shared);
    let r = checks(conn, shared, args).map_err(|(refusal, denial)| {
        if let Some(d) = denial {
            let ctx = if conn.multi.is_some() {
                "multi"
            } else {
                "toplevel"
            };
            log_denial(shared, conn, &d, ctx);
        }
        refusal
    });
    if let Err(e) = &r {
        let in_multi = conn.multi.is_some();
        let exec = lookup(&args[0]).is_some_and(|s| s.name == "exec");
        match e {
            // Redis answers any refused EXEC, in MULTI or not, with EXECABORT.
            Refusal::Arity(name) if exec => {
                conn.end_multi();
                return Err(Refusal::Error(format!(
                    "EXECABORT Transaction discarded because of: wrong number of arguments for '{name}' command"
                )));
            }
            Refusal::Error(text) if exec => {
                conn.end_multi();
                let why = text.trim_start_matches("ERR ");
                return Err(Refusal::Error(format!(
                    "EXECABORT Transaction discarded because of: {why}"
                )));
            }
            Refusal::Context(_) => {}
            _ if in_multi => conn.multi_failed = true,
            _ => {}
        }
    }
    r
}

/// Whether [`admit`] would admit the command, without its side effects (no `ACL LOG`
/// entry, no mark on a transaction): for looking ahead in a pipeline.
pub fn admissible(conn: &Conn, shared: &Shared, args: &[Bytes]) -> Option<Admitted> {
    if conn.acl_version != shared.users.version() {
        return None;
    }
    checks(conn, shared, args).ok()
}

fn checks(
    conn: &Conn,
    shared: &Shared,
    args: &[Bytes],
) -> Result<Admitted, (Refusal, Option<Denial>)> {
    let plain = |r: Refusal| (r, None);
    let spec = lookup_checked(args, true).map_err(plain)?;
    let error = |e: &str| plain(Refusal::Error(e.into()));
    if conn.multi.is_some() && spec.is(Flags::NO_MULTI) {
        return Err(error("ERR Command not allowed inside a transaction"));
    }
    let Some(user) = conn.user.as_deref() else {
        if spec.is(Flags::NO_AUTH) {
            return Ok(Admitted { spec });
        }
        return Err(error("NOAUTH Authentication required."));
    };
    if let Some(d) = acl_check(user, spec, args) {
        return Err((Refusal::Error(d.noperm(&user.name)), Some(d)));
    }
    if shared.oom.load(Ordering::Relaxed) && refused_on_oom(conn, spec) {
        return Err(error(
            "OOM command not allowed when used memory > 'maxmemory'.",
        ));
    }
    if conn.sub.is_some()
        && !conn.resp3
        && !matches!(
            spec.name,
            "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "ping" | "quit" | "reset"
        )
    {
        return Err(plain(Refusal::Context(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        ))));
    }
    Ok(Admitted { spec })
}

/// Redis's rule: a `denyoom` command; inside `MULTI` anything but `EXEC`, `DISCARD`,
/// `QUIT` and `RESET` (queueing takes memory); and `EXEC` of a queue holding a
/// `denyoom` command.
fn refused_on_oom(conn: &Conn, spec: &Spec) -> bool {
    if spec.is(Flags::DENYOOM) {
        return true;
    }
    let Some(queue) = &conn.multi else {
        return false;
    };
    match spec.name {
        "exec" => queue
            .iter()
            .any(|a| lookup(&a[0]).is_some_and(|s| s.is(Flags::DENYOOM))),
        "discard" | "quit" | "reset" => false,
        _ => true,
    }
}

fn log_denial(shared: &Shared, conn: &Conn, d: &Denial, context: &'static str) {
    let now = crate::clock::now_ms();
    let user = conn
        .user
        .as_ref()
        .map_or("default".into(), |u| u.name.clone());
    shared.users.log.add(
        d.reason(),
        context,
        d.object(),
        user,
        conn.info.line(now),
        now,
    );
}

/// The command (looked up, arity checked) and the connection's user.
/// Lookup and arity, Redis's first checks: the command, then its subcommand if it is a
/// container (an unknown subcommand, or the wrong number of arguments for it, is refused
/// here, before authentication, as Redis refuses it).
fn lookup_checked(args: &[Bytes], subcommands: bool) -> Result<&'static Spec, Refusal> {
    let spec = lookup(&args[0]).ok_or(Refusal::Unknown)?;
    if !spec.arity_ok(args.len()) {
        return Err(Refusal::Arity(spec.name.into()));
    }
    if !subcommands {
        return Ok(spec);
    }
    match super::table::subcommand(spec, args) {
        Some(Err(())) => Err(Refusal::Error(format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            super::printable(&args[1], 128),
            spec.name.to_ascii_uppercase()
        ))),
        Some(Ok((_, sub))) if !sub.arity_ok(args.len()) => Err(Refusal::Arity(sub.full_name())),
        _ => Ok(spec),
    }
}

fn known<'c>(conn: &'c Conn, args: &[Bytes]) -> Result<(&'static Spec, Option<&'c User>), Refusal> {
    // A replica applies what the log holds: the proposing node checked the subcommand
    // (and `ACL LOAD` carries the file it read, one argument more than a client sends).
    Ok((lookup_checked(args, !conn.replica)?, conn.user.as_deref()))
}

/// Admit a queued command again at `EXEC`: the rules may have changed since it was
/// queued (Redis checks again too). Lookup and arity passed when it was queued.
pub fn admit_queued(conn: &Conn, shared: &Shared, args: &[Bytes]) -> Result<Admitted, Refusal> {
    let (spec, user) = match known(conn, args)? {
        (spec, _) if conn.trusted => return Ok(Admitted { spec }),
        (spec, Some(user)) => (spec, user),
        (_, None) => return Err(Refusal::Error("NOAUTH Authentication required.".into())),
    };
    match acl_check(user, spec, args) {
        None => Ok(Admitted { spec }),
        Some(d) => {
            if !conn.replica {
                log_denial(shared, conn, &d, "multi");
            }
            Err(Refusal::Error(format!(
                "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {}",
                d.noperm(&user.name).trim_start_matches("NOPERM ")
            )))
        }
    }
}

/// Admit a command a replica applies from the log. The proposing node admitted it
/// already; the ACL is checked again here against the replicated users, which every
/// replica holds alike at this point of the log, so all of them decide the same. Memory
/// is not checked: it differs between nodes.
pub fn admit_replicated(conn: &Conn, args: &[Bytes]) -> Result<Admitted, Refusal> {
    let (spec, user) = match known(conn, args)? {
        (spec, _) if conn.trusted => return Ok(Admitted { spec }),
        (spec, Some(user)) => (spec, user),
        (_, None) => {
            return Err(Refusal::Error(
                "NOPERM The user that sent this command no longer exists".into(),
            ))
        }
    };
    match acl_check(user, spec, args) {
        None => Ok(Admitted { spec }),
        Some(d) => Err(Refusal::Error(d.noperm(&user.name))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<Bytes> {
        s.split(' ')
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    #[test]
    fn key_positions_follow_the_table() {
        let pos = |s: &str| {
            let a = args(s);
            key_positions(lookup(&a[0]).expect("cmd"), &a).collect::<Vec<_>>()
        };
        assert_eq!(pos("get k"), vec![1]);
        assert_eq!(pos("mset a 1 b 2"), vec![1, 3]);
        assert_eq!(pos("del a b c"), vec![1, 2, 3]);
        assert_eq!(pos("rename a b"), vec![1, 2]);
        assert_eq!(pos("ping"), Vec::<usize>::new());
    }

    #[test]
    fn acl_checks_commands_keys_and_channels() {
        let mut u = User::new("app");
        u.apply_all(&[
            "on",
            "nopass",
            "~sess:*",
            "%R~pub:*",
            "&news",
            "+@all",
            "-flushall",
        ])
        .expect("valid");
        let check = |s: &str| {
            let a = args(s);
            acl_check(&u, lookup(&a[0]).expect("cmd"), &a)
        };
        assert_eq!(check("get sess:1"), None);
        assert_eq!(check("set sess:1 v"), None);
        assert_eq!(check("get pub:1"), None);
        assert_eq!(
            check("set pub:1 v"),
            Some(Denial::Key(Bytes::from_static(b"pub:1")))
        );
        assert_eq!(
            check("mset sess:1 a other b"),
            Some(Denial::Key(Bytes::from_static(b"other")))
        );
        assert_eq!(check("flushall"), Some(Denial::Command("flushall".into())));
        assert_eq!(check("publish news x"), None);
        assert_eq!(
            check("publish other x"),
            Some(Denial::Channel(Bytes::from_static(b"other")))
        );
        assert_eq!(check("psubscribe news"), None);
        assert_eq!(
            check("psubscribe n*"),
            Some(Denial::Channel(Bytes::from_static(b"n*")))
        );
        assert_eq!(
            Denial::Command("flushall".into()).noperm("app"),
            "NOPERM User app has no permissions to run the 'flushall' command"
        );
    }
}
