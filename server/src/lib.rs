//! sessiond's server: RESP over tokio, a sharded in-memory store, timing-wheel expiry.
//!
//! Module map, in the order a request travels:
//! - [`config`]: flags, environment and redis.conf-style file → [`config::Config`].
//! - [`server`]: binds nothing itself; [`server::run`] accepts on a given listener and
//!   owns the [`server::Shared`] state (store, stats, client registry).
//! - [`clients`]: what `CLIENT LIST|INFO|KILL` see of each connection.
//! - [`connection`]: per-client loop: read, decode every complete command (the
//!   `sessiond-protocol` crate), dispatch each, write all replies at once.
//! - [`park`]: what an event loop does before it blocks: under load, a short wait (found by
//!   trial in `park::adapt`) so that one wake-up serves many clients.
//! - [`replicated`]: in a cluster, how a connection sends writes through raft (the
//!   `sessiond-cluster` crate) and waits on read barriers, and [`replicated::ServerSm`],
//!   which applies committed records to the store on every replica.
//! - [`acl`]: users, passwords, ACL rules, `ACL LOG` and protected mode; [`tls`]: the TLS
//!   listener.
//! - [`cmd`]: the command table and one file per command family.
//! - [`store`]: lock-striped shards of fixed hash slots, our own prefetchable tables, compact
//!   entries; [`wheel`] is each shard's hierarchical timing wheel.
//! - [`float`]: doubles as Redis prints (`%.17g`) and parses them.
//! - [`longdouble`]: `INCRBYFLOAT`'s `long double` arithmetic, in C as Redis's.
//! - [`glob`]: Redis's glob patterns, matched without backtracking.
//! - [`pubsub`]: `SUBSCRIBE`/`PUBLISH` delivery and keyspace notifications.
//! - [`tracking`]: `CLIENT TRACKING` (client-side caching): who may cache which key, and
//!   the invalidation messages the stores' change hook sends.
//! - [`expiry`]: the thread that reclaims keys whose timers fire (in a cluster, the
//!   leader's thread proposes the deletions instead).
//! - [`maxmemory`]: eviction under `maxmemory` (in a cluster, proposed through the log)
//!   and the `-OOM` flag.
//! - [`clock`], [`mem`]: time in Unix ms; process memory and CPU figures for `INFO`.
//! - [`slowlog`]: commands slower than `slowlog-log-slower-than`; [`cmdstats`]: calls,
//!   errors and latency per command for `INFO commandstats|errorstats|latencystats`.
//! - [`monitor`]: `MONITOR`'s feed of the commands that ran.
//! - [`metrics`]: sampled rates for `INFO` and the Prometheus `/metrics` endpoint.
//! - [`runtime`]: the settings `CONFIG SET` changes while the server runs.
//! - [`script`]: Lua scripting (`EVAL`): the interpreter, its sandbox and libraries, the
//!   script cache and the script thread.
//! - [`rdb`]: Redis's value serialization, for `DUMP` and `RESTORE`.
//! - [`reader`]: a checked cursor over the byte encodings of records and snapshots.

pub mod acl;
pub mod clients;
pub mod clock;
pub mod cmd;
pub mod cmdstats;
pub mod config;
pub mod connection;
pub mod expiry;
pub mod float;
pub mod glob;
pub mod longdouble;
pub mod maxmemory;
pub mod mem;
pub mod metrics;
#[doc(hidden)]
pub mod model;
pub mod monitor;
pub mod park;
pub mod pubsub;
pub mod rdb;
pub mod reader;
pub mod replicated;
pub mod runtime;
pub mod script;
pub mod server;
pub mod slowlog;
pub mod store;
pub mod tls;
pub mod tracking;
pub mod wheel;
