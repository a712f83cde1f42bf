//! Decoders: [`CommandDecoder`] turns a client's bytes into commands (server
//! side), [`FrameDecoder`] turns a server's bytes into [`Frame`](crate::Frame)s
//! (client side). Both work on a caller-owned [`BytesMut`](bytes::BytesMut)
//! that the caller appends to as bytes arrive, and both hand out zero-copy
//! [`Bytes`](bytes::Bytes) slices of it.

mod command;
mod inline;
mod reply;

pub use command::CommandDecoder;
pub use reply::FrameDecoder;

/// Size limits enforced by the decoders. Defaults match Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted bulk length (Redis `proto-max-bulk-len`, 512 MiB).
    pub max_bulk_len: u64,
    /// Largest accepted multibulk / aggregate element count (1 048 576).
    pub max_multibulk_len: u64,
    /// Longest inline command line and longest `*N` / `$N` count line
    /// (Redis `PROTO_INLINE_MAX_SIZE`, 64 KiB).
    pub max_inline_len: usize,
    /// Deepest aggregate nesting [`FrameDecoder`] accepts (64). A top-level
    /// array is depth 1.
    pub max_depth: usize,
}

impl Limits {
    /// The default limits, usable in `const` context.
    pub const DEFAULT: Limits = Limits {
        max_bulk_len: 512 * 1024 * 1024,
        max_multibulk_len: 1_048_576,
        max_inline_len: 64 * 1024,
        max_depth: 64,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Parses a signed decimal `i64` with Redis `string2ll` rules: an optional
/// `-`, then digits without leading zeros (`0` alone is fine, `-0` is not),
/// no `+`, no spaces, no overflow.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut v: u64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some(0i64.wrapping_sub(v as i64))
    } else {
        i64::try_from(v).ok()
    }
}

/// Outcome of looking for the CRLF that ends a line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// The line's content ends at `cr` (exclusive); the next byte after the
    /// CRLF is at `cr + 2`.
    Done { cr: usize },
    /// No CR yet, or a CR that is the last byte of the buffer.
    Incomplete,
    /// No CR within the limit.
    TooLong,
    /// A CR followed by something other than LF.
    BadEnding,
}

/// Looks for the CR ending the line whose content starts at `from` and is at
/// most `limit` bytes long. `scanned` is an absolute offset before which no CR
/// exists after `from` (0 means "nothing scanned yet"); it is advanced so a
/// caller that comes back with more bytes does not rescan.
pub(crate) fn find_line(buf: &[u8], from: usize, limit: usize, scanned: &mut usize) -> Line {
    let window_end = buf.len().min(from.saturating_add(limit).saturating_add(1));
    let search_from = (*scanned).max(from);
    if search_from < window_end {
        if let Some(i) = buf
            .get(search_from..window_end)
            .and_then(|w| memchr::memchr(b'\r', w))
        {
            let cr = search_from + i;
            *scanned = cr;
            return match buf.get(cr + 1) {
                None => Line::Incomplete,
                Some(b'\n') => Line::Done { cr },
                Some(_) => Line::BadEnding,
            };
        }
        *scanned = window_end;
    }
    if buf.len() - from.min(buf.len()) > limit {
        Line::TooLong
    } else {
        Line::Incomplete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"123"), Some(123));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"-0",
            b"1 ",
            b" 1",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn find_line_cases() {
        let mut s = 0;
        assert_eq!(find_line(b"$3\r\n", 1, 10, &mut s), Line::Done { cr: 2 });
        let mut s = 0;
        assert_eq!(find_line(b"$3\r", 1, 10, &mut s), Line::Incomplete);
        assert_eq!(s, 2);
        assert_eq!(find_line(b"$3\r\n", 1, 10, &mut s), Line::Done { cr: 2 });
        let mut s = 0;
        assert_eq!(find_line(b"$3\rx", 1, 10, &mut s), Line::BadEnding);
        let mut s = 0;
        assert_eq!(find_line(b"$123", 1, 3, &mut s), Line::Incomplete);
        assert_eq!(find_line(b"$1234", 1, 3, &mut s), Line::TooLong);
        let mut s = 0;
        assert_eq!(find_line(b"$123\r\n", 1, 3, &mut s), Line::Done { cr: 4 });
    }
}
