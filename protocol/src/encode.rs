//! Writing replies (server side) and commands (client side) straight into a
//! [`BytesMut`], with no intermediate allocation.
//!
//! Functions taking `resp3: bool` write the RESP3 form when it is true and the
//! RESP2 form Redis uses for the same reply otherwise. Simple strings and
//! errors are written as given: they must not contain CR or LF.
//!
//! Fixed replies are available as byte constants ([`OK`], [`PONG`], ...) so
//! that they cost a single `extend_from_slice`.
//!
//! # Doubles
//! [`double`] formats like this (the same text in both protocols):
//! - NaN → `nan`, +∞ → `inf`, −∞ → `-inf`;
//! - a finite integral value with magnitude below 2^53 → plain integer digits,
//!   no `.0` (`1`, `-42`, `0`; negative zero is `-0`);
//! - anything else → the shortest text that parses back to the same `f64`
//!   (ryu), with a trailing `.0` removed. ryu switches to exponent form for
//!   very large or very small magnitudes (`1e21`, `1.5e-7`, `1.2345e20`),
//!   always `<mantissa>e<signed exponent>` without a `+` sign; this is valid
//!   for `strtod`, Rust's `f64::from_str` and the RESP3 double grammar.

use bytes::{BufMut, BytesMut};

/// `+OK\r\n`
pub const OK: &[u8] = b"+OK\r\n";
/// `+PONG\r\n`
pub const PONG: &[u8] = b"+PONG\r\n";
/// `+QUEUED\r\n`
pub const QUEUED: &[u8] = b"+QUEUED\r\n";
/// RESP2 null bulk string `$-1\r\n`.
pub const NULL_BULK: &[u8] = b"$-1\r\n";
/// RESP2 null array `*-1\r\n`.
pub const NULL_ARRAY: &[u8] = b"*-1\r\n";
/// RESP3 null `_\r\n`.
pub const NULL_RESP3: &[u8] = b"_\r\n";
/// `:0\r\n`
pub const ZERO: &[u8] = b":0\r\n";
/// `:1\r\n`
pub const ONE: &[u8] = b":1\r\n";
/// `*0\r\n`
pub const EMPTY_ARRAY: &[u8] = b"*0\r\n";
/// `$0\r\n\r\n`
pub const EMPTY_BULK: &[u8] = b"$0\r\n\r\n";

const CRLF: &[u8] = b"\r\n";

/// Writes `<prefix><n>\r\n`.
#[inline]
fn header<I: itoa::Integer>(out: &mut BytesMut, prefix: u8, n: I) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(n).as_bytes();
    out.reserve(digits.len() + 3);
    out.put_u8(prefix);
    out.extend_from_slice(digits);
    out.extend_from_slice(CRLF);
}

/// Writes `<prefix><s>\r\n`.
#[inline]
fn line(out: &mut BytesMut, prefix: u8, s: &[u8]) {
    out.reserve(s.len() + 3);
    out.put_u8(prefix);
    out.extend_from_slice(s);
    out.extend_from_slice(CRLF);
}

/// Writes `<prefix><len>\r\n<data>\r\n`.
#[inline]
fn blob(out: &mut BytesMut, prefix: u8, data: &[u8]) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(data.len()).as_bytes();
    out.reserve(digits.len() + data.len() + 5);
    out.put_u8(prefix);
    out.extend_from_slice(digits);
    out.extend_from_slice(CRLF);
    out.extend_from_slice(data);
    out.extend_from_slice(CRLF);
}

/// `+s\r\n`
#[inline]
pub fn simple(out: &mut BytesMut, s: &[u8]) {
    line(out, b'+', s);
}

/// `-msg\r\n`; `msg` already includes its code (`ERR ...`, `WRONGTYPE ...`).
#[inline]
pub fn error(out: &mut BytesMut, msg: &[u8]) {
    line(out, b'-', msg);
}

/// `:n\r\n`
#[inline]
pub fn integer(out: &mut BytesMut, n: i64) {
    match n {
        0 => out.extend_from_slice(ZERO),
        1 => out.extend_from_slice(ONE),
        _ => header(out, b':', n),
    }
}

/// `$len\r\ndata\r\n`
#[inline]
pub fn bulk(out: &mut BytesMut, data: &[u8]) {
    blob(out, b'$', data);
}

/// `$-1\r\n` (RESP2) or `_\r\n` (RESP3).
#[inline]
pub fn null(out: &mut BytesMut, resp3: bool) {
    out.extend_from_slice(if resp3 { NULL_RESP3 } else { NULL_BULK });
}

/// `*-1\r\n` (RESP2) or `_\r\n` (RESP3).
#[inline]
pub fn null_array(out: &mut BytesMut, resp3: bool) {
    out.extend_from_slice(if resp3 { NULL_RESP3 } else { NULL_ARRAY });
}

/// `*n\r\n`
#[inline]
pub fn array_len(out: &mut BytesMut, n: usize) {
    header(out, b'*', n);
}

/// `%n\r\n` (RESP3) or `*{2n}\r\n` (RESP2); `n` is the number of pairs.
#[inline]
pub fn map_len(out: &mut BytesMut, n: usize, resp3: bool) {
    if resp3 {
        header(out, b'%', n);
    } else {
        header(out, b'*', (n as u64).saturating_mul(2));
    }
}

/// `~n\r\n` (RESP3) or `*n\r\n` (RESP2).
#[inline]
pub fn set_len(out: &mut BytesMut, n: usize, resp3: bool) {
    header(out, if resp3 { b'~' } else { b'*' }, n);
}

/// `>n\r\n` (RESP3) or `*n\r\n` (RESP2).
#[inline]
pub fn push_len(out: &mut BytesMut, n: usize, resp3: bool) {
    header(out, if resp3 { b'>' } else { b'*' }, n);
}

