//! Error texts, limits, inline parsing and skipping, per Redis 7.

use bytes::BytesMut;
use sessiond_protocol::{CommandDecoder, Frame, FrameDecoder, Limits, ProtocolError};

type CmdResult = Result<Option<Vec<Vec<u8>>>, ProtocolError>;

fn cmd_with(limits: Limits, input: &[u8]) -> (CmdResult, BytesMut) {
    let mut dec = CommandDecoder::new(limits);
    let mut buf = BytesMut::from(input);
    let r = dec
        .decode(&mut buf)
        .map(|o| o.map(|args| args.into_iter().map(|a| a.to_vec()).collect()));
    (r, buf)
}

fn cmd(input: &[u8]) -> CmdResult {
    cmd_with(Limits::default(), input).0
}

fn cmd_err(input: &[u8]) -> String {
    match cmd(input) {
        Err(e) => e.to_string(),
        other => panic!("expected an error for {input:?}, got {other:?}"),
    }
}

fn args(list: &[&[u8]]) -> CmdResult {
    Ok(Some(list.iter().map(|a| a.to_vec()).collect()))
}

#[test]
fn multibulk_error_texts() {
    assert_eq!(cmd_err(b"*x\r\n"), "invalid multibulk length");
    assert_eq!(cmd_err(b"*3x\r\n"), "invalid multibulk length");
    assert_eq!(cmd_err(b"*03\r\n"), "invalid multibulk length");
    assert_eq!(cmd_err(b"*+3\r\n"), "invalid multibulk length");
    assert_eq!(cmd_err(b"*\r\n"), "invalid multibulk length");
    assert_eq!(cmd_err(b"*3\rx"), "invalid multibulk length");
    assert_eq!(cmd_err(b"*1\r\n$x\r\n"), "invalid bulk length");
    assert_eq!(cmd_err(b"*1\r\n$-1\r\n"), "invalid bulk length");
    assert_eq!(cmd_err(b"*1\r\n$3 \r\n"), "invalid bulk length");
    assert_eq!(cmd_err(b"*1\r\n$\r\n"), "invalid bulk length");
    assert_eq!(cmd_err(b"*1\r\n:3\r\n"), "expected '$', got ':'");
    assert_eq!(cmd_err(b"*2\r\n$1\r\na\r\nfoo"), "expected '$', got 'f'");
    assert_eq!(cmd_err(b"*1\r\n$3\r\nfooXY"), "missing CRLF after bulk");
    assert_eq!(cmd_err(b"*1\r\n$3\r\nfoo\rX"), "missing CRLF after bulk");
    assert_eq!(
        cmd(b"*1\r\n$3\r\nfoo\r"),
        Ok(None),
        "waits for the LF before judging"
    );
}

#[test]
fn error_variants_are_structured() {
    assert_eq!(cmd(b"*1\r\n#"), Err(ProtocolError::ExpectedDollar(b'#')));
    assert_eq!(cmd(b"*x\r\n"), Err(ProtocolError::InvalidMultibulkLength));
    assert_eq!(cmd(b"\"a\n"), Err(ProtocolError::UnbalancedQuotes));
}

#[test]
fn error_leaves_buffer_and_resets_decoder() {
    let mut dec = CommandDecoder::default();
    let mut buf = BytesMut::from(&b"*1\r\n$3\r\nfooXY"[..]);
    assert_eq!(dec.decode(&mut buf), Err(ProtocolError::MissingBulkCrlf));
    assert_eq!(buf.len(), 13);
    let mut fresh = BytesMut::from(&b"PING\r\n"[..]);
    assert_eq!(
        dec.decode(&mut fresh),
        Ok(Some(vec![bytes::Bytes::from_static(b"PING")]))
    );
}

