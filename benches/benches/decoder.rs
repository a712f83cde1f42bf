//! CommandDecoder and reply encoding micro-benchmarks.
//!
//! Run with `cargo bench -p sessiond-benches --bench decoder`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sessiond_protocol::{encode, CommandDecoder, Limits};

/// Decodes every command in `wire`, as a server does after one read.
fn decode_all(dec: &mut CommandDecoder, wire: &[u8]) -> usize {
    let mut buf = BytesMut::from(wire);
    let mut n = 0;
    while let Ok(Some(args)) = dec.decode(&mut buf) {
        n += args.len();
        black_box(args);
    }
    n
}

fn decoder(c: &mut Criterion) {
    let mut group = c.benchmark_group("command_decoder");

    // redis-benchmark -P 16 style: 16 pipelined SETs with 3-byte values.
    let mut pipelined = BytesMut::new();
    for i in 0..16 {
        let key = format!("key:{:06}", 123 + i);
        encode::command(&mut pipelined, &[b"SET".as_slice(), key.as_bytes(), b"xyz"]);
    }
    group.throughput(Throughput::Elements(16));
    group.bench_function("set_x16_pipelined", |b| {
        let mut dec = CommandDecoder::new(Limits::default());
        b.iter(|| decode_all(&mut dec, black_box(&pipelined)))
    });

    let mut setex = BytesMut::new();
    encode::command(
        &mut setex,
        &[&b"SETEX"[..], b"session:4f2a9c", b"3600", &[b'v'; 200]],
    );
    group.throughput(Throughput::Elements(1));
    group.bench_function("setex_200b", |b| {
        let mut dec = CommandDecoder::new(Limits::default());
        b.iter(|| decode_all(&mut dec, black_box(&setex)))
    });

    group.bench_function("ping_inline", |b| {
        let mut dec = CommandDecoder::new(Limits::default());
        b.iter(|| decode_all(&mut dec, black_box(b"PING\r\n")))
    });
    group.finish();

    let mut group = c.benchmark_group("encode");
    let value = [b'v'; 200];
    group.throughput(Throughput::Bytes(value.len() as u64));
    group.bench_function("bulk_200b", |b| {
        let mut out = BytesMut::with_capacity(4096);
        b.iter(|| {
            out.clear();
            encode::bulk(&mut out, black_box(&value));
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, decoder);
criterion_main!(benches);
