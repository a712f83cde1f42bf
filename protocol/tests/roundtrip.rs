//! Encode → decode round trips, fed to the decoders in every possible split.

use bytes::{Bytes, BytesMut};
use sessiond_protocol::{encode, CommandDecoder, Frame, FrameDecoder, Limits};

fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

fn sample_frames() -> Vec<Frame> {
    let binary: Vec<u8> = (0..=255u8).chain(b"\r\n\r\n".iter().copied()).collect();
    vec![
        Frame::Simple(b(b"OK")),
        Frame::Simple(b(b"")),
        Frame::Error(b(b"ERR unknown command 'FOO'")),
        Frame::Integer(0),
        Frame::Integer(-1),
        Frame::Integer(i64::MAX),
        Frame::Integer(i64::MIN),
        Frame::Bulk(b(b"")),
        Frame::Bulk(b(b"foo")),
        Frame::Bulk(b(b"\r\n")),
        Frame::Bulk(b(&binary)),
        Frame::Null,
        Frame::Array(vec![]),
        Frame::Array(vec![
            Frame::Bulk(b(b"a\r\nb")),
            Frame::Integer(7),
            Frame::Null,
        ]),
        Frame::Map(vec![]),
        Frame::Map(vec![
            (Frame::Simple(b(b"k")), Frame::Double(1.5)),
            (
                Frame::Bulk(b(b"k2")),
                Frame::Array(vec![Frame::Boolean(true)]),
            ),
        ]),
        Frame::Set(vec![Frame::Integer(1), Frame::Integer(2)]),
        Frame::Push(vec![
            Frame::Bulk(b(b"message")),
            Frame::Bulk(b(b"chan")),
            Frame::Bulk(b(b"payload")),
        ]),
        Frame::Double(0.0),
        Frame::Double(-2.0),
        Frame::Double(3.25e-7),
        Frame::Double(1e300),
        Frame::Double(f64::INFINITY),
        Frame::Double(f64::NEG_INFINITY),
        Frame::Boolean(false),
        Frame::BigNumber(b(b"3492890328409238509324850943850943825024385")),
        Frame::BigNumber(b(b"-1")),
        Frame::Verbatim {
            format: *b"txt",
            text: b(b"Some string"),
        },
        Frame::Verbatim {
            format: *b"mkd",
            text: b(b""),
        },
        Frame::BlobError(b(b"SYNTAX invalid\r\nsyntax")),
        Frame::Array(vec![Frame::Array(vec![Frame::Map(vec![(
            Frame::Set(vec![Frame::Null]),
            Frame::Push(vec![Frame::Array(vec![])]),
        )])])]),
    ]
}

fn encoded(f: &Frame) -> Vec<u8> {
    let mut out = BytesMut::new();
    f.encode(&mut out);
    out.to_vec()
}

/// Feeds `wire[..split]`, then the rest, checking the decoder waits and then
/// yields exactly `want` and consumes exactly the frame.
fn frame_split_check(wire: &[u8], want: &Frame, split: usize) {
    let mut dec = FrameDecoder::new(Limits::default());
    let mut buf = BytesMut::from(&wire[..split]);
    if split < wire.len() {
        assert_eq!(dec.decode(&mut buf), Ok(None), "split {split}");
        assert_eq!(buf.len(), split, "consumed on incomplete, split {split}");
        buf.extend_from_slice(&wire[split..]);
    }
    assert_eq!(
        dec.decode(&mut buf).as_ref(),
        Ok(&Some(want.clone())),
        "split {split}"
    );
    assert!(buf.is_empty());
    assert_eq!(dec.decode(&mut buf), Ok(None));
}

#[test]
fn frames_round_trip_at_every_split() {
    for f in sample_frames() {
        let wire = encoded(&f);
        for split in 0..=wire.len() {
            frame_split_check(&wire, &f, split);
        }
    }
}

