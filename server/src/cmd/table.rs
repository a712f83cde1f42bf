//! The command table: every command's arity, flags, key positions and documentation,
//! with the typed flag and ACL category bitsets that admission and `COMMAND` read.
//!
//! Each command is exactly one of: a replicated write (`WRITE`), a read (`READONLY`), or
//! a local command named in [`LOCAL`]; `tests::every_command_has_one_kind` holds the
//! table to it, so a command cannot silently stop replicating.

use std::sync::OnceLock;

use hashbrown::HashMap;

use super::{
    acl, cluster, connection, databases, dump, hashes, hfe, info, keys, pubsub, scripting, server,
    sets, strings, transactions, zalgebra, zranges, zsets, Handler,
};

/// Redis's command flags, as a bitset (`COMMAND INFO` prints their names).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(u32);

macro_rules! flag_consts {
    ($($name:ident = $bit:expr, $text:literal;)*) => {
        impl Flags {
            $(pub const $name: Flags = Flags(1 << $bit);)*
            /// Every flag with its name, in `COMMAND INFO`'s order.
            pub const NAMES: &'static [(Flags, &'static str)] = &[$((Flags::$name, $text)),*];
        }
    };
}

flag_consts! {
    WRITE = 0, "write";
    READONLY = 1, "readonly";
    DENYOOM = 2, "denyoom";
    ADMIN = 3, "admin";
    PUBSUB = 4, "pubsub";
    NOSCRIPT = 5, "noscript";
    LOADING = 6, "loading";
    STALE = 7, "stale";
    SKIP_SLOWLOG = 8, "skip_slowlog";
    FAST = 9, "fast";
    NO_AUTH = 10, "no_auth";
    ALLOW_BUSY = 11, "allow_busy";
    NO_MULTI = 12, "no_multi";
    MAY_REPLICATE = 13, "may_replicate";
    NO_MANDATORY_KEYS = 14, "no_mandatory_keys";
    SKIP_MONITOR = 15, "skip_monitor";
    MOVABLE_KEYS = 16, "movablekeys";
}

impl Flags {
    pub const NONE: Flags = Flags(0);

    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    pub const fn has(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES
            .iter()
            .filter(move |(f, _)| self.has(*f))
            .map(|(_, n)| *n)
    }
}

/// Redis's ACL categories, as a bitset.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Cats(pub u32);

/// The categories, in `ACL CAT`'s order.
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

impl Cats {
    pub const ALL: Cats = Cats((1 << CATEGORIES.len() as u32) - 1);

    pub fn named(name: &str) -> Option<Cats> {
        CATEGORIES
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
            .map(|i| Cats(1 << i))
    }

    fn of(names: &[&str]) -> Cats {
        Cats(
            names
                .iter()
                .filter_map(|n| Cats::named(n))
                .fold(0, |a, c| a | c.0),
        )
    }

    pub fn has(self, c: Cats) -> bool {
        self.0 & c.0 != 0
    }

    pub fn names(self) -> impl Iterator<Item = &'static str> {
        CATEGORIES
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
    }
}

/// A command's static description, as `COMMAND INFO` and `COMMAND DOCS` report it.
pub struct Spec {
    pub name: &'static str,
    /// Redis convention: positive = exact argc, negative = at least -arity.
    pub arity: i32,
    pub flags: Flags,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    /// Private to `cmd`: a handler runs only through an [`super::admit::Admitted`].
    pub(super) run: Handler,
}

/// How a command is handled in a cluster (and what admission asks of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Changes the data: replicated through raft.
    Write,
    /// Reads the data: waits for a read barrier in a cluster.
    Read,
    /// Neither: runs on the node that received it (see [`LOCAL`]).
    Local,
}

/// The commands that neither read nor write the keyspace, named one by one.
pub const LOCAL: &[&str] = &[
    "script",
    "ping",
    "echo",
    "quit",
    "hello",
    "auth",
    "select",
    "client",
    "reset",
    "command",
    "config",
    "info",
    "time",
    "lastsave",
    "slowlog",
    "shutdown",
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch",
    "subscribe",
    "psubscribe",
    "unsubscribe",
    "punsubscribe",
    "pubsub",
    "role",
    "cluster",
    "sentinel",
    "raft.info",
    "raft.node",
    "raft.transfer-leader",
    "raft.snapshot",
    "acl",
    "monitor",
];

/// Redis's arity rule: exactly `arity` arguments, or at least `-arity` when negative.
fn arity_fits(arity: i32, argc: usize) -> bool {
    if arity >= 0 {
        argc == arity as usize
    } else {
        argc >= arity.unsigned_abs() as usize
    }
}

impl Spec {
    pub fn arity_ok(&self, argc: usize) -> bool {
        arity_fits(self.arity, argc)
    }

    pub fn is(&self, flag: Flags) -> bool {
        self.flags.has(flag)
    }

    pub fn kind(&self) -> Kind {
        // MAY_REPLICATE: scripts, which may write (they run on every replica).
        if self.is(Flags::WRITE) || self.is(Flags::MAY_REPLICATE) {
            Kind::Write
        } else if self.is(Flags::READONLY) {
            Kind::Read
        } else {
            Kind::Local
        }
    }

    /// The kind of this call: `ACL SETUSER` and `ACL DELUSER` change replicated state,
    /// though `ACL` is otherwise local.
    pub fn kind_of(&self, args: &[bytes::Bytes]) -> Kind {
        if self.name == "acl"
            && args.get(1).is_some_and(|s| {
                s.eq_ignore_ascii_case(b"setuser")
                    || s.eq_ignore_ascii_case(b"deluser")
                    || s.eq_ignore_ascii_case(b"load")
            })
        {
            return Kind::Write;
        }
        // Every node's script cache is replicated state: what EVALSHA finds everywhere.
        if self.name == "script"
            && args.get(1).is_some_and(|s| {
                s.eq_ignore_ascii_case(b"load") || s.eq_ignore_ascii_case(b"flush")
            })
        {
            return Kind::Write;
        }
        self.kind()
    }

