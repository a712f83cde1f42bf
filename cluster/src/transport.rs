//! Node-to-node messages over TCP.
//!
//! Each frame is a big-endian `u32` length and a `prost`-encoded [`PeerFrame`], which
//! carries one raft message (in raft-rs's own protobuf encoding) and, first on every
//! connection, a [`Hello`] naming the sender and its client address. Frames are validated
//! before they reach raft: a frame that is too big, does not decode, or is addressed to
//! another node drops that connection, never the node.
//!
//! The transport runs on its own small tokio runtime thread. Outbound, each peer has an
//! outbox (one buffer under a lock) and a task that connects, reconnects with backoff,
//! and writes whatever the outbox holds in one write. The raft thread encodes each
//! message straight into the outbox, so an entry's bytes are copied once on their way
//! to the socket, and when nothing is queued ahead of it, it writes the message to the
//! socket itself (non-blocking), so the network thread is woken only for what the
//! socket does not take at once. Raft retransmits, so a message that finds the outbox
//! full or its peer down is dropped. Inbound, a listener hands decoded messages to the
//! raft thread's channel; the entries' data are slices of the buffer the frame was read
//! into, not copies. (The leader used to copy each entry three times per follower and each
//! follower twice more on receipt; the copies were the largest item of the network
//! thread.)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use crossbeam::channel::Sender;
use parking_lot::Mutex;
use protobuf::Message as PbMessage;
use raft::prelude::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::clocks::{ClockStamp, Clocks};
use crate::liveness::{self, ConnectTimer, Heard};
use crate::node::Event;

/// The largest frame accepted. Snapshots travel in one message, so this bounds the
/// largest snapshot too.
pub const MAX_FRAME: usize = 1 << 30;
/// A message bigger than this (a snapshot) is encoded outside the outbox's lock.
const BIG_MESSAGE: usize = 1 << 20;
/// An outbox holding this much is full: its peer is not keeping up.
const OUTBOX_LIMIT: usize = 64 << 20;
/// An outbox buffer bigger than this after a write (a snapshot went through it) is
/// given back.
const OUTBOX_KEEP: usize = 4 << 20;
const BACKOFF: Duration = Duration::from_millis(50);

/// One frame between nodes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PeerFrame {
    /// Sender node id.
    #[prost(uint64, tag = "1")]
    pub from: u64,
    /// Receiver node id.
    #[prost(uint64, tag = "2")]
    pub to: u64,
    /// A raft `eraftpb::Message`, protobuf-encoded; empty in a hello-only frame.
    #[prost(bytes = "bytes", tag = "3")]
    pub raft: Bytes,
    #[prost(message, optional, tag = "4")]
    pub hello: Option<Hello>,
    /// The invalidation fence's word (see `crate::fence`).
    #[prost(message, optional, tag = "5")]
    pub applied: Option<Applied>,
    /// The sender's clock (see `crate::clocks`).
    #[prost(message, optional, tag = "6")]
    pub clock: Option<ClockStamp>,
}

/// A node's applied index, for the invalidation fence (`crate::fence`): from a
/// follower, its own; from the leader, also whether replies wait and how far every
/// node with caching clients has applied.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Applied {
    #[prost(uint64, tag = "1")]
    pub index: u64,
    /// The sender has clients that cache keys.
    #[prost(bool, tag = "2")]
    pub tracking: bool,
    /// Leader: replies wait for `safe`.
    #[prost(bool, tag = "3")]
    pub fence: bool,
    /// Leader: every node with caching clients has applied this far.
    #[prost(uint64, tag = "4")]
    pub safe: u64,
}

/// Who is on the other end of a connection.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Hello {
    #[prost(uint64, tag = "1")]
    pub node_id: u64,
    /// Where the sender serves clients (host:port).
    #[prost(string, tag = "2")]
    pub client_addr: String,
    /// Where the sender listens for peers.
    #[prost(string, tag = "3")]
    pub raft_addr: String,
}

