//! Splitting an inline command line into arguments, with the rules of Redis's
//! `sdssplitargs`:
//!
//! - arguments are separated by whitespace (leading whitespace is any of
//!   space, `\t`, `\n`, `\r`, `\v`, `\f`; inside an unquoted argument only
//!   space, `\t`, `\n` and `\r` end it);
//! - `"..."` supports the escapes `\n \r \t \b \a \xHH` and `\<any>` for
//!   `<any>` itself (so `\\` and `\"`);
//! - `'...'` supports only `\'`;
//! - a quote may start in the middle of an argument (`a"b c"` is `ab c`);
//! - a closing quote must be followed by whitespace or the end of the line,
//!   and an unterminated quote is an error.
//!
//! One deliberate difference: Redis works on a C string, so a NUL byte ends
//! the line there; here NUL is an ordinary byte.

use crate::ProtocolError;

/// Where one argument's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InlineArg {
    /// `line[start..end]`: the argument is a contiguous slice of the line.
    Span(usize, usize),
    /// `scratch[start..end]`: the argument had escapes or joined pieces.
    Owned(usize, usize),
}

/// Splits `line` (without its line terminator), appending to `args` and, for
/// arguments that are not contiguous slices of `line`, to `scratch`.
pub(crate) fn split_args(
    line: &[u8],
    args: &mut Vec<InlineArg>,
    scratch: &mut Vec<u8>,
) -> Result<(), ProtocolError> {
    let n = line.len();
    let mut p = 0;
    loop {
        while p < n && is_space(line[p]) {
            p += 1;
        }
        if p >= n {
            return Ok(());
        }
        let mut arg = ArgBuilder::new(p);
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let mut done = false;
            let cur = line.get(p).copied();
            if in_double {
                let c = cur.ok_or(ProtocolError::UnbalancedQuotes)?;
                if c == b'\\' && line.get(p + 1) == Some(&b'x') {
                    if let (Some(h), Some(l)) = (
                        line.get(p + 2).and_then(|&b| hex(b)),
                        line.get(p + 3).and_then(|&b| hex(b)),
                    ) {
                        arg.push_byte(line, scratch, (h << 4) | l);
                        p += 3;
                    } else {
                        // `\x` without two hex digits: `x` itself.
                        arg.push_byte(line, scratch, b'x');
                        p += 1;
                    }
                } else if c == b'\\' && p + 1 < n {
                    p += 1;
                    let e = match line[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    };
                    arg.push_byte(line, scratch, e);
                } else if c == b'"' {
                    if line.get(p + 1).is_some_and(|&b| !is_space(b)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    done = true;
                } else {
                    arg.push_src(line, scratch, p);
                }
            } else if in_single {
                let c = cur.ok_or(ProtocolError::UnbalancedQuotes)?;
                if c == b'\\' && line.get(p + 1) == Some(&b'\'') {
                    p += 1;
                    arg.push_src(line, scratch, p);
                } else if c == b'\'' {
                    if line.get(p + 1).is_some_and(|&b| !is_space(b)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    done = true;
                } else {
                    arg.push_src(line, scratch, p);
                }
            } else {
                match cur {
                    None | Some(b' ' | b'\n' | b'\r' | b'\t') => done = true,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(_) => arg.push_src(line, scratch, p),
                }
            }
            if p < n {
                p += 1;
            }
            if done {
                break;
            }
        }
        args.push(arg.finish(scratch));
    }
}

/// C `isspace` in the "C" locale.
#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

#[inline]
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Accumulates one argument, as a slice of the line for as long as possible.
struct ArgBuilder {
    start: usize,
    end: usize,
    /// Start of the argument in `scratch` once it stopped being a slice.
    owned: Option<usize>,
}

impl ArgBuilder {
    fn new(at: usize) -> Self {
        ArgBuilder {
            start: at,
            end: at,
            owned: None,
        }
    }

    /// Appends `line[p]`.
    fn push_src(&mut self, line: &[u8], scratch: &mut Vec<u8>, p: usize) {
        if self.owned.is_none() {
            if self.start == self.end {
                self.start = p;
                self.end = p + 1;
                return;
            }
            if self.end == p {
                self.end = p + 1;
                return;
            }
        }
        if let Some(&b) = line.get(p) {
            self.push_byte(line, scratch, b);
        }
    }

    /// Appends a byte that is not (or not known to be) the next byte of the slice.
    fn push_byte(&mut self, line: &[u8], scratch: &mut Vec<u8>, b: u8) {
        if self.owned.is_none() {
            self.owned = Some(scratch.len());
            if let Some(s) = line.get(self.start..self.end) {
                scratch.extend_from_slice(s);
            }
        }
        scratch.push(b);
    }

    fn finish(self, scratch: &[u8]) -> InlineArg {
        match self.owned {
            Some(s) => InlineArg::Owned(s, scratch.len()),
            None => InlineArg::Span(self.start, self.end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
        let mut args = Vec::new();
        let mut scratch = Vec::new();
        split_args(line, &mut args, &mut scratch)?;
        Ok(args
            .into_iter()
            .map(|a| match a {
                InlineArg::Span(s, e) => line[s..e].to_vec(),
                InlineArg::Owned(s, e) => scratch[s..e].to_vec(),
            })
            .collect())
    }

    fn ok(line: &str, want: &[&[u8]]) {
        let got = split(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let want: Vec<Vec<u8>> = want.iter().map(|w| w.to_vec()).collect();
        assert_eq!(got, want, "{line:?}");
    }

    #[test]
    fn plain() {
        ok("", &[]);
        ok("   \t ", &[]);
        ok("PING", &[b"PING"]);
        ok("  SET  k   v  ", &[b"SET", b"k", b"v"]);
        ok("a\rb", &[b"a", b"b"]);
        ok("\x0bGET\x0b", &[b"GET\x0b"]);
    }

    #[test]
    fn quotes() {
        ok(r#"SET "a b" 'c\'d'"#, &[b"SET", b"a b", b"c'd"]);
        ok(r#""\x41\n""#, &[b"A\n"]);
        ok(r#""\x4""#, &[b"x4"]);
        ok(r#""a\"b\\c\q""#, &[b"a\"b\\cq"]);
        ok(r#""\t\r\b\a""#, &[b"\t\r\x08\x07"]);
        ok(r#"'a\nb'"#, &[b"a\\nb"]);
        ok(r#"a"b c""#, &[b"ab c"]);
        ok(r#""" ''"#, &[b"", b""]);
        ok(r#"x"y"	z"#, &[b"xy", b"z"]);
    }

    #[test]
    fn unbalanced() {
        for bad in [
            r#""abc"#,
            r#""abc"def"#,
            r#"'abc"#,
            r#"'abc'def"#,
            r#""abc\"#,
            r#"a "b"#,
        ] {
            assert_eq!(
                split(bad.as_bytes()),
                Err(ProtocolError::UnbalancedQuotes),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn zero_copy_when_possible() {
        let mut args = Vec::new();
        let mut scratch = Vec::new();
        assert!(split_args(br#"SET "a b" c"#, &mut args, &mut scratch).is_ok());
        assert_eq!(
            args,
            vec![
                InlineArg::Span(0, 3),
                InlineArg::Span(5, 8),
                InlineArg::Span(10, 11)
            ]
        );
        assert!(scratch.is_empty());
    }
}
