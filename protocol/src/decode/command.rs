//! [`CommandDecoder`]: client requests, multibulk or inline, the way Redis 7's
//! `processMultibulkBuffer` / `processInlineBuffer` read them.

use bytes::{Buf, Bytes, BytesMut};

use super::inline::{split_args, InlineArg};
use super::{find_line, parse_i64, Limits, Line};
use crate::ProtocolError;

/// Bulks at least this long make the decoder reserve room for the rest of the
/// bulk in the caller's buffer (Redis's `PROTO_MBULK_BIG_ARG`).
const BIG_ARG: usize = 32 * 1024;
/// Most the decoder reserves at once for a big bulk, so a bare `$<huge>`
/// header cannot make it allocate hundreds of MiB before data arrives.
const MAX_RESERVE: usize = 1024 * 1024;
/// Most argument slots reserved up front from an untrusted `*N`.
const MAX_PREALLOC_ARGS: usize = 1024;
/// Above this many slots the reusable span vector is shrunk after a command.
const SPANS_KEEP: usize = 4096;

/// Incremental, single-pass decoder of client commands.
///
/// Feed it the connection's read buffer after every read and call
/// [`decode`](CommandDecoder::decode) until it returns `Ok(None)`. Between
/// calls the caller may only *append* to the buffer: while a multibulk is in
/// progress the decoder remembers offsets into it (the bytes of a command are
/// left in the buffer until the whole command has arrived), so it never
/// rescans what it already parsed, however small the reads.
///
/// A complete command is split off the buffer in one piece, frozen, and its
/// arguments are handed out as slices of it (zero-copy). Inline arguments with
/// quotes or escapes that are not a plain slice of the line are copied.
#[derive(Debug)]
pub struct CommandDecoder {
    limits: Limits,
    /// Argument count of the multibulk in progress; 0 when between commands.
    argc: usize,
    /// Offset in the buffer of the first byte not yet parsed (multibulk).
    pos: usize,
    /// Length of the bulk whose `$len` line is parsed; its data starts at `pos`.
    pending_bulk: Option<usize>,
    /// Offset up to which the current line was searched for its terminator.
    scanned: usize,
    /// `(start, end)` offsets of the bulks parsed so far (reused).
    spans: Vec<(usize, usize)>,
    /// Inline splitting scratch (reused).
    inline_args: Vec<InlineArg>,
    inline_bytes: Vec<u8>,
}

impl Default for CommandDecoder {
    fn default() -> Self {
        CommandDecoder::new(Limits::default())
    }
}

