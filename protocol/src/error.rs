//! [`ProtocolError`]: every way a peer's bytes can fail to be RESP.
//!
//! The `Display` text of the request-side variants is exactly what Redis prints
//! after `"Protocol error: "`, so a server can reply with
//! `format!("-ERR Protocol error: {e}\r\n")` and be byte-compatible with Redis.
//! No message ever contains CR or LF: a raw byte quoted in a message is shown
//! as a space if it is CR or LF (Redis replaces those the same way before
//! sending an error), and as the Unicode code point of the same value otherwise.

use std::fmt;

/// A protocol violation found by [`CommandDecoder`](crate::CommandDecoder) or
/// [`FrameDecoder`](crate::FrameDecoder).
///
/// After an error the connection is unusable: the decoder resets its own state,
/// but the caller's buffer is left as it was (nothing of the bad command is
/// consumed), and the caller is expected to reply (server side) and close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    // ---- request side (CommandDecoder); texts are Redis's ----
    /// `*N` count is not an integer, has trailing garbage, or exceeds
    /// [`Limits::max_multibulk_len`](crate::Limits::max_multibulk_len).
    /// Also used by `FrameDecoder` for bad aggregate counts.
    #[error("invalid multibulk length")]
    InvalidMultibulkLength,
    /// `$N` length is not an integer, is negative, or exceeds
    /// [`Limits::max_bulk_len`](crate::Limits::max_bulk_len).
    #[error("invalid bulk length")]
    InvalidBulkLength,
    /// Inside a multibulk, an element did not start with `$`.
    #[error("expected '$', got '{}'", Shown(*.0))]
    ExpectedDollar(u8),
    /// The `*N` line has no CR within `max_inline_len` bytes.
    #[error("too big mbulk count string")]
    TooBigMbulkCountString,
    /// The `$N` line has no CR within `max_inline_len` bytes.
    #[error("too big bulk count string")]
    TooBigBulkCountString,
    /// An inline command line has no LF within `max_inline_len` bytes.
    #[error("too big inline request")]
    TooBigInlineRequest,
    /// An inline command has an unterminated quote, or a closing quote that is
    /// not followed by whitespace or the end of the line.
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
    /// The `len` bytes of a bulk (or blob error / verbatim string) are not
    /// followed by CRLF. Redis silently skips two bytes here; we refuse.
    #[error("missing CRLF after bulk")]
    MissingBulkCrlf,

    // ---- reply side (FrameDecoder) ----
    /// The first byte of a frame is not a RESP2/RESP3 type byte.
    #[error("invalid frame type byte '{}'", Shown(*.0))]
    InvalidFrameType(u8),
    /// A `:` line is not a 64-bit signed decimal integer.
    #[error("invalid integer")]
    InvalidInteger,
    /// A `,` line is not a floating point number (`inf`, `-inf`, `nan` allowed).
    #[error("invalid double")]
    InvalidDouble,
    /// A `#` line is neither `t` nor `f`.
    #[error("invalid boolean")]
    InvalidBoolean,
    /// A `(` line is not an optionally signed, non-empty run of digits.
    #[error("invalid big number")]
    InvalidBigNumber,
    /// A `=` payload is shorter than 4 bytes or has no `:` after the format.
    #[error("invalid verbatim string")]
    InvalidVerbatim,
    /// A `_` line has content.
    #[error("invalid null")]
    InvalidNull,
    /// A `+`/`-` line contains a CR not followed by LF.
    #[error("invalid line ending, expected CRLF")]
    InvalidLineEnding,
    /// A `+`/`-`/`(` line has no CRLF within `max_bulk_len` bytes.
    #[error("too big simple string")]
    TooBigSimpleString,
    /// Aggregates are nested deeper than [`Limits::max_depth`](crate::Limits::max_depth).
    #[error("nesting too deep")]
    NestingTooDeep,
    /// RESP3 streamed strings or aggregates (`$?`, `*?`, ...) are not supported.
    #[error("streamed RESP3 types are not supported")]
    StreamedNotSupported,
    /// Defensive: the decoder's validation and build passes disagreed. Never
    /// expected; reported instead of panicking.
    #[error("internal decoder error")]
    Internal,
}

/// Shows one raw byte in an error message without ever emitting CR or LF.
struct Shown(u8);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = match self.0 {
            b'\r' | b'\n' => ' ',
            b => char::from(b),
        };
        write!(f, "{c}")
    }
}

#[cfg(test)]
mod tests {
    use super::ProtocolError;

    #[test]
    fn display_texts() {
        assert_eq!(
            ProtocolError::ExpectedDollar(b'x').to_string(),
            "expected '$', got 'x'"
        );
        assert_eq!(
            ProtocolError::ExpectedDollar(b'\r').to_string(),
            "expected '$', got ' '"
        );
        assert_eq!(
            ProtocolError::InvalidFrameType(b'?').to_string(),
            "invalid frame type byte '?'"
        );
        assert_eq!(
            ProtocolError::InvalidMultibulkLength.to_string(),
            "invalid multibulk length"
        );
    }
}