/// `,v\r\n` (RESP3) or a bulk string of the same text (RESP2). See the
/// [module docs](self#doubles) for the exact text.
pub fn double(out: &mut BytesMut, v: f64, resp3: bool) {
    let mut int_buf = itoa::Buffer::new();
    let mut ryu_buf = ryu::Buffer::new();
    let text = double_text(v, &mut int_buf, &mut ryu_buf);
    if resp3 {
        line(out, b',', text);
    } else {
        bulk(out, text);
    }
}

/// The text [`double`] writes for `v`, borrowed from one of the two buffers.
fn double_text<'a>(v: f64, ints: &'a mut itoa::Buffer, floats: &'a mut ryu::Buffer) -> &'a [u8] {
    const EXACT_INT_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
    if v.is_nan() {
        return b"nan";
    }
    if v.is_infinite() {
        return if v > 0.0 { b"inf" } else { b"-inf" };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { b"-0" } else { b"0" };
    }
    if v.abs() < EXACT_INT_LIMIT && v.trunc() == v {
        // Exact: every integer below 2^53 is representable both ways.
        return ints.format(v as i64).as_bytes();
    }
    let s = floats.format_finite(v).as_bytes();
    s.strip_suffix(b".0").unwrap_or(s)
}

/// `#t\r\n`/`#f\r\n` (RESP3) or `:1\r\n`/`:0\r\n` (RESP2).
#[inline]
pub fn boolean(out: &mut BytesMut, b: bool, resp3: bool) {
    out.extend_from_slice(match (resp3, b) {
        (true, true) => b"#t\r\n",
        (true, false) => b"#f\r\n",
        (false, true) => ONE,
        (false, false) => ZERO,
    });
}

/// `=len\r\nfmt:text\r\n` (RESP3) or a bulk string of `text` alone (RESP2).
pub fn verbatim(out: &mut BytesMut, format: &[u8; 3], text: &[u8], resp3: bool) {
    if !resp3 {
        bulk(out, text);
        return;
    }
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(text.len() as u64 + 4).as_bytes();
    out.reserve(digits.len() + text.len() + 9);
    out.put_u8(b'=');
    out.extend_from_slice(digits);
    out.extend_from_slice(CRLF);
    out.extend_from_slice(format);
    out.put_u8(b':');
    out.extend_from_slice(text);
    out.extend_from_slice(CRLF);
}

/// `(digits\r\n` (RESP3) or a bulk string of the digits (RESP2).
#[inline]
pub fn big_number(out: &mut BytesMut, digits: &[u8], resp3: bool) {
    if resp3 {
        line(out, b'(', digits);
    } else {
        bulk(out, digits);
    }
}

/// `!len\r\nmsg\r\n` (RESP3 blob error; there is no RESP2 form, use [`error`]).
#[inline]
pub fn blob_error(out: &mut BytesMut, msg: &[u8]) {
    blob(out, b'!', msg);
}

/// A command as a client sends it: `*n\r\n` followed by one bulk per argument.
pub fn command<A: AsRef<[u8]>>(out: &mut BytesMut, args: &[A]) {
    let payload: usize = args.iter().map(|a| a.as_ref().len() + 16).sum();
    out.reserve(payload + 16);
    header(out, b'*', args.len());
    for a in args {
        bulk(out, a.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: f64) -> String {
        let mut i = itoa::Buffer::new();
        let mut r = ryu::Buffer::new();
        String::from_utf8_lossy(double_text(v, &mut i, &mut r)).into_owned()
    }

    #[test]
    fn double_formats() {
        assert_eq!(text(1.0), "1");
        assert_eq!(text(-42.0), "-42");
        assert_eq!(text(0.0), "0");
        assert_eq!(text(-0.0), "-0");
        assert_eq!(text(1.5), "1.5");
        assert_eq!(text(0.1), "0.1");
        assert_eq!(text(f64::INFINITY), "inf");
        assert_eq!(text(f64::NEG_INFINITY), "-inf");
        assert_eq!(text(f64::NAN), "nan");
        assert_eq!(text(9_007_199_254_740_991.0), "9007199254740991");
        assert_eq!(text(1e21), "1e21");
        assert_eq!(text(1.5e-7), "1.5e-7");
        for v in [
            1e21,
            1.5e-7,
            123.456,
            -3.25e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
        ] {
            assert_eq!(text(v).parse::<f64>().ok(), Some(v), "{v}");
        }
    }

    #[test]
    fn writers() {
        let mut out = BytesMut::new();
        simple(&mut out, b"OK");
        error(&mut out, b"ERR x");
        integer(&mut out, -7);
        integer(&mut out, 1);
        bulk(&mut out, b"a\r\nb");
        bulk(&mut out, b"");
        null(&mut out, false);
        null(&mut out, true);
        null_array(&mut out, false);
        array_len(&mut out, 3);
        map_len(&mut out, 2, false);
        map_len(&mut out, 2, true);
        set_len(&mut out, 1, true);
        push_len(&mut out, 1, false);
        double(&mut out, 2.5, true);
        double(&mut out, 3.0, false);
        boolean(&mut out, false, true);
        boolean(&mut out, true, false);
        verbatim(&mut out, b"txt", b"hey", true);
        command(&mut out, &["GET", "k"]);
        assert_eq!(
            &out[..],
            &b"+OK\r\n-ERR x\r\n:-7\r\n:1\r\n$4\r\na\r\nb\r\n$0\r\n\r\n$-1\r\n_\r\n*-1\r\n\
*3\r\n*4\r\n%2\r\n~1\r\n*1\r\n,2.5\r\n$1\r\n3\r\n#f\r\n:1\r\n=7\r\ntxt:hey\r\n\
*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"[..]
        );
    }
}
