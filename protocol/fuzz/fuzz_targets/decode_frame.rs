//! Feeds arbitrary bytes to `FrameDecoder` in chunks whose sizes come from the
//! input's first bytes; no input may panic it, an incomplete or invalid frame
//! must consume nothing, and every decoded frame must survive
//! encode → decode → encode unchanged.
//!
//! `cargo +nightly fuzz run decode_frame -- -dict=dict/resp.dict`
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sessiond_protocol::{FrameDecoder, Limits};

fuzz_target!(|input: &[u8]| {
    let (sizes, data) = input.split_at(input.len().min(4));
    let limits = if sizes.first().is_some_and(|b| b & 1 == 1) {
        Limits {
            max_bulk_len: 128,
            max_multibulk_len: 16,
            max_inline_len: 64,
            max_depth: 4,
        }
    } else {
        Limits::default()
    };
    let mut dec = FrameDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut fed = 0usize;
    let mut consumed = 0usize;
    let mut i = 0usize;
    while fed < data.len() {
        let n = (usize::from(sizes.get(i % sizes.len().max(1)).copied().unwrap_or(0)) + 1)
            .min(data.len() - fed);
        i += 1;
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
        loop {
            let before = buf.len();
            match dec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(buf.len() < before, "frame without consuming");
                    consumed += before - buf.len();
                    assert!(consumed <= fed, "consumed more than was fed");
                    let once = frame.to_bytes();
                    let mut again = BytesMut::from(&once[..]);
                    let reparsed = FrameDecoder::new(Limits::default())
                        .decode(&mut again)
                        .ok()
                        .flatten();
                    assert!(again.is_empty(), "re-encoded frame not fully consumed");
                    assert_eq!(reparsed.map(|f| f.to_bytes()), Some(once));
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "consumed on incomplete");
                    break;
                }
                Err(_) => {
                    assert_eq!(buf.len(), before, "consumed on error");
                    return;
                }
            }
        }
    }
});
