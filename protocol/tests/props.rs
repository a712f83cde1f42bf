//! Property tests: no input panics or hangs the decoders, and encoded
//! commands and frames always come back intact, however they are split.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sessiond_protocol::{encode, CommandDecoder, Frame, FrameDecoder, Limits};

/// Small limits so that random inputs actually reach them.
fn small_limits() -> Limits {
    Limits {
        max_bulk_len: 64,
        max_multibulk_len: 16,
        max_inline_len: 32,
        max_depth: 4,
    }
}

/// Feeds `data` in chunks of the given sizes, decoding until `Ok(None)` or an
/// error after each chunk. Checks the decoder only ever consumes bytes and
/// never more than it was given; returns the commands.
fn drive_commands(limits: Limits, data: &[u8], chunks: &[usize]) -> Vec<Vec<Bytes>> {
    let mut dec = CommandDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut fed = 0;
    let mut chunk_iter = chunks.iter().cycle();
    while fed < data.len() {
        let n = chunk_iter
            .next()
            .copied()
            .unwrap_or(1)
            .max(1)
            .min(data.len() - fed);
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
        // Each successful decode removes at least one byte, so this ends.
        loop {
            let before = buf.len();
            match dec.decode(&mut buf) {
                Ok(Some(args)) => {
                    assert!(!args.is_empty());
                    assert!(buf.len() < before);
                    let payload: usize = args.iter().map(Bytes::len).sum();
                    assert!(payload <= before - buf.len());
                    out.push(args);
                }
                Ok(None) => {
                    assert!(buf.len() <= before);
                    break;
                }
                Err(_) => {
                    // Only skipped blank lines / empty multibulks may be gone.
                    assert!(buf.len() <= before);
                    return out;
                }
            }
        }
    }
    out
}

fn drive_frames(limits: Limits, data: &[u8], chunks: &[usize]) -> Vec<Frame> {
    let mut dec = FrameDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut fed = 0;
    let mut chunk_iter = chunks.iter().cycle();
    while fed < data.len() {
        let n = chunk_iter
            .next()
            .copied()
            .unwrap_or(1)
            .max(1)
            .min(data.len() - fed);
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
        loop {
            let before = buf.len();
            match dec.decode(&mut buf) {
                Ok(Some(f)) => {
                    assert!(buf.len() < before);
                    out.push(f);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before);
                    break;
                }
                Err(_) => {
                    assert_eq!(buf.len(), before);
                    return out;
                }
            }
        }
    }
    out
}

/// Random bytes biased towards RESP syntax.
fn resp_ish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        4 => any::<u8>().prop_map(|b| vec![b]),
        2 => Just(b"\r\n".to_vec()),
        1 => prop::sample::select(vec![
            &b"*"[..], b"$", b"+", b"-", b":", b",", b"#", b"_", b"(", b"=", b"!", b"%", b"~",
            b">", b"|", b"\"", b"'", b"\\x4", b" ", b"?", b"-1", b"0",
        ])
        .prop_map(<[u8]>::to_vec),
        2 => (0u32..40).prop_map(|n| n.to_string().into_bytes()),
    ];
    prop::collection::vec(token, 0..60).prop_map(|v| v.concat())
}

fn prefixed() -> impl Strategy<Value = Vec<u8>> {
    let prefix = prop::sample::select(vec![
        &b"*"[..],
        b"$",
        b"*3\r\n",
        b"*2\r\n$3\r\nGET\r\n",
        b"*1\r\n$5\r\n",
        b"$5\r\n",
        b"%2\r\n",
        b"|1\r\n+a\r\n",
        b"*1\r\n*1\r\n*1\r\n",
    ]);
    (prefix, prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(p, rest)| [p, &rest].concat())
}