fn encode_frame(frame: &PeerFrame, out: &mut Vec<u8>) {
    let len = prost::Message::encoded_len(frame);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    // Encoding into a Vec cannot run out of room.
    let _ = prost::Message::encode(frame, out);
}

/// Split one frame off the front of `buf`. `Ok(None)`: not all of it has arrived.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<PeerFrame>, String> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME {
        return Err(format!(
            "frame of {len} bytes exceeds the limit of {MAX_FRAME}"
        ));
    }
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    // Decoding from `Bytes` makes the raft field a slice of the frame, not a copy.
    let body = buf.split_to(len).freeze();
    <PeerFrame as prost::Message>::decode(body)
        .map(Some)
        .map_err(|e| format!("undecodable frame: {e}"))
}

/// Append the frame that carries `msg` to `out`, encoding the message in place: the
/// same bytes as [`encode_frame`] of a [`PeerFrame`] whose `raft` is `msg` encoded.
/// `size` is `msg.compute_size()`, which must have been called (it caches the sizes the
/// encoder writes with).
fn encode_raft_frame(from: u64, msg: &Message, size: usize, out: &mut Vec<u8>) -> bool {
    use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, uint64};
    let mut len = key_len(3) + encoded_len_varint(size as u64) + size;
    if from != 0 {
        len += uint64::encoded_len(1, &from);
    }
    if msg.to != 0 {
        len += uint64::encoded_len(2, &msg.to);
    }
    let start = out.len();
    out.reserve(4 + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    if from != 0 {
        uint64::encode(1, &from, out);
    }
    if msg.to != 0 {
        uint64::encode(2, &msg.to, out);
    }
    encode_key(3, prost::encoding::WireType::LengthDelimited, out);
    encode_varint(size as u64, out);
    let body = out.len();
    let mut os = protobuf::CodedOutputStream::vec(out);
    let ok = msg.write_to_with_cached_sizes(&mut os).is_ok() && os.flush().is_ok();
    if !ok || out.len() - body != size {
        out.truncate(start);
        return false;
    }
    true
}

/// What the raft thread has queued for one peer, and how the peer's task is woken.
#[derive(Default)]
struct Outbox {
    state: Mutex<Queued>,
    wake: tokio::sync::Notify,
    /// Set when the peer is removed: its task ends.
    closed: std::sync::atomic::AtomicBool,
}

impl Outbox {
    fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_one();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Drop whatever is queued (the peer is unreachable: raft resends).
    fn clear(&self) {
        self.state.lock().buf.clear();
    }
}

#[derive(Default)]
struct Queued {
    /// Whole frames, except after a partial direct write: then the rest of one frame,
    /// then whole frames.
    buf: Vec<u8>,
    /// The connection (a second handle on the task's socket, non-blocking), for the
    /// raft thread to write to itself while the task is idle.
    direct: Option<std::net::TcpStream>,
    /// The task has taken bytes to write: until it is done, the raft thread only queues.
    busy: bool,
    /// A connection is up. Without one nothing is queued: what piles up while a link
    /// is down is stale when it comes back (raft resends what matters), and a burst of
    /// stale heartbeats made a follower answer each one at once.
    connected: bool,
}

impl Queued {
    /// With nothing queued ahead and the task idle: write the buffer to the socket from
    /// this thread. True if all of it went; otherwise what is left is the task's to
    /// write (when the socket has room, or to find the connection broken).
    fn write_direct(&mut self) -> bool {
        if let Some(sock) = &self.direct {
            match std::io::Write::write(&mut &*sock, &self.buf) {
                Ok(n) if n == self.buf.len() => {
                    self.buf.clear();
                    return true;
                }
                Ok(n) => {
                    self.buf.drain(..n);
                }
                Err(_) => {}
            }
        }
        self.busy = true;
        false
    }
}

struct Link {
    addr: String,
    outbox: Arc<Outbox>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.outbox.close();
    }
}