#[test]
fn count_string_limits() {
    let limit = Limits::default().max_inline_len;
    // `*` followed by digits and no CR: fine up to the limit, then too big.
    let mut line = b"*".to_vec();
    line.resize(limit, b'1');
    assert_eq!(cmd(&line), Ok(None));
    line.push(b'1');
    assert_eq!(cmd_err(&line), "too big mbulk count string");

    let mut line = b"*1\r\n$".to_vec();
    let header = line.len() - 1;
    line.resize(header + limit, b'1');
    assert_eq!(cmd(&line), Ok(None));
    line.push(b'1');
    assert_eq!(cmd_err(&line), "too big bulk count string");

    // The same, arriving in small reads.
    let mut dec = CommandDecoder::default();
    let mut buf = BytesMut::from(&b"*1\r\n$"[..]);
    let mut result = Ok(None);
    for _ in 0..(limit / 1000 + 2) {
        buf.extend_from_slice(&[b'7'; 1000]);
        result = dec.decode(&mut buf);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(ProtocolError::TooBigBulkCountString));
}

#[test]
fn inline_limits() {
    let limit = Limits::default().max_inline_len;
    assert_eq!(limit, 64 * 1024);
    // 64KB without newline: still waiting. One more byte: too big.
    let line = vec![b'a'; limit];
    assert_eq!(cmd(&line), Ok(None));
    let line = vec![b'a'; limit + 1];
    assert_eq!(cmd_err(&line), "too big inline request");
    let mut line = vec![b'a'; limit + 1];
    line.push(b'\n');
    assert_eq!(cmd_err(&line), "too big inline request");
    let mut line = vec![b'a'; limit];
    line.push(b'\r');
    assert_eq!(cmd(&line), Ok(None), "a CR may be the start of the CRLF");
    line.push(b'\n');
    assert_eq!(cmd(&line), Ok(Some(vec![vec![b'a'; limit]])));
    // A 64KB line with its newline is fine.
    let mut line = vec![b'a'; limit];
    line.push(b'\n');
    let (r, rest) = cmd_with(Limits::default(), &line);
    assert_eq!(r, Ok(Some(vec![vec![b'a'; limit]])));
    assert!(rest.is_empty());
    // Incrementally, without rescanning from the start each time.
    let mut dec = CommandDecoder::default();
    let mut buf = BytesMut::new();
    for _ in 0..limit / 4096 {
        buf.extend_from_slice(&[b'b'; 4096]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
    }
    buf.extend_from_slice(b"\r\n");
    let got = dec.decode(&mut buf).map(|o| o.map(|a| a.len()));
    assert_eq!(got, Ok(Some(1)));
    let mut buf = BytesMut::from(&[b'c'; 4096][..]);
    for _ in 0..limit / 4096 {
        let _ = dec.decode(&mut buf);
        buf.extend_from_slice(&[b'c'; 4096]);
    }
    assert_eq!(
        dec.decode(&mut buf),
        Err(ProtocolError::TooBigInlineRequest)
    );
}

#[test]
fn bulk_and_multibulk_length_limits() {
    let limits = Limits {
        max_bulk_len: 10,
        max_multibulk_len: 3,
        ..Limits::default()
    };
    let (r, _) = cmd_with(limits, b"*1\r\n$10\r\n0123456789\r\n");
    assert_eq!(r, args(&[b"0123456789"]));
    let (r, _) = cmd_with(limits, b"*1\r\n$11\r\n");
    assert_eq!(r, Err(ProtocolError::InvalidBulkLength));
    let (r, _) = cmd_with(limits, b"*3\r\n");
    assert_eq!(r, Ok(None));
    let (r, _) = cmd_with(limits, b"*4\r\n");
    assert_eq!(r, Err(ProtocolError::InvalidMultibulkLength));

    // Defaults: 512 MiB and 1 048 576, checked on the header alone.
    assert_eq!(cmd(b"*1\r\n$536870912\r\n"), Ok(None));
    assert_eq!(cmd_err(b"*1\r\n$536870913\r\n"), "invalid bulk length");
    assert_eq!(cmd(b"*1048576\r\n"), Ok(None));
    assert_eq!(cmd_err(b"*1048577\r\n"), "invalid multibulk length");
    assert_eq!(
        cmd_err(b"*99999999999999999999\r\n"),
        "invalid multibulk length"
    );
}

#[test]
fn inline_quoting() {
    assert_eq!(
        cmd(b"SET \"a b\" 'c\\'d'\r\n"),
        args(&[b"SET", b"a b", b"c'd"])
    );
    assert_eq!(cmd(b"\"\\x41\\n\"\n"), args(&[b"A\n"]));
    assert_eq!(cmd_err(b"\"abc\r\n"), "unbalanced quotes in request");
    assert_eq!(cmd_err(b"\"abc\"def\r\n"), "unbalanced quotes in request");
    assert_eq!(cmd_err(b"'abc'def\n"), "unbalanced quotes in request");
    assert_eq!(cmd(b"PING\n"), args(&[b"PING"]));
    assert_eq!(cmd(b"  PING   x\t\r\n"), args(&[b"PING", b"x"]));
    assert_eq!(cmd(b"echo \"\"\r\n"), args(&[b"echo", b""]));
    assert_eq!(cmd(b"PING"), Ok(None));
    assert_eq!(cmd(b"PING\r"), Ok(None));
}

#[test]
fn skipping() {
    // Blank lines, *0 and *-1 are consumed silently, in the same call.
    let (r, rest) = cmd_with(
        Limits::default(),
        b"\r\n\n   \r\n*0\r\n*-1\r\n*-7\r\nPING\r\nx",
    );
    assert_eq!(r, args(&[b"PING"]));
    assert_eq!(&rest[..], b"x");
    let (r, rest) = cmd_with(Limits::default(), b"*0\r\n");
    assert_eq!(r, Ok(None));
    assert!(rest.is_empty());
    let (r, rest) = cmd_with(Limits::default(), b"*-1\r\n");
    assert_eq!(r, Ok(None));
    assert!(rest.is_empty());
    let (r, rest) = cmd_with(Limits::default(), b"\r\n\r\n*2\r\n$3\r\nGET");
    assert_eq!(r, Ok(None));
    assert_eq!(&rest[..], b"*2\r\n$3\r\nGET");
}

// ---------------------------------------------------------------- replies

fn frame(input: &[u8]) -> Result<Option<Frame>, ProtocolError> {
    FrameDecoder::new(Limits::default()).decode(&mut BytesMut::from(input))
}

fn frame_err(input: &[u8]) -> String {
    match frame(input) {
        Err(e) => e.to_string(),
        other => panic!("expected an error for {input:?}, got {other:?}"),
    }
}

#[test]
fn reply_error_texts() {
    assert_eq!(frame_err(b"@1\r\n"), "invalid frame type byte '@'");
    assert_eq!(frame_err(b":12a\r\n"), "invalid integer");
    assert_eq!(frame_err(b":\r\n"), "invalid integer");
    assert_eq!(frame_err(b":99999999999999999999\r\n"), "invalid integer");
    assert_eq!(frame_err(b",1.2.3\r\n"), "invalid double");
    assert_eq!(frame_err(b",infinity\r\n"), "invalid double");
    assert_eq!(frame_err(b",\r\n"), "invalid double");
    assert_eq!(frame_err(b"#x\r\n"), "invalid boolean");
    assert_eq!(frame_err(b"(12x\r\n"), "invalid big number");
    assert_eq!(frame_err(b"=2\r\nab\r\n"), "invalid verbatim string");
    assert_eq!(frame_err(b"=4\r\nabcd\r\n"), "invalid verbatim string");
    assert_eq!(frame_err(b"_x\r\n"), "invalid null");
    assert_eq!(frame_err(b"$3\r\nfooXY"), "missing CRLF after bulk");
    assert_eq!(frame_err(b"$-2\r\n"), "invalid bulk length");
    assert_eq!(frame_err(b"!-1\r\n"), "invalid bulk length");
    assert_eq!(frame_err(b"*-2\r\n"), "invalid multibulk length");
    assert_eq!(frame_err(b"%-1\r\n"), "invalid multibulk length");
    assert_eq!(
        frame_err(b"$?\r\n"),
        "streamed RESP3 types are not supported"
    );
    assert_eq!(
        frame_err(b"*?\r\n"),
        "streamed RESP3 types are not supported"
    );
    assert_eq!(frame_err(b"+OK\rX"), "invalid line ending, expected CRLF");
    assert_eq!(frame(b",1e3\r\n"), Ok(Some(Frame::Double(1000.0))));
    assert_eq!(frame(b",-1.5E-2\r\n"), Ok(Some(Frame::Double(-0.015))));
    assert_eq!(frame(b",+inf\r\n"), Ok(Some(Frame::Double(f64::INFINITY))));
}

#[test]
fn reply_limits() {
    let limits = Limits {
        max_bulk_len: 4,
        max_multibulk_len: 2,
        max_depth: 3,
        ..Limits::default()
    };
    let dec = |input: &[u8]| FrameDecoder::new(limits).decode(&mut BytesMut::from(input));
    assert!(matches!(dec(b"$4\r\nabcd\r\n"), Ok(Some(_))));
    assert_eq!(dec(b"$5\r\n"), Err(ProtocolError::InvalidBulkLength));
    assert_eq!(dec(b"!5\r\n"), Err(ProtocolError::InvalidBulkLength));
    assert_eq!(dec(b"*2\r\n"), Ok(None));
    assert_eq!(dec(b"*3\r\n"), Err(ProtocolError::InvalidMultibulkLength));
    assert_eq!(dec(b"%3\r\n"), Err(ProtocolError::InvalidMultibulkLength));
    assert!(matches!(dec(b"*1\r\n*1\r\n*0\r\n"), Ok(Some(_))));
    assert_eq!(
        dec(b"*1\r\n*1\r\n*1\r\n*0\r\n"),
        Err(ProtocolError::NestingTooDeep)
    );
    assert_eq!(
        dec(b"*1\r\n~1\r\n>1\r\n%1\r\n"),
        Err(ProtocolError::NestingTooDeep)
    );
    assert_eq!(dec(b"+abcde\r\n"), Err(ProtocolError::TooBigSimpleString));

    // Default depth is 64: 64 nested arrays fine, 65 rejected, 100k never
    // overflows the stack.
    let deep = |n: usize| {
        let mut v = b"*1\r\n".repeat(n);
        v.extend_from_slice(b":1\r\n");
        v
    };
    assert!(matches!(frame(&deep(64)), Ok(Some(_))));
    assert_eq!(frame(&deep(65)), Err(ProtocolError::NestingTooDeep));
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let huge = Limits {
                max_depth: usize::MAX,
                ..Limits::default()
            };
            let wire = deep(100_000);
            let got = FrameDecoder::new(huge).decode(&mut BytesMut::from(&wire[..]));
            let ok = matches!(got, Ok(Some(Frame::Array(_))));
            // Dropping a 100k-deep Frame recurses (that is Frame's own Drop,
            // not the decoder), so leak it instead.
            std::mem::forget(got);
            ok
        })
        .expect("spawn");
    assert!(handle.join().expect("decoder thread"), "deep frame decoded");
}

#[test]
fn frame_decoder_consumes_nothing_when_incomplete() {
    let mut dec = FrameDecoder::new(Limits::default());
    let mut buf = BytesMut::from(&b"*2\r\n$5\r\nhello\r\n$100000\r\nabc"[..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), 27);
    // Still short of the bulk: answered without rescanning.
    buf.extend_from_slice(&[b'x'; 50_000]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    buf.extend_from_slice(&[b'x'; 49_997]);
    buf.extend_from_slice(b"\r\n");
    match dec.decode(&mut buf) {
        Ok(Some(Frame::Array(items))) => {
            assert_eq!(items.len(), 2);
            assert_eq!(items[0], Frame::bulk("hello"));
        }
        other => panic!("{other:?}"),
    }
    assert!(buf.is_empty());
}
