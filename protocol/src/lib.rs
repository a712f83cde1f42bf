//! RESP2/RESP3 for sessiond: pure bytes, no I/O.
//!
//! Module map:
//! - [`frame`]: [`Frame`], one decoded RESP value, and its encoding.
//! - [`decode`]: [`CommandDecoder`] (server side: client requests, multibulk
//!   or inline, incremental and zero-copy), [`FrameDecoder`] (client side:
//!   RESP2/RESP3 replies) and the [`Limits`] both enforce.
//! - [`encode`]: writers for replies and commands straight into a
//!   [`bytes::BytesMut`], plus constants for fixed replies.
//! - [`error`]: [`ProtocolError`], whose messages are Redis's
//!   `Protocol error: ...` texts.
//!
//! ```
//! use bytes::BytesMut;
//! use sessiond_protocol::{encode, CommandDecoder, Frame, FrameDecoder, Limits};
//!
//! // Client side: write a command.
//! let mut wire = BytesMut::new();
//! encode::command(&mut wire, &["SET", "k", "v"]);
//! wire.extend_from_slice(b"PING\r\n"); // inline commands work too
//!
//! // Server side: decode every complete command, reply to each.
//! let mut dec = CommandDecoder::new(Limits::default());
//! let mut replies = BytesMut::new();
//! while let Some(args) = dec.decode(&mut wire)? {
//!     match &args[0][..] {
//!         b"SET" => replies.extend_from_slice(encode::OK),
//!         _ => replies.extend_from_slice(encode::PONG),
//!     }
//! }
//! assert!(wire.is_empty());
//!
//! // Client side: read the replies.
//! let mut frames = FrameDecoder::new(Limits::default());
//! assert_eq!(frames.decode(&mut replies)?, Some(Frame::simple("OK")));
//! assert_eq!(frames.decode(&mut replies)?, Some(Frame::simple("PONG")));
//! # Ok::<(), sessiond_protocol::ProtocolError>(())
//! ```
#![forbid(unsafe_code)]

pub mod decode;
pub mod encode;
pub mod error;
pub mod frame;

pub use decode::{CommandDecoder, FrameDecoder, Limits};
pub use error::ProtocolError;
pub use frame::Frame;
