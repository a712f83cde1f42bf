//! Commands: the table, argument parsing helpers, and dispatch.
//!
//! One family per file: [`connection`], [`server`], [`strings`], [`keys`], [`hashes`],
//! [`transactions`], [`pubsub`], [`cluster`]. Each handler gets a [`Ctx`] and the full argument vector (name
//! included, arity already checked), writes exactly one reply, and touches the store only
//! through `ctx.ks`, so the same handler runs alone or inside `EXEC`.

pub mod cluster;
pub mod connection;
pub mod hashes;
pub mod keys;
#[cfg(test)]
mod model_tests;
pub mod pubsub;
pub mod server;
pub mod strings;
pub mod transactions;

use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;
use sessiond_protocol::encode;

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

/// A command's static description, as `COMMAND INFO` and `COMMAND DOCS` report it.
pub struct Spec {
    pub name: &'static str,
    /// Redis convention: positive = exact argc, negative = at least -arity.
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub run: Handler,
}

impl Spec {
    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        if a >= 0 {
            argc == a as usize
        } else {
            argc >= (-a) as usize
        }
    }

    pub fn is(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }
}

macro_rules! spec {
    ($name:literal, $arity:expr, [$($flag:literal),*], $fk:expr, $lk:expr, $step:expr, $group:literal, $since:literal, $summary:literal, $run:path) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: &[$($flag),*],
            first_key: $fk,
            last_key: $lk,
            step: $step,
            group: $group,
            since: $since,
            summary: $summary,
            run: $run,
        }
    };
}