#[test]
fn big_bulk_frame_round_trip() {
    // Larger than max_inline_len, so no line limit can be confused with it.
    let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let f = Frame::Array(vec![Frame::Bulk(Bytes::from(data)), Frame::Integer(1)]);
    let wire = encoded(&f);
    for split in 0..=wire.len() {
        frame_split_check(&wire, &f, split);
    }
    // And one byte at a time.
    let mut dec = FrameDecoder::new(Limits::default());
    let mut buf = BytesMut::new();
    for (i, &byte) in wire.iter().enumerate() {
        buf.extend_from_slice(&[byte]);
        let got = dec.decode(&mut buf);
        if i + 1 < wire.len() {
            assert_eq!(got, Ok(None));
        } else {
            assert_eq!(got, Ok(Some(f.clone())));
        }
    }
}

#[test]
fn nan_round_trips() {
    let wire = encoded(&Frame::Double(f64::NAN));
    assert_eq!(wire, b",nan\r\n");
    let mut dec = FrameDecoder::new(Limits::default());
    let mut buf = BytesMut::from(&wire[..]);
    match dec.decode(&mut buf) {
        Ok(Some(Frame::Double(v))) => assert!(v.is_nan()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pipelined_frames() {
    let frames = sample_frames();
    let mut wire = BytesMut::new();
    for f in &frames {
        f.encode(&mut wire);
    }
    let mut dec = FrameDecoder::new(Limits::default());
    for f in &frames {
        assert_eq!(dec.decode(&mut wire).as_ref(), Ok(&Some(f.clone())));
    }
    assert_eq!(dec.decode(&mut wire), Ok(None));
}

#[test]
fn resp2_null_forms_and_attributes() {
    let mut dec = FrameDecoder::new(Limits::default());
    let mut buf = BytesMut::from(
        &b"$-1\r\n*-1\r\n_\r\n|1\r\n+ttl\r\n:3\r\n:5\r\n*2\r\n|1\r\n+a\r\n*1\r\n:0\r\n:1\r\n:2\r\n"
            [..],
    );
    assert_eq!(dec.decode(&mut buf), Ok(Some(Frame::Null)));
    assert_eq!(dec.decode(&mut buf), Ok(Some(Frame::Null)));
    assert_eq!(dec.decode(&mut buf), Ok(Some(Frame::Null)));
    assert_eq!(dec.decode(&mut buf), Ok(Some(Frame::Integer(5))));
    assert_eq!(
        dec.decode(&mut buf),
        Ok(Some(Frame::Array(vec![
            Frame::Integer(1),
            Frame::Integer(2)
        ])))
    );
    assert!(buf.is_empty());
    // An attribute alone is not a frame yet.
    let mut buf = BytesMut::from(&b"|1\r\n+a\r\n+b\r\n"[..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), 12);
    buf.extend_from_slice(b"#t\r\n");
    assert_eq!(dec.decode(&mut buf), Ok(Some(Frame::Boolean(true))));
}

// ---------------------------------------------------------------- commands

fn commands() -> Vec<Vec<Vec<u8>>> {
    let binary: Vec<u8> = (0..=255u8)
        .chain(b"\r\n$3\r\n*1\r\n".iter().copied())
        .collect();
    vec![
        vec![b"PING".to_vec()],
        vec![b"SET".to_vec(), b"key:000123".to_vec(), b"xyz".to_vec()],
        vec![b"SET".to_vec(), b"".to_vec(), b"\r\n".to_vec()],
        vec![b"SETEX".to_vec(), b"k".to_vec(), b"10".to_vec(), binary],
        vec![b"".to_vec()],
        vec![b"MSET".to_vec(); 12],
    ]
}

fn wire_of(cmd: &[Vec<u8>]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode::command(&mut out, cmd);
    out.to_vec()
}

fn as_vecs(args: Vec<Bytes>) -> Vec<Vec<u8>> {
    args.into_iter().map(|a| a.to_vec()).collect()
}

#[test]
fn commands_round_trip_at_every_split() {
    for cmd in commands() {
        let wire = wire_of(&cmd);
        for split in 0..=wire.len() {
            let mut dec = CommandDecoder::new(Limits::default());
            let mut buf = BytesMut::from(&wire[..split]);
            if split < wire.len() {
                assert_eq!(dec.decode(&mut buf), Ok(None), "split {split}");
                assert_eq!(buf.len(), split);
                buf.extend_from_slice(&wire[split..]);
            }
            let got = dec.decode(&mut buf).map(|o| o.map(as_vecs));
            assert_eq!(got, Ok(Some(cmd.clone())), "split {split}");
            assert!(buf.is_empty());
            assert_eq!(dec.decode(&mut buf), Ok(None));
        }
    }
}

#[test]
fn commands_one_byte_at_a_time_pipelined() {
    let cmds = commands();
    let mut wire = Vec::new();
    for c in &cmds {
        wire.extend_from_slice(&wire_of(c));
        // Interleave things the decoder must skip, and an inline command.
        wire.extend_from_slice(b"*0\r\n\r\n*-1\r\n  \r\n");
        wire.extend_from_slice(b"GET \"a b\"\r\n");
    }
    let mut want = Vec::new();
    for c in &cmds {
        want.push(c.clone());
        want.push(vec![b"GET".to_vec(), b"a b".to_vec()]);
    }

    // One byte at a time.
    let mut dec = CommandDecoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &byte in &wire {
        buf.extend_from_slice(&[byte]);
        while let Some(args) = dec.decode(&mut buf).expect("valid input") {
            got.push(as_vecs(args));
        }
    }
    assert_eq!(got, want);
    assert!(buf.is_empty());

    // All at once.
    let mut buf = BytesMut::from(&wire[..]);
    let mut got = Vec::new();
    while let Some(args) = dec.decode(&mut buf).expect("valid input") {
        got.push(as_vecs(args));
    }
    assert_eq!(got, want);
    assert!(buf.is_empty());
}

#[test]
fn big_bulk_command_byte_at_a_time() {
    let value: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let cmd = vec![b"SET".to_vec(), b"k".to_vec(), value];
    let wire = wire_of(&cmd);
    let mut dec = CommandDecoder::new(Limits::default());
    let mut buf = BytesMut::new();
    for (i, &byte) in wire.iter().enumerate() {
        buf.extend_from_slice(&[byte]);
        let got = dec.decode(&mut buf).map(|o| o.map(as_vecs));
        if i + 1 < wire.len() {
            assert_eq!(got, Ok(None));
        } else {
            assert_eq!(got, Ok(Some(cmd.clone())));
        }
    }
    assert!(buf.is_empty());
}

#[test]
fn command_args_are_slices_of_one_buffer() {
    let wire = wire_of(&[b"SET".to_vec(), b"key".to_vec(), b"value".to_vec()]);
    let mut buf = BytesMut::from(&wire[..]);
    let mut dec = CommandDecoder::default();
    let args = dec.decode(&mut buf).ok().flatten().unwrap_or_default();
    assert_eq!(args.len(), 3);
    assert_eq!(args.capacity(), 3);
    // Consecutive arguments sit at their wire offsets in the same allocation.
    let base = args[0].as_ptr() as usize;
    assert_eq!(args[1].as_ptr() as usize - base, 3 + 2 + 4);
    assert_eq!(args[2].as_ptr() as usize - base, 3 + 2 + 4 + 3 + 2 + 4);
}

#[test]
fn big_bulk_command_at_every_split() {
    let value: Vec<u8> = (0..70_000u32).map(|i| (i % 241) as u8).collect();
    let cmd = vec![b"SET".to_vec(), b"big".to_vec(), value];
    let wire = wire_of(&cmd);
    for split in 0..=wire.len() {
        let mut dec = CommandDecoder::new(Limits::default());
        let mut buf = BytesMut::from(&wire[..split]);
        if split < wire.len() {
            assert_eq!(dec.decode(&mut buf), Ok(None), "split {split}");
            buf.extend_from_slice(&wire[split..]);
        }
        let got = dec.decode(&mut buf).map(|o| o.map(as_vecs));
        assert_eq!(got, Ok(Some(cmd.clone())), "split {split}");
        assert!(buf.is_empty());
    }
}
