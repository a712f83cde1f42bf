//! Doubles as Redis writes and reads them: C's `%g` (scores, Lua numbers) and `strtod`'s
//! rules for an argument that must be a float.

/// C's `printf("%.<precision>g", v)`: how Lua 5.1 and Redis print numbers (`%.14g` for
/// `tostring` and cjson, `%.17g` for numbers passed to `redis.call`).
pub fn fmt_g(v: f64, precision: usize) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf" } else { "inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, v);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let x: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if x < -4 || x >= p as i32 {
        let sign = if x < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant), x.unsigned_abs())
    } else {
        let decimals = (p as i32 - 1 - x).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    }
}

/// A float argument as Redis's `getDoubleFromObject` takes it: the whole text, no
/// leading space, `inf`/`-inf` allowed, NaN and overflow refused.
pub fn parse(b: &[u8]) -> Option<f64> {
    if b.is_empty() || b[0].is_ascii_whitespace() {
        return None;
    }
    let v = strtod(b)?;
    if v.is_infinite() {
        let t = String::from_utf8_lossy(b)
            .trim_start_matches(['+', '-'])
            .to_ascii_lowercase();
        if t != "inf" && t != "infinity" {
            return None;
        }
    }
    Some(v)
}

/// C's `strtod` over the whole text (leading spaces allowed, the empty text is 0, as a
/// sorted set's range bounds are read), NaN refused. Hexadecimal (`0x1p4`) included.
pub fn strtod(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b)
        .ok()?
        .trim_start_matches(|c: char| c.is_ascii_whitespace());
    if s.is_empty() {
        return (b.is_empty()).then_some(0.0);
    }
    let (neg, body) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let v = match body.get(..2) {
        Some("0x" | "0X") => hex(&body[2..])?,
        _ if body.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == 'i' || c == 'I') => {
            body.parse::<f64>().ok()?
        }
        _ => return None,
    };
    if v.is_nan() {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// A hexadecimal float's digits after `0x`: `h[.h][p[+-]d]`.
fn hex(s: &str) -> Option<f64> {
    let (mant, exp) = match s.find(['p', 'P']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(v * 2f64.powi(exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_follows_strtod() {
        assert_eq!(parse(b"1.5"), Some(1.5));
        assert_eq!(parse(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse(b".5"), Some(0.5));
        assert_eq!(parse(b"0x10"), Some(16.0));
        assert_eq!(parse(b"-0x1.8p1"), Some(-3.0));
        assert_eq!(strtod(b""), Some(0.0));
        assert_eq!(strtod(b"  2"), Some(2.0));
        assert_eq!(strtod(b" "), None);
        for bad in [
            &b"nan"[..],
            b"",
            b" 1",
            b"1 ",
            b"1e400",
            b"abc",
            b"1.2.3",
            b"0x",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
