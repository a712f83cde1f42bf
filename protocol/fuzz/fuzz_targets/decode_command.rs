//! Feeds arbitrary bytes to `CommandDecoder` in chunks whose sizes come from
//! the input's first bytes; no input may panic it, and it may never consume
//! more than it was given nor hand out more argument bytes than it consumed.
//!
//! `cargo +nightly fuzz run decode_command -- -dict=dict/resp.dict`
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sessiond_protocol::{CommandDecoder, Limits};

fuzz_target!(|input: &[u8]| {
    let (sizes, data) = input.split_at(input.len().min(4));
    // Small limits half the time so the limit paths get exercised too.
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
    let mut dec = CommandDecoder::new(limits);
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
            let result = dec.decode(&mut buf);
            assert!(buf.len() <= before, "decoder grew the buffer");
            consumed += before - buf.len();
            assert!(consumed <= fed, "consumed more than was fed");
            match result {
                Ok(Some(args)) => {
                    assert!(!args.is_empty(), "empty command");
                    assert!(buf.len() < before, "command without consuming");
                    let payload: usize = args.iter().map(Bytes::len).sum();
                    assert!(payload <= before - buf.len());
                }
                Ok(None) => break,
                Err(e) => {
                    // Every error must render as one line.
                    let text = e.to_string();
                    assert!(!text.contains('\r') && !text.contains('\n'));
                    return;
                }
            }
        }
    }
});
