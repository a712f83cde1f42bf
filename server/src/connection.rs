//! One client connection: read what has arrived, run every complete command, write all
//! the replies with one write.
//!
//! Parsing is the protocol crate's job and commands are `cmd`'s; this file only moves
//! bytes and keeps per-connection state ([`Conn`]) and the shared view of it that
//! `CLIENT LIST` reads ([`ClientInfo`]).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sessiond_protocol::{CommandDecoder, Limits, ProtocolError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a client connection runs over: TCP, or TLS over TCP.
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> ClientStream for S {}
use tracing::{debug, debug_span, Instrument};

use sessiond_cluster::ClusterError;

use crate::clock::{now_ms, now_us};
use crate::cmd::{self, Ctx};
use crate::config::FollowerMode;
use crate::replicated::{self, Class};
use crate::server::Shared;
use crate::store::{Direct, PREFETCH_MAX};

/// Flush replies mid-batch once this many bytes are waiting, so a long pipeline of big
/// reads does not build an unbounded reply buffer.
const OUT_FLUSH: usize = 256 * 1024;
const READ_CHUNK: usize = 16 * 1024;
/// Quick commands that may share one clock reading.
const CLOCK_REUSE: u32 = 16;

pub use crate::clients::ClientInfo;

mod cluster;
use cluster::io_loop_cluster;

/// Per-connection state that commands change.
pub struct Conn {
    pub id: u64,
    pub resp3: bool,
    pub info: Arc<ClientInfo>,
    /// Commands queued after `MULTI`.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A command failed to queue: `EXEC` must abort.
    pub multi_failed: bool,
    /// `WATCH`ed keys: (shard, key hash, slot version when watched).
    pub watched: Vec<(usize, u64, u64)>,
    /// In a cluster, `WATCH`ed keys with the digest of their content when watched
    /// (checked when the `EXEC` record is applied; see `Shard::digest`).
    pub watched_values: Vec<(Bytes, u64)>,
    /// The database of the `WATCH`ed keys (`usize::MAX` when they span several): an
    /// `EXEC` in another database aborts, a false conflict the client retries.
    pub watch_db: Option<usize>,
    /// Channels and patterns this client subscribed to; `None` when there are none.
    pub sub: Option<Box<crate::pubsub::Subscription>>,
    /// The authenticated user; `None` until `AUTH`. Refreshed from `Shared::users`
    /// when its version moves (see [`Conn::refresh_user`]).
    pub user: Option<Arc<crate::acl::User>>,
    /// The version of `Shared::users` that `user` was taken from.
    pub acl_version: u64,
    /// The log's applier running a record without a user (the leader's expiry, records
    /// written before records named their user): admission skips the ACL.
    pub trusted: bool,
    /// A replica applying the log (not a client): nothing to log in `ACL LOG`.
    pub replica: bool,
    /// Close after flushing the replies (`QUIT`).
    pub close: bool,
    pub last_cmd: &'static str,
    pub hits: u64,
    pub misses: u64,
    /// The last window `park` counted this connection in (see [`crate::park::served_batch`]).
    pub park_seen: u32,
    /// `CLIENT REPLY`: whether replies are written.
    pub reply: ReplyMode,
    /// `MONITOR`: the lines this connection is fed.
    pub monitor: Option<tokio::sync::mpsc::Receiver<Bytes>>,
    /// The selected database (`SELECT`).
    pub db: usize,
    /// `CLIENT TRACKING` (see `crate::tracking`); `None` when off.
    pub tracking: Option<Box<crate::tracking::ConnTracking>>,
}

/// `CLIENT REPLY ON|OFF|SKIP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// No reply to the next command.
    Skip,
}

impl Conn {
    pub fn new(info: Arc<ClientInfo>) -> Conn {
        Conn {
            id: info.id,
            resp3: false,
            info,
            multi: None,
            multi_failed: false,
            watched: Vec::new(),
            watched_values: Vec::new(),
            watch_db: None,
            sub: None,
            user: None,
            acl_version: 0,
            trusted: false,
            replica: false,
            close: false,
            last_cmd: "NULL",
            hits: 0,
            misses: 0,
            park_seen: 0,
            reply: ReplyMode::On,
            monitor: None,
            db: 0,
            tracking: None,
        }
    }

