//! Settings: command-line flags (clap, each also read from a `SESSIOND_*` environment
//! variable) layered over an optional redis.conf-style file, layered over defaults.
//!
//! Precedence: flag > environment > `--config` file > default.

use std::path::{Path, PathBuf};

use crate::park::Coalesce;
use clap::Parser;
use thiserror::Error;

mod file;
pub use file::{parse_file, parse_memory};

/// sessiond: a datastore for web sessions that speaks the Redis protocol.
///
/// Start it with no flags to listen on 127.0.0.1:6379, then use redis-cli or any Redis
/// client library.
#[derive(Parser, Debug, Default, Clone)]
#[command(name = "sessiond", version, about, long_about)]
pub struct Args {
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long, env = "SESSIOND_BIND")]
    pub bind: Option<String>,

    /// Password of the `default` user: clients must AUTH first [default: none]
    #[arg(long, env = "SESSIOND_REQUIREPASS", hide_env_values = true)]
    pub requirepass: Option<String>,

    /// A user, `name:password[:all|noadmin|readonly]`; repeat for more users
    #[arg(long = "user", value_name = "NAME:PASSWORD[:RULES]")]
    pub users: Vec<String>,

    /// An ACL file of `user <name> <rules...>` lines (Redis's format): the users at
    /// start, and what `ACL LOAD` reads and `ACL SAVE` writes [default: none]
    #[arg(long, env = "SESSIOND_ACLFILE")]
    pub aclfile: Option<String>,

    /// With no password for the default user, refuse clients that are not on the
    /// loopback interface (`yes` or `no`) [default: yes]
    #[arg(long, env = "SESSIOND_PROTECTED_MODE")]
    pub protected_mode: Option<YesNo>,

    /// Most client connections at once; more get Redis's error [default: 10000]
    #[arg(long, env = "SESSIOND_MAXCLIENTS")]
    pub maxclients: Option<usize>,

    /// Close a client idle for this many seconds, 0 for never [default: 0]
    #[arg(long, env = "SESSIOND_TIMEOUT")]
    pub timeout: Option<u64>,

    /// Also serve clients over TLS on this port (0 picks a free port) [default: off]
    #[arg(long, env = "SESSIOND_TLS_PORT")]
    pub tls_port: Option<u16>,

    /// The server's certificate chain (PEM), for --tls-port
    #[arg(long, env = "SESSIOND_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// The server's private key (PEM), for --tls-port
    #[arg(long, env = "SESSIOND_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// CA certificates (PEM) that sign client certificates; enables client verification
    #[arg(long, env = "SESSIOND_TLS_CA_CERT_FILE")]
    pub tls_ca_cert_file: Option<PathBuf>,

    /// With --tls-ca-cert-file: `yes` (clients must present a certificate), `optional`,
    /// or `no` [default: yes]
    #[arg(long, env = "SESSIOND_TLS_AUTH_CLIENTS")]
    pub tls_auth_clients: Option<TlsAuthClients>,

    /// Memory limit in bytes (or `1gb`, `512mb`...), 0 for none [default: 0]
    #[arg(long, env = "SESSIOND_MAXMEMORY", value_parser = parse_memory_arg)]
    pub maxmemory: Option<u64>,

    /// What reaching maxmemory does: `volatile-ttl` (evict the sessions nearest to
    /// expiry), `allkeys-lru` (approximate) or `noeviction` (refuse writes with OOM)
    /// [default: volatile-ttl]
    #[arg(long, env = "SESSIOND_MAXMEMORY_POLICY")]
    pub maxmemory_policy: Option<MaxmemoryPolicy>,

    /// Close a client whose unfinished command grows past this many bytes
    /// [default: 1073741824]
    #[arg(long, env = "SESSIOND_CLIENT_QUERY_BUFFER_LIMIT", value_parser = parse_memory_arg)]
    pub client_query_buffer_limit: Option<u64>,

    /// Close a client whose pending reply grows past this many bytes [default: 268435456]
    #[arg(long, env = "SESSIOND_CLIENT_OUTPUT_LIMIT")]
    pub client_output_limit: Option<u64>,

    /// Close a client that accepts none of its replies for this many seconds, 0 for
    /// never [default: 60]
    #[arg(long, env = "SESSIOND_CLIENT_WRITE_TIMEOUT")]
    pub client_write_timeout: Option<u64>,

    /// TCP port to listen on; 0 picks a free port [default: 6379]
    #[arg(long, env = "SESSIOND_PORT")]
    pub port: Option<u16>,

    /// Serve Prometheus metrics over HTTP at /metrics on this port (same --bind address;
    /// 0 picks a free port) [default: off]
    #[arg(long, env = "SESSIOND_METRICS_PORT")]
    pub metrics_port: Option<u16>,

    /// Number of lock stripes in the store, a power of two up to 1024 [default: 64]
    #[arg(long, env = "SESSIOND_SHARDS")]
    pub shards: Option<usize>,

    /// Threads serving clients [default: 1]
    #[arg(long, env = "SESSIOND_THREADS")]
    pub threads: Option<usize>,

    /// How threads serve clients: `per-thread` (one tokio current-thread event loop per
    /// thread, each owning the connections it accepted) or `work-stealing` (tokio's
    /// multi-thread runtime) [default: per-thread]
    #[arg(long, env = "SESSIOND_RUNTIME")]
    pub runtime: Option<RuntimeKind>,

    /// Under load, microseconds an event loop waits before it sleeps, so that one wake-up
    /// serves many clients; `auto` finds the wait by trial, 0 turns this off
    /// [default: auto; 0 for a cluster node]
    #[arg(long, env = "SESSIOND_COALESCE_US")]
    pub coalesce_us: Option<Coalesce>,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive [default: info]
    #[arg(long, env = "SESSIOND_LOG_LEVEL")]
    pub log_level: Option<String>,

    /// Log format: `text` or `json` (one JSON object per line) [default: text]
    #[arg(long, env = "SESSIOND_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Largest bulk string a client may send, in bytes (Redis's proto-max-bulk-len)
    /// [default: 536870912]
    #[arg(long, env = "SESSIOND_PROTO_MAX_BULK_LEN")]
    pub proto_max_bulk_len: Option<u64>,

    /// A redis.conf-style file of `directive value` lines for the settings above
    #[arg(long, env = "SESSIOND_CONFIG")]
    pub config: Option<PathBuf>,

    /// Cluster: this node's id, 1 or more. Giving --node-id, --peers or --dir turns on
    /// raft replication (with --dir alone, a durable single-node group)
    #[arg(long, env = "SESSIOND_NODE_ID", help_heading = "Cluster")]
    pub node_id: Option<u64>,

    /// Cluster: every founding member as `id=host:raftport,...`, this node included
    #[arg(long, env = "SESSIOND_PEERS", help_heading = "Cluster")]
    pub peers: Option<String>,

    /// Cluster: port for node-to-node traffic on --bind [default: client port + 10000,
    /// or this node's entry in --peers]
    #[arg(long, env = "SESSIOND_RAFT_PORT", help_heading = "Cluster")]
    pub raft_port: Option<u16>,

    /// Cluster: full host:port for node-to-node traffic (overrides --raft-port)
    #[arg(long, env = "SESSIOND_CLUSTER_ADDR", help_heading = "Cluster")]
    pub cluster_addr: Option<String>,

    /// Cluster: listen for other nodes on this inherited file descriptor, a TCP socket
    /// the parent process already bound (a test harness, a service manager);
    /// --cluster-addr is what the other nodes dial
    #[arg(long, help_heading = "Cluster")]
    pub cluster_fd: Option<i32>,

    /// Cluster: the client address other nodes hand out for this node (redirects,
    /// ROLE, Sentinel) [default: the address the listener is bound to]
    #[arg(long, env = "SESSIOND_ADVERTISE_ADDR", help_heading = "Cluster")]
    pub advertise_addr: Option<String>,

    /// Cluster: start empty and wait to be added with RAFT.NODE ADD (not in --peers)
    #[arg(long, env = "SESSIOND_JOIN", help_heading = "Cluster")]
    pub join: bool,

    /// Cluster: folder for the raft log and snapshots; without it a cluster node keeps
    /// its log in memory
    #[arg(long, env = "SESSIOND_DIR", help_heading = "Cluster")]
    pub dir: Option<PathBuf>,

    /// Cluster: how reads are served: `linearizable` (ReadIndex, never stale), `lease`
    /// (leader lease, stale only under clock drift), `stale` (local state, may lag)
    /// [default: linearizable]
    #[arg(long, env = "SESSIOND_READ_CONSISTENCY", help_heading = "Cluster")]
    pub read_consistency: Option<ReadMode>,

    /// Cluster: what a follower does with commands that need the leader: `proxy` (run
    /// them through raft and answer) or `redirect` (-MOVED to the leader) [default: proxy]
    #[arg(long, env = "SESSIOND_FOLLOWER_MODE", help_heading = "Cluster")]
    pub follower_mode: Option<FollowerMode>,

    /// Cluster: raft tick in ms; elections time out after 15-30 ticks, heartbeats go
    /// every 3 [default: 20]
    #[arg(long, env = "SESSIOND_TICK_MS", help_heading = "Cluster")]
    pub tick_ms: Option<u64>,

    /// Cluster: take a snapshot (and compact the log) every this many entries
    /// [default: 1000000]
    #[arg(long, env = "SESSIOND_SNAPSHOT_ENTRIES", help_heading = "Cluster")]
    pub snapshot_entries: Option<u64>,

    /// Cluster: ...or once this many bytes of log (128 more per entry) were applied since
    /// the last one, or as many as the last snapshot had if that is more; this bounds
    /// the log each node keeps on disk [default: 268435456]
    #[arg(long, env = "SESSIOND_SNAPSHOT_BYTES", help_heading = "Cluster")]
    pub snapshot_bytes: Option<u64>,

    /// Cluster: size of one write-ahead log segment file; the next one is made ahead of
    /// time [default: 67108864]
    #[arg(long, env = "SESSIOND_WAL_SEGMENT_BYTES", help_heading = "Cluster")]
    pub wal_segment_bytes: Option<u64>,

    /// Cluster: bytes of log entries a node keeps in memory once it has applied them and
    /// every follower has them; older ones stay only on disk until the next snapshot
    /// [default: 33554432]
    #[arg(long, env = "SESSIOND_RAFT_LOG_MEMORY", help_heading = "Cluster")]
    pub raft_log_memory: Option<u64>,

    /// Cluster: how long a client waits for a write or read to be confirmed before it
    /// gets an error, in ms [default: 3000]
    #[arg(long, env = "SESSIOND_REQUEST_TIMEOUT_MS", help_heading = "Cluster")]
    pub request_timeout_ms: Option<u64>,

    /// Cluster: a node whose wall clock is further than this from the other voters'
    /// says so and does not take leadership, in ms [default: 500]
    #[arg(long, env = "SESSIOND_MAX_CLOCK_SKEW", help_heading = "Cluster")]
    pub max_clock_skew: Option<u64>,

    /// Cluster: a secret every node shares; peers prove they hold it (HMAC challenge)
    /// before their raft messages are heard [default: none]
    #[arg(
        long,
        env = "SESSIOND_CLUSTER_SECRET",
        hide_env_values = true,
        help_heading = "Cluster"
    )]
    pub cluster_secret: Option<String>,

    /// Cluster: this node's certificate chain (PEM) for mutual TLS between peers; with
    /// the two below, raft traffic is encrypted [default: none]
    #[arg(long, env = "SESSIOND_CLUSTER_TLS_CERT_FILE", help_heading = "Cluster")]
    pub cluster_tls_cert_file: Option<PathBuf>,

    /// Cluster: the private key (PEM) of --cluster-tls-cert-file [default: none]
    #[arg(long, env = "SESSIOND_CLUSTER_TLS_KEY_FILE", help_heading = "Cluster")]
    pub cluster_tls_key_file: Option<PathBuf>,

    /// Cluster: the CA (PEM) every peer's certificate must chain to [default: none]
    #[arg(
        long,
        env = "SESSIOND_CLUSTER_TLS_CA_CERT_FILE",
        help_heading = "Cluster"
    )]
    pub cluster_tls_ca_cert_file: Option<PathBuf>,
}

