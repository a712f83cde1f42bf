//! The receiving side: a listener accepts peers, checks who they are, and hands their
//! decoded frames to the raft thread, noting when each peer was last heard and what its
//! clock said.

use super::*;

/// Where what arrives from peers goes.
#[derive(Clone)]
pub(super) struct Seen {
    pub(super) inbound: Sender<Event>,
    pub(super) heard: Arc<Heard>,
    pub(super) clocks: Arc<Clocks>,
}

pub(super) async fn accept_loop(listener: TcpListener, me: u64, security: Security, seen: Seen) {
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

pub(super) async fn recv_loop<S: AsyncRead + Unpin>(
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
            if frame.group != 0 {
                return Err(format!(
                    "frame for raft group {}: this node runs group 0",
                    frame.group
                ));
            }
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