    /// Leave `MULTI` (or never enter it): drop the queue, the failure mark and `WATCH`es.
    pub fn end_multi(&mut self) {
        self.multi = None;
        self.multi_failed = false;
        self.watched.clear();
        self.watched_values.clear();
        self.watch_db = None;
        self.info.in_multi.store(false, Ordering::Relaxed);
    }

    /// Authenticate as `user` (or drop authentication).
    pub fn set_user(&mut self, user: Option<Arc<crate::acl::User>>) {
        let name: Arc<str> = Arc::from(
            user.as_ref()
                .map_or(crate::acl::DEFAULT, |u| u.name.as_str()),
        );
        *self.info.user.lock() = name;
        self.user = user;
    }

    /// Pick up changes to the users since the last command: the user's new rules, or,
    /// when it was deleted, the end of this connection (as Redis closes them).
    pub fn refresh_user(&mut self, shared: &Shared) {
        let v = shared.users.version();
        if v == self.acl_version {
            return;
        }
        self.acl_version = v;
        if let Some(u) = &self.user {
            match shared.users.get(&u.name) {
                Some(fresh) => self.user = Some(fresh),
                None => {
                    self.user = None;
                    self.close = true;
                }
            }
        }
    }

    pub fn set_resp3(&mut self, on: bool) {
        self.resp3 = on;
        self.info
            .resp
            .store(if on { 3 } else { 2 }, Ordering::Relaxed);
    }
}

/// Serve one client until it disconnects, sends `QUIT`, or breaks the protocol.
pub async fn serve(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let laddr = stream.local_addr().unwrap_or(shared.local_addr);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    tune_socket(&stream, &shared);
    serve_stream(stream, peer, laddr, fd, shared).await;
}

/// No Nagle delay, and keepalive probes as `tcp-keepalive` says (Redis's scheme: the
/// first probe after that many idle seconds, then every third of it, three times), so a
/// client that vanished without closing is noticed and its connection freed.
pub fn tune_socket(stream: &TcpStream, shared: &Shared) {
    if let Err(e) = stream.set_nodelay(true) {
        debug!(error = %e, "set_nodelay");
    }
    let secs = shared.runtime.tcp_keepalive();
    if secs > 0 {
        let ka = socket2::TcpKeepalive::new()
            .with_time(std::time::Duration::from_secs(secs))
            .with_interval(std::time::Duration::from_secs((secs / 3).max(1)))
            .with_retries(3);
        if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&ka) {
            debug!(error = %e, "tcp keepalive");
        }
    }
}

/// Serve one client over any stream (plain TCP or TLS).
pub async fn serve_stream<S: ClientStream>(
    mut stream: S,
    peer: SocketAddr,
    laddr: SocketAddr,
    fd: i32,
    shared: Arc<Shared>,
) {
    // Refused before anything else, with Redis's words, as Redis does.
    let refusal =
        if crate::acl::protected_refuses(shared.runtime.protected_mode(), &shared.users, peer.ip())
        {
            Some(crate::acl::DENIED)
        } else if shared.connected.load(Ordering::Relaxed) >= shared.runtime.maxclients() {
            Some("-ERR max number of clients reached\r\n")
        } else {
            None
        };
    if let Some(msg) = refusal {
        shared
            .stats
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        let _ = stream.write_all(msg.as_bytes()).await;
        let _ = stream.shutdown().await;
        debug!(%peer, "connection refused");
        return;
    }
    let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
    let span = debug_span!("conn", id, %peer);
    async move {
        let info = Arc::new(ClientInfo::new(id, peer, laddr, fd));
        let me_info = info.clone();
        shared.clients.lock().insert(id, info.clone());
        shared.connected.fetch_add(1, Ordering::Relaxed);
        shared
            .stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        debug!("connected");
        let res = io_loop(stream, &shared, info).await;
        shared.clients.lock().remove(&id);
        shared.tracking.disable(id);
        crate::tracking::discard(&me_info);
        shared.connected.fetch_sub(1, Ordering::Relaxed);
        debug!(result = ?res.err(), "disconnected");
    }
    .instrument(span)
    .await
}