    /// This command's index in [`COMMANDS`] (its ACL id).
    pub fn id(&self) -> usize {
        // The table is a static slice: the address gives the index.
        let base = COMMANDS.as_ptr() as usize;
        (self as *const Spec as usize - base) / std::mem::size_of::<Spec>()
    }

    /// Its ACL categories, as Redis 7 gives them: implied by the flags, by the family, and
    /// a few named in Redis's command table.
    pub fn cats(&self) -> Cats {
        let mut c = Vec::new();
        // PUBLISH carries `write` so that a cluster replicates it; it is not @write.
        if self.is(Flags::WRITE) && self.name != "publish" {
            c.push("write");
        }
        if self.is(Flags::READONLY) {
            c.push("read");
        }
        if self.is(Flags::ADMIN) {
            c.extend(["admin", "dangerous"]);
        }
        if self.is(Flags::PUBSUB) {
            c.push("pubsub");
        }
        c.push(if self.is(Flags::FAST) { "fast" } else { "slow" });
        c.push(match self.group {
            "string" => "string",
            "hash" => "hash",
            "set" => "set",
            "sorted-set" => "sortedset",
            "generic" => "keyspace",
            "connection" => "connection",
            "transactions" => "transaction",
            "scripting" => "scripting",
            _ => "",
        });
        c.extend(match self.name {
            "dbsize" => &["keyspace"][..],
            "flushdb" | "flushall" => &["keyspace", "dangerous"][..],
            "keys" | "info" => &["dangerous"][..],
            "lastsave" | "role" => &["admin", "dangerous"][..],
            "command" => &["connection"][..],
            "client" => &["slow"][..],
            _ => &[][..],
        });
        let mut cats = Cats::of(&c);
        if self.name == "client" {
            cats = Cats::of(&["slow"]);
        }
        cats
    }
}

/// A subcommand of a container command, as Redis 7.0's table has it.
#[derive(Debug, Clone, Copy)]
pub struct Sub {
    pub parent: &'static str,
    pub name: &'static str,
    /// Counted from the container's name, as Redis counts it (`config|get` is -3).
    pub arity: i16,
    /// `@admin @dangerous` on top of the parent's categories.
    pub admin: bool,
}

/// The container commands: each has subcommands of its own, which admission looks up
/// and checks for arity, and the ACL treats one by one (`+config|get`).
pub const CONTAINERS: &[&str] = &[
    "acl", "client", "cluster", "command", "config", "memory", "object", "pubsub", "script",
    "slowlog",
];

/// One [`Sub`] row: parent, name, arity, admin.
macro_rules! sub {
    ($parent:literal, $name:literal, $arity:expr, $admin:expr) => {
        Sub {
            parent: $parent,
            name: $name,
            arity: $arity,
            admin: $admin,
        }
    };
}

/// Every subcommand of the [`CONTAINERS`]. Their ACL ids follow [`COMMANDS`].
pub const SUBCOMMANDS: &[Sub] = &[
    sub!("acl", "cat", -2, false),
    sub!("acl", "deluser", -3, true),
    sub!("acl", "dryrun", -4, true),
    sub!("acl", "genpass", -2, false),
    sub!("acl", "getuser", 3, true),
    sub!("acl", "help", 2, false),
    sub!("acl", "list", 2, true),
    sub!("acl", "load", 2, true),
    sub!("acl", "log", -2, true),
    sub!("acl", "save", 2, true),
    sub!("acl", "setuser", -3, true),
    sub!("acl", "users", 2, true),
    sub!("acl", "whoami", 2, false),
    sub!("client", "caching", 3, false),
    sub!("client", "getname", 2, false),
    sub!("client", "getredir", 2, false),
    sub!("client", "help", 2, false),
    sub!("client", "id", 2, false),
    sub!("client", "info", 2, false),
    sub!("client", "kill", -3, true),
    sub!("client", "list", -2, true),
    sub!("client", "no-evict", 3, true),
    sub!("client", "no-touch", 3, false),
    sub!("client", "pause", -3, true),
    sub!("client", "reply", 3, false),
    sub!("client", "setinfo", 4, false),
    sub!("client", "setname", 3, false),
    sub!("client", "tracking", -3, false),
    sub!("client", "trackinginfo", 2, false),
    sub!("client", "unpause", 2, true),
    sub!("cluster", "help", 2, false),
    sub!("cluster", "info", 2, false),
    sub!("cluster", "keyslot", 3, false),
    sub!("cluster", "myid", 2, false),
    sub!("cluster", "nodes", 2, false),
    sub!("cluster", "shards", 2, false),
    sub!("cluster", "slots", 2, false),
    sub!("command", "count", 2, false),
    sub!("command", "docs", -2, false),
    sub!("command", "getkeys", -4, false),
    sub!("command", "help", 2, false),
    sub!("command", "info", -2, false),
    sub!("command", "list", -2, false),
    sub!("config", "get", -3, true),
    sub!("config", "help", 2, false),
    sub!("config", "resetstat", 2, true),
    sub!("config", "rewrite", 2, true),
    sub!("config", "set", -4, true),
    sub!("memory", "help", 2, false),
    sub!("memory", "usage", -3, false),
    sub!("object", "encoding", 3, false),
    sub!("object", "freq", 3, false),
    sub!("object", "help", 2, false),
    sub!("object", "idletime", 3, false),
    sub!("object", "refcount", 3, false),
    sub!("pubsub", "channels", -2, false),
    sub!("pubsub", "help", 2, false),
    sub!("pubsub", "numpat", 2, false),
    sub!("pubsub", "numsub", -2, false),
    sub!("pubsub", "shardchannels", -2, false),
    sub!("pubsub", "shardnumsub", -2, false),
    sub!("script", "exists", -3, false),
    sub!("script", "flush", -2, false),
    sub!("script", "help", 2, false),
    sub!("script", "kill", 2, false),
    sub!("script", "load", 3, false),
    sub!("slowlog", "get", -2, true),
    sub!("slowlog", "help", 2, false),
    sub!("slowlog", "len", 2, true),
    sub!("slowlog", "reset", 2, true),
];

