//! The sending side: one task per peer connects (attempts paced by the network, see
//! `liveness`), proves who it is, and writes what the raft thread queues in the peer's
//! outbox, checking the connection's progress as it goes.

use super::*;

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
pub(super) struct Peer {
    pub(super) id: u64,
    pub(super) me: u64,
    pub(super) clocks: Arc<Clocks>,
    pub(super) addr: String,
    pub(super) outbox: Arc<Outbox>,
    pub(super) heard: Arc<Heard>,
    pub(super) inbound: Sender<Event>,
}

impl Peer {
    /// The connection is gone: raft should resend from what the peer has.
    fn lost(&self) {
        reset_outbox(&self.outbox);
        let _ = self.inbound.try_send(Event::Unreachable(self.id));
    }
}

pub(super) async fn send_loop(peer: Peer, hello: PeerFrame, security: Security) {
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
                    if e.kind() == std::io::ErrorKind::ConnectionRefused {
                        // Nothing listens there: the peer's process is gone.
                        let _ = peer.inbound.try_send(Event::PeerDown(id));
                    }
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
            if woken.is_err() && (stuck(peer, fd) || liveness::peer_closed(fd)) {
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
