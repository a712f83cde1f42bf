//! The listener: accepts connections and owns the state they share.
//!
//! [`run`] takes a listener that is already bound, so tests bind `127.0.0.1:0` and pass it
//! in. It returns when `shutdown` resolves or a client sends `SHUTDOWN`.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::clock::now_ms;
use crate::config::{Config, RuntimeKind};
use crate::connection::{self, ClientInfo};
use crate::expiry::Expirer;
use crate::pubsub::{flags, PubSub};
use crate::store::Store;

/// Counters for `INFO stats`. Connections add their counts once per batch of commands,
/// not once per command, so the hot path touches no shared cache line.
#[derive(Debug, Default)]
pub struct Stats {
    pub commands: AtomicU64,
    pub connections_received: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub protocol_errors: AtomicU64,
    /// Clients cut for a command growing past `--client-query-buffer-limit`.
    pub query_limit_disconnections: AtomicU64,
    /// Clients cut for a reply over `--client-output-limit` or for not reading.
    pub output_limit_disconnections: AtomicU64,
    /// Time to run one read's commands and write their replies.
    pub batch_latency: sessiond_cluster::status::Histogram,
}

/// Numbered databases (`SELECT 0..15`), as Redis's default `databases 16`.
pub const DATABASES: usize = 16;

/// State shared by every connection.
pub struct Shared {
    /// Database 0, where every key lives unless a client selects another.
    pub store: Store,
    /// Databases 1.., each made on its first use: a node that only uses database 0
    /// pays nothing for them.
    pub more_dbs: Box<[OnceLock<Store>]>,
    pub config: Config,
    /// `proto-max-bulk-len`, which `CONFIG SET` may change at run time.
    pub proto_max_bulk_len: AtomicU64,
    pub peak_memory: AtomicU64,
    pub stats: Stats,
    pub clients: Arc<Mutex<BTreeMap<u64, Arc<ClientInfo>>>>,
    /// `CLIENT TRACKING`'s table (client-side caching).
    pub tracking: Arc<crate::tracking::Tracking>,
    pub connected: AtomicUsize,
    pub next_client_id: AtomicU64,
    pub started: Instant,
    pub started_ms: u64,
    pub run_id: String,
    pub local_addr: SocketAddr,
    pub shutdown: Notify,
    pub expirer: Expirer,
    /// Subscriptions and keyspace notifications.
    pub pubsub: Arc<PubSub>,
    /// Rates sampled every 100 ms (`metrics::sample`).
    pub rates: crate::metrics::Rates,
    pub slowlog: crate::slowlog::SlowLog,
    pub cmdstats: crate::cmdstats::CmdStats,
    pub monitors: crate::monitor::Monitors,
    /// `maxmemory`, `maxmemory-policy`, `timeout`, `maxclients` as they stand now.
    pub runtime: crate::runtime::Runtime,
    /// Lua scripts: the cache, the running script, the gate and the script thread.
    pub scripts: crate::script::Scripts,
    /// Redis's encoding thresholds and other settings sessiond accepts, stores and
    /// reports, but that change nothing here (see `cmd::server::TUNABLES`).
    pub tunables: Mutex<BTreeMap<&'static str, String>>,
    /// Users and their passwords and rules.
    pub users: crate::acl::Users,
    /// Set while used memory is over `maxmemory` and nothing more can be evicted
    /// (or the policy is `noeviction`): writes get `-OOM`.
    pub oom: std::sync::atomic::AtomicBool,
    /// The raft node, when this server is part of a cluster.
    pub cluster: OnceLock<Arc<sessiond_cluster::Handle>>,
}

/// Keys removed because their deadline passed raise `expired` events, and keys made
/// `new` ones, in their database's channels.
fn hook_events(store: &Store, pubsub: &Arc<PubSub>, db: usize) {
    let ps = pubsub.clone();
    store.on_expired(Box::new(move |key| {
        ps.notify_db(db, flags::EXPIRED, "expired", key)
    }));
    let ps = pubsub.clone();
    store.on_new(Box::new(move |key| {
        ps.notify_db(db, flags::NEW, "new", key)
    }));
    let ps = pubsub.clone();
    store.on_hexpired(Box::new(move |key, gone| {
        ps.notify_db(db, flags::HASH, "hexpired", key);
        if gone {
            ps.notify_db(db, flags::GENERIC, "del", key);
        }
    }));
}

impl Shared {
    /// Database `n` (below [`DATABASES`]), made on first use.
    pub fn db(&self, n: usize) -> &Store {
        if n == 0 {
            return &self.store;
        }
        self.more_dbs[n - 1].get_or_init(|| {
            let s = self.store.sibling(now_ms());
            hook_events(&s, &self.pubsub, n);
            s
        })
    }