async fn io_loop<S: ClientStream>(
    mut stream: S,
    shared: &Shared,
    info: Arc<ClientInfo>,
) -> std::io::Result<()> {
    if let Some(cluster) = shared.cluster() {
        return io_loop_cluster(stream, shared, info, cluster).await;
    }
    let mut input = Input::new(shared);
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    let me = info.clone();
    let mut conn = Conn::new(info);
    conn.set_user(shared.users.initial());
    conn.acl_version = shared.users.version();
    let mut chunk: Vec<Vec<Bytes>> = Vec::with_capacity(PREFETCH_MAX);
    loop {
        if !next_input(&mut stream, &mut input, &mut out, &mut conn, &me, shared).await? {
            return Ok(());
        }
        let mut commands = 0u64;
        // One clock reading serves up to CLOCK_REUSE quick commands in a row; anything
        // slower (KEYS, EXEC, big MGETs...) makes the next command read the clock again.
        // So `now` is never more than a few microseconds old, far below the 1 ms
        // resolution of deadlines, and a pipeline does not pay a clock read per command.
        let start_us = now_us();
        let mut now = start_us / 1000;
        let mut reuse = 0u32;
        // Commands are decoded a chunk at a time, so that a pipeline's keys can be
        // prefetched together before the chunk runs (see `Store::prefetch`).
        loop {
            let mut bad_input = None;
            while chunk.len() < PREFETCH_MAX {
                match input.decode() {
                    Ok(Some(args)) => chunk.push(args),
                    Ok(None) => break,
                    Err(e) => {
                        bad_input = Some(e);
                        break;
                    }
                }
            }
            let more = bad_input.is_none() && chunk.len() == PREFETCH_MAX;
            if chunk.len() > 1 {
                if let Some(_pass) = shared.scripts.gate.enter() {
                    prefetch_keys(shared, &chunk);
                }
            }
            for args in chunk.drain(..) {
                commands += 1;
                if reuse >= CLOCK_REUSE {
                    now = now_ms();
                    reuse = 0;
                }
                if conn.multi.is_none() && crate::script::is_script(&args) {
                    (conn, out) = crate::script::offload(shared, conn, out, args, now).await?;
                    reuse = CLOCK_REUSE;
                    continue;
                }
                let quick = loop {
                    // A running script holds the store (see `crate::script`).
                    if let Some(_pass) = shared.scripts.gate.enter() {
                        break run_one(shared, &mut out, &mut conn, args, now);
                    }
                    if crate::script::runs_while_busy(&args) {
                        break run_one(shared, &mut out, &mut conn, args, now);
                    }
                    if !crate::script::wait_turn(shared, &mut conn, &args, &mut out).await {
                        break true;
                    }
                    now = now_ms();
                };
                reuse = if quick { reuse + 1 } else { CLOCK_REUSE };
                if conn.close {
                    break;
                }
                if out.len() >= OUT_FLUSH {
                    write_out(&mut stream, &mut out, shared).await?;
                    // The write may have waited on a slow reader: read the clock anew.
                    reuse = CLOCK_REUSE;
                }
            }
            if conn.close {
                break;
            }
            if let Some(e) = bad_input {
                protocol_error(shared, &mut out, &mut conn, &e);
                break;
            }
            if !more {
                break;
            }
        }
        finish_batch(shared, &mut conn, commands, now);
        // Let the other connections that are ready run first, then write: replies go
        // out in a burst after each pass over the ready connections, as Redis writes
        // them before it sleeps, so clients wake once for many replies.
        tokio::task::yield_now().await;
        if end_batch(&mut stream, &mut out, &conn, shared, start_us).await? {
            return Ok(());
        }
        input.trim();
        show_input(&me, &input);
    }
}

