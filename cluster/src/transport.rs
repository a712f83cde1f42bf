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
    /// The raft group the frame is for. A process runs one group today, group 0; the
    /// field is there so that several groups can share the connections and a router
    /// dispatch on it. A frame for another group drops the connection.
    #[prost(uint64, tag = "7")]
    pub group: u64,
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
        let l = std::net::TcpListener::bind(listen)?;
        Transport::start_on(me, l, hello, security, inbound)
    }

    /// Start the network thread on a listener already bound (a test harness binds its
    /// ports before it starts nodes, instead of guessing free ones; see
    /// [`inherited_listener`]).
    pub fn start_on(
        me: u64,
        std_listener: std::net::TcpListener,
        hello: Hello,
        security: Security,
        inbound: Sender<Event>,
    ) -> std::io::Result<Arc<Transport>> {
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
            group: 0,
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
            group: 0,
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

mod inbound;
mod outbound;
#[cfg(test)]
mod tests;

use inbound::{accept_loop, Seen};
use outbound::{send_loop, Peer};

/// The listener a parent process handed over as file descriptor `fd`: a TCP socket
/// already bound (listening, or made to listen here). This process owns it from now on.
#[allow(unsafe_code)]
pub fn inherited_listener(fd: i32) -> std::io::Result<std::net::TcpListener> {
    use std::os::fd::FromRawFd;
    let err = |what: &str| std::io::Error::other(format!("--cluster-fd {fd}: {what}"));
    // SAFETY: fstat only writes the struct it is given; a closed fd is an error.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(err(&std::io::Error::last_os_error().to_string()));
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(err("not a socket"));
    }
    // SAFETY: fd is an open socket (checked above) that the parent handed to this
    // process for this use; nothing else here owns it.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    let addr = listener.local_addr().map_err(|e| err(&e.to_string()))?;
    if addr.port() == 0 {
        return Err(err("not bound"));
    }
    // SAFETY: listen on a socket this process owns; on one that already listens it
    // only sets the backlog. FD_CLOEXEC: no child of this process inherits it.
    unsafe {
        if libc::listen(fd, 1024) != 0 {
            return Err(err(&std::io::Error::last_os_error().to_string()));
        }
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    Ok(listener)
}
