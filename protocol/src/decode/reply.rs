//! [`FrameDecoder`]: RESP2 + RESP3 replies.
//!
//! Decoding is two passes over the same code: a validation pass over the
//! caller's buffer that allocates nothing and finds where the frame ends (or
//! that it is incomplete, or invalid), then, only once the frame is known to
//! be complete and valid, the frame's bytes are split off, frozen, and the
//! build pass creates the [`Frame`] with zero-copy slices. Aggregates are
//! walked with an explicit stack, so hostile nesting cannot overflow the
//! thread's stack whatever `max_depth` is.

use bytes::{Bytes, BytesMut};

use super::{find_line, parse_i64, Limits, Line};
use crate::{Frame, ProtocolError};

/// Decoder of server replies, for clients.
///
/// `decode` either returns a whole frame (and removes its bytes from the
/// buffer) or consumes nothing. It remembers how many bytes the last
/// incomplete attempt needed at least, and returns `Ok(None)` at once while
/// the buffer is shorter than that, so a large bulk arriving in many reads is
/// not rescanned after every read. Between calls the caller may only append to
/// the buffer.
///
/// RESP3 attributes (`|`) are parsed and dropped: the frame they annotate is
/// returned in their place, at any nesting level. Streamed strings and
/// aggregates (`$?`, `*?`, ...) are rejected.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    limits: Limits,
    /// The buffer must be at least this long before another attempt can
    /// succeed (0: try now).
    need: usize,
}

impl FrameDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        FrameDecoder { limits, need: 0 }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        self.need = 0;
    }

    /// Decodes one frame from the front of `buf`.
    ///
    /// `Ok(Some(frame))`: the frame's bytes were removed from `buf`.
    /// `Ok(None)`: incomplete; nothing was consumed. `Err(e)`: the peer is not
    /// speaking RESP (or exceeded a limit); nothing was consumed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if buf.len() < self.need {
            return Ok(None);
        }
        self.need = 0;
        let end = match parse(buf, None, &self.limits)? {
            Parsed::Incomplete(need) => {
                self.need = need;
                return Ok(None);
            }
            Parsed::Complete(_, end) => end,
        };
        let frozen = buf.split_to(end).freeze();
        match parse(&frozen, Some(&frozen), &self.limits)? {
            Parsed::Complete(frame, used) if used == end => Ok(Some(frame)),
            _ => Err(ProtocolError::Internal),
        }
    }
}

enum Parsed {
    /// The buffer must be at least this long.
    Incomplete(usize),
    /// A frame and the offset just past it.
    Complete(Frame, usize),
}

/// One step of the walk: a scalar value, or the header of an aggregate.
enum Token {
    Value(Frame),
    /// An aggregate with this many child frames (maps and attributes: twice
    /// the pair count).
    Open(Kind, usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Array,
    Map,
    Set,
    Push,
    Attribute,
}

enum Acc {
    /// Validation pass, or inside an attribute: children are dropped.
    Skip,
    Seq(Vec<Frame>),
    Map(Vec<(Frame, Frame)>, Option<Frame>),
}

struct Level {
    kind: Kind,
    remaining: usize,
    acc: Acc,
}

impl Level {
    fn new(kind: Kind, children: usize, build: bool) -> Level {
        let acc = if !build || kind == Kind::Attribute {
            Acc::Skip
        } else if kind == Kind::Map {
            Acc::Map(Vec::with_capacity(children / 2), None)
        } else {
            Acc::Seq(Vec::with_capacity(children))
        };
        Level {
            kind,
            remaining: children,
            acc,
        }
    }

    fn builds(&self) -> bool {
        !matches!(self.acc, Acc::Skip)
    }

    fn push(&mut self, f: Frame) {
        self.remaining = self.remaining.saturating_sub(1);
        match &mut self.acc {
            Acc::Skip => {}
            Acc::Seq(v) => v.push(f),
            Acc::Map(pairs, key) => match key.take() {
                Some(k) => pairs.push((k, f)),
                None => *key = Some(f),
            },
        }
    }

