//! An async client for sessiond (and any RESP server), with pipelining.
//!
//! Module map:
//! - [`Client`]: one connection. [`Client::send`] queues a command without waiting,
//!   [`Client::recv`] awaits the next reply in order, [`Client::cmd`] does both, and
//!   [`Client::pipeline`] sends a batch with one write and collects every reply.
//! - [`ClientError`]: what can go wrong.
//!
//! Replies are [`Frame`]s from `sessiond-protocol`; server errors arrive as
//! `Frame::Error`, not as `Err`, so a pipeline's other replies are never lost.
//! - [`cluster::ClusterClient`]: a seed list, leader discovery through `RAFT.INFO`, and
//!   retry when the leader changes.
//! - [`admin`]: cluster status and membership changes, behind the `sessiond-cli` binary.
//! - [`import`]: `sessiond-cli import`, copying a Redis server's keys into sessiond.

pub mod admin;
pub mod cluster;
pub mod import;

use bytes::BytesMut;
use sessiond_protocol::{encode, Frame, FrameDecoder, Limits, ProtocolError};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};

pub use sessiond_protocol::Frame as Reply;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("connection closed by the server")]
    Closed,
    #[error("recv called with no command in flight")]
    NothingPending,
    #[error("no node among {0} names a leader")]
    NoLeader(String),
}

/// One connection to a server.
pub struct Client {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    decoder: FrameDecoder,
    pending: usize,
}

impl Client {
    /// Connect to `addr` (for example `"127.0.0.1:6379"`).
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Client, ClientError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            rbuf: BytesMut::with_capacity(16 * 1024),
            wbuf: BytesMut::with_capacity(16 * 1024),
            decoder: FrameDecoder::new(Limits::default()),
            pending: 0,
        })
    }

    /// Queue a command. Nothing is written until [`Client::flush`] or [`Client::recv`].
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        encode::command(&mut self.wbuf, args);
        self.pending += 1;
    }

    /// Commands sent whose replies have not been received yet.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Write every queued command.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Await the reply to the oldest command in flight (flushing queued commands first).
    pub async fn recv(&mut self) -> Result<Frame, ClientError> {
        if self.pending == 0 {
            return Err(ClientError::NothingPending);
        }
        self.flush().await?;
        let frame = self.read_frame().await?;
        self.pending -= 1;
        Ok(frame)
    }

    /// Read one frame, whether or not a command is pending (for pushes).
    pub async fn read_frame(&mut self) -> Result<Frame, ClientError> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.rbuf)? {
                return Ok(frame);
            }
            if self.rbuf.capacity() - self.rbuf.len() < 4096 {
                self.rbuf.reserve(16 * 1024);
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err(ClientError::Closed);
            }
        }
    }

    /// Send one command and await its reply.
    pub async fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Frame, ClientError> {
        self.send(args);
        self.recv().await
    }

    /// Send every command with one write, then collect all the replies in order.
    pub async fn pipeline<A: AsRef<[u8]>>(
        &mut self,
        commands: &[Vec<A>],
    ) -> Result<Vec<Frame>, ClientError> {
        for c in commands {
            self.send(c);
        }
        let mut replies = Vec::with_capacity(commands.len());
        for _ in commands {
            replies.push(self.recv().await?);
        }
        Ok(replies)
    }

    /// Write raw bytes (for protocol tests).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.flush().await?;
        self.stream.write_all(bytes).await?;
        Ok(())
    }
}