/// How peers prove who they are: the shared secret's challenge, mutual TLS, or both.
#[derive(Clone, Default)]
pub struct Security {
    pub secret: Option<Arc<[u8]>>,
    pub tls: Option<crate::PeerTls>,
}

/// The node's side of the network.
pub struct Transport {
    me: u64,
    hello: Hello,
    security: Security,
    links: Mutex<HashMap<u64, Link>>,
    /// The raft thread's channel: peers' messages, and word of lost connections.
    inbound: Sender<Event>,
    heard: Arc<Heard>,
    /// The peers' clocks against this node's.
    pub clocks: Arc<Clocks>,
    rt: tokio::runtime::Handle,
    pub local_addr: SocketAddr,
}

impl Transport {
    /// Bind the raft port and start the network thread.
    pub fn start(
        me: u64,
        listen: &str,
        hello: Hello,
        security: Security,
        inbound: Sender<Event>,
    ) -> std::io::Result<Arc<Transport>> {
        let std_listener = std::net::TcpListener::bind(listen)?;
        std_listener.set_nonblocking(true)?;
        let local_addr = std_listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let listener = {
            let _guard = rt.enter();
            TcpListener::from_std(std_listener)?
        };
        let heard = Arc::new(Heard::default());
        let clocks = Arc::new(Clocks::default());
        std::thread::Builder::new().name("raft-net".into()).spawn({
            let security = security.clone();
            let seen = Seen {
                inbound: inbound.clone(),
                heard: heard.clone(),
                clocks: clocks.clone(),
            };
            move || rt.block_on(accept_loop(listener, me, security, seen))
        })?;
        info!(%local_addr, tls = security.tls.is_some(), "raft transport listening");
        Ok(Arc::new(Transport {
            me,
            hello,
            security,
            links: Mutex::new(HashMap::new()),
            inbound,
            heard,
            clocks,
            rt: handle,
            local_addr,
        }))
    }

    /// Add or move a peer.
    pub fn set_peer(&self, id: u64, addr: &str) {
        if id == self.me {
            return;
        }
        let mut links = self.links.lock();
        if links.get(&id).is_some_and(|l| l.addr == addr) {
            return;
        }
        let outbox = Arc::new(Outbox::default());
        let hello = PeerFrame {
            from: self.me,
            to: id,
            raft: Bytes::new(),
            hello: Some(self.hello.clone()),
            applied: None,
            clock: None,
        };
        self.rt.spawn(send_loop(
            Peer {
                id,
                me: self.me,
                clocks: self.clocks.clone(),
                addr: addr.to_string(),
                outbox: outbox.clone(),
                heard: self.heard.clone(),
                inbound: self.inbound.clone(),
            },
            hello,
            self.security.clone(),
        ));
        links.insert(
            id,
            Link {
                addr: addr.to_string(),
                outbox,
            },
        );
    }

    pub fn remove_peer(&self, id: u64) {
        // Dropping the sender ends the peer's task.
        self.links.lock().remove(&id);
    }

    pub fn peer_addr(&self, id: u64) -> Option<String> {
        self.links.lock().get(&id).map(|l| l.addr.clone())
    }

    /// Queue the invalidation fence's word for a peer. Returns false when dropped.
    pub fn send_applied(&self, to: u64, applied: Applied) -> bool {
        let frame = PeerFrame {
            from: self.me,
            to,
            raft: Bytes::new(),
            hello: None,
            applied: Some(applied),
            clock: None,
        };
        self.enqueue(to, true, |buf| {
            encode_frame(&frame, buf);
            true
        })
    }

