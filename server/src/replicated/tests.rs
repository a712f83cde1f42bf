use super::*;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[test]
fn records_round_trip() {
    let recs = [
        Record::Batch {
            resp3: true,
            user: None,
            db: 0,
            cmds: vec![vec![b("SET"), b("k"), b("v")], vec![b("DEL"), b("k")]],
        },
        Record::Batch {
            resp3: false,
            user: Some(b("app")),
            db: 3,
            cmds: vec![vec![b("SET"), b("k"), b("v")]],
        },
        Record::Exec {
            resp3: false,
            user: None,
            db: 15,
            cmds: vec![vec![b("INCR"), Bytes::from_static(b"\x00\xff")]],
            watched: vec![],
        },
        Record::Exec {
            resp3: true,
            user: Some(b("default")),
            db: 0,
            cmds: vec![vec![b("SET"), b("k"), b("v")]],
            watched: vec![(b("k"), 7), (b("other"), 0)],
        },
        Record::Expire(0, vec![(b"sess:1".to_vec(), 1_700_000_000_000)]),
        Record::Expire(2, vec![(b"sess:2".to_vec(), 1_700_000_000_000)]),
        Record::Evict(3, vec![(b"sess:3".to_vec(), 0x1234_5678_9abc)]),
        Record::FieldExpire(
            1,
            vec![(b"sess:3".to_vec(), b"csrf".to_vec(), 1_700_000_000_001)],
        ),
    ];
    for r in recs {
        let enc = Bytes::from(r.encode());
        assert_eq!(Record::decode(&enc), Ok(r));
        for cut in 0..enc.len() {
            assert!(Record::decode(&enc.slice(..cut)).is_err());
        }
    }
    assert_eq!(
        Record::decode(&Bytes::from_static(&[9, 0])),
        Err(RecordError::Kind(9))
    );
    // NOLOOP's origin travels in command records, and only there.
    let rec = encode_from(false, true, None, 3, 42, &[vec![b("SET"), b("k"), b("v")]]);
    assert_eq!(record_origin(&rec), 42);
    assert!(matches!(
        Record::decode(&Bytes::from(rec)),
        Ok(Record::Batch { db: 3, .. })
    ));
    let plain = encode_cmds(false, false, None, 0, &[vec![b("GET"), b("k")]]);
    assert_eq!(record_origin(&plain), 0);
}

#[test]
fn key_slots_match_redis_cluster() {
    // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
    assert_eq!(key_slot(b"123456789"), 0x31c3);
    assert_eq!(key_slot(b"foo"), 12182);
    assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
    assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
    assert_eq!(key_slot(b"{}x"), key_slot(b"{}x"));
}

/// Two threads taking a capture's shards from both ends produce the same bytes as a
/// plain dump, whoever takes how many.
#[test]
fn a_capture_shared_by_two_threads_equals_a_dump() {
    let config = crate::config::Config::default();
    let users = config.users().expect("users");
    let shared = Shared::new(
        config,
        users,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    );
    for i in 0..5000u32 {
        let key = format!("sess:{i}");
        let loc = shared.store.locate(key.as_bytes());
        let ttl = if i % 2 == 0 {
            crate::store::Ttl::At(10_000_000 + u64::from(i))
        } else {
            crate::store::Ttl::Clear
        };
        shared
            .store
            .lock(loc.shard)
            .set_str(loc.hash, key.as_bytes(), b"value", ttl, 0);
    }
    let mut plain = Vec::new();
    dump_header(&shared, &mut plain);
    for i in 0..shared.store.shard_count() {
        snapshot::dump_shard(&shared.store.lock(i), &mut plain);
    }
    let sm = ServerSm::new(shared.clone());
    // The raft thread takes none, some, or all of the shards.
    for back in [0, 1, 17, usize::MAX] {
        let job = sm.snapshot_job();
        let mut taken = 0;
        while taken < back && job.step(None) {
            taken += 1;
        }
        let other = {
            let job = job.clone();
            std::thread::spawn(move || while job.step(None) {})
        };
        let mut out = Vec::new();
        while job.step(Some(&mut out)) {}
        other.join().expect("thread");
        job.wait_parts();
        job.finish(&mut |part| out.extend_from_slice(part));
        assert!(
            out == plain,
            "capture differs with {back} shards from the back"
        );
    }
}

/// Keys of every type in several databases come back, each in its database, from a
/// snapshot taken by two threads; a database the snapshot lacks is emptied.
#[test]
fn a_snapshot_holds_every_database() {
    let mk = || {
        let config = crate::config::Config::default();
        let users = config.users().expect("users");
        Shared::new(
            config,
            users,
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        )
    };
    let run = |sm: &mut ServerSm, db: u8, cmd: &[&str]| {
        let rec = encode_cmds(
            false,
            false,
            None,
            db,
            &[cmd.iter().map(|a| b(a)).collect()],
        );
        sm.apply(Bytes::from(rec), 1_000, true)
    };
    let src = mk();
    let mut sm = ServerSm::new(src.clone());
    run(&mut sm, 0, &["SET", "k", "zero"]);
    run(&mut sm, 1, &["SET", "k", "one"]);
    run(&mut sm, 1, &["SADD", "s", "a", "b"]);
    run(&mut sm, 7, &["ZADD", "z", "1.5", "m"]);
    run(&mut sm, 7, &["PEXPIRE", "z", "60000"]);
    let job = sm.snapshot_job();
    let other = {
        let job = job.clone();
        std::thread::spawn(move || while job.step(None) {})
    };
    let mut out = Vec::new();
    while job.step(Some(&mut out)) {}
    other.join().expect("thread");
    job.finish(&mut |part| out.extend_from_slice(part));
    let dst = mk();
    let mut back = ServerSm::new(dst.clone());
    run(&mut back, 3, &["SET", "stale", "x"]);
    back.restore(&out).expect("restore");
    assert_eq!(&run(&mut back, 0, &["GET", "k"])[..], b"$4\r\nzero\r\n");
    assert_eq!(&run(&mut back, 1, &["GET", "k"])[..], b"$3\r\none\r\n");
    assert_eq!(&run(&mut back, 1, &["SCARD", "s"])[..], b":2\r\n");
    assert_eq!(
        &run(&mut back, 7, &["ZSCORE", "z", "m"])[..],
        b"$3\r\n1.5\r\n"
    );
    assert_eq!(&run(&mut back, 7, &["PEXPIRETIME", "z"])[..], b":61000\r\n");
    assert_eq!(&run(&mut back, 3, &["EXISTS", "stale"])[..], b":0\r\n");
    assert_eq!(&run(&mut back, 2, &["DBSIZE"])[..], b":0\r\n");
}