/// The subcommand a container command names: `None` for a command that is not a
/// container or has no subcommand argument; `Some(Err(()))` for a name it does not know.
pub fn subcommand(spec: &Spec, args: &[bytes::Bytes]) -> Option<Result<(usize, &'static Sub), ()>> {
    // Every command passes here (admission, ACL ids): one indexed load, not a search.
    static IS_CONTAINER: OnceLock<Vec<bool>> = OnceLock::new();
    let is = IS_CONTAINER.get_or_init(|| {
        COMMANDS
            .iter()
            .map(|c| CONTAINERS.contains(&c.name))
            .collect()
    });
    if !is.get(spec.id()).copied().unwrap_or(false) {
        return None;
    }
    let sub = args.get(1)?;
    Some(
        SUBCOMMANDS
            .iter()
            .enumerate()
            .find(|(_, s)| s.parent == spec.name && s.name.as_bytes().eq_ignore_ascii_case(sub))
            .ok_or(()),
    )
}

impl Sub {
    pub fn arity_ok(&self, argc: usize) -> bool {
        arity_fits(i32::from(self.arity), argc)
    }

    /// `config|get`.
    pub fn full_name(&self) -> String {
        format!("{}|{}", self.parent, self.name)
    }
}

/// How many ACL ids there are: commands, then [`SUBCOMMANDS`].
pub fn acl_ids() -> usize {
    COMMANDS.len() + SUBCOMMANDS.len()
}

/// The ACL id of a command as called: its subcommand's, for a container that has one.
pub fn acl_id(spec: &Spec, args: &[bytes::Bytes]) -> usize {
    match subcommand(spec, args) {
        Some(Ok((i, _))) => COMMANDS.len() + i,
        _ => spec.id(),
    }
}

/// The name (`config|get`) and categories of an ACL id.
pub fn acl_entry(id: usize) -> (String, Cats) {
    match COMMANDS.get(id) {
        Some(s) => (s.name.to_string(), s.cats()),
        None => {
            let Sub {
                parent,
                name: sub,
                admin,
                ..
            } = SUBCOMMANDS[id - COMMANDS.len()];
            let p = lookup(parent.as_bytes()).map_or(Cats::default(), Spec::cats);
            let mut c = Cats(p.0 & !(Cats::of(&["admin", "dangerous"]).0));
            if admin {
                c = Cats(c.0 | Cats::of(&["admin", "dangerous"]).0);
            }
            if parent == "client" {
                c = Cats(c.0 | Cats::of(&["connection"]).0);
            }
            (format!("{parent}|{sub}"), c)
        }
    }
}