    /// Queue a raft message. Returns false when it was dropped.
    pub fn send(&self, msg: &Message) -> bool {
        // Computed once: it also caches the sizes the encoder writes with.
        let size = msg.compute_size() as usize;
        if size <= BIG_MESSAGE {
            return self.enqueue(msg.to, true, |buf| {
                encode_raft_frame(self.me, msg, size, buf)
            });
        }
        // A snapshot is encoded without the lock, which the network thread also takes,
        // and left to the peer's task to write.
        let mut big = Vec::new();
        if !encode_raft_frame(self.me, msg, size, &mut big) {
            return false;
        }
        self.enqueue(msg.to, false, |buf| {
            if buf.is_empty() {
                *buf = std::mem::take(&mut big);
            } else {
                buf.extend_from_slice(&big);
            }
            true
        })
    }

    /// Append a frame to a peer's outbox (`encode` writes it; false drops it). With
    /// `direct`, a frame into an empty, idle outbox is written at once on this thread;
    /// otherwise the peer's task is woken to write it.
    fn enqueue(&self, to: u64, direct: bool, encode: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
        let Some(outbox) = self.links.lock().get(&to).map(|l| l.outbox.clone()) else {
            return false;
        };
        let mut q = outbox.state.lock();
        if !q.connected || q.buf.len() >= OUTBOX_LIMIT {
            return false;
        }
        let was_empty = q.buf.is_empty();
        if !encode(&mut q.buf) {
            return false;
        }
        if direct && was_empty && !q.busy && q.write_direct() {
            return true;
        }
        drop(q);
        // A non-empty outbox has already woken its task, which has not taken it yet.
        if was_empty {
            outbox.wake.notify_one();
        }
        true
    }
}

/// Attempts in flight at once, at most; and how long one call keeps trying.
const CONNECT_ATTEMPTS: u32 = 4;
const CONNECT_FOR: Duration = Duration::from_secs(3);

/// Connect to `addr`. Every connect timeout (see `liveness::ConnectTimer`) without an
/// answer, a fresh attempt starts beside the others (a new SYN now, not at the kernel's
/// 1 s retransmission), each living for `CONNECT_ATTEMPTS` timeouts; the first to succeed
/// wins. A refusal ends it at once; so does `CONNECT_FOR` without success.
async fn connect(addr: &str, timer: &mut ConnectTimer) -> std::io::Result<TcpStream> {
    let mut attempts = tokio::task::JoinSet::new();
    let give_up = std::time::Instant::now() + CONNECT_FOR;
    loop {
        let t = timer.timeout();
        if std::time::Instant::now() < give_up {
            let (addr, began) = (addr.to_string(), std::time::Instant::now());
            attempts.spawn(async move {
                match tokio::time::timeout(t * CONNECT_ATTEMPTS, TcpStream::connect(addr)).await {
                    Ok(r) => r.map(|s| (s, began)),
                    Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
                }
            });
        } else if attempts.is_empty() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        let next = tokio::time::sleep(t);
        tokio::pin!(next);
        loop {
            tokio::select! {
                Some(done) = attempts.join_next() => match done {
                    Ok(Ok((s, began))) => {
                        timer.observe(began.elapsed());
                        return Ok(s);
                    }
                    Ok(Err(e)) if e.kind() != std::io::ErrorKind::TimedOut => return Err(e),
                    _ => {}
                },
                () = &mut next => break,
            }
        }
    }
}

/// One peer's sending task's world.
struct Peer {
    id: u64,
    me: u64,
    clocks: Arc<Clocks>,
    addr: String,
    outbox: Arc<Outbox>,
    heard: Arc<Heard>,
    inbound: Sender<Event>,
}

impl Peer {
    /// The connection is gone: raft should resend from what the peer has.
    fn lost(&self) {
        reset_outbox(&self.outbox);
        let _ = self.inbound.try_send(Event::Unreachable(self.id));
    }
}