/// Run an admitted command against the store, directly.
fn run_admitted(
    shared: &Shared,
    out: &mut BytesMut,
    conn: &mut Conn,
    cmd: &cmd::admit::Admitted,
    args: Vec<Bytes>,
) {
    let mut ks = Direct(shared.db(conn.db));
    let mut ctx = Ctx {
        ks: &mut ks,
        out,
        conn,
        shared,
        now: now_ms(),
    };
    cmd::run_admitted(&mut ctx, cmd, args);
}

/// Admit and run one command against the store, directly.
fn run_one(
    shared: &Shared,
    out: &mut BytesMut,
    conn: &mut Conn,
    args: Vec<Bytes>,
    now: u64,
) -> bool {
    let mut ks = Direct(shared.db(conn.db));
    let mut ctx = Ctx {
        ks: &mut ks,
        out,
        conn,
        shared,
        now,
    };
    cmd::dispatch(&mut ctx, args)
}

/// Write a batch's replies, record how long the batch took, and close the connection
/// if a command asked for it. Returns whether it closed.
async fn end_batch<S: ClientStream>(
    stream: &mut S,
    out: &mut BytesMut,
    conn: &Conn,
    shared: &Shared,
    start_us: u64,
) -> std::io::Result<bool> {
    // While the replies wait on a slow reader, CLIENT LIST shows them pending.
    let info = &conn.info;
    info.obl.store(out.len() as u64, Ordering::Relaxed);
    info.omem.store(out.capacity() as u64, Ordering::Relaxed);
    write_out(stream, out, shared).await?;
    crate::tracking::written(info);
    info.obl.store(0, Ordering::Relaxed);
    info.omem.store(0, Ordering::Relaxed);
    shared
        .stats
        .batch_latency
        .record_us(now_us().saturating_sub(start_us));
    if conn.close {
        stream.shutdown().await.ok();
    }
    Ok(conn.close)
}

/// One step of writing replies (a write or a flush). Replies wait here while the client
/// does not read, and no more of its commands are read meanwhile, so a client that never
/// reads holds at most one batch of replies; one that accepts nothing for
/// `--client-write-timeout` seconds is cut. A step that completes at once (the usual
/// case) arms no timer.
async fn within_write_timeout<T>(
    step: impl std::future::Future<Output = std::io::Result<T>>,
    shared: &Shared,
) -> std::io::Result<T> {
    let mut step = std::pin::pin!(step);
    let first = std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::future::Future::poll(step.as_mut(), cx))
    })
    .await;
    if let std::task::Poll::Ready(r) = first {
        return r;
    }
    let secs = shared.config.client_write_timeout;
    if secs == 0 {
        return step.await;
    }
    match tokio::time::timeout(std::time::Duration::from_secs(secs), step).await {
        Ok(r) => r,
        Err(_) => {
            shared
                .stats
                .output_limit_disconnections
                .fetch_add(1, Ordering::Relaxed);
            debug!("client stopped reading its replies, closing");
            Err(std::io::ErrorKind::TimedOut.into())
        }
    }
}

/// Prefetch the keys of a pipelined chunk of commands: for the commands that take keys,
/// the first one is `args[1]`, and for the others a wasted prefetch is harmless.
pub(crate) fn prefetch_keys(shared: &Shared, cmds: &[Vec<Bytes>]) {
    shared
        .store
        .prefetch(cmds.iter().filter_map(|a| a.get(1)).map(|k| &k[..]));
}

/// A connection's read side: what has arrived and the decoder for it.
struct Input {
    decoder: CommandDecoder,
    buf: BytesMut,
    bulk_limit: u64,
}

impl Input {
    fn new(shared: &Shared) -> Input {
        let bulk_limit = shared.proto_max_bulk_len();
        let limits = Limits {
            max_bulk_len: bulk_limit,
            ..Limits::default()
        };
        Input {
            decoder: CommandDecoder::new(limits),
            buf: BytesMut::with_capacity(READ_CHUNK),
            bulk_limit,
        }
    }

