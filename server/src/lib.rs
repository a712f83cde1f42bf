//! sessiond's server: RESP over tokio, a sharded in-memory store, timing-wheel expiry.
//!
//! Module map, in the order a request travels:
//! - [`config`]: flags, environment and redis.conf-style file → [`config::Config`].
//! - [`server`]: binds nothing itself; [`server::run`] accepts on a given listener and
//!   owns the [`server::Shared`] state (store, stats, client registry).
//! - [`connection`]: per-client loop: read, decode every complete command (the
//!   `sessiond-protocol` crate), dispatch each, write all replies at once.
//! - [`cmd`]: the command table and one file per command family.
//! - [`store`]: lock-striped shards of fixed hash slots, hashbrown tables, compact
//!   entries; [`wheel`] is each shard's hierarchical timing wheel.
//! - [`expiry`]: the thread that reclaims keys whose timers fire.
//! - [`clock`], [`mem`]: time in Unix ms; process memory and CPU figures for `INFO`.

pub mod clock;
pub mod cmd;
pub mod config;
pub mod connection;
pub mod expiry;
pub mod mem;
pub mod server;
pub mod store;
pub mod wheel;