async fn send_loop(peer: Peer, hello: PeerFrame, security: Security) {
    let Peer {
        id,
        ref addr,
        ref outbox,
        ..
    } = peer;
    let mut hello_buf = Vec::new();
    encode_frame(&hello, &mut hello_buf);
    let mut logged = false;
    let mut timer = ConnectTimer::default();
    loop {
        if outbox.is_closed() {
            return;
        }
        let stream = match connect(addr, &mut timer).await {
            Ok(s) => s,
            Err(e) => {
                if !logged {
                    debug!(peer = id, %addr, error = %e, "cannot reach peer");
                    logged = true;
                }
                // Messages queued while the peer is down are stale: raft resends.
                outbox.clear();
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
        };
        logged = false;
        stream.set_nodelay(true).ok();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        if !liveness::tune(fd) {
            debug!(peer = id, "peer socket options refused");
        }
        debug!(peer = id, %addr, "connected to peer");
        let mut stream = stream;
        if let Some(tls) = &security.tls {
            // Over TLS every write goes through the session: no direct writes.
            let Some(mut s) = tls_connect(tls, addr, stream, id).await else {
                tokio::time::sleep(BACKOFF).await;
                continue;
            };
            if !prove_secret(&mut s, &security, id, addr).await {
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
            if s.write_all(&hello_buf).await.is_err() || s.flush().await.is_err() {
                continue;
            }
            outbox.state.lock().connected = true;
            if write_loop(&mut s, &peer, fd).await {
                return;
            }
            peer.lost();
            continue;
        }
        if !prove_secret(&mut stream, &security, id, addr).await {
            tokio::time::sleep(BACKOFF).await;
            continue;
        }
        if stream.write_all(&hello_buf).await.is_err() {
            continue;
        }
        // A second handle on the socket, for the raft thread's own writes.
        let (mut stream, direct) = match stream
            .into_std()
            .and_then(|s| Ok((s.try_clone()?, s)))
            .and_then(|(d, s)| Ok((TcpStream::from_std(s)?, d)))
        {
            Ok(x) => x,
            Err(e) => {
                debug!(peer = id, error = %e, "cannot share the peer connection");
                continue;
            }
        };
        {
            let mut q = outbox.state.lock();
            q.direct = Some(direct);
            q.connected = true;
        }
        if write_loop(&mut stream, &peer, fd).await {
            return;
        }
        peer.lost();
    }
}

/// After a connection is lost: what is queued may begin inside a frame that went out on
/// it; raft resends what matters.
fn reset_outbox(outbox: &Outbox) {
    let mut q = outbox.state.lock();
    q.direct = None;
    q.busy = false;
    q.connected = false;
    q.buf.clear();
}

/// Whether the connection on `fd` to `peer` is stuck (see `liveness`); says so.
fn stuck(peer: &Peer, fd: std::os::fd::RawFd) -> bool {
    let Some(f) = liveness::in_flight(fd) else {
        return false;
    };
    let stuck = liveness::stuck(f, peer.heard.ago(peer.id));
    if stuck {
        info!(
            peer = peer.id,
            unacked = f.unacked,
            since_ack_ms = f.since_ack.as_millis() as u64,
            "peer connection stuck while the peer answers: reconnecting"
        );
    }
    stuck
}

/// Write what the raft thread queues until the connection breaks or sticks (false) or
/// the peer is removed (true). Two buffers change places: the raft thread fills one
/// while this writes the other. Every `liveness::CHECK_EVERY`, idle or writing, the
/// connection's progress is checked.
async fn write_loop<S: AsyncWrite + Unpin>(
    stream: &mut S,
    peer: &Peer,
    fd: std::os::fd::RawFd,
) -> bool {
    let (outbox, id) = (&*peer.outbox, peer.id);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut stamped: Option<std::time::Instant> = None;
    loop {
        if outbox.is_closed() {
            return true;
        }
        {
            let mut q = outbox.state.lock();
            if stamped.is_none_or(|t| t.elapsed() >= crate::clocks::STAMP_EVERY) {
                stamped = Some(std::time::Instant::now());
                let frame = PeerFrame {
                    from: peer.me,
                    to: id,
                    clock: Some(peer.clocks.stamp_for(id)),
                    ..PeerFrame::default()
                };
                encode_frame(&frame, &mut q.buf);
            }
            q.busy = !q.buf.is_empty();
            std::mem::swap(&mut buf, &mut q.buf);
        }
        if buf.is_empty() {
            let woken = tokio::time::timeout(liveness::CHECK_EVERY, outbox.wake.notified()).await;
            // The raft thread writes to the socket itself while this task is idle.
            if woken.is_err() && stuck(peer, fd) {
                return false;
            }
            continue;
        }
        // A TLS session holds what it encrypted until flushed; a socket flushes at once.
        let write = async {
            stream.write_all(&buf).await?;
            stream.flush().await
        };
        tokio::pin!(write);
        let res = loop {
            tokio::select! {
                r = &mut write => break r,
                () = tokio::time::sleep(liveness::CHECK_EVERY) => {
                    if stuck(peer, fd) {
                        return false;
                    }
                }
            }
        };
        if let Err(e) = res {
            debug!(peer = id, error = %e, "peer connection lost");
            return false;
        }
        buf.clear();
        if buf.capacity() > OUTBOX_KEEP {
            buf = Vec::with_capacity(64 * 1024);
        }
    }
}

/// The connecting side's TLS handshake; the peer's certificate must chain to the
/// cluster's CA and name the host it was reached at.
async fn tls_connect(
    tls: &crate::PeerTls,
    addr: &str,
    stream: TcpStream,
    id: u64,
) -> Option<tokio_rustls::client::TlsStream<TcpStream>> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let Ok(name) = rustls::pki_types::ServerName::try_from(host.to_string()) else {
        warn!(peer = id, %addr, "peer address is not a valid TLS server name");
        return None;
    };
    let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
    match tokio::time::timeout(
        crate::peer_auth::HANDSHAKE_TIMEOUT,
        connector.connect(name, stream),
    )
    .await
    {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            warn!(peer = id, %addr, error = %e, "peer TLS handshake failed");
            None
        }
        Err(_) => {
            warn!(peer = id, %addr, "peer TLS handshake timed out");
            None
        }
    }
}