/// How a cluster serves reads.
#[derive(clap::ValueEnum, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    #[default]
    Linearizable,
    Lease,
    Stale,
}

/// What a follower does with a command that needs the leader.
#[derive(clap::ValueEnum, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum FollowerMode {
    #[default]
    Proxy,
    Redirect,
}

/// Cluster settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    pub node_id: u64,
    pub peers: Vec<(u64, String)>,
    /// Raft listen address; `None`: derive from the client port once it is bound.
    pub raft_addr: Option<String>,
    /// An inherited, already bound raft listener (`--cluster-fd`).
    pub raft_fd: Option<i32>,
    pub advertise_addr: Option<String>,
    pub join: bool,
    pub dir: Option<PathBuf>,
    pub read_mode: ReadMode,
    pub follower_mode: FollowerMode,
    pub tick_ms: u64,
    pub snapshot_entries: u64,
    pub snapshot_bytes: u64,
    pub wal_segment_bytes: u64,
    pub raft_log_memory: u64,
    pub request_timeout_ms: u64,
    pub max_clock_skew_ms: u64,
    pub secret: Secret,
    /// Mutual TLS between peers: (certificate, key, CA), all three or none.
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
}

/// Parse `--peers id=host:port,...`.
pub fn parse_peers(s: &str) -> Result<Vec<(u64, String)>, ConfigError> {
    let mut out: Vec<(u64, String)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| ConfigError::Invalid(format!("peer '{part}' is not id=host:port")))?;
        let id: u64 = id.trim().parse().ok().filter(|&n| n > 0).ok_or_else(|| {
            ConfigError::Invalid(format!("peer id '{id}' is not a number above 0"))
        })?;
        let addr = addr.trim();
        if addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            return Err(ConfigError::Invalid(format!(
                "peer address '{addr}' is not host:port"
            )));
        }
        if out.iter().any(|(i, _)| *i == id) {
            return Err(ConfigError::Invalid(format!("peer id {id} appears twice")));
        }
        out.push((id, addr.to_string()));
    }
    Ok(out)
}