    /// The finished aggregate; `None` for an attribute (it annotates, and is
    /// replaced by, the next frame).
    fn finish(self) -> Option<Frame> {
        let Level { kind, acc, .. } = self;
        match (kind, acc) {
            (Kind::Attribute, _) => None,
            (_, Acc::Skip) => Some(Frame::Null),
            (Kind::Array, Acc::Seq(v)) => Some(Frame::Array(v)),
            (Kind::Set, Acc::Seq(v)) => Some(Frame::Set(v)),
            (Kind::Push, Acc::Seq(v)) => Some(Frame::Push(v)),
            (_, Acc::Map(pairs, _)) => Some(Frame::Map(pairs)),
            (Kind::Map, Acc::Seq(_)) => Some(Frame::Map(Vec::new())),
        }
    }
}

fn empty(kind: Kind) -> Option<Frame> {
    match kind {
        Kind::Array => Some(Frame::Array(Vec::new())),
        Kind::Map => Some(Frame::Map(Vec::new())),
        Kind::Set => Some(Frame::Set(Vec::new())),
        Kind::Push => Some(Frame::Push(Vec::new())),
        Kind::Attribute => None,
    }
}

/// Parses one frame at the start of `src`. With `owner` (which must be `src`
/// itself) it builds the frame; without, it only validates and measures.
fn parse(src: &[u8], owner: Option<&Bytes>, limits: &Limits) -> Result<Parsed, ProtocolError> {
    let mut cur = Cursor {
        src,
        pos: 0,
        owner,
        limits,
    };
    let mut stack: Vec<Level> = Vec::new();
    loop {
        let token = match cur.token()? {
            Step::Ready(t) => t,
            Step::Incomplete(need) => return Ok(Parsed::Incomplete(need)),
        };
        let mut value = match token {
            Token::Value(f) => Some(f),
            Token::Open(kind, children) => {
                if stack.len() >= limits.max_depth {
                    return Err(ProtocolError::NestingTooDeep);
                }
                if children == 0 {
                    empty(kind)
                } else {
                    let build = owner.is_some() && stack.last().into_iter().all(Level::builds);
                    stack.push(Level::new(kind, children, build));
                    continue;
                }
            }
        };
        // Attach the value to its parent, closing every aggregate it completes.
        while let Some(v) = value.take() {
            let Some(top) = stack.last_mut() else {
                return Ok(Parsed::Complete(v, cur.pos));
            };
            top.push(v);
            if top.remaining == 0 {
                value = stack.pop().and_then(Level::finish);
            }
        }
    }
}

enum Step<T> {
    Ready(T),
    /// The buffer must be at least this long.
    Incomplete(usize),
}

struct Cursor<'a> {
    src: &'a [u8],
    pos: usize,
    owner: Option<&'a Bytes>,
    limits: &'a Limits,
}

/// Result of reading a CRLF-terminated line's content.
enum LineRead {
    Ready(usize, usize),
    Incomplete(usize),
    TooLong,
    BadEnding,
}

