//! `INCRBYFLOAT` and `HINCRBYFLOAT` arithmetic in C's `long double`, as Redis computes
//! it: `strtold` to parse (with Redis's `string2ld` rules: no leading space, all of the
//! text, no NaN), `+`, then `"%.17Lf"` without trailing zeros and without a negative
//! zero. Rust has no `long double`, so this calls `csrc/longdouble.c` (built by
//! `build.rs` with the `cc` crate): the one unsafe call in the server, on buffers whose
//! lengths it passes along.

#![allow(unsafe_code)]

use std::ffi::c_char;

extern "C" {
    fn sessiond_ld_add(
        cur: *const c_char,
        curlen: usize,
        incr: *const c_char,
        incrlen: usize,
        incr_must_be_finite: i32,
        out: *mut c_char,
        outcap: usize,
        outlen: *mut usize,
    ) -> i32;
}

/// Why a sum could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatError {
    /// The current value is not a float.
    Current,
    /// The increment is not a float.
    Increment,
    /// The increment is infinite (refused up front when asked).
    IncrementNotFinite,
    /// The sum is NaN or infinite.
    Sum,
}

/// `cur + incr` as Redis writes it; `cur` `None` counts as 0.
pub fn add(
    cur: Option<&[u8]>,
    incr: &[u8],
    incr_must_be_finite: bool,
) -> Result<Vec<u8>, FloatError> {
    // "%.17Lf" of the largest long double has about 4950 digits before the point.
    let mut out = vec![0u8; 5 * 1024 + 64];
    let mut len = 0usize;
    let (cp, cl) = match cur {
        Some(c) => (c.as_ptr().cast::<c_char>(), c.len()),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: every pointer comes with the length of its live buffer; the C side reads
    // at most `curlen`/`incrlen` bytes of the inputs, writes at most `outcap` bytes to
    // `out` and one usize to `len`, and keeps no pointer after it returns.
    let r = unsafe {
        sessiond_ld_add(
            cp,
            cl,
            incr.as_ptr().cast::<c_char>(),
            incr.len(),
            i32::from(incr_must_be_finite),
            out.as_mut_ptr().cast::<c_char>(),
            out.len(),
            &mut len,
        )
    };
    match r {
        1 => {
            out.truncate(len.min(out.len()));
            Ok(out)
        }
        -1 => Err(FloatError::Current),
        -2 => Err(FloatError::Increment),
        -5 => Err(FloatError::IncrementNotFinite),
        _ => Err(FloatError::Sum),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> Result<String, FloatError> {
        add(Some(a.as_bytes()), b.as_bytes(), false)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// Values redis-server 7.0 gives for the same sums.
    #[test]
    fn sums_print_as_redis_prints_them() {
        assert_eq!(sum("10.5", "0.1").as_deref(), Ok("10.6"));
        assert_eq!(sum("1", "-1.1").as_deref(), Ok("-0.1"));
        assert_eq!(
            sum("9223372036854775807", "0").as_deref(),
            Ok("9223372036854775807")
        );
        assert_eq!(
            sum("0.02439024390243902", "-0.024390243902439025").as_deref(),
            Ok("0")
        );
        assert_eq!(sum("3", "0").as_deref(), Ok("3"));
        assert_eq!(sum("5.0e3", "2.0e2").as_deref(), Ok("5200"));
        assert_eq!(sum(" 1", "1"), Err(FloatError::Current));
        assert_eq!(sum("1", "1 "), Err(FloatError::Increment));
        assert_eq!(sum("1", "nan"), Err(FloatError::Increment));
        assert_eq!(sum("1", "inf"), Err(FloatError::Sum));
        assert_eq!(
            add(None, b"+inf", true),
            Err(FloatError::IncrementNotFinite)
        );
        assert_eq!(add(None, b"0.25", false).as_deref(), Ok(&b"0.25"[..]));
    }
}