fn chunks() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..12, 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256), ch in chunks()) {
        drive_commands(Limits::default(), &data, &ch);
        drive_commands(small_limits(), &data, &ch);
        drive_frames(Limits::default(), &data, &ch);
        drive_frames(small_limits(), &data, &ch);
    }

    #[test]
    fn resp_like_bytes_never_panic(data in resp_ish(), ch in chunks()) {
        drive_commands(Limits::default(), &data, &ch);
        drive_commands(small_limits(), &data, &ch);
        drive_frames(Limits::default(), &data, &ch);
        drive_frames(small_limits(), &data, &ch);
    }

    #[test]
    fn prefixed_bytes_never_panic(data in prefixed(), ch in chunks()) {
        drive_commands(Limits::default(), &data, &ch);
        drive_commands(small_limits(), &data, &ch);
        drive_frames(Limits::default(), &data, &ch);
        drive_frames(small_limits(), &data, &ch);
    }

    #[test]
    fn decoded_frames_reencode_to_themselves(data in resp_ish()) {
        // Whatever FrameDecoder accepts, re-encoding and decoding it again is
        // stable (compared as bytes, so NaN is fine).
        for f in drive_frames(Limits::default(), &data, &[usize::MAX]) {
            let once = f.to_bytes();
            let again = drive_frames(Limits::default(), &once, &[usize::MAX]);
            prop_assert_eq!(again.len(), 1);
            prop_assert_eq!(again[0].to_bytes(), once);
        }
    }

    #[test]
    fn commands_round_trip_at_any_split(
        args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..8),
        split_seed in any::<usize>(),
        ch in chunks(),
    ) {
        let mut wire = BytesMut::new();
        encode::command(&mut wire, &args);
        let wire = wire.to_vec();

        // Two chunks at an arbitrary split.
        let split = split_seed % (wire.len() + 1);
        let mut dec = CommandDecoder::new(Limits::default());
        let mut buf = BytesMut::from(&wire[..split]);
        if split < wire.len() {
            prop_assert_eq!(dec.decode(&mut buf), Ok(None));
            buf.extend_from_slice(&wire[split..]);
        }
        let got = dec.decode(&mut buf);
        let want: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        prop_assert_eq!(got, Ok(Some(want.clone())));
        prop_assert!(buf.is_empty());

        // Random chunking, three times pipelined.
        let tripled = wire.repeat(3);
        let got = drive_commands(Limits::default(), &tripled, &ch);
        prop_assert_eq!(got, vec![want.clone(), want.clone(), want]);
    }

    #[test]
    fn frames_round_trip_at_any_split(f in arb_frame(), split_seed in any::<usize>()) {
        let wire = f.to_bytes();
        let split = split_seed % (wire.len() + 1);
        let mut dec = FrameDecoder::new(Limits::default());
        let mut buf = BytesMut::from(&wire[..split]);
        if split < wire.len() {
            prop_assert_eq!(dec.decode(&mut buf), Ok(None));
            buf.extend_from_slice(&wire[split..]);
        }
        prop_assert_eq!(dec.decode(&mut buf), Ok(Some(f)));
        prop_assert!(buf.is_empty());
    }
}

fn arb_bytes() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn arb_line() -> impl Strategy<Value = Bytes> {
    "[ -~]{0,16}".prop_map(Bytes::from)
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let leaf = prop_oneof![
        arb_line().prop_map(Frame::Simple),
        arb_line().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        arb_bytes().prop_map(Frame::Bulk),
        Just(Frame::Null),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |v| !v.is_nan())
            .prop_map(Frame::Double),
        any::<bool>().prop_map(Frame::Boolean),
        "-?[0-9]{1,30}".prop_map(|s| Frame::BigNumber(Bytes::from(s))),
        (any::<[u8; 3]>(), arb_bytes()).prop_map(|(format, text)| Frame::Verbatim { format, text }),
        arb_bytes().prop_map(Frame::BlobError),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Frame::Array),
            prop::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Frame::Map),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Frame::Set),
            prop::collection::vec(inner, 0..6).prop_map(Frame::Push),
        ]
    })
}
