//! What a cluster says about itself is what is true: `ROLE` and `INFO replication` give
//! each follower's real match index and drop a follower that stopped answering,
//! `RAFT.SNAPSHOT` says whether a snapshot started, and `LASTSAVE` is the last snapshot.

mod support;

use std::time::Duration;

use support::cluster::Cluster;
use support::wait_until;

fn role(c: &Cluster, i: usize) -> redis::Value {
    let mut con = c.node(i).conn();
    redis::cmd("ROLE").query(&mut con).expect("ROLE")
}

/// The replicas the leader's ROLE lists: (port, offset).
fn replicas(c: &Cluster, l: usize) -> Vec<(String, u64)> {
    let redis::Value::Array(parts) = role(c, l) else {
        panic!("ROLE is not an array");
    };
    let Some(redis::Value::Array(list)) = parts.get(2) else {
        panic!("no replica list: {parts:?}");
    };
    list.iter()
        .filter_map(|r| match r {
            redis::Value::Array(f) => match (&f[1], &f[2]) {
                (redis::Value::BulkString(p), redis::Value::BulkString(o)) => Some((
                    String::from_utf8_lossy(p).into_owned(),
                    String::from_utf8_lossy(o).parse().unwrap_or(0),
                )),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn role_info_snapshot_and_lastsave_tell_the_truth() {
    let mut c = Cluster::start(3, &[]);
    let l = c.wait_leader(Duration::from_secs(15));
    let mut con = c.node(l).conn();
    for i in 0..50 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg("v")
            .query(&mut con)
            .expect("SET");
    }
    // Both followers are listed, each at the leader's last index once caught up.
    assert!(
        wait_until(Duration::from_secs(10), || {
            let last = c.raft_index(l, "raft_last_index");
            let r = replicas(&c, l);
            r.len() == 2 && r.iter().all(|(_, o)| *o == last)
        }),
        "replicas not at the leader's index: {:?}",
        replicas(&c, l)
    );
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query(&mut con)
        .expect("INFO");
    assert!(info.contains("connected_slaves:2"), "{info}");
    assert!(info.contains("state=online"), "{info}");

    // RAFT.SNAPSHOT says what it did, and LASTSAVE follows the snapshot.
    let before: i64 = redis::cmd("LASTSAVE").query(&mut con).expect("LASTSAVE");
    let started: String = redis::cmd("RAFT.SNAPSHOT")
        .query(&mut con)
        .expect("snapshot");
    assert!(started.contains("started"), "{started}");
    assert!(wait_until(Duration::from_secs(10), || {
        c.raft_index(l, "raft_snapshot_index") > 0
    }));
    let again: String = redis::cmd("RAFT.SNAPSHOT")
        .query(&mut con)
        .expect("snapshot");
    assert!(again.starts_with("no snapshot started"), "{again}");
    let after: i64 = redis::cmd("LASTSAVE").query(&mut con).expect("LASTSAVE");
    assert!(after >= before, "{after} < {before}");

    // A follower that dies leaves the list; the other one stays.
    let f = (l + 1) % 3;
    c.kill9(f);
    assert!(
        wait_until(Duration::from_secs(15), || replicas(&c, l).len() == 1),
        "a dead follower is still listed: {:?}",
        replicas(&c, l)
    );
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query(&mut con)
        .expect("INFO");
    assert!(info.contains("connected_slaves:1"), "{info}");
}