/// How client connections are spread over threads.
#[derive(clap::ValueEnum, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// One current-thread tokio runtime per thread; a connection stays where it was accepted.
    #[default]
    PerThread,
    /// tokio's multi-thread, work-stealing runtime with `threads` workers.
    WorkStealing,
}

/// The smallest `--client-output-limit`: a connection writes its replies out every
/// 256 KiB, so a lower limit would cut ordinary pipelines.
const OUT_FLUSH_MIN: u64 = 1 << 20;

/// Whether TLS clients must present a certificate.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsAuthClients {
    Yes,
    Optional,
    No,
}

/// What `maxmemory` does when it is reached.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxmemoryPolicy {
    VolatileTtl,
    AllkeysLru,
    Noeviction,
}

impl MaxmemoryPolicy {
    pub fn name(self) -> &'static str {
        match self {
            MaxmemoryPolicy::VolatileTtl => "volatile-ttl",
            MaxmemoryPolicy::AllkeysLru => "allkeys-lru",
            MaxmemoryPolicy::Noeviction => "noeviction",
        }
    }
}

fn parse_memory_arg(s: &str) -> Result<u64, String> {
    parse_memory(s).ok_or_else(|| format!("'{s}' is not a memory size"))
}

/// A redis.conf-style boolean.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum YesNo {
    Yes,
    No,
}