macro_rules! spec {
    ($name:literal, $arity:expr, [$($flag:ident),*], $fk:expr, $lk:expr, $step:expr, $group:literal, $since:literal, $summary:literal, $run:path) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: Flags::NONE$(.with(Flags::$flag))*,
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
    spec!("ping", -1, [FAST, STALE, LOADING], 0, 0, 0, "connection", "1.0.0", "Returns the server's liveliness response.", connection::ping),
    spec!("echo", 2, [FAST, STALE, LOADING], 0, 0, 0, "connection", "1.0.0", "Returns the given string.", connection::echo),
    spec!("quit", -1, [FAST, STALE, LOADING, NOSCRIPT, ALLOW_BUSY, NO_AUTH], 0, 0, 0, "connection", "1.0.0", "Closes the connection.", connection::quit),
    spec!("hello", -1, [NOSCRIPT, LOADING, STALE, FAST, NO_AUTH, ALLOW_BUSY], 0, 0, 0, "connection", "6.0.0", "Handshakes with the Redis server.", connection::hello),
    spec!("auth", -2, [NOSCRIPT, LOADING, STALE, FAST, NO_AUTH, ALLOW_BUSY], 0, 0, 0, "connection", "1.0.0", "Authenticates the connection.", connection::auth),
    spec!("select", 2, [LOADING, STALE, FAST], 0, 0, 0, "connection", "1.0.0", "Changes the selected database.", databases::select),
    spec!("client", -2, [], 0, 0, 0, "connection", "2.4.0", "A container for client connection commands.", connection::client),
    spec!("reset", 1, [NOSCRIPT, LOADING, STALE, FAST, NO_AUTH, ALLOW_BUSY], 0, 0, 0, "connection", "6.2.0", "Resets the connection.", connection::reset),
    // server
    spec!("command", -1, [LOADING, STALE], 0, 0, 0, "server", "2.8.13", "Returns detailed information about all commands.", server::command),
    spec!("config", -2, [], 0, 0, 0, "server", "2.0.0", "A container for server configuration commands.", server::config),
    spec!("info", -1, [LOADING, STALE], 0, 0, 0, "server", "1.0.0", "Returns information and statistics about the server.", info::info),
    spec!("dbsize", 1, [READONLY, FAST], 0, 0, 0, "server", "1.0.0", "Returns the number of keys in the database.", server::dbsize),
    spec!("flushdb", -1, [WRITE], 0, 0, 0, "server", "1.0.0", "Removes all keys from the current database.", server::flushdb),
    spec!("flushall", -1, [WRITE], 0, 0, 0, "server", "1.0.0", "Removes all keys from all databases.", databases::flushall),
    spec!("swapdb", 3, [WRITE, FAST], 0, 0, 0, "server", "4.0.0", "Swaps two Redis databases.", databases::swapdb),
    spec!("time", 1, [LOADING, STALE, FAST], 0, 0, 0, "server", "2.6.0", "Returns the server time.", server::time),
    spec!("lastsave", 1, [LOADING, STALE, FAST], 0, 0, 0, "server", "1.0.0", "Returns the Unix timestamp of the last successful save to disk.", server::lastsave),
    spec!("slowlog", -2, [ADMIN, LOADING, STALE], 0, 0, 0, "server", "2.2.12", "A container for slow log commands.", server::slowlog),
    spec!("monitor", 1, [ADMIN, NOSCRIPT, LOADING, STALE], 0, 0, 0, "server", "1.0.0", "Listens for all requests received by the server in real-time.", server::monitor),
    spec!("shutdown", -1, [ADMIN, NOSCRIPT, LOADING, STALE, NO_MULTI, ALLOW_BUSY], 0, 0, 0, "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server.", server::shutdown),
    // strings
    spec!("get", 2, [READONLY, FAST], 1, 1, 1, "string", "1.0.0", "Returns the string value of a key.", strings::get),
    spec!("set", -3, [WRITE, DENYOOM], 1, 1, 1, "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", strings::set),
    spec!("setex", 4, [WRITE, DENYOOM], 1, 1, 1, "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", strings::setex),
    spec!("psetex", 4, [WRITE, DENYOOM], 1, 1, 1, "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", strings::psetex),
    spec!("setnx", 3, [WRITE, DENYOOM, FAST], 1, 1, 1, "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.", strings::setnx),
    spec!("getex", -2, [WRITE, FAST], 1, 1, 1, "string", "6.2.0", "Returns the string value of a key after setting its expiration time.", strings::getex),
    spec!("getdel", 2, [WRITE, FAST], 1, 1, 1, "string", "6.2.0", "Returns the string value of a key after deleting the key.", strings::getdel),
    spec!("getset", 3, [WRITE, DENYOOM, FAST], 1, 1, 1, "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.", strings::getset),
    spec!("mget", -2, [READONLY, FAST], 1, -1, 1, "string", "1.0.0", "Atomically returns the string values of one or more keys.", strings::mget),
    spec!("mset", -3, [WRITE, DENYOOM], 1, -1, 2, "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.", strings::mset),
    spec!("msetnx", -3, [WRITE, DENYOOM], 1, -1, 2, "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", strings::msetnx),
    spec!("strlen", 2, [READONLY, FAST], 1, 1, 1, "string", "2.2.0", "Returns the length of a string value.", strings::strlen),
    spec!("append", 3, [WRITE, DENYOOM, FAST], 1, 1, 1, "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", strings::append),
    spec!("incrbyfloat", 3, [WRITE, DENYOOM, FAST], 1, 1, 1, "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", strings::incrbyfloat),
    spec!("getrange", 4, [READONLY], 1, 1, 1, "string", "2.4.0", "Returns a substring of the string stored at a key.", strings::getrange),
    spec!("substr", 4, [READONLY], 1, 1, 1, "string", "1.0.0", "Returns a substring from a string value.", strings::getrange),
    spec!("setrange", 4, [WRITE, DENYOOM], 1, 1, 1, "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", strings::setrange),
    spec!("incr", 2, [WRITE, DENYOOM, FAST], 1, 1, 1, "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", strings::incr),
    spec!("incrby", 3, [WRITE, DENYOOM, FAST], 1, 1, 1, "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", strings::incrby),
    spec!("decr", 2, [WRITE, DENYOOM, FAST], 1, 1, 1, "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", strings::decr),
    spec!("decrby", 3, [WRITE, DENYOOM, FAST], 1, 1, 1, "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", strings::decrby),
    // keys
    spec!("del", -2, [WRITE], 1, -1, 1, "generic", "1.0.0", "Deletes one or more keys.", keys::del),
    spec!("move", 3, [WRITE, FAST], 1, 1, 1, "generic", "1.0.0", "Moves a key to another database.", databases::move_key),
    spec!("unlink", -2, [WRITE, FAST], 1, -1, 1, "generic", "4.0.0", "Asynchronously deletes one or more keys.", keys::del),
    spec!("exists", -2, [READONLY, FAST], 1, -1, 1, "generic", "1.0.0", "Determines whether one or more keys exist.", keys::exists),
    spec!("touch", -2, [READONLY, FAST], 1, -1, 1, "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", keys::exists),
    spec!("type", 2, [READONLY, FAST], 1, 1, 1, "generic", "1.0.0", "Determines the type of value stored at a key.", keys::type_),
    spec!("rename", 3, [WRITE], 1, 2, 1, "generic", "1.0.0", "Renames a key and overwrites the destination.", keys::rename),
    spec!("renamenx", 3, [WRITE, FAST], 1, 2, 1, "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", keys::renamenx),
    spec!("expire", -3, [WRITE, FAST], 1, 1, 1, "generic", "1.0.0", "Sets the expiration time of a key in seconds.", keys::expire),
    spec!("pexpire", -3, [WRITE, FAST], 1, 1, 1, "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.", keys::pexpire),
    spec!("expireat", -3, [WRITE, FAST], 1, 1, 1, "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", keys::expireat),
    spec!("pexpireat", -3, [WRITE, FAST], 1, 1, 1, "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", keys::pexpireat),
    spec!("ttl", 2, [READONLY, FAST], 1, 1, 1, "generic", "1.0.0", "Returns the expiration time in seconds of a key.", keys::ttl),
    spec!("pttl", 2, [READONLY, FAST], 1, 1, 1, "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.", keys::pttl),
    spec!("expiretime", 2, [READONLY, FAST], 1, 1, 1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", keys::expiretime),
    spec!("pexpiretime", 2, [READONLY, FAST], 1, 1, 1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", keys::pexpiretime),
    spec!("persist", 2, [WRITE, FAST], 1, 1, 1, "generic", "2.2.0", "Removes the expiration time of a key.", keys::persist),
    spec!("copy", -3, [WRITE, DENYOOM], 1, 2, 1, "generic", "6.2.0", "Copies the value of a key to a new key.", keys::copy),
    spec!("randomkey", 1, [READONLY], 0, 0, 0, "generic", "1.0.0", "Returns a random key name from the database.", keys::randomkey),
    spec!("object", -2, [READONLY], 2, 2, 1, "generic", "2.2.3", "A container for object introspection commands.", keys::object),
    spec!("memory", -2, [READONLY], 0, 0, 0, "server", "4.0.0", "A container for memory diagnostics commands.", keys::memory),
    spec!("keys", 2, [READONLY], 0, 0, 0, "generic", "1.0.0", "Returns all key names that match a pattern.", keys::keys),
    spec!("scan", -2, [READONLY], 0, 0, 0, "generic", "2.8.0", "Iterates over the key names in the database.", keys::scan),
    // hashes
    spec!("hset", -4, [WRITE, DENYOOM, FAST], 1, 1, 1, "hash", "2.0.0", "Creates or modifies the value of a field in a hash.", hashes::hset),
    spec!("hmset", -4, [WRITE, DENYOOM, FAST], 1, 1, 1, "hash", "2.0.0", "Sets the values of multiple fields.", hashes::hmset),
    spec!("hsetnx", 4, [WRITE, DENYOOM, FAST], 1, 1, 1, "hash", "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist.", hashes::hsetnx),
    spec!("hget", 3, [READONLY, FAST], 1, 1, 1, "hash", "2.0.0", "Returns the value of a field in a hash.", hashes::hget),
    spec!("hmget", -3, [READONLY, FAST], 1, 1, 1, "hash", "2.0.0", "Returns the values of all fields in a hash.", hashes::hmget),
    spec!("hgetall", 2, [READONLY], 1, 1, 1, "hash", "2.0.0", "Returns all fields and values in a hash.", hashes::hgetall),
    spec!("hdel", -3, [WRITE, FAST], 1, 1, 1, "hash", "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", hashes::hdel),
    spec!("hexists", 3, [READONLY, FAST], 1, 1, 1, "hash", "2.0.0", "Determines whether a field exists in a hash.", hashes::hexists),
    spec!("hlen", 2, [READONLY, FAST], 1, 1, 1, "hash", "2.0.0", "Returns the number of fields in a hash.", hashes::hlen),
    spec!("hstrlen", 3, [READONLY, FAST], 1, 1, 1, "hash", "3.2.0", "Returns the length of the value of a field.", hashes::hstrlen),
    spec!("hincrby", 4, [WRITE, DENYOOM, FAST], 1, 1, 1, "hash", "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", hashes::hincrby),
    spec!("hincrbyfloat", 4, [WRITE, DENYOOM, FAST], 1, 1, 1, "hash", "2.6.0", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", hashes::hincrbyfloat),
    spec!("hrandfield", -2, [READONLY], 1, 1, 1, "hash", "6.2.0", "Returns one or more random fields from a hash.", hashes::hrandfield),
    spec!("hexpire", -6, [WRITE, FAST], 1, 1, 1, "hash", "7.4.0", "Set expiry for hash field using relative time to expire (seconds)", hfe::hexpire),
    spec!("hpexpire", -6, [WRITE, FAST], 1, 1, 1, "hash", "7.4.0", "Set expiry for hash field using relative time to expire (milliseconds)", hfe::hpexpire),
    spec!("hexpireat", -6, [WRITE, FAST], 1, 1, 1, "hash", "7.4.0", "Set expiry for hash field using an absolute Unix timestamp (seconds)", hfe::hexpireat),
    spec!("hpexpireat", -6, [WRITE, FAST], 1, 1, 1, "hash", "7.4.0", "Set expiry for hash field using an absolute Unix timestamp (milliseconds)", hfe::hpexpireat),
    spec!("httl", -5, [READONLY, FAST], 1, 1, 1, "hash", "7.4.0", "Returns the TTL in seconds of a hash field.", hfe::httl),
    spec!("hpttl", -5, [READONLY, FAST], 1, 1, 1, "hash", "7.4.0", "Returns the TTL in milliseconds of a hash field.", hfe::hpttl),
    spec!("hexpiretime", -5, [READONLY, FAST], 1, 1, 1, "hash", "7.4.0", "Returns the expiration time of a hash field as a Unix timestamp, in seconds.", hfe::hexpiretime),
    spec!("hpexpiretime", -5, [READONLY, FAST], 1, 1, 1, "hash", "7.4.0", "Returns the expiration time of a hash field as a Unix timestamp, in msec.", hfe::hpexpiretime),
    spec!("hpersist", -5, [WRITE, FAST], 1, 1, 1, "hash", "7.4.0", "Removes the expiration time for each specified field", hfe::hpersist),
    spec!("hscan", -3, [READONLY], 1, 1, 1, "hash", "2.8.0", "Iterates over fields and values of a hash.", hashes::hscan),
    // set
    spec!("sadd", -3, [WRITE, DENYOOM, FAST], 1, 1, 1, "set", "1.0.0", "Add one or more members to a set", sets::sadd),
    spec!("srem", -3, [WRITE, FAST], 1, 1, 1, "set", "1.0.0", "Remove one or more members from a set", sets::srem),
    spec!("smembers", 2, [READONLY], 1, 1, 1, "set", "1.0.0", "Get all the members in a set", sets::smembers),
    spec!("sismember", 3, [READONLY, FAST], 1, 1, 1, "set", "1.0.0", "Determine if a given value is a member of a set", sets::sismember),
    spec!("smismember", -3, [READONLY, FAST], 1, 1, 1, "set", "6.2.0", "Returns the membership associated with the given elements for a set", sets::smismember),
    spec!("scard", 2, [READONLY, FAST], 1, 1, 1, "set", "1.0.0", "Get the number of members in a set", sets::scard),
    spec!("spop", -2, [WRITE, FAST], 1, 1, 1, "set", "1.0.0", "Remove and return one or multiple random members from a set", sets::spop),
    spec!("srandmember", -2, [READONLY], 1, 1, 1, "set", "1.0.0", "Get one or multiple random members from a set", sets::srandmember),
    spec!("smove", 4, [WRITE, FAST], 1, 2, 1, "set", "1.0.0", "Move a member from one set to another", sets::smove),
    spec!("sinter", -2, [READONLY], 1, -1, 1, "set", "1.0.0", "Intersect multiple sets", sets::sinter),
    spec!("sunion", -2, [READONLY], 1, -1, 1, "set", "1.0.0", "Add multiple sets", sets::sunion),
    spec!("sdiff", -2, [READONLY], 1, -1, 1, "set", "1.0.0", "Subtract multiple sets", sets::sdiff),
    spec!("sinterstore", -3, [WRITE, DENYOOM], 1, -1, 1, "set", "1.0.0", "Intersect multiple sets and store the resulting set in a key", sets::sinterstore),
    spec!("sunionstore", -3, [WRITE, DENYOOM], 1, -1, 1, "set", "1.0.0", "Add multiple sets and store the resulting set in a key", sets::sunionstore),
    spec!("sdiffstore", -3, [WRITE, DENYOOM], 1, -1, 1, "set", "1.0.0", "Subtract multiple sets and store the resulting set in a key", sets::sdiffstore),
    spec!("sintercard", -3, [READONLY, MOVABLE_KEYS], 0, 0, 0, "set", "7.0.0", "Intersect multiple sets and return the cardinality of the result", sets::sintercard),
    spec!("sscan", -3, [READONLY], 1, 1, 1, "set", "2.8.0", "Incrementally iterate Set elements", sets::sscan),
    // sorted-set
    spec!("zadd", -4, [WRITE, DENYOOM, FAST], 1, 1, 1, "sorted-set", "1.2.0", "Add one or more members to a sorted set, or update its score if it already exists", zsets::zadd),
    spec!("zincrby", 4, [WRITE, DENYOOM, FAST], 1, 1, 1, "sorted-set", "1.2.0", "Increment the score of a member in a sorted set", zsets::zincrby),
    spec!("zrem", -3, [WRITE, FAST], 1, 1, 1, "sorted-set", "1.2.0", "Remove one or more members from a sorted set", zsets::zrem),
    spec!("zscore", 3, [READONLY, FAST], 1, 1, 1, "sorted-set", "1.2.0", "Get the score associated with the given member in a sorted set", zsets::zscore),
    spec!("zmscore", -3, [READONLY, FAST], 1, 1, 1, "sorted-set", "6.2.0", "Get the score associated with the given members in a sorted set", zsets::zmscore),
    spec!("zcard", 2, [READONLY, FAST], 1, 1, 1, "sorted-set", "1.2.0", "Get the number of members in a sorted set", zsets::zcard),
    spec!("zcount", 4, [READONLY, FAST], 1, 1, 1, "sorted-set", "2.0.0", "Count the members in a sorted set with scores within the given values", zranges::zcount),
    spec!("zlexcount", 4, [READONLY, FAST], 1, 1, 1, "sorted-set", "2.8.9", "Count the number of members in a sorted set between a given lexicographical range", zranges::zlexcount),
    spec!("zrange", -4, [READONLY], 1, 1, 1, "sorted-set", "1.2.0", "Return a range of members in a sorted set", zranges::zrange),
    spec!("zrevrange", -4, [READONLY], 1, 1, 1, "sorted-set", "1.2.0", "Return a range of members in a sorted set, by index, with scores ordered from high to low", zranges::zrevrange),
    spec!("zrangebyscore", -4, [READONLY], 1, 1, 1, "sorted-set", "1.0.5", "Return a range of members in a sorted set, by score", zranges::zrangebyscore),
    spec!("zrevrangebyscore", -4, [READONLY], 1, 1, 1, "sorted-set", "2.2.0", "Return a range of members in a sorted set, by score, with scores ordered from high to low", zranges::zrevrangebyscore),
    spec!("zrangebylex", -4, [READONLY], 1, 1, 1, "sorted-set", "2.8.9", "Return a range of members in a sorted set, by lexicographical range", zranges::zrangebylex),
    spec!("zrevrangebylex", -4, [READONLY], 1, 1, 1, "sorted-set", "2.8.9", "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.", zranges::zrevrangebylex),
    spec!("zrangestore", -5, [WRITE, DENYOOM], 1, 2, 1, "sorted-set", "6.2.0", "Store a range of members from sorted set into another key", zranges::zrangestore),
    spec!("zrank", -3, [READONLY, FAST], 1, 1, 1, "sorted-set", "2.0.0", "Determine the index of a member in a sorted set", zsets::zrank),
    spec!("zrevrank", -3, [READONLY, FAST], 1, 1, 1, "sorted-set", "2.0.0", "Determine the index of a member in a sorted set, with scores ordered from high to low", zsets::zrevrank),
    spec!("zremrangebyscore", 4, [WRITE], 1, 1, 1, "sorted-set", "1.2.0", "Remove all members in a sorted set within the given scores", zranges::zremrangebyscore),
    spec!("zremrangebyrank", 4, [WRITE], 1, 1, 1, "sorted-set", "2.0.0", "Remove all members in a sorted set within the given indexes", zranges::zremrangebyrank),
    spec!("zremrangebylex", 4, [WRITE], 1, 1, 1, "sorted-set", "2.8.9", "Remove all members in a sorted set between the given lexicographical range", zranges::zremrangebylex),
    spec!("zpopmin", -2, [WRITE, FAST], 1, 1, 1, "sorted-set", "5.0.0", "Remove and return members with the lowest scores in a sorted set", zsets::zpopmin),
    spec!("zpopmax", -2, [WRITE, FAST], 1, 1, 1, "sorted-set", "5.0.0", "Remove and return members with the highest scores in a sorted set", zsets::zpopmax),
    spec!("zmpop", -4, [WRITE, MOVABLE_KEYS], 0, 0, 0, "sorted-set", "7.0.0", "Remove and return members with scores in a sorted set", zsets::zmpop),
    spec!("zrandmember", -2, [READONLY], 1, 1, 1, "sorted-set", "6.2.0", "Get one or multiple random elements from a sorted set", zsets::zrandmember),
    spec!("zscan", -3, [READONLY], 1, 1, 1, "sorted-set", "2.8.0", "Incrementally iterate sorted sets elements and associated scores", zsets::zscan),
    spec!("zunionstore", -4, [WRITE, DENYOOM, MOVABLE_KEYS], 1, 1, 1, "sorted-set", "2.0.0", "Add multiple sorted sets and store the resulting sorted set in a new key", zalgebra::zunionstore),
    spec!("zinterstore", -4, [WRITE, DENYOOM, MOVABLE_KEYS], 1, 1, 1, "sorted-set", "2.0.0", "Intersect multiple sorted sets and store the resulting sorted set in a new key", zalgebra::zinterstore),
    spec!("zdiffstore", -4, [WRITE, DENYOOM, MOVABLE_KEYS], 1, 1, 1, "sorted-set", "6.2.0", "Subtract multiple sorted sets and store the resulting sorted set in a new key", zalgebra::zdiffstore),
    spec!("zunion", -3, [READONLY, MOVABLE_KEYS], 0, 0, 0, "sorted-set", "6.2.0", "Add multiple sorted sets", zalgebra::zunion),
    spec!("zinter", -3, [READONLY, MOVABLE_KEYS], 0, 0, 0, "sorted-set", "6.2.0", "Intersect multiple sorted sets", zalgebra::zinter),
    spec!("zdiff", -3, [READONLY, MOVABLE_KEYS], 0, 0, 0, "sorted-set", "6.2.0", "Subtract multiple sorted sets", zalgebra::zdiff),
    spec!("zintercard", -3, [READONLY, MOVABLE_KEYS], 0, 0, 0, "sorted-set", "7.0.0", "Intersect multiple sorted sets and return the cardinality of the result", zalgebra::zintercard),
    spec!("hkeys", 2, [READONLY], 1, 1, 1, "hash", "2.0.0", "Returns all fields in a hash.", hashes::hkeys),
    spec!("hvals", 2, [READONLY], 1, 1, 1, "hash", "2.0.0", "Returns all values in a hash.", hashes::hvals),
    // transactions
    spec!("dump", 2, [READONLY], 1, 1, 1, "generic", "2.6.0", "Returns a serialized representation of the value stored at a key.", dump::dump),
    spec!("restore", -4, [WRITE, DENYOOM], 1, 1, 1, "generic", "2.6.0", "Creates a key from the serialized representation of a value.", dump::restore),
    spec!("eval", -3, [NOSCRIPT, SKIP_MONITOR, MAY_REPLICATE, NO_MANDATORY_KEYS, STALE, MOVABLE_KEYS], 0, 0, 0, "scripting", "2.6.0", "Executes a server-side Lua script.", scripting::eval),
    spec!("evalsha", -3, [NOSCRIPT, SKIP_MONITOR, MAY_REPLICATE, NO_MANDATORY_KEYS, STALE, MOVABLE_KEYS], 0, 0, 0, "scripting", "2.6.0", "Executes a server-side Lua script by SHA1 digest.", scripting::evalsha),
    spec!("eval_ro", -3, [NOSCRIPT, SKIP_MONITOR, NO_MANDATORY_KEYS, STALE, READONLY, MOVABLE_KEYS], 0, 0, 0, "scripting", "7.0.0", "Executes a read-only server-side Lua script.", scripting::eval_ro),
    spec!("evalsha_ro", -3, [NOSCRIPT, SKIP_MONITOR, NO_MANDATORY_KEYS, STALE, READONLY, MOVABLE_KEYS], 0, 0, 0, "scripting", "7.0.0", "Executes a read-only server-side Lua script by SHA1 digest.", scripting::evalsha_ro),
    spec!("script", -2, [], 0, 0, 0, "scripting", "2.6.0", "A container for Lua scripts management commands.", scripting::script),
    spec!("multi", 1, [NOSCRIPT, LOADING, STALE, FAST, ALLOW_BUSY], 0, 0, 0, "transactions", "1.2.0", "Starts a transaction.", transactions::multi),
    spec!("exec", 1, [NOSCRIPT, LOADING, STALE, SKIP_SLOWLOG], 0, 0, 0, "transactions", "1.2.0", "Executes all commands in a transaction.", transactions::exec),
    spec!("discard", 1, [NOSCRIPT, LOADING, STALE, FAST, ALLOW_BUSY], 0, 0, 0, "transactions", "2.0.0", "Discards a transaction.", transactions::discard),
    spec!("watch", -2, [NOSCRIPT, LOADING, STALE, FAST, ALLOW_BUSY], 1, -1, 1, "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction.", transactions::watch),
    // pub/sub (PUBLISH is a write so that a cluster replicates it to every node)
    spec!("subscribe", -2, [PUBSUB, NOSCRIPT, LOADING, STALE], 0, 0, 0, "pubsub", "2.0.0", "Listens for messages published to channels.", pubsub::subscribe),
    spec!("psubscribe", -2, [PUBSUB, NOSCRIPT, LOADING, STALE], 0, 0, 0, "pubsub", "2.0.0", "Listens for messages published to channels that match one or more patterns.", pubsub::psubscribe),
    spec!("unsubscribe", -1, [PUBSUB, NOSCRIPT, LOADING, STALE], 0, 0, 0, "pubsub", "2.0.0", "Stops listening to messages posted to channels.", pubsub::unsubscribe),
    spec!("punsubscribe", -1, [PUBSUB, NOSCRIPT, LOADING, STALE], 0, 0, 0, "pubsub", "2.0.0", "Stops listening to messages published to channels that match one or more patterns.", pubsub::punsubscribe),
    spec!("publish", 3, [PUBSUB, LOADING, STALE, FAST, WRITE], 0, 0, 0, "pubsub", "2.0.0", "Posts a message to a channel.", pubsub::publish),
    spec!("pubsub", -2, [PUBSUB, LOADING, STALE], 0, 0, 0, "pubsub", "2.8.0", "A container for Pub/Sub commands.", pubsub::pubsub),
    // cluster
    spec!("role", 1, [NOSCRIPT, LOADING, STALE, FAST], 0, 0, 0, "server", "2.8.12", "Returns the replication role.", cluster::role),
    spec!("cluster", -2, [], 0, 0, 0, "cluster", "3.0.0", "A container for Redis Cluster commands.", cluster::cluster),
    spec!("sentinel", -2, [ADMIN, LOADING, STALE], 0, 0, 0, "sentinel", "2.8.4", "Sentinel queries: every cluster node answers for the master 'mymaster', the raft leader.", cluster::sentinel),
    spec!("raft.info", 1, [LOADING, STALE, FAST], 0, 0, 0, "raft", "0.1.0", "Returns the state of this node's raft group.", cluster::raft_info),
    spec!("raft.node", -3, [ADMIN, NOSCRIPT], 0, 0, 0, "raft", "0.1.0", "Adds (ADD id host:raftport) or removes (REMOVE id) a cluster member.", cluster::raft_admin),
    spec!("raft.transfer-leader", 2, [ADMIN, NOSCRIPT], 0, 0, 0, "raft", "0.1.0", "Hands leadership to another voter.", cluster::raft_admin),
    spec!("raft.snapshot", 1, [ADMIN, NOSCRIPT], 0, 0, 0, "raft", "0.1.0", "Takes a snapshot now and compacts the log.", cluster::raft_admin),
    spec!("acl", -2, [], 0, 0, 0, "server", "6.0.0", "A container for Access List Control commands.", acl::acl),
    spec!("unwatch", 1, [NOSCRIPT, LOADING, STALE, FAST, ALLOW_BUSY], 0, 0, 0, "transactions", "2.2.0", "Forgets about watched keys of a transaction.", transactions::unwatch),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        assert!(lookup(b"GET").is_some());
        assert!(lookup(b"gEt").is_some());
        assert!(lookup(b"nope").is_none());
        let mut names: Vec<_> = COMMANDS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len());
        for (i, s) in COMMANDS.iter().enumerate() {
            assert_eq!(s.id(), i);
        }
    }

    /// Every command is exactly one of: a replicated write (`write`, or `may_replicate`
    /// for scripts), a read, or a local command on the explicit list. A write that lost
    /// its flag would stop replicating; a local command that gained one would start.
    #[test]
    fn every_command_has_one_kind() {
        for s in COMMANDS {
            let write = s.is(Flags::WRITE) || s.is(Flags::MAY_REPLICATE);
            let read = s.is(Flags::READONLY);
            let local = LOCAL.contains(&s.name);
            assert_eq!(
                u8::from(write) + u8::from(read) + u8::from(local),
                1,
                "{} must be exactly one of write, read, local",
                s.name
            );
        }
        for name in LOCAL {
            assert!(lookup(name.as_bytes()).is_some(), "{name} is not a command");
        }
        assert_eq!(lookup(b"set").map(Spec::kind), Some(Kind::Write));
        assert_eq!(lookup(b"get").map(Spec::kind), Some(Kind::Read));
        assert_eq!(lookup(b"ping").map(Spec::kind), Some(Kind::Local));
        assert_eq!(lookup(b"eval").map(Spec::kind), Some(Kind::Write));
        assert_eq!(lookup(b"eval_ro").map(Spec::kind), Some(Kind::Read));
    }

    /// CONTAINERS is every parent in SUBCOMMANDS, and each subcommand's arity passes its
    /// container's.
    #[test]
    fn containers_are_the_subcommand_parents() {
        let mut parents: Vec<&str> = SUBCOMMANDS.iter().map(|s| s.parent).collect();
        parents.dedup();
        assert_eq!(parents, CONTAINERS);
        for s in SUBCOMMANDS {
            let spec = lookup(s.parent.as_bytes()).expect("a container is a command");
            assert!(
                spec.arity_ok(s.arity.unsigned_abs().into()),
                "{}",
                s.full_name()
            );
        }
    }

    /// Categories as `COMMAND INFO` on redis-server 7.0 lists them, for a sample.
    #[test]
    fn categories_follow_redis() {
        let cats = |n: &str| {
            let mut v: Vec<_> = lookup(n.as_bytes()).expect(n).cats().names().collect();
            v.sort_unstable();
            v.join(" ")
        };
        assert_eq!(cats("get"), "fast read string");
        assert_eq!(cats("set"), "slow string write");
        assert_eq!(cats("del"), "keyspace slow write");
        assert_eq!(cats("flushall"), "dangerous keyspace slow write");
        assert_eq!(cats("keys"), "dangerous keyspace read slow");
        assert_eq!(cats("publish"), "fast pubsub");
        assert_eq!(cats("hgetall"), "hash read slow");
        assert_eq!(cats("shutdown"), "admin dangerous slow");
        assert_eq!(cats("multi"), "fast transaction");
        assert_eq!(cats("ping"), "connection fast");
        let (name, c) = acl_entry(COMMANDS.len());
        assert_eq!(name, "acl|cat");
        assert!(!c.has(Cats::named("admin").expect("admin")));
        let config_get = SUBCOMMANDS
            .iter()
            .position(|e| e.parent == "config" && e.name == "get")
            .expect("config|get");
        assert!(acl_entry(COMMANDS.len() + config_get)
            .1
            .has(Cats::named("admin").expect("admin")));
    }
}
