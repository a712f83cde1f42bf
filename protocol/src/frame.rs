//! [`Frame`]: one decoded RESP2/RESP3 value, and its encoding.

use bytes::{BufMut, Bytes, BytesMut};

use crate::encode;

/// One RESP value. Byte payloads are [`Bytes`] slices of the buffer they were
/// decoded from (no copy).
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`: a simple string (never contains CR or LF).
    Simple(Bytes),
    /// `-ERR ...`: the text without the leading `-`.
    Error(Bytes),
    /// `:1`
    Integer(i64),
    /// `$3\r\nfoo`: binary safe.
    Bulk(Bytes),
    /// `$-1`, `*-1` (RESP2) and `_` (RESP3).
    Null,
    /// `*`
    Array(Vec<Frame>),
    /// `%` (RESP3): key/value pairs in wire order.
    Map(Vec<(Frame, Frame)>),
    /// `~` (RESP3)
    Set(Vec<Frame>),
    /// `>` (RESP3): out-of-band data such as pub/sub messages.
    Push(Vec<Frame>),
    /// `,1.5`, `,inf`, `,-inf`, `,nan` (RESP3)
    Double(f64),
    /// `#t` / `#f` (RESP3)
    Boolean(bool),
    /// `(123...` (RESP3): the digits, with an optional leading `-`.
    BigNumber(Bytes),
    /// `=15\r\ntxt:Some string` (RESP3)
    Verbatim {
        /// The three format bytes, e.g. `txt` or `mkd`.
        format: [u8; 3],
        /// The text after `fmt:`.
        text: Bytes,
    },
    /// `!21\r\nSYNTAX invalid syntax` (RESP3): binary-safe error.
    BlobError(Bytes),
}

impl Frame {
    /// Writes the frame in its own wire form: RESP3 types as RESP3, and
    /// [`Frame::Null`] as the RESP3 null `_\r\n`. Same as `encode_as(out, true)`.
    ///
    /// `Simple` and `Error` payloads are written as they are: they must not
    /// contain CR or LF.
    pub fn encode(&self, out: &mut BytesMut) {
        self.encode_as(out, true);
    }

    /// Writes the frame for a peer speaking RESP3 (`resp3 == true`, same as
    /// [`Frame::encode`]) or RESP2, in which case RESP3-only types are
    /// downgraded the way Redis does it: `Null` → `$-1`, maps → flat arrays of
    /// `2n` elements, sets and pushes → arrays, doubles, big numbers and
    /// verbatim strings → bulk strings (verbatim without its `fmt:` prefix),
    /// booleans → `:1`/`:0`, blob errors → simple errors (CR/LF replaced by
    /// spaces).
    pub fn encode_as(&self, out: &mut BytesMut, resp3: bool) {
        match self {
            Frame::Simple(s) => encode::simple(out, s),
            Frame::Error(e) => encode::error(out, e),
            Frame::Integer(n) => encode::integer(out, *n),
            Frame::Bulk(b) => encode::bulk(out, b),
            Frame::Null => encode::null(out, resp3),
            Frame::Array(items) => {
                encode::array_len(out, items.len());
                for f in items {
                    f.encode_as(out, resp3);
                }
            }
            Frame::Map(pairs) => {
                encode::map_len(out, pairs.len(), resp3);
                for (k, v) in pairs {
                    k.encode_as(out, resp3);
                    v.encode_as(out, resp3);
                }
            }
            Frame::Set(items) => {
                encode::set_len(out, items.len(), resp3);
                for f in items {
                    f.encode_as(out, resp3);
                }
            }
            Frame::Push(items) => {
                encode::push_len(out, items.len(), resp3);
                for f in items {
                    f.encode_as(out, resp3);
                }
            }
            Frame::Double(v) => encode::double(out, *v, resp3),
            Frame::Boolean(b) => encode::boolean(out, *b, resp3),
            Frame::BigNumber(n) => encode::big_number(out, n, resp3),
            Frame::Verbatim { format, text } => encode::verbatim(out, format, text, resp3),
            Frame::BlobError(e) => {
                if resp3 {
                    encode::blob_error(out, e);
                } else {
                    out.reserve(e.len() + 3);
                    out.put_u8(b'-');
                    for &b in e.iter() {
                        out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
                    }
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }

    /// The frame's encoding as a fresh buffer (convenience for tests and tools).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }

    /// A bulk string frame copied from `data` (convenience).
    pub fn bulk(data: impl AsRef<[u8]>) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(data.as_ref()))
    }

    /// A simple string frame copied from `s` (convenience).
    pub fn simple(s: impl AsRef<[u8]>) -> Frame {
        Frame::Simple(Bytes::copy_from_slice(s.as_ref()))
    }

    /// Whether this is an `Error` or `BlobError`.
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_) | Frame::BlobError(_))
    }
}

#[cfg(test)]
mod tests {
    use super::Frame;
    use bytes::{Bytes, BytesMut};

    fn enc(f: &Frame, resp3: bool) -> Vec<u8> {
        let mut out = BytesMut::new();
        f.encode_as(&mut out, resp3);
        out.to_vec()
    }

    #[test]
    fn resp2_downgrades() {
        let m = Frame::Map(vec![(Frame::simple("a"), Frame::Integer(1))]);
        assert_eq!(enc(&m, true), b"%1\r\n+a\r\n:1\r\n");
        assert_eq!(enc(&m, false), b"*2\r\n+a\r\n:1\r\n");
        assert_eq!(enc(&Frame::Null, true), b"_\r\n");
        assert_eq!(enc(&Frame::Null, false), b"$-1\r\n");
        assert_eq!(enc(&Frame::Boolean(true), false), b":1\r\n");
        assert_eq!(enc(&Frame::Double(1.5), false), b"$3\r\n1.5\r\n");
        let v = Frame::Verbatim {
            format: *b"txt",
            text: Bytes::from_static(b"hi"),
        };
        assert_eq!(enc(&v, true), b"=6\r\ntxt:hi\r\n");
        assert_eq!(enc(&v, false), b"$2\r\nhi\r\n");
        let e = Frame::BlobError(Bytes::from_static(b"ERR a\r\nb"));
        assert_eq!(enc(&e, true), b"!8\r\nERR a\r\nb\r\n");
        assert_eq!(enc(&e, false), b"-ERR a  b\r\n");
        assert_eq!(
            enc(&Frame::BigNumber(Bytes::from_static(b"-12")), false),
            b"$3\r\n-12\r\n"
        );
    }
}