/// Every command sessiond understands.
pub static COMMANDS: &[Spec] = &[
    // connection
    spec!("ping", -1, ["fast", "stale", "loading"], 0, 0, 0, "connection", "1.0.0", "Returns the server's liveliness response.", connection::ping),
    spec!("echo", 2, ["fast", "stale", "loading"], 0, 0, 0, "connection", "1.0.0", "Returns the given string.", connection::echo),
    spec!("quit", -1, ["fast", "stale", "loading", "noscript", "allow_busy", "no_auth"], 0, 0, 0, "connection", "1.0.0", "Closes the connection.", connection::quit),
    spec!("hello", -1, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, "connection", "6.0.0", "Handshakes with the Redis server.", connection::hello),
    spec!("auth", -2, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, "connection", "1.0.0", "Authenticates the connection.", connection::auth),
    spec!("select", 2, ["loading", "stale", "fast"], 0, 0, 0, "connection", "1.0.0", "Changes the selected database.", connection::select),
    spec!("client", -2, [], 0, 0, 0, "connection", "2.4.0", "A container for client connection commands.", connection::client),
    spec!("reset", 1, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, "connection", "6.2.0", "Resets the connection.", connection::reset),
    // server
    spec!("command", -1, ["loading", "stale"], 0, 0, 0, "server", "2.8.13", "Returns detailed information about all commands.", server::command),
    spec!("config", -2, [], 0, 0, 0, "server", "2.0.0", "A container for server configuration commands.", server::config),
    spec!("info", -1, ["loading", "stale"], 0, 0, 0, "server", "1.0.0", "Returns information and statistics about the server.", server::info),
    spec!("dbsize", 1, ["readonly", "fast"], 0, 0, 0, "server", "1.0.0", "Returns the number of keys in the database.", server::dbsize),
    spec!("flushdb", -1, ["write"], 0, 0, 0, "server", "1.0.0", "Removes all keys from the current database.", server::flushdb),
    spec!("flushall", -1, ["write"], 0, 0, 0, "server", "1.0.0", "Removes all keys from all databases.", server::flushdb),
    spec!("time", 1, ["loading", "stale", "fast"], 0, 0, 0, "server", "2.6.0", "Returns the server time.", server::time),
    spec!("lastsave", 1, ["loading", "stale", "fast"], 0, 0, 0, "server", "1.0.0", "Returns the Unix timestamp of the last successful save to disk.", server::lastsave),
    spec!("slowlog", -2, ["admin", "loading", "stale"], 0, 0, 0, "server", "2.2.12", "A container for slow log commands.", server::slowlog),
    spec!("shutdown", -1, ["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"], 0, 0, 0, "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server.", server::shutdown),
    // strings
    spec!("get", 2, ["readonly", "fast"], 1, 1, 1, "string", "1.0.0", "Returns the string value of a key.", strings::get),
    spec!("set", -3, ["write", "denyoom"], 1, 1, 1, "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", strings::set),
    spec!("setex", 4, ["write", "denyoom"], 1, 1, 1, "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", strings::setex),
    spec!("psetex", 4, ["write", "denyoom"], 1, 1, 1, "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", strings::psetex),
    spec!("setnx", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.", strings::setnx),
    spec!("getex", -2, ["write", "fast"], 1, 1, 1, "string", "6.2.0", "Returns the string value of a key after setting its expiration time.", strings::getex),
    spec!("getdel", 2, ["write", "fast"], 1, 1, 1, "string", "6.2.0", "Returns the string value of a key after deleting the key.", strings::getdel),
    spec!("getset", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.", strings::getset),
    spec!("mget", -2, ["readonly", "fast"], 1, -1, 1, "string", "1.0.0", "Atomically returns the string values of one or more keys.", strings::mget),
    spec!("mset", -3, ["write", "denyoom"], 1, -1, 2, "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.", strings::mset),
    spec!("msetnx", -3, ["write", "denyoom"], 1, -1, 2, "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", strings::msetnx),
    spec!("strlen", 2, ["readonly", "fast"], 1, 1, 1, "string", "2.2.0", "Returns the length of a string value.", strings::strlen),
    spec!("append", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", strings::append),
    spec!("incr", 2, ["write", "denyoom", "fast"], 1, 1, 1, "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", strings::incr),
    spec!("incrby", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", strings::incrby),
    spec!("decr", 2, ["write", "denyoom", "fast"], 1, 1, 1, "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", strings::decr),
    spec!("decrby", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", strings::decrby),
    // keys
    spec!("del", -2, ["write"], 1, -1, 1, "generic", "1.0.0", "Deletes one or more keys.", keys::del),
    spec!("unlink", -2, ["write", "fast"], 1, -1, 1, "generic", "4.0.0", "Asynchronously deletes one or more keys.", keys::del),
    spec!("exists", -2, ["readonly", "fast"], 1, -1, 1, "generic", "1.0.0", "Determines whether one or more keys exist.", keys::exists),
    spec!("touch", -2, ["readonly", "fast"], 1, -1, 1, "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", keys::exists),
    spec!("type", 2, ["readonly", "fast"], 1, 1, 1, "generic", "1.0.0", "Determines the type of value stored at a key.", keys::type_),
    spec!("rename", 3, ["write"], 1, 2, 1, "generic", "1.0.0", "Renames a key and overwrites the destination.", keys::rename),
    spec!("renamenx", 3, ["write", "fast"], 1, 2, 1, "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", keys::renamenx),
    spec!("expire", -3, ["write", "fast"], 1, 1, 1, "generic", "1.0.0", "Sets the expiration time of a key in seconds.", keys::expire),
    spec!("pexpire", -3, ["write", "fast"], 1, 1, 1, "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.", keys::pexpire),
    spec!("expireat", -3, ["write", "fast"], 1, 1, 1, "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", keys::expireat),
    spec!("pexpireat", -3, ["write", "fast"], 1, 1, 1, "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", keys::pexpireat),
    spec!("ttl", 2, ["readonly", "fast"], 1, 1, 1, "generic", "1.0.0", "Returns the expiration time in seconds of a key.", keys::ttl),
    spec!("pttl", 2, ["readonly", "fast"], 1, 1, 1, "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.", keys::pttl),
    spec!("expiretime", 2, ["readonly", "fast"], 1, 1, 1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", keys::expiretime),
    spec!("pexpiretime", 2, ["readonly", "fast"], 1, 1, 1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", keys::pexpiretime),
    spec!("persist", 2, ["write", "fast"], 1, 1, 1, "generic", "2.2.0", "Removes the expiration time of a key.", keys::persist),
    spec!("keys", 2, ["readonly"], 0, 0, 0, "generic", "1.0.0", "Returns all key names that match a pattern.", keys::keys),
    spec!("scan", -2, ["readonly"], 0, 0, 0, "generic", "2.8.0", "Iterates over the key names in the database.", keys::scan),
    // hashes
    spec!("hset", -4, ["write", "denyoom", "fast"], 1, 1, 1, "hash", "2.0.0", "Creates or modifies the value of a field in a hash.", hashes::hset),
    spec!("hmset", -4, ["write", "denyoom", "fast"], 1, 1, 1, "hash", "2.0.0", "Sets the values of multiple fields.", hashes::hmset),
    spec!("hsetnx", 4, ["write", "denyoom", "fast"], 1, 1, 1, "hash", "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist.", hashes::hsetnx),
    spec!("hget", 3, ["readonly", "fast"], 1, 1, 1, "hash", "2.0.0", "Returns the value of a field in a hash.", hashes::hget),
    spec!("hmget", -3, ["readonly", "fast"], 1, 1, 1, "hash", "2.0.0", "Returns the values of all fields in a hash.", hashes::hmget),
    spec!("hgetall", 2, ["readonly"], 1, 1, 1, "hash", "2.0.0", "Returns all fields and values in a hash.", hashes::hgetall),
    spec!("hdel", -3, ["write", "fast"], 1, 1, 1, "hash", "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", hashes::hdel),
    spec!("hexists", 3, ["readonly", "fast"], 1, 1, 1, "hash", "2.0.0", "Determines whether a field exists in a hash.", hashes::hexists),
    spec!("hlen", 2, ["readonly", "fast"], 1, 1, 1, "hash", "2.0.0", "Returns the number of fields in a hash.", hashes::hlen),
    spec!("hstrlen", 3, ["readonly", "fast"], 1, 1, 1, "hash", "3.2.0", "Returns the length of the value of a field.", hashes::hstrlen),
    spec!("hincrby", 4, ["write", "denyoom", "fast"], 1, 1, 1, "hash", "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", hashes::hincrby),
    spec!("hkeys", 2, ["readonly"], 1, 1, 1, "hash", "2.0.0", "Returns all fields in a hash.", hashes::hkeys),
    spec!("hvals", 2, ["readonly"], 1, 1, 1, "hash", "2.0.0", "Returns all values in a hash.", hashes::hvals),
    // transactions
    spec!("multi", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, "transactions", "1.2.0", "Starts a transaction.", transactions::multi),
    spec!("exec", 1, ["noscript", "loading", "stale", "skip_slowlog"], 0, 0, 0, "transactions", "1.2.0", "Executes all commands in a transaction.", transactions::exec),
    spec!("discard", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, "transactions", "2.0.0", "Discards a transaction.", transactions::discard),
    spec!("watch", -2, ["noscript", "loading", "stale", "fast", "allow_busy"], 1, -1, 1, "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction.", transactions::watch),
    // pub/sub (PUBLISH is a write so that a cluster replicates it to every node)
    spec!("subscribe", -2, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, "pubsub", "2.0.0", "Listens for messages published to channels.", pubsub::subscribe),
    spec!("psubscribe", -2, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, "pubsub", "2.0.0", "Listens for messages published to channels that match one or more patterns.", pubsub::psubscribe),
    spec!("unsubscribe", -1, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, "pubsub", "2.0.0", "Stops listening to messages posted to channels.", pubsub::unsubscribe),
    spec!("punsubscribe", -1, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, "pubsub", "2.0.0", "Stops listening to messages published to channels that match one or more patterns.", pubsub::punsubscribe),
    spec!("publish", 3, ["pubsub", "loading", "stale", "fast", "write"], 0, 0, 0, "pubsub", "2.0.0", "Posts a message to a channel.", pubsub::publish),
    spec!("pubsub", -2, ["pubsub", "loading", "stale"], 0, 0, 0, "pubsub", "2.8.0", "A container for Pub/Sub commands.", pubsub::pubsub),
    // cluster
    spec!("role", 1, ["noscript", "loading", "stale", "fast"], 0, 0, 0, "server", "2.8.12", "Returns the replication role.", cluster::role),
    spec!("cluster", -2, [], 0, 0, 0, "cluster", "3.0.0", "A container for Redis Cluster commands.", cluster::cluster),
    spec!("sentinel", -2, ["admin", "loading", "stale"], 0, 0, 0, "sentinel", "2.8.4", "Sentinel queries: every cluster node answers for the master 'mymaster', the raft leader.", cluster::sentinel),
    spec!("raft.info", 1, ["loading", "stale", "fast"], 0, 0, 0, "raft", "0.1.0", "Returns the state of this node's raft group.", cluster::raft_info),
    spec!("raft.node", -3, ["admin", "noscript"], 0, 0, 0, "raft", "0.1.0", "Adds (ADD id host:raftport) or removes (REMOVE id) a cluster member.", cluster::raft_admin),
    spec!("raft.transfer-leader", 2, ["admin", "noscript"], 0, 0, 0, "raft", "0.1.0", "Hands leadership to another voter.", cluster::raft_admin),
    spec!("raft.snapshot", 1, ["admin", "noscript"], 0, 0, 0, "raft", "0.1.0", "Takes a snapshot now and compacts the log.", cluster::raft_admin),
    spec!("unwatch", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, "transactions", "2.2.0", "Forgets about watched keys of a transaction.", transactions::unwatch),
];

fn table() -> &'static HashMap<&'static [u8], &'static Spec> {
    static TABLE: OnceLock<HashMap<&'static [u8], &'static Spec>> = OnceLock::new();
    TABLE.get_or_init(|| COMMANDS.iter().map(|s| (s.name.as_bytes(), s)).collect())
}

/// Find a command by name, in any case.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    let mut buf = [0u8; 24];
    if name.len() > buf.len() {
        return None;
    }
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    table().get(&*lower).copied()
}

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
pub fn printable(b: &[u8], max: usize) -> String {
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

/// Wrong arity for a known subcommand (`<cmd>|<sub>` in Redis's text).
pub fn wrong_sub_arity(out: &mut BytesMut, cmd: &str, sub: &[u8]) {
    wrong_arity(out, &format!("{cmd}|{}", String::from_utf8_lossy(sub)));
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

/// Run one command from a client: checks, `MULTI` queueing, then the handler. Returns
/// whether the command was quick (O(1), Redis's `fast` flag, or rejected before it ran),
/// which lets the caller reuse its clock reading for the next command.
pub fn dispatch(ctx: &mut Ctx<'_>, args: Vec<Bytes>) -> bool {
    let Some(spec) = lookup(&args[0]) else {
        if ctx.conn.multi.is_some() {
            ctx.conn.multi_failed = true;
        }
        unknown_command(ctx.out, &args);
        return true;
    };
    if !spec.arity_ok(args.len()) {
        if ctx.conn.multi.is_some() {
            ctx.conn.multi_failed = true;
        }
        wrong_arity(ctx.out, spec.name);
        return true;
    }
    if let Some(e) = refusal(ctx.conn, ctx.shared, spec) {
        if ctx.conn.multi.is_some() {
            ctx.conn.multi_failed = true;
        }
        encode::error(ctx.out, e.as_bytes());
        return true;
    }
    ctx.conn.last_cmd = spec.name;
    if ctx.conn.sub.is_some()
        && !ctx.conn.resp3
        && !matches!(
            spec.name,
            "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "ping" | "quit" | "reset"
        )
    {
        let msg = format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        );
        encode::error(ctx.out, msg.as_bytes());
        return true;
    }
    if let Some(queue) = ctx.conn.multi.as_mut() {
        if !matches!(
            spec.name,
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        ) {
            if spec.is("no_multi") {
                ctx.conn.multi_failed = true;
                encode::error(ctx.out, b"ERR Command not allowed inside a transaction");
                return true;
            }
            queue.push(args);
            ctx.out.extend_from_slice(b"+QUEUED\r\n");
            return true;
        }
    }
    let fast = spec.is("fast");
    if ctx.shared.slowlog.times(fast) && !spec.is("skip_slowlog") {
        let t0 = std::time::Instant::now();
        (spec.run)(ctx, &args);
        let micros = t0.elapsed().as_micros() as u64;
        let info = &ctx.conn.info;
        let name = info.name.lock().clone();
        ctx.shared
            .slowlog
            .record(micros, &args, info.addr.to_string(), name);
        return false;
    }
    (spec.run)(ctx, &args);
    fast
}

/// Authentication and permissions: the error to reply when this connection may not run
/// `spec` (Redis checks these after the command name and arity).
pub fn refusal(conn: &Conn, shared: &Shared, spec: &Spec) -> Option<String> {
    let denied = match conn.user {
        None if matches!(spec.name, "auth" | "hello" | "quit" | "reset") => None,
        None => Some("NOAUTH Authentication required.".into()),
        Some(u) => shared.users.denies(u, spec),
    };
    denied.or_else(|| {
        (shared.oom.load(std::sync::atomic::Ordering::Relaxed) && spec.is("denyoom"))
            .then(|| "OOM command not allowed when used memory > 'maxmemory'.".to_string())
    })
}

// ---- argument helpers -------------------------------------------------------------

pub const ERR_SYNTAX: &[u8] = b"ERR syntax error";
pub const ERR_NOT_INT: &[u8] = b"ERR value is not an integer or out of range";
pub const ERR_WRONGTYPE: &[u8] =
    b"WRONGTYPE Operation against a key holding the wrong kind of value";
pub const ERR_OVERFLOW: &[u8] = b"ERR increment or decrement would overflow";

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

    #[test]
    fn table_is_consistent() {
        assert!(lookup(b"GET").is_some());
        assert!(lookup(b"gEt").is_some());
        assert!(lookup(b"nope").is_none());
        let mut names: Vec<_> = COMMANDS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len());
    }
}