/// The connecting side of the secret's challenge, when there is a secret.
async fn prove_secret<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    security: &Security,
    id: u64,
    addr: &str,
) -> bool {
    let Some(secret) = &security.secret else {
        return true;
    };
    let hs = crate::peer_auth::connect(s, secret);
    match tokio::time::timeout(crate::peer_auth::HANDSHAKE_TIMEOUT, hs).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            warn!(peer = id, %addr, error = %e, "peer handshake failed");
            false
        }
        Err(_) => {
            warn!(peer = id, %addr, "peer handshake timed out");
            false
        }
    }
}

/// Where what arrives from peers goes.
#[derive(Clone)]
struct Seen {
    inbound: Sender<Event>,
    heard: Arc<Heard>,
    clocks: Arc<Clocks>,
}

async fn accept_loop(listener: TcpListener, me: u64, security: Security, seen: Seen) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                stream.set_nodelay(true).ok();
                // Keepalive reaps a connection whose sender vanished with the link.
                liveness::tune(std::os::fd::AsRawFd::as_raw_fd(&stream));
                let security = security.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let r = match &security.tls {
                        Some(tls) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
                            let hs = acceptor.accept(stream);
                            match tokio::time::timeout(crate::peer_auth::HANDSHAKE_TIMEOUT, hs)
                                .await
                            {
                                Ok(Ok(mut s)) => {
                                    if !check_secret(&mut s, &security, peer).await {
                                        return;
                                    }
                                    recv_loop(s, me, &seen).await
                                }
                                Ok(Err(e)) => {
                                    warn!(%peer, error = %e, "rejected a peer connection: TLS");
                                    return;
                                }
                                Err(_) => {
                                    warn!(%peer, "rejected a peer connection: no TLS handshake in time");
                                    return;
                                }
                            }
                        }
                        None => {
                            let mut stream = stream;
                            if !check_secret(&mut stream, &security, peer).await {
                                return;
                            }
                            recv_loop(stream, me, &seen).await
                        }
                    };
                    if let Err(e) = r {
                        warn!(%peer, error = %e, "dropping peer connection");
                    }
                });
            }
            Err(e) => {
                warn!(error = %e, "raft accept failed");
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
}