    /// The databases made so far, with their numbers (database 0 always).
    pub fn dbs(&self) -> impl Iterator<Item = (usize, &Store)> {
        std::iter::once((0, &self.store)).chain(
            self.more_dbs
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.get().map(|s| (i + 1, s))),
        )
    }

    pub fn new(config: Config, users: crate::acl::Users, local_addr: SocketAddr) -> Arc<Shared> {
        let now = now_ms();
        let store = Store::new(config.shards, now);
        let pubsub = Arc::new(PubSub::default());
        hook_events(&store, &pubsub, 0);
        let proto_max_bulk_len = AtomicU64::new(config.proto_max_bulk_len);
        let runtime = crate::runtime::Runtime::new(&config);
        let clients = Arc::new(Mutex::new(BTreeMap::new()));
        let tracking = crate::tracking::Tracking::new(store.touch_hook().clone(), clients.clone());
        Arc::new(Shared {
            store,
            more_dbs: (1..DATABASES).map(|_| OnceLock::new()).collect(),
            config,
            proto_max_bulk_len,
            peak_memory: AtomicU64::new(0),
            stats: Stats::default(),
            clients,
            tracking,
            connected: AtomicUsize::new(0),
            next_client_id: AtomicU64::new(1),
            started: Instant::now(),
            started_ms: now,
            run_id: run_id(),
            local_addr,
            shutdown: Notify::new(),
            expirer: Expirer::default(),
            pubsub,
            rates: Default::default(),
            slowlog: Default::default(),
            cmdstats: Default::default(),
            monitors: Default::default(),
            runtime,
            scripts: crate::script::Scripts::default(),
            tunables: Mutex::new(
                crate::cmd::server::TUNABLES
                    .iter()
                    .map(|(k, v)| (*k, v.to_string()))
                    .collect(),
            ),
            users,
            oom: Default::default(),
            cluster: OnceLock::new(),
        })
    }

    pub fn cluster(&self) -> Option<&sessiond_cluster::Handle> {
        self.cluster.get().map(|h| &**h)
    }

    pub fn proto_max_bulk_len(&self) -> u64 {
        self.proto_max_bulk_len.load(Ordering::Relaxed)
    }

    /// Ask the server to stop (the `SHUTDOWN` command).
    pub fn request_shutdown(&self) {
        self.shutdown.notify_one();
    }
}

/// A 40-hex-character run id, as Redis reports in `INFO server`.
fn run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut s = String::with_capacity(40);
    let mut n = 0u64;
    while s.len() < 40 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        s.push_str(&format!("{:016x}", h.finish()));
        n += 1;
    }
    s.truncate(40);
    s
}

/// Serve clients on `listener` until `shutdown` resolves or a client sends `SHUTDOWN`.
///
/// With `--threads N` (N > 1) and the default per-thread runtime, N - 1 more OS threads
/// each run their own current-thread tokio runtime and accept on a clone of the same
/// listening socket; a connection stays on the event loop that accepted it, so there is
/// no cross-thread task stealing on the hot path. (`--runtime work-stealing` instead
/// runs everything on tokio's multi-thread runtime, which `main` builds.)
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let users = config
        .users()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let shared = Shared::new(config, users, addr);
    if let Some(cs) = &shared.config.cluster {
        let handle = start_cluster(&shared, cs, addr)?;
        let handle = Arc::new(handle);
        let nudge = Arc::downgrade(&handle);
        crate::tracking::on_settled(Box::new(move || {
            if let Some(h) = nudge.upgrade() {
                h.caching_changed();
            }
        }));
        crate::clock::follow(handle.status.clone());
        let _ = shared.cluster.set(handle);
    }
    let expiry_thread = crate::expiry::spawn(shared.clone())?;
    crate::script::start_runner(shared.clone())?;
    let mut tasks = vec![tokio::spawn(crate::metrics::sample(shared.clone()))];
    if shared.cluster().is_some() {
        tasks.push(tokio::spawn(crate::cmd::cluster::announce_leader_changes(
            shared.clone(),
        )));
    }
    if let Some(acceptor) = crate::tls::acceptor(&shared.config)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?
    {
        let port = shared.config.tls_port.unwrap_or(0);
        let tl = TcpListener::bind(crate::tls::bind_addr(&shared.config, port)).await?;
        info!(addr = %tl.local_addr()?, "TLS clients at {}", tl.local_addr()?);
        tasks.push(tokio::spawn(crate::tls::serve(
            tl,
            acceptor,
            shared.clone(),
        )));
    }
    if let Some(port) = shared.config.metrics_port {
        let ml = TcpListener::bind((shared.config.bind.as_str(), port)).await?;
        info!(addr = %ml.local_addr()?, "metrics at http://{}/metrics", ml.local_addr()?);
        tasks.push(tokio::spawn(crate::metrics::serve(ml, shared.clone())));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let extra = match shared.config.runtime {
        RuntimeKind::PerThread => shared.config.threads.saturating_sub(1),
        RuntimeKind::WorkStealing => 0,
    };
    let mut loops = Vec::with_capacity(extra);
    let listener = if extra > 0 {
        let std_listener = listener.into_std()?;
        for i in 0..extra {
            let clone = std_listener.try_clone()?;
            let shared = shared.clone();
            let stop = stop_rx.clone();
            loops.push(
                std::thread::Builder::new()
                    .name(format!("sessiond-loop-{}", i + 1))
                    .spawn(move || -> std::io::Result<()> {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .on_thread_park(crate::park::hook(shared.config.coalesce_us))
                            .build()?;
                        rt.block_on(async move {
                            let listener = TcpListener::from_std(clone)?;
                            accept_loop(&listener, &shared, stop).await;
                            Ok(())
                        })
                    })?,
            );
        }
        TcpListener::from_std(std_listener)?
    } else {
        listener
    };
    info!(
        addr = %addr,
        shards = shared.config.shards,
        threads = shared.config.threads,
        runtime = ?shared.config.runtime,
        coalesce_us = %shared.config.coalesce_us,
        proto_max_bulk_len = shared.config.proto_max_bulk_len,
        pid = std::process::id(),
        version = env!("CARGO_PKG_VERSION"),
        "sessiond ready to accept connections"
    );
    tokio::select! {
        _ = accept_loop(&listener, &shared, stop_rx) => {}
        _ = shutdown => info!("signal received, shutting down"),
        _ = shared.shutdown.notified() => info!("SHUTDOWN received, shutting down"),
    }
    let _ = stop_tx.send(true);
    for l in loops {
        match l.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "event loop failed"),
            Err(_) => warn!("event loop thread panicked"),
        }
    }
    for t in tasks {
        t.abort();
    }
    shared.expirer.stop();
    if expiry_thread.join().is_err() {
        warn!("expiry thread panicked");
    }
    if let Some(c) = shared.cluster() {
        c.stop();
    }
    info!("sessiond is now ready to exit, bye bye");
    Ok(())
}

