use super::*;
use entry::{fnv1a, FNV_OFFSET};

fn hash_with(store: &Store, key: &[u8], fields: &[(&[u8], &[u8])]) -> u64 {
    let loc = store.locate(key);
    let mut shard = store.lock(loc.shard);
    shard.remove(loc.hash, key, 0);
    {
        let mut e = shard.create_hash(loc.hash, key);
        let h = e.hash_mut().expect("a hash");
        for (f, v) in fields {
            h.set(f, v);
        }
    }
    shard.digest(loc.hash, key, 0)
}

/// The digest WATCH uses in a cluster: the same for the same content (a hash's
/// fields in any order, in any process), different for a changed value, type or
/// deadline, and 0 for a missing key.
#[test]
fn digest_follows_content_not_history() {
    let store = Store::new(4, 0);
    let a = hash_with(&store, b"h", &[(b"f1", b"x"), (b"f2", b"y")]);
    let b = hash_with(&store, b"h", &[(b"f2", b"y"), (b"f1", b"x")]);
    assert_eq!(a, b);
    assert_ne!(a, hash_with(&store, b"h", &[(b"f1", b"x"), (b"f2", b"z")]));
    assert_ne!(a, hash_with(&store, b"h", &[(b"f1", b"xf"), (b"2", b"y")]));
    let loc = store.locate(b"s");
    let mut shard = store.lock(loc.shard);
    assert_eq!(shard.digest(loc.hash, b"s", 0), 0);
    shard.set_str(loc.hash, b"s", b"v", Ttl::Clear, 0);
    let plain = shard.digest(loc.hash, b"s", 0);
    assert_ne!(plain, 0);
    shard.set_str(loc.hash, b"s", b"v", Ttl::At(5_000), 0);
    let timed = shard.digest(loc.hash, b"s", 0);
    assert_ne!(plain, timed);
    shard.set_str(loc.hash, b"s", b"v", Ttl::Clear, 0);
    assert_eq!(
        shard.digest(loc.hash, b"s", 0),
        plain,
        "same content, same digest"
    );
    // A fixed function: this value must not change between builds or processes.
    assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
}