impl Cursor<'_> {
    /// `src[s..e]` as `Bytes`: a slice of the owner, or empty when validating.
    fn bytes(&self, s: usize, e: usize) -> Bytes {
        match self.owner {
            Some(b) if s <= e && e <= b.len() => b.slice(s..e),
            _ => Bytes::new(),
        }
    }

    fn slice(&self, s: usize, e: usize) -> &[u8] {
        self.src.get(s..e).unwrap_or_default()
    }

    /// Reads the line after the type byte at `self.pos`; on success moves past
    /// its CRLF and returns the content's range.
    fn line(&mut self, limit: usize) -> LineRead {
        let from = self.pos + 1;
        let mut scanned = 0;
        match find_line(self.src, from, limit, &mut scanned) {
            Line::Done { cr } => {
                self.pos = cr + 2;
                LineRead::Ready(from, cr)
            }
            Line::Incomplete => LineRead::Incomplete(self.src.len() + 1),
            Line::TooLong => LineRead::TooLong,
            Line::BadEnding => LineRead::BadEnding,
        }
    }

    /// Reads a short line (a number); errors map to `err`.
    fn short_line(&mut self, err: ProtocolError) -> Result<Step<(usize, usize)>, ProtocolError> {
        match self.line(self.limits.max_inline_len) {
            LineRead::Ready(s, e) => Ok(Step::Ready((s, e))),
            LineRead::Incomplete(n) => Ok(Step::Incomplete(n)),
            LineRead::TooLong | LineRead::BadEnding => Err(err),
        }
    }

    /// Reads a length/count line: `Some(n)` with `n >= -1`, `None` for `?`.
    fn count_line(
        &mut self,
        too_long: ProtocolError,
        invalid: ProtocolError,
    ) -> Result<Step<Option<i64>>, ProtocolError> {
        let (s, e) = match self.line(self.limits.max_inline_len) {
            LineRead::Ready(s, e) => (s, e),
            LineRead::Incomplete(n) => return Ok(Step::Incomplete(n)),
            LineRead::TooLong => return Err(too_long),
            LineRead::BadEnding => return Err(invalid),
        };
        let text = self.slice(s, e);
        if text == b"?" {
            return Err(ProtocolError::StreamedNotSupported);
        }
        match parse_i64(text) {
            Some(n) if n >= -1 => Ok(Step::Ready(Some(n))),
            _ => Err(invalid),
        }
    }

    /// Reads an aggregate header; `None` for `-1`.
    fn aggregate(&mut self, pairs: bool) -> Result<Step<Option<usize>>, ProtocolError> {
        let n = match self.count_line(
            ProtocolError::TooBigMbulkCountString,
            ProtocolError::InvalidMultibulkLength,
        )? {
            Step::Ready(Some(n)) => n,
            Step::Ready(None) => return Err(ProtocolError::InvalidMultibulkLength),
            Step::Incomplete(need) => return Ok(Step::Incomplete(need)),
        };
        if n < 0 {
            return Ok(Step::Ready(None));
        }
        if n as u64 > self.limits.max_multibulk_len {
            return Err(ProtocolError::InvalidMultibulkLength);
        }
        let n = usize::try_from(n).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
        let children = if pairs { n.checked_mul(2) } else { Some(n) };
        children
            .map(|c| Step::Ready(Some(c)))
            .ok_or(ProtocolError::InvalidMultibulkLength)
    }

    /// Reads a length-prefixed blob; `None` for `-1` (only `$` may be null).
    fn blob(&mut self, nullable: bool) -> Result<Step<Option<(usize, usize)>>, ProtocolError> {
        let n = match self.count_line(
            ProtocolError::TooBigBulkCountString,
            ProtocolError::InvalidBulkLength,
        )? {
            Step::Ready(Some(n)) => n,
            Step::Ready(None) => return Err(ProtocolError::InvalidBulkLength),
            Step::Incomplete(need) => return Ok(Step::Incomplete(need)),
        };
        if n < 0 {
            return if nullable {
                Ok(Step::Ready(None))
            } else {
                Err(ProtocolError::InvalidBulkLength)
            };
        }
        if n as u64 > self.limits.max_bulk_len {
            return Err(ProtocolError::InvalidBulkLength);
        }
        let len = usize::try_from(n).map_err(|_| ProtocolError::InvalidBulkLength)?;
        let start = self.pos;
        let end = start
            .checked_add(len)
            .ok_or(ProtocolError::InvalidBulkLength)?;
        let next = end.checked_add(2).ok_or(ProtocolError::InvalidBulkLength)?;
        if self.src.len() < next {
            return Ok(Step::Incomplete(next));
        }
        if self.slice(end, next) != b"\r\n" {
            return Err(ProtocolError::MissingBulkCrlf);
        }
        self.pos = next;
        Ok(Step::Ready(Some((start, end))))
    }

    fn token(&mut self) -> Result<Step<Token>, ProtocolError> {
        macro_rules! ready {
            ($step:expr) => {
                match $step {
                    Step::Ready(v) => v,
                    Step::Incomplete(need) => return Ok(Step::Incomplete(need)),
                }
            };
        }
        let Some(&ty) = self.src.get(self.pos) else {
            return Ok(Step::Incomplete(self.pos + 1));
        };
        let big_line = usize::try_from(self.limits.max_bulk_len).unwrap_or(usize::MAX);
        let frame = match ty {
            b'+' | b'-' | b'(' => {
                let (s, e) = match self.line(big_line) {
                    LineRead::Ready(s, e) => (s, e),
                    LineRead::Incomplete(n) => return Ok(Step::Incomplete(n)),
                    LineRead::TooLong => return Err(ProtocolError::TooBigSimpleString),
                    LineRead::BadEnding if ty == b'(' => {
                        return Err(ProtocolError::InvalidBigNumber)
                    }
                    LineRead::BadEnding => return Err(ProtocolError::InvalidLineEnding),
                };
                match ty {
                    b'+' => Frame::Simple(self.bytes(s, e)),
                    b'-' => Frame::Error(self.bytes(s, e)),
                    _ => {
                        if !valid_big_number(self.slice(s, e)) {
                            return Err(ProtocolError::InvalidBigNumber);
                        }
                        Frame::BigNumber(self.bytes(s, e))
                    }
                }
            }
            b':' => {
                let (s, e) = ready!(self.short_line(ProtocolError::InvalidInteger)?);
                Frame::Integer(parse_i64(self.slice(s, e)).ok_or(ProtocolError::InvalidInteger)?)
            }
            b',' => {
                let (s, e) = ready!(self.short_line(ProtocolError::InvalidDouble)?);
                Frame::Double(parse_double(self.slice(s, e)).ok_or(ProtocolError::InvalidDouble)?)
            }
            b'#' => {
                let (s, e) = ready!(self.short_line(ProtocolError::InvalidBoolean)?);
                match self.slice(s, e) {
                    b"t" => Frame::Boolean(true),
                    b"f" => Frame::Boolean(false),
                    _ => return Err(ProtocolError::InvalidBoolean),
                }
            }
            b'_' => {
                let (s, e) = ready!(self.short_line(ProtocolError::InvalidNull)?);
                if s != e {
                    return Err(ProtocolError::InvalidNull);
                }
                Frame::Null
            }
            b'$' => match ready!(self.blob(true)?) {
                Some((s, e)) => Frame::Bulk(self.bytes(s, e)),
                None => Frame::Null,
            },
            b'!' => match ready!(self.blob(false)?) {
                Some((s, e)) => Frame::BlobError(self.bytes(s, e)),
                None => return Err(ProtocolError::InvalidBulkLength),
            },
            b'=' => {
                let Some((s, e)) = ready!(self.blob(false)?) else {
                    return Err(ProtocolError::InvalidBulkLength);
                };
                match self.slice(s, e) {
                    [a, b, c, b':', ..] => Frame::Verbatim {
                        format: [*a, *b, *c],
                        text: self.bytes(s + 4, e),
                    },
                    _ => return Err(ProtocolError::InvalidVerbatim),
                }
            }
            b'*' => match ready!(self.aggregate(false)?) {
                Some(n) => return Ok(Step::Ready(Token::Open(Kind::Array, n))),
                None => Frame::Null,
            },
            b'%' | b'|' | b'~' | b'>' => {
                let (kind, pairs) = match ty {
                    b'%' => (Kind::Map, true),
                    b'|' => (Kind::Attribute, true),
                    b'~' => (Kind::Set, false),
                    _ => (Kind::Push, false),
                };
                match ready!(self.aggregate(pairs)?) {
                    Some(n) => return Ok(Step::Ready(Token::Open(kind, n))),
                    None => return Err(ProtocolError::InvalidMultibulkLength),
                }
            }
            other => return Err(ProtocolError::InvalidFrameType(other)),
        };
        Ok(Step::Ready(Token::Value(frame)))
    }
}

/// An optional `-`, then at least one digit.
fn valid_big_number(s: &[u8]) -> bool {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// `inf`, `-inf`, `nan`, or a decimal float (exponent allowed).
fn parse_double(s: &[u8]) -> Option<f64> {
    match s {
        b"inf" | b"+inf" => return Some(f64::INFINITY),
        b"-inf" => return Some(f64::NEG_INFINITY),
        b"nan" | b"-nan" => return Some(f64::NAN),
        [] => return None,
        _ => {}
    }
    // Only plain decimal syntax: Rust's parser would also take "infinity".
    if !s
        .iter()
        .all(|&b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse::<f64>().ok()
}