/// Start this node's raft group member (recovering from `--dir` when there is one).
fn start_cluster(
    shared: &Arc<Shared>,
    cs: &crate::config::ClusterSettings,
    client_addr: SocketAddr,
) -> std::io::Result<sessiond_cluster::Handle> {
    use crate::config::ReadMode;
    let raft_addr = cs.raft_addr.clone().unwrap_or_else(|| {
        let port = if client_addr.port() == 0 {
            0
        } else {
            client_addr.port().wrapping_add(10_000)
        };
        format!("{}:{port}", client_addr.ip())
    });
    let advertise = cs
        .advertise_addr
        .clone()
        .unwrap_or_else(|| client_addr.to_string());
    let mut cc = sessiond_cluster::ClusterConfig::new(cs.node_id, &raft_addr, &advertise);
    cc.raft_fd = cs.raft_fd;
    cc.peers = cs.peers.clone();
    cc.join = cs.join;
    cc.dir = cs.dir.clone();
    cc.tick_ms = cs.tick_ms;
    cc.snapshot_entries = cs.snapshot_entries;
    cc.snapshot_bytes = cs.snapshot_bytes;
    cc.segment_bytes = cs.wal_segment_bytes;
    cc.log_memory = cs.raft_log_memory;
    // Entries kept behind a snapshot for followers that lag a little: fewer means less
    // memory, but a follower further behind than this needs a whole snapshot (hundreds of
    // MB), and under load with small entries 1,000 was only about a second of writes.
    cc.snapshot_keep = (cs.snapshot_entries / 10).clamp(100, 10_000);
    cc.request_timeout_ms = cs.request_timeout_ms;
    cc.max_clock_skew_ms = cs.max_clock_skew_ms;
    cc.secret = cs
        .secret
        .0
        .as_ref()
        .map(|s| sessiond_cluster::PeerSecret(s.as_bytes().to_vec()));
    cc.tls = match &cs.tls {
        Some((cert, key, ca)) => Some(
            crate::tls::peer_tls(cert, key, ca)
                .map_err(|e| std::io::Error::other(format!("cluster TLS: {e}")))?,
        ),
        None => None,
    };
    cc.read_consistency = match cs.read_mode {
        ReadMode::Linearizable => sessiond_cluster::ReadConsistency::Linearizable,
        ReadMode::Lease => sessiond_cluster::ReadConsistency::Lease,
        ReadMode::Stale => sessiond_cluster::ReadConsistency::Stale,
    };
    // Until the log says otherwise, reads must not remove anything.
    shared.store.set_horizon(0);
    let sm = crate::replicated::ServerSm::new(shared.clone());
    let handle = sessiond_cluster::start(cc, Box::new(sm))
        .map_err(|e| std::io::Error::other(format!("cluster: {e}")))?;
    info!(
        node_id = cs.node_id,
        raft = %raft_addr,
        peers = cs.peers.len(),
        dir = ?cs.dir,
        "raft node started"
    );
    Ok(handle)
}

/// Accept connections and spawn a task for each, on the current runtime, until `stop`
/// turns true.
async fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            res = listener.accept() => match res {
                Ok((stream, peer)) => {
                    tokio::spawn(connection::serve(stream, peer, shared.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the clients we
                    // have, and back off briefly before accepting again.
                    warn!(error = %e, "accept failed");
                    shared.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}
