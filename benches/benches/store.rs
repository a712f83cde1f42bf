//! Store micro-benchmarks: SETEX-style writes, GETs and overwrites on one shard.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use sessiond_server::store::{Store, Ttl};

fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("sess:{i:08}").into_bytes())
        .collect()
}

fn bench_store(c: &mut Criterion) {
    let now = 1_700_000_000_000u64;
    let value = vec![b'v'; 200];
    let keys = keys(100_000);

    c.bench_function("store/setex_200b_100k_keys", |b| {
        let store = Store::new(64, now);
        let mut i = 0usize;
        b.iter(|| {
            let k = &keys[i % keys.len()];
            let loc = store.locate(k);
            store
                .lock(loc.shard)
                .set_str(loc.hash, k, &value, Ttl::At(now + 1_800_000), now);
            i += 1;
        })
    });

    c.bench_function("store/get_hit_100k_keys", |b| {
        let store = Store::new(64, now);
        for k in &keys {
            let loc = store.locate(k);
            store
                .lock(loc.shard)
                .set_str(loc.hash, k, &value, Ttl::At(now + 1_800_000), now);
        }
        let mut i = 0usize;
        b.iter(|| {
            let k = &keys[i % keys.len()];
            let loc = store.locate(k);
            let mut shard = store.lock(loc.shard);
            let len = shard
                .get(loc.hash, k, now)
                .and_then(|e| e.as_str().map(|v| v.len()));
            black_box(len);
            i += 1;
        })
    });

    c.bench_function("store/locate", |b| {
        let store = Store::new(64, now);
        let mut i = 0usize;
        b.iter(|| {
            black_box(store.locate(&keys[i % keys.len()]));
            i += 1;
        })
    });
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