/// A password: shown as `<hidden>` by `Debug`, so that logging a config never leaks it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub Option<String>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(_) => f.write_str("<hidden>"),
            None => f.write_str("None"),
        }
    }
}

/// How log lines look.
#[derive(clap::ValueEnum, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `timestamp LEVEL target: message key=value ...`
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub bind: String,
    pub port: u16,
    pub metrics_port: Option<u16>,
    pub requirepass: Secret,
    /// `--user` specs (they hold passwords: see [`Secret`]).
    pub users: Vec<Secret>,
    /// `--aclfile`.
    pub aclfile: Option<String>,
    pub protected_mode: bool,
    pub maxclients: usize,
    /// Idle seconds before a client is closed (0: never).
    pub timeout: u64,
    pub client_output_limit: u64,
    pub client_write_timeout: u64,
    pub client_query_buffer_limit: u64,
    pub tls_port: Option<u16>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub tls_ca_cert_file: Option<PathBuf>,
    pub tls_auth_clients: TlsAuthClients,
    /// Bytes; 0 for no limit.
    pub maxmemory: u64,
    pub maxmemory_policy: MaxmemoryPolicy,
    pub shards: usize,
    pub threads: usize,
    pub runtime: RuntimeKind,
    /// `--coalesce-us`: see [`crate::park`].
    pub coalesce_us: Coalesce,
    pub log_level: String,
    /// `--log-format json`.
    pub log_json: bool,
    pub proto_max_bulk_len: u64,
    pub config_file: Option<PathBuf>,
    /// `Some` when this node is part of a raft group.
    pub cluster: Option<ClusterSettings>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".into(),
            port: 6379,
            metrics_port: None,
            requirepass: Secret(None),
            aclfile: None,
            users: Vec::new(),
            protected_mode: true,
            maxclients: 10_000,
            timeout: 0,
            client_output_limit: 256 << 20,
            client_write_timeout: 60,
            client_query_buffer_limit: 1 << 30,
            maxmemory: 0,
            maxmemory_policy: MaxmemoryPolicy::VolatileTtl,
            tls_port: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_cert_file: None,
            tls_auth_clients: TlsAuthClients::Yes,
            shards: 64,
            threads: 1,
            runtime: RuntimeKind::PerThread,
            coalesce_us: Coalesce::Auto,
            log_level: "info".into(),
            log_json: false,
            proto_max_bulk_len: 512 * 1024 * 1024,
            config_file: None,
            cluster: None,
        }
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}, line {line}: {msg}")]
    Line {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl Config {
    /// Resolve flags (and env) over the config file over defaults.
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        let mut file = Args::default();
        if let Some(path) = &args.config {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            file = parse_file(path, &text)?;
        }
        let d = Config::default();
        let peers = match args.peers.as_deref().or(file.peers.as_deref()) {
            Some(p) => parse_peers(p)?,
            None => Vec::new(),
        };
        let node_id = args.node_id.or(file.node_id);
        let dir = args.dir.clone().or(file.dir.clone());
        let join = args.join || file.join;
        let cluster = if node_id.is_some() || !peers.is_empty() || dir.is_some() || join {
            let node_id = match node_id {
                Some(n) => n,
                None if join => {
                    return Err(ConfigError::Invalid(
                        "--join needs --node-id (the id RAFT.NODE ADD will give it)".into(),
                    ))
                }
                None if peers.is_empty() => 1,
                None => {
                    return Err(ConfigError::Invalid(
                        "--peers needs --node-id to say which peer this node is".into(),
                    ))
                }
            };
            if node_id == 0 {
                return Err(ConfigError::Invalid("--node-id must be 1 or more".into()));
            }
            if !peers.is_empty() && !join && !peers.iter().any(|(i, _)| *i == node_id) {
                return Err(ConfigError::Invalid(format!(
                    "--peers does not list this node (id {node_id})"
                )));
            }
            let bind = args
                .bind
                .clone()
                .or(file.bind.clone())
                .unwrap_or(d.bind.clone());
            let raft_addr = args
                .cluster_addr
                .clone()
                .or(file.cluster_addr.clone())
                .or_else(|| {
                    args.raft_port
                        .or(file.raft_port)
                        .map(|p| format!("{bind}:{p}"))
                })
                .or_else(|| {
                    peers
                        .iter()
                        .find(|(i, _)| *i == node_id)
                        .map(|(_, a)| a.clone())
                });
            Some(ClusterSettings {
                node_id,
                peers,
                raft_addr,
                raft_fd: args.cluster_fd,
                advertise_addr: args.advertise_addr.clone().or(file.advertise_addr.clone()),
                join,
                dir,
                read_mode: args
                    .read_consistency
                    .or(file.read_consistency)
                    .unwrap_or_default(),
                follower_mode: args
                    .follower_mode
                    .or(file.follower_mode)
                    .unwrap_or_default(),
                tick_ms: args.tick_ms.or(file.tick_ms).unwrap_or(20).clamp(1, 10_000),
                snapshot_entries: args
                    .snapshot_entries
                    .or(file.snapshot_entries)
                    .unwrap_or(1_000_000)
                    .max(100),
                snapshot_bytes: args
                    .snapshot_bytes
                    .or(file.snapshot_bytes)
                    .unwrap_or(256 << 20)
                    .max(64 << 10),
                wal_segment_bytes: args
                    .wal_segment_bytes
                    .or(file.wal_segment_bytes)
                    .unwrap_or(64 << 20)
                    .clamp(16 << 10, 1 << 30),
                raft_log_memory: args
                    .raft_log_memory
                    .or(file.raft_log_memory)
                    .unwrap_or(32 << 20),
                secret: Secret(args.cluster_secret.clone().or(file.cluster_secret.clone())),
                tls: match (
                    args.cluster_tls_cert_file.clone().or(file.cluster_tls_cert_file.clone()),
                    args.cluster_tls_key_file.clone().or(file.cluster_tls_key_file.clone()),
                    args.cluster_tls_ca_cert_file
                        .clone()
                        .or(file.cluster_tls_ca_cert_file.clone()),
                ) {
                    (Some(c), Some(k), Some(ca)) => Some((c, k, ca)),
                    (None, None, None) => None,
                    _ => {
                        return Err(ConfigError::Invalid(
                            "--cluster-tls-cert-file, --cluster-tls-key-file and --cluster-tls-ca-cert-file go together".into(),
                        ))
                    }
                },
                request_timeout_ms: args
                    .request_timeout_ms
                    .or(file.request_timeout_ms)
                    .unwrap_or(3_000)
                    .max(10),
                max_clock_skew_ms: args
                    .max_clock_skew
                    .or(file.max_clock_skew)
                    .unwrap_or(500)
                    .max(1),
            })
        } else {
            None
        };
        // A cluster node waits on raft as well as on clients; there the wait measured
        // slower (see `crate::park`), so it is off unless asked for.
        let default_coalesce = if cluster.is_some() {
            Coalesce::Fixed(0)
        } else {
            d.coalesce_us
        };
        let cfg = Config {
            cluster,
            bind: args.bind.or(file.bind).unwrap_or(d.bind),
            port: args.port.or(file.port).unwrap_or(d.port),
            metrics_port: args.metrics_port.or(file.metrics_port),
            requirepass: Secret(args.requirepass.or(file.requirepass)),
            aclfile: args.aclfile.or(file.aclfile),
            users: if args.users.is_empty() {
                file.users
            } else {
                args.users
            }
            .into_iter()
            .map(|u| Secret(Some(u)))
            .collect(),
            protected_mode: args.protected_mode.or(file.protected_mode) != Some(YesNo::No),
            maxclients: args.maxclients.or(file.maxclients).unwrap_or(d.maxclients),
            timeout: args.timeout.or(file.timeout).unwrap_or(d.timeout),
            client_output_limit: args
                .client_output_limit
                .or(file.client_output_limit)
                .unwrap_or(d.client_output_limit)
                .max(OUT_FLUSH_MIN),
            client_write_timeout: args
                .client_write_timeout
                .or(file.client_write_timeout)
                .unwrap_or(d.client_write_timeout),
            client_query_buffer_limit: args
                .client_query_buffer_limit
                .or(file.client_query_buffer_limit)
                .unwrap_or(d.client_query_buffer_limit)
                .max(OUT_FLUSH_MIN),
            maxmemory: args.maxmemory.or(file.maxmemory).unwrap_or(0),
            tls_port: args.tls_port.or(file.tls_port),
            tls_cert_file: args.tls_cert_file.or(file.tls_cert_file),
            tls_key_file: args.tls_key_file.or(file.tls_key_file),
            tls_ca_cert_file: args.tls_ca_cert_file.or(file.tls_ca_cert_file),
            tls_auth_clients: args
                .tls_auth_clients
                .or(file.tls_auth_clients)
                .unwrap_or(d.tls_auth_clients),
            maxmemory_policy: args
                .maxmemory_policy
                .or(file.maxmemory_policy)
                .unwrap_or(d.maxmemory_policy),
            shards: args.shards.or(file.shards).unwrap_or(d.shards),
            threads: args.threads.or(file.threads).unwrap_or(d.threads),
            runtime: args.runtime.or(file.runtime).unwrap_or(d.runtime),
            coalesce_us: args
                .coalesce_us
                .or(file.coalesce_us)
                .unwrap_or(default_coalesce),
            log_level: args.log_level.or(file.log_level).unwrap_or(d.log_level),
            log_json: args.log_format.or(file.log_format) == Some(LogFormat::Json),
            proto_max_bulk_len: args
                .proto_max_bulk_len
                .or(file.proto_max_bulk_len)
                .unwrap_or(d.proto_max_bulk_len),
            config_file: args.config,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The users these settings describe: `--requirepass` and `--user`, or the ACL file.
    pub fn users(&self) -> Result<crate::acl::Users, ConfigError> {
        let specs: Vec<String> = self.users.iter().filter_map(|u| u.0.clone()).collect();
        let users = crate::acl::Users::new(self.requirepass.0.as_deref(), &specs)
            .map_err(ConfigError::Invalid)?;
        if let Some(path) = &self.aclfile {
            if !specs.is_empty() {
                return Err(ConfigError::Invalid(
                    "--user cannot be combined with --aclfile: put the users in the file".into(),
                ));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::Invalid(format!("aclfile {path}: {e}")))?;
            let mut list = crate::acl::parse_acl_file(&text)
                .map_err(|e| ConfigError::Invalid(format!("aclfile {path}:{e}")))?;
            // The file's `default` wins; without one, `--requirepass` still applies.
            if !list.iter().any(|u| u.name == crate::acl::DEFAULT) {
                if let Some(d) = users.get(crate::acl::DEFAULT) {
                    list.push((*d).clone());
                }
            }
            users.replace(list);
        }
        Ok(users)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.users()?;
        if self.maxclients == 0 {
            return Err(ConfigError::Invalid("maxclients must be at least 1".into()));
        }
        if self.shards == 0
            || self.shards > crate::store::MAX_SHARDS
            || !self.shards.is_power_of_two()
        {
            return Err(ConfigError::Invalid(format!(
                "shards must be a power of two between 1 and {}, got {}",
                crate::store::MAX_SHARDS,
                self.shards
            )));
        }
        if self.threads == 0 || self.threads > 256 {
            return Err(ConfigError::Invalid(format!(
                "threads must be between 1 and 256, got {}",
                self.threads
            )));
        }
        if let Coalesce::Fixed(us @ 10_001..) = self.coalesce_us {
            return Err(ConfigError::Invalid(format!(
                "coalesce-us must be at most 10000, got {us}"
            )));
        }
        if self.proto_max_bulk_len < 1024 * 1024 {
            return Err(ConfigError::Invalid(
                "proto-max-bulk-len must be at least 1mb".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