impl CommandDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        CommandDecoder {
            limits,
            argc: 0,
            pos: 0,
            pending_bulk: None,
            scanned: 0,
            spans: Vec::new(),
            inline_args: Vec::new(),
            inline_bytes: Vec::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits; they apply from the next check on, including to a
    /// command already in progress.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Decodes one client command from the front of `buf`.
    ///
    /// - `Ok(Some(args))`: a complete command (never empty); its bytes were
    ///   removed from `buf`.
    /// - `Ok(None)`: more bytes are needed. Blank inline lines and multibulks
    ///   with a count `<= 0` found before that point were consumed (skipped).
    /// - `Err(e)`: protocol error; reply `-ERR Protocol error: {e}` and close.
    ///   The decoder resets itself; the bytes of the bad command stay in `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.pos > buf.len() || self.scanned > buf.len() {
            // The caller consumed or replaced the buffer mid-command: start over.
            self.reset();
        }
        let result = self.decode_inner(buf);
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// Forgets any command in progress.
    pub fn reset(&mut self) {
        self.argc = 0;
        self.pos = 0;
        self.pending_bulk = None;
        self.scanned = 0;
        self.spans.clear();
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.argc == 0 {
                let Some(&first) = buf.first() else {
                    return Ok(None);
                };
                let started = if first == b'*' {
                    self.start_multibulk(buf)?
                } else {
                    self.inline(buf)?
                };
                match started {
                    Start::Incomplete => return Ok(None),
                    Start::Skipped => continue,
                    Start::Inline(args) => return Ok(Some(args)),
                    Start::Multibulk => {}
                }
            }
            return self.multibulk(buf);
        }
    }

    /// Parses the `*N` line at the front of `buf`.
    fn start_multibulk(&mut self, buf: &mut BytesMut) -> Result<Start, ProtocolError> {
        let limit = self.limits.max_inline_len.saturating_sub(1);
        let cr = match find_line(buf, 1, limit, &mut self.scanned) {
            Line::Done { cr } => cr,
            Line::Incomplete => return Ok(Start::Incomplete),
            Line::TooLong => return Err(ProtocolError::TooBigMbulkCountString),
            Line::BadEnding => return Err(ProtocolError::InvalidMultibulkLength),
        };
        self.scanned = 0;
        let count = buf
            .get(1..cr)
            .and_then(parse_i64)
            .ok_or(ProtocolError::InvalidMultibulkLength)?;
        if count <= 0 {
            buf.advance(cr + 2);
            return Ok(Start::Skipped);
        }
        if count as u64 > self.limits.max_multibulk_len {
            return Err(ProtocolError::InvalidMultibulkLength);
        }
        let argc = usize::try_from(count).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
        self.argc = argc;
        self.pos = cr + 2;
        self.pending_bulk = None;
        self.spans.clear();
        self.spans.reserve(argc.min(MAX_PREALLOC_ARGS));
        Ok(Start::Multibulk)
    }

    /// Parses bulks until the multibulk in progress is complete or the buffer
    /// runs out.
    fn multibulk(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        while self.spans.len() < self.argc {
            let len = match self.pending_bulk {
                Some(len) => len,
                None => match self.bulk_header(buf)? {
                    Some(len) => len,
                    None => return Ok(None),
                },
            };
            let start = self.pos;
            let end = start
                .checked_add(len)
                .ok_or(ProtocolError::InvalidBulkLength)?;
            let next = end.checked_add(2).ok_or(ProtocolError::InvalidBulkLength)?;
            if buf.len() < next {
                if len >= BIG_ARG {
                    buf.reserve((next - buf.len()).min(MAX_RESERVE));
                }
                return Ok(None);
            }
            if buf.get(end..next) != Some(&b"\r\n"[..]) {
                return Err(ProtocolError::MissingBulkCrlf);
            }
            self.spans.push((start, end));
            self.pos = next;
            self.pending_bulk = None;
        }

        let frozen = buf.split_to(self.pos).freeze();
        let mut args = Vec::with_capacity(self.spans.len());
        args.extend(self.spans.iter().map(|&(s, e)| frozen.slice(s..e)));
        self.argc = 0;
        self.pos = 0;
        self.spans.clear();
        if self.spans.capacity() > SPANS_KEEP {
            self.spans.shrink_to(MAX_PREALLOC_ARGS);
        }
        Ok(Some(args))
    }

    /// Parses the `$len` line at `self.pos`; `Ok(None)` if incomplete.
    fn bulk_header(&mut self, buf: &BytesMut) -> Result<Option<usize>, ProtocolError> {
        let at = self.pos;
        let Some(&b) = buf.get(at) else {
            return Ok(None);
        };
        if b != b'$' {
            return Err(ProtocolError::ExpectedDollar(b));
        }
        let limit = self.limits.max_inline_len.saturating_sub(1);
        let cr = match find_line(buf, at + 1, limit, &mut self.scanned) {
            Line::Done { cr } => cr,
            Line::Incomplete => return Ok(None),
            Line::TooLong => return Err(ProtocolError::TooBigBulkCountString),
            Line::BadEnding => return Err(ProtocolError::InvalidBulkLength),
        };
        self.scanned = 0;
        let len = buf
            .get(at + 1..cr)
            .and_then(parse_i64)
            .ok_or(ProtocolError::InvalidBulkLength)?;
        if len < 0 || len as u64 > self.limits.max_bulk_len {
            return Err(ProtocolError::InvalidBulkLength);
        }
        let len = usize::try_from(len).map_err(|_| ProtocolError::InvalidBulkLength)?;
        self.pos = cr + 2;
        self.pending_bulk = Some(len);
        Ok(Some(len))
    }

    /// Parses an inline command line at the front of `buf`. The line, not
    /// counting its `\n` or `\r\n` terminator, may be `max_inline_len` long.
    fn inline(&mut self, buf: &mut BytesMut) -> Result<Start, ProtocolError> {
        let limit = self.limits.max_inline_len;
        let window_end = buf.len().min(limit.saturating_add(2));
        let from = self.scanned.min(window_end);
        let newline = buf
            .get(from..window_end)
            .and_then(|w| memchr::memchr(b'\n', w))
            .map(|i| from + i);
        let Some(lf) = newline else {
            let too_big = buf.len() > limit.saturating_add(1)
                || (buf.len() > limit && buf.get(limit) != Some(&b'\r'));
            if too_big {
                return Err(ProtocolError::TooBigInlineRequest);
            }
            self.scanned = window_end;
            return Ok(Start::Incomplete);
        };
        self.scanned = 0;
        let content_end = if lf > 0 && buf.get(lf - 1) == Some(&b'\r') {
            lf - 1
        } else {
            lf
        };
        if content_end > limit {
            return Err(ProtocolError::TooBigInlineRequest);
        }

        self.inline_args.clear();
        self.inline_bytes.clear();
        split_args(
            buf.get(..content_end).unwrap_or_default(),
            &mut self.inline_args,
            &mut self.inline_bytes,
        )?;
        if self.inline_args.is_empty() {
            buf.advance(lf + 1);
            return Ok(Start::Skipped);
        }

        let frozen = buf.split_to(lf + 1).freeze();
        let mut args = Vec::with_capacity(self.inline_args.len());
        for arg in &self.inline_args {
            args.push(match *arg {
                InlineArg::Span(s, e) => frozen.slice(s..e),
                InlineArg::Owned(s, e) => {
                    Bytes::copy_from_slice(self.inline_bytes.get(s..e).unwrap_or_default())
                }
            });
        }
        if self.inline_bytes.capacity() > 2 * limit.max(1024) {
            self.inline_bytes = Vec::new();
        }
        Ok(Start::Inline(args))
    }
}

/// What the first line of a command turned out to be.
enum Start {
    /// Not enough bytes for the first line.
    Incomplete,
    /// A blank inline line or a `*N` with `N <= 0`: consumed, nothing to return.
    Skipped,
    /// A complete inline command.
    Inline(Vec<Bytes>),
    /// A `*N` line with `N > 0` was parsed; its bulks follow.
    Multibulk,
}