    /// Read whatever has arrived; false when the client closed. Picks up a
    /// `proto-max-bulk-len` changed by `CONFIG SET` since the last read.
    async fn fill<S: ClientStream>(
        &mut self,
        stream: &mut S,
        shared: &Shared,
    ) -> std::io::Result<bool> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(READ_CHUNK);
        }
        let n = stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Ok(false);
        }
        shared
            .stats
            .net_input_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        // What is buffered is one unfinished command (complete ones were run): a client
        // that keeps one growing past the limit is cut, as Redis does at
        // client-query-buffer-limit.
        if self.buf.len() as u64 > shared.config.client_query_buffer_limit {
            shared
                .stats
                .query_limit_disconnections
                .fetch_add(1, Ordering::Relaxed);
            debug!(bytes = self.buf.len(), "query buffer limit, closing");
            return Ok(false);
        }
        let current = shared.proto_max_bulk_len();
        if current != self.bulk_limit {
            self.bulk_limit = current;
            let mut l = *self.decoder.limits();
            l.max_bulk_len = current;
            self.decoder.set_limits(l);
        }
        Ok(true)
    }

    fn decode(&mut self) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        self.decoder.decode(&mut self.buf)
    }

    /// Give a big buffer back after a burst of large commands.
    fn trim(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 4 * 1024 * 1024 {
            self.buf = BytesMut::with_capacity(READ_CHUNK);
        }
    }
}

/// Wait for the client's next bytes; false when it closed. A subscribed client's
/// messages are written as they arrive meanwhile.
/// `info` is the connection's own (`conn.info`), held apart so that waiting on its
/// `CLIENT KILL` needs no reference count per batch.
async fn next_input<S: ClientStream>(
    stream: &mut S,
    input: &mut Input,
    out: &mut BytesMut,
    conn: &mut Conn,
    info: &ClientInfo,
    shared: &Shared,
) -> std::io::Result<bool> {
    let more = tokio::select! {
        r = wait_input(stream, input, out, conn, info, shared) => r?,
        () = info.kill.notified() => false,
    };
    // What CLIENT LIST shows while this batch runs: the commands just read.
    show_input(info, input);
    Ok(more && !info.killed.load(Ordering::Relaxed))
}

async fn wait_input<S: ClientStream>(
    stream: &mut S,
    input: &mut Input,
    out: &mut BytesMut,
    conn: &mut Conn,
    info: &ClientInfo,
    shared: &Shared,
) -> std::io::Result<bool> {
    let idle = shared.runtime.timeout();
    loop {
        // Invalidations (client tracking) are written while the client waits. Only a
        // RESP3 connection or a subscriber can be sent any, so only they wait on them.
        crate::tracking::drain(info, out);
        write_out(stream, out, shared).await?;
        crate::tracking::written(info);
        let pushes = conn.resp3 || conn.sub.is_some();
        if let Some(mon) = conn.monitor.as_mut() {
            tokio::select! {
                r = input.fill(stream, shared) => return r,
                Some(line) = mon.recv() => {
                    drain(line, mon, out, |l, out| out.extend_from_slice(l));
                    write_out(stream, out, shared).await?;
                }
            }
            continue;
        }
        let Some(sub) = conn.sub.as_mut() else {
            let fill = fill_within(stream, input, shared, idle);
            if !pushes {
                return fill.await;
            }
            tokio::select! {
                r = fill => return r,
                () = info.wake.notified() => continue,
            }
        };
        tokio::select! {
            // Reading is cancel-safe: bytes are only taken into `input` by a read that
            // completes.
            r = input.fill(stream, shared) => return r,
            () = info.wake.notified() => {}
            Some(msg) = sub.rx.recv() => {
                let resp3 = conn.resp3;
                drain(msg, &mut sub.rx, out, |m, out| m.encode(out, resp3));
                if sub.overflow.load(Ordering::Relaxed) {
                    // Redis's pubsub output buffer limit: a client this far behind is cut.
                    debug!("subscriber too slow, closing");
                    return Ok(false);
                }
                write_out(stream, out, shared).await?;
            }
        }
    }
}

/// Read the client's next bytes; with `timeout` set, an idle client is closed
/// (subscribers are exempt, as in Redis: they do not come here).
async fn fill_within<S: ClientStream>(
    stream: &mut S,
    input: &mut Input,
    shared: &Shared,
    idle: u64,
) -> std::io::Result<bool> {
    if idle == 0 {
        return input.fill(stream, shared).await;
    }
    match tokio::time::timeout(
        std::time::Duration::from_secs(idle),
        input.fill(stream, shared),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => {
            debug!("idle timeout, closing");
            Ok(false)
        }
    }
}

