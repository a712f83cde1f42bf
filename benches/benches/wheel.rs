//! Timing wheel micro-benchmarks: schedule + cancel, reschedule, and mass expiry.
//!
//! Run with `cargo bench -p sessiond-benches --bench wheel`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use sessiond_server::wheel::{TimerId, TimerWheel, NO_TIMER};

const NOW: u64 = 1_700_000_000_000;
const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;

/// Session-like deadlines: 30 min to a day ahead, spread by a multiplicative hash.
fn deadline(i: u64) -> u64 {
    NOW + 30 * MIN + i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % (24 * HOUR)
}

/// A wheel holding `n` session timers, and their ids.
fn populated(n: u64) -> (TimerWheel, Vec<TimerId>) {
    let mut w = TimerWheel::new(NOW);
    let ids = (0..n).map(|i| w.insert(deadline(i), i)).collect();
    (w, ids)
}

fn schedule(c: &mut Criterion) {
    let mut group = c.benchmark_group("wheel");
    group.throughput(Throughput::Elements(1));

    // SETEX of a new key then DEL: one timer in, one out, beside 100k others.
    group.bench_function("insert_cancel_100k", |b| {
        let (mut w, _) = populated(100_000);
        let mut i = 0u64;
        b.iter(|| {
            let id = w.insert(black_box(deadline(i)), i);
            debug_assert_ne!(id, NO_TIMER);
            w.cancel(black_box(id));
            i += 1;
        })
    });

    // EXPIRE / SETEX overwrite of an existing key: move its timer.
    group.bench_function("reschedule_100k", |b| {
        let (mut w, mut ids) = populated(100_000);
        let mut i = 0u64;
        b.iter(|| {
            let k = (i % 100_000) as usize;
            ids[k] = w.reschedule(ids[k], black_box(deadline(i ^ 0x5555)));
            i += 1;
        })
    });
    group.finish();
}

fn expire(c: &mut Criterion) {
    let mut group = c.benchmark_group("wheel_expire");
    for n in [10_000u64, 100_000] {
        group.throughput(Throughput::Elements(n));

        // Insert n session timers, then one poll a day later reports them all.
        group.bench_with_input(BenchmarkId::new("insert_then_poll_all", n), &n, |b, &n| {
            let mut out = Vec::with_capacity(n as usize);
            b.iter(|| {
                let (mut w, _) = populated(n);
                out.clear();
                let fired = w.poll_expired(NOW + 25 * HOUR, usize::MAX, &mut out);
                assert_eq!(fired as u64, n);
                black_box(&out);
            })
        });

        // n timers due within a minute, polled as the expiry thread does: every 10 ms,
        // 2048 at a time.
        group.bench_with_input(BenchmarkId::new("poll_10ms_ticks", n), &n, |b, &n| {
            let mut out = Vec::with_capacity(2048);
            b.iter_batched(
                || {
                    let mut w = TimerWheel::new(NOW);
                    for i in 0..n {
                        w.insert(NOW + 1 + i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % MIN, i);
                    }
                    w
                },
                |mut w| {
                    let mut now = NOW;
                    let mut fired = 0;
                    while !w.is_empty() {
                        now += 10;
                        loop {
                            out.clear();
                            let got = w.poll_expired(now, 2048, &mut out);
                            fired += got;
                            if got < 2048 {
                                break;
                            }
                        }
                    }
                    assert_eq!(fired as u64, n);
                    w
                },
                BatchSize::LargeInput,
            )
        });

        // A million-key style burst: n timers with one deadline, drained 2048 at a time.
        group.bench_with_input(BenchmarkId::new("same_deadline_drain", n), &n, |b, &n| {
            let mut out = Vec::with_capacity(2048);
            b.iter_batched(
                || {
                    let mut w = TimerWheel::new(NOW);
                    for i in 0..n {
                        w.insert(NOW + HOUR, i);
                    }
                    w
                },
                |mut w| {
                    let mut fired = 0;
                    while !w.is_empty() {
                        out.clear();
                        fired += w.poll_expired(NOW + HOUR, 2048, &mut out);
                    }
                    assert_eq!(fired as u64, n);
                    w.shrink();
                    w
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, schedule, expire);
criterion_main!(benches);