/// The accepting side of the secret's challenge, when there is a secret.
async fn check_secret<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    security: &Security,
    peer: SocketAddr,
) -> bool {
    let Some(secret) = &security.secret else {
        return true;
    };
    let hs = crate::peer_auth::accept(s, secret);
    match tokio::time::timeout(crate::peer_auth::HANDSHAKE_TIMEOUT, hs).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            warn!(%peer, error = %e, "rejected a peer connection");
            false
        }
        Err(_) => {
            warn!(%peer, "rejected a peer connection: no handshake in time");
            false
        }
    }
}

/// raft-rs forwards a proposal or a read request that reached a follower to the leader
/// as it came, naming the node that first sent it: such a message's `from` is not the
/// frame's sender. Every other message is from the node that sends it.
fn forwarded(msg: &Message) -> bool {
    use raft::prelude::MessageType::{MsgPropose, MsgReadIndex};
    matches!(msg.get_msg_type(), MsgPropose | MsgReadIndex) && msg.from != 0
}

async fn recv_loop<S: AsyncRead + Unpin>(
    mut stream: S,
    me: u64,
    seen: &Seen,
) -> Result<(), String> {
    let (inbound, heard) = (&seen.inbound, &seen.heard);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut from = 0;
    loop {
        while let Some(frame) = decode_frame(&mut buf)? {
            from = frame.from;
            if frame.to != me {
                return Err(format!("frame for node {} reached node {me}", frame.to));
            }
            if let Some(h) = frame.hello {
                if h.node_id != frame.from {
                    return Err("hello names another node than the frame".into());
                }
                let _ = inbound.try_send(Event::Hello(h));
            }
            if let Some(c) = &frame.clock {
                seen.clocks
                    .received(frame.from, c, crate::clocks::wall_us());
            }
            if let Some(a) = frame.applied {
                let _ = inbound.try_send(Event::Applied(frame.from, a));
            }
            if !frame.raft.is_empty() {
                let msg = Message::parse_from_carllerche_bytes(&frame.raft)
                    .map_err(|e| format!("undecodable raft message: {e}"))?;
                if msg.to != me || (msg.from != frame.from && !forwarded(&msg)) {
                    return Err("raft message addressed inconsistently".into());
                }
                // A full channel means the raft thread is behind: drop, raft resends.
                let _ = inbound.try_send(Event::Raft(Box::new(msg)));
            }
        }
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        if from != 0 {
            heard.mark(from);
        }
        let n = stream.read_buf(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_split_anywhere() {
        let f = PeerFrame {
            from: 1,
            to: 2,
            raft: Bytes::from_static(&[1, 2, 3]),
            hello: Some(Hello {
                node_id: 1,
                client_addr: "127.0.0.1:7001".into(),
                raft_addr: "127.0.0.1:17001".into(),
            }),
            applied: Some(Applied {
                index: 7,
                tracking: true,
                fence: false,
                safe: 0,
            }),
            clock: Some(ClockStamp {
                sent_us: 5,
                echo_us: 3,
                held_us: 1,
            }),
        };
        let mut wire = Vec::new();
        encode_frame(&f, &mut wire);
        encode_frame(&f, &mut wire);
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut got = Vec::new();
            while let Some(x) = decode_frame(&mut buf).expect("valid") {
                got.push(x);
            }
            buf.extend_from_slice(&wire[cut..]);
            while let Some(x) = decode_frame(&mut buf).expect("valid") {
                got.push(x);
            }
            assert_eq!(got, vec![f.clone(), f.clone()]);
        }
    }

    #[test]
    fn raft_frames_encoded_in_place_decode_to_the_same_message_without_copies() {
        let mut msg = Message::default();
        msg.set_msg_type(raft::prelude::MessageType::MsgAppend);
        msg.from = 1;
        msg.to = 2;
        msg.term = 7;
        let mut e = raft::prelude::Entry::default();
        e.index = 9;
        e.data = Bytes::from(vec![b'x'; 1000]);
        msg.entries.push(e);
        let mut wire = Vec::new();
        let size = msg.compute_size() as usize;
        assert!(encode_raft_frame(1, &msg, size, &mut wire));
        // The same bytes as the frame built the plain way.
        let plain = PeerFrame {
            from: 1,
            to: 2,
            raft: msg.write_to_bytes().expect("encode").into(),
            hello: None,
            applied: None,
            clock: None,
        };
        let mut expect = Vec::new();
        encode_frame(&plain, &mut expect);
        assert_eq!(wire, expect);

        let mut buf = BytesMut::from(&wire[..]);
        let frame = decode_frame(&mut buf).expect("valid").expect("whole");
        let got = Message::parse_from_carllerche_bytes(&frame.raft).expect("raft message");
        assert_eq!(got, msg);
        // The entry's data points into the frame, not at a copy of it.
        let data = got.entries[0].data.as_ptr_range();
        let raft = frame.raft.as_ptr_range();
        assert!(raft.start <= data.start && data.end <= raft.end);
    }

    fn raft_frame(from: u64, msg: &Message) -> Vec<u8> {
        let mut wire = Vec::new();
        let size = msg.compute_size() as usize;
        assert!(encode_raft_frame(from, msg, size, &mut wire));
        wire
    }

    fn message(t: raft::prelude::MessageType, from: u64, to: u64) -> Message {
        let mut m = Message::default();
        m.set_msg_type(t);
        m.from = from;
        m.to = to;
        m
    }

    /// Feed `wire` to a receiving connection of node 2; what reached the raft thread,
    /// and whether the connection was dropped.
    fn receive(wire: Vec<u8>) -> (Vec<Message>, Result<(), String>) {
        let (tx, rx) = crossbeam::channel::unbounded();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let seen = Seen {
            inbound: tx,
            heard: Arc::new(Heard::default()),
            clocks: Arc::new(Clocks::default()),
        };
        let res = rt.block_on(recv_loop(&wire[..], 2, &seen));
        let msgs = rx
            .try_iter()
            .filter_map(|e| match e {
                Event::Raft(m) => Some(*m),
                _ => None,
            })
            .collect();
        (msgs, res)
    }

    #[test]
    fn forwarded_proposals_and_reads_keep_the_connection() {
        use raft::prelude::MessageType::*;
        // Node 1 forwards what node 3 proposed and asked to read, then its own append.
        let mut wire = raft_frame(1, &message(MsgPropose, 3, 2));
        wire.extend(raft_frame(1, &message(MsgReadIndex, 3, 2)));
        wire.extend(raft_frame(1, &message(MsgAppendResponse, 1, 2)));
        let (got, res) = receive(wire);
        assert_eq!(res, Ok(()));
        let kinds: Vec<_> = got.iter().map(|m| (m.get_msg_type(), m.from)).collect();
        assert_eq!(
            kinds,
            vec![(MsgPropose, 3), (MsgReadIndex, 3), (MsgAppendResponse, 1)]
        );
        // Anything else that names another sender still drops the connection.
        for t in [
            MsgAppend,
            MsgHeartbeatResponse,
            MsgRequestVote,
            MsgAppendResponse,
        ] {
            let (got, res) = receive(raft_frame(1, &message(t, 3, 2)));
            assert!(got.is_empty() && res.is_err(), "{t:?}");
        }
    }

    #[test]
    fn oversized_and_garbage_frames_are_errors() {
        let mut buf = BytesMut::from(&(u32::MAX).to_be_bytes()[..]);
        assert!(decode_frame(&mut buf).is_err());
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 0xff, 0xff, 0xff][..]);
        assert!(decode_frame(&mut buf).is_err());
    }
}
