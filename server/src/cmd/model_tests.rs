//! The model check of `crate::model`, driven by proptest in `cargo test`.

use proptest::prelude::*;

use crate::model::{run, Op};

fn op() -> impl Strategy<Value = Op> {
    let k = 0u8..4;
    let v = 0u8..12;
    prop_oneof![
        (k.clone(), v.clone(), proptest::option::of(1u64..50))
            .prop_map(|(k, v, p)| Op::Set(k, v, p)),
        k.clone().prop_map(Op::Get),
        k.clone().prop_map(Op::Del),
        k.clone().prop_map(Op::Exists),
        k.clone().prop_map(Op::Incr),
        (k.clone(), v.clone()).prop_map(|(k, v)| Op::Append(k, v)),
        k.clone().prop_map(Op::Strlen),
        (k.clone(), v.clone(), v.clone()).prop_map(|(k, f, v)| Op::Hset(k, f, v)),
        (k.clone(), v.clone()).prop_map(|(k, f)| Op::Hget(k, f)),
        (k.clone(), v.clone()).prop_map(|(k, f)| Op::Hdel(k, f)),
        k.clone().prop_map(Op::Hlen),
        k.clone().prop_map(Op::Type),
        (k.clone(), 1u64..50).prop_map(|(k, ms)| Op::Pexpire(k, ms)),
        k.clone().prop_map(Op::Persist),
        k.clone().prop_map(Op::Pttl),
        k.clone().prop_map(Op::Getdel),
        (k.clone(), v.clone()).prop_map(|(k, v)| Op::Setnx(k, v)),
        (k.clone(), v.clone()).prop_map(|(k, m)| Op::Sadd(k, m)),
        (k.clone(), v.clone()).prop_map(|(k, m)| Op::Srem(k, m)),
        k.clone().prop_map(Op::Scard),
        (k.clone(), v.clone()).prop_map(|(k, m)| Op::Sismember(k, m)),
        (k.clone(), 0u8..8, v.clone()).prop_map(|(k, s, m)| Op::Zadd(k, s, m)),
        (k.clone(), v.clone()).prop_map(|(k, m)| Op::Zscore(k, m)),
        (k.clone(), v).prop_map(|(k, m)| Op::Zrem(k, m)),
        k.prop_map(Op::Zcard),
        (0u64..40).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn commands_match_the_model(ops in proptest::collection::vec(op(), 1..120)) {
        prop_assert_eq!(run(&ops), Ok(()));
    }
}

#[test]
fn fuzzer_bytes_decode_to_operations() {
    let ops = crate::model::ops_from_bytes(&[0x80, 1, 5, 4, 1, 0, 17, 0, 39]);
    assert_eq!(ops.len(), 3);
    assert_eq!(run(&ops), Ok(()));
}