/// Write `first`, then whatever else is already queued, up to a flush's worth.
fn drain<T>(
    first: T,
    rx: &mut tokio::sync::mpsc::Receiver<T>,
    out: &mut BytesMut,
    put: impl Fn(&T, &mut BytesMut),
) {
    put(&first, out);
    while out.len() < OUT_FLUSH {
        match rx.try_recv() {
            Ok(m) => put(&m, out),
            Err(_) => break,
        }
    }
}

/// Reply Redis's protocol error and mark the connection to close after the flush.
fn protocol_error(shared: &Shared, out: &mut BytesMut, conn: &mut Conn, e: &ProtocolError) {
    shared.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
    let msg = format!("-ERR Protocol error: {e}\r\n");
    out.extend_from_slice(msg.as_bytes());
    debug!(error = %e, "protocol error, closing");
    conn.close = true;
}

async fn write_out<S: ClientStream>(
    stream: &mut S,
    out: &mut BytesMut,
    shared: &Shared,
) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let cfg = &shared.config;
    if out.len() as u64 > cfg.client_output_limit {
        // One reply beyond the limit (a huge MGET or HGETALL): cut the client, as Redis
        // does past client-output-buffer-limit, rather than keep building more.
        shared
            .stats
            .output_limit_disconnections
            .fetch_add(1, Ordering::Relaxed);
        debug!(bytes = out.len(), "output buffer limit, closing");
        return Err(std::io::Error::other("client output buffer limit"));
    }
    let mut pos = 0;
    while pos < out.len() {
        let n = within_write_timeout(stream.write(&out[pos..]), shared).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        pos += n;
    }
    // A TLS stream may have taken bytes it could not send yet (the socket was full):
    // push them out under the same limit. A plain socket is flushed at once.
    within_write_timeout(stream.flush(), shared).await?;
    shared
        .stats
        .net_output_bytes
        .fetch_add(out.len() as u64, Ordering::Relaxed);
    out.clear();
    if out.capacity() > 4 * 1024 * 1024 {
        *out = BytesMut::with_capacity(READ_CHUNK);
    }
    Ok(())
}

/// Publish this batch's counters to the shared stats, and count the batch for
/// [`crate::park`].
fn finish_batch(shared: &Shared, conn: &mut Conn, commands: u64, now: u64) {
    if commands == 0 {
        return;
    }
    crate::park::served_batch(&mut conn.park_seen);
    let st = &shared.stats;
    st.commands.fetch_add(commands, Ordering::Relaxed);
    if conn.hits > 0 {
        st.keyspace_hits.fetch_add(conn.hits, Ordering::Relaxed);
        conn.hits = 0;
    }
    if conn.misses > 0 {
        st.keyspace_misses.fetch_add(conn.misses, Ordering::Relaxed);
        conn.misses = 0;
    }
    let info = &conn.info;
    info.last_active_ms.store(now, Ordering::Relaxed);
    *info.last_cmd.lock() = conn.last_cmd;
    let (sub, psub) = conn
        .sub
        .as_ref()
        .map_or((0, 0), |s| (s.channels.len(), s.patterns.len()));
    info.sub.store(sub as u64, Ordering::Relaxed);
    info.psub.store(psub as u64, Ordering::Relaxed);
    let queued = conn.multi.as_ref().map_or(-1, |q| q.len() as i64);
    info.multi.store(queued, Ordering::Relaxed);
}

/// The query buffer as `CLIENT LIST` shows it: while a batch runs, its commands; after
/// it, what is left (an unfinished command).
fn show_input(info: &ClientInfo, input: &Input) {
    let buf = &input.buf;
    info.qbuf.store(buf.len() as u64, Ordering::Relaxed);
    info.qbuf_free
        .store((buf.capacity() - buf.len()) as u64, Ordering::Relaxed);
}
