//! Node-to-node messages over TCP.
//!
//! Each frame is a big-endian `u32` length and a `prost`-encoded [`PeerFrame`], which
//! carries one raft message (in raft-rs's own protobuf encoding) and, first on every
//! connection, a [`Hello`] naming the sender and its client address. Frames are validated
//! before they reach raft: a frame that is too big, does not decode, or is addressed to
//! another node drops that connection, never the node.
//!
//! The transport runs on its own small tokio runtime thread. Outbound, each peer has a
//! task with a bounded queue that connects, reconnects with backoff, and writes whatever
//! is queued in one write. Raft retransmits, so a message that finds its queue full or
//! its peer down is dropped. Inbound, a listener hands decoded messages to the raft
//! thread's channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use crossbeam::channel::Sender;
use parking_lot::Mutex;
use protobuf::Message as PbMessage;
use raft::prelude::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::node::Event;

/// The largest frame accepted. Snapshots travel in one message, so this bounds the
/// largest snapshot too.
pub const MAX_FRAME: usize = 1 << 30;
const QUEUE: usize = 4096;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const BACKOFF: Duration = Duration::from_millis(100);

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
    #[prost(bytes = "vec", tag = "3")]
    pub raft: Vec<u8>,
    #[prost(message, optional, tag = "4")]
    pub hello: Option<Hello>,
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
    let body = buf.split_to(len);
    <PeerFrame as prost::Message>::decode(&body[..])
        .map(Some)
        .map_err(|e| format!("undecodable frame: {e}"))
}

struct Link {
    addr: String,
    tx: mpsc::Sender<Vec<u8>>,
}

/// The node's side of the network.
pub struct Transport {
    me: u64,
    hello: Hello,
    secret: Option<Arc<[u8]>>,
    links: Mutex<HashMap<u64, Link>>,
    rt: tokio::runtime::Handle,
    pub local_addr: SocketAddr,
}

impl Transport {
    /// Bind the raft port and start the network thread.
    pub fn start(
        me: u64,
        listen: &str,
        hello: Hello,
        secret: Option<Vec<u8>>,
        inbound: Sender<Event>,
    ) -> std::io::Result<Arc<Transport>> {
        let secret: Option<Arc<[u8]>> = secret.map(Into::into);
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
        std::thread::Builder::new().name("raft-net".into()).spawn({
            let secret = secret.clone();
            move || rt.block_on(accept_loop(listener, me, secret, inbound))
        })?;
        info!(%local_addr, "raft transport listening");
        Ok(Arc::new(Transport {
            me,
            hello,
            secret,
            links: Mutex::new(HashMap::new()),
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
        let (tx, rx) = mpsc::channel(QUEUE);
        let hello = PeerFrame {
            from: self.me,
            to: id,
            raft: Vec::new(),
            hello: Some(self.hello.clone()),
        };
        self.rt.spawn(send_loop(
            id,
            addr.to_string(),
            hello,
            self.secret.clone(),
            rx,
        ));
        links.insert(
            id,
            Link {
                addr: addr.to_string(),
                tx,
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

    /// Queue a raft message. Returns false when it was dropped.
    pub fn send(&self, msg: &Message) -> bool {
        let to = msg.to;
        let Ok(raft) = msg.write_to_bytes() else {
            return false;
        };
        let frame = PeerFrame {
            from: self.me,
            to,
            raft,
            hello: None,
        };
        let mut buf = Vec::new();
        encode_frame(&frame, &mut buf);
        let links = self.links.lock();
        match links.get(&to) {
            Some(link) => link.tx.try_send(buf).is_ok(),
            None => false,
        }
    }
}

async fn send_loop(
    id: u64,
    addr: String,
    hello: PeerFrame,
    secret: Option<Arc<[u8]>>,
    mut rx: mpsc::Receiver<Vec<u8>>,
) {
    let mut hello_buf = Vec::new();
    encode_frame(&hello, &mut hello_buf);
    let mut logged = false;
    loop {
        if rx.is_closed() {
            return;
        }
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                if !logged {
                    debug!(peer = id, %addr, error = %e, "cannot reach peer");
                    logged = true;
                }
                // Messages queued while the peer is down are stale: raft resends.
                while rx.try_recv().is_ok() {}
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
            Err(_) => {
                while rx.try_recv().is_ok() {}
                continue;
            }
        };
        logged = false;
        stream.set_nodelay(true).ok();
        debug!(peer = id, %addr, "connected to peer");
        let mut stream = stream;
        if let Some(secret) = &secret {
            let hs = crate::peer_auth::connect(&mut stream, secret);
            match tokio::time::timeout(crate::peer_auth::HANDSHAKE_TIMEOUT, hs).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    warn!(peer = id, %addr, error = %e, "peer handshake failed");
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
                Err(_) => {
                    warn!(peer = id, %addr, "peer handshake timed out");
                    continue;
                }
            }
        }
        if stream.write_all(&hello_buf).await.is_err() {
            continue;
        }
        let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
        loop {
            let Some(first) = rx.recv().await else {
                return;
            };
            buf.clear();
            buf.extend_from_slice(&first);
            while buf.len() < 1 << 20 {
                match rx.try_recv() {
                    Ok(more) => buf.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            if let Err(e) = stream.write_all(&buf).await {
                debug!(peer = id, error = %e, "peer connection lost");
                break;
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    me: u64,
    secret: Option<Arc<[u8]>>,
    inbound: Sender<Event>,
) {
    loop {
        match listener.accept().await {
            Ok((mut stream, peer)) => {
                stream.set_nodelay(true).ok();
                let inbound = inbound.clone();
                let secret = secret.clone();
                tokio::spawn(async move {
                    if let Some(secret) = &secret {
                        let hs = crate::peer_auth::accept(&mut stream, secret);
                        match tokio::time::timeout(crate::peer_auth::HANDSHAKE_TIMEOUT, hs).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                warn!(%peer, error = %e, "rejected a peer connection");
                                return;
                            }
                            Err(_) => {
                                warn!(%peer, "rejected a peer connection: no handshake in time");
                                return;
                            }
                        }
                    }
                    if let Err(e) = recv_loop(stream, me, &inbound).await {
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

async fn recv_loop(mut stream: TcpStream, me: u64, inbound: &Sender<Event>) -> Result<(), String> {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        while let Some(frame) = decode_frame(&mut buf)? {
            if frame.to != me {
                return Err(format!("frame for node {} reached node {me}", frame.to));
            }
            if let Some(h) = frame.hello {
                if h.node_id != frame.from {
                    return Err("hello names another node than the frame".into());
                }
                let _ = inbound.try_send(Event::Hello(h));
            }
            if !frame.raft.is_empty() {
                let msg = Message::parse_from_bytes(&frame.raft)
                    .map_err(|e| format!("undecodable raft message: {e}"))?;
                if msg.to != me || msg.from != frame.from {
                    return Err("raft message addressed inconsistently".into());
                }
                // A full channel means the raft thread is behind: drop, raft resends.
                let _ = inbound.try_send(Event::Raft(Box::new(msg)));
            }
        }
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
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
            raft: vec![1, 2, 3],
            hello: Some(Hello {
                node_id: 1,
                client_addr: "127.0.0.1:7001".into(),
                raft_addr: "127.0.0.1:17001".into(),
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
    fn oversized_and_garbage_frames_are_errors() {
        let mut buf = BytesMut::from(&(u32::MAX).to_be_bytes()[..]);
        assert!(decode_frame(&mut buf).is_err());
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 0xff, 0xff, 0xff][..]);
        assert!(decode_frame(&mut buf).is_err());
    }
}
