//! Clock skew: node 3 of a 3-node cluster runs under libfaketime (Debian's `faketime`)
//! with its wall clock 30 s ahead, 30 s behind or an hour ahead. It must say so
//! (`RAFT.INFO`, its log), must not take leadership (not by election, not by transfer),
//! and sessions read through it must end when the leader says, within the bound
//! ARCHITECTURE.md states: `--max-clock-skew` (500 ms by default) plus the expiry's own
//! latency.
//!
//! These tests need `faketime`; without it they fail.

mod support;

use std::time::{Duration, Instant};

use support::cluster::Cluster;
use support::{wait_until, Launch};

fn cluster(offset: &str) -> Cluster {
    let mut launch = vec![Launch::default(); 3];
    launch[2].wrapper = vec!["faketime".into(), "-f".into(), offset.into()];
    launch[2].env = vec![("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into())];
    let ports = vec![0; 3];
    Cluster::start_as(launch, ports, &[])
}

fn field(c: &Cluster, i: usize, f: &str) -> Option<i64> {
    c.raft_field(i, f).and_then(|v| v.parse().ok())
}

/// Node 3 reports its skew, the others do not, and a healthy node leads.
fn wait_flagged(c: &Cluster, expect_ms: i64) -> usize {
    let ok = wait_until(Duration::from_secs(20), || {
        field(c, 2, "raft_clock_too_far") == Some(1)
            && field(c, 0, "raft_clock_too_far") == Some(0)
            && field(c, 1, "raft_clock_too_far") == Some(0)
            && c.leader().is_some_and(|l| l != 2)
    });
    assert!(ok, "node 3 was not flagged, or it leads\n{}", c.logs());
    let skew = field(c, 2, "raft_clock_skew_ms").unwrap_or(0);
    for i in 0..3 {
        eprintln!(
            "FIGURE node {}: raft_clock_skew_ms={:?} raft_clock_leader_offset_ms={:?}",
            i + 1,
            field(c, i, "raft_clock_skew_ms"),
            field(c, i, "raft_clock_leader_offset_ms")
        );
    }
    assert!(
        (skew - expect_ms).abs() < 1000,
        "node 3 measured its skew at {skew} ms, not about {expect_ms}"
    );
    let log = c.node(2).log_text();
    assert!(
        log.contains("clock is off the other voters'"),
        "node 3's log does not say so:\n{log}"
    );
    c.wait_leader(Duration::from_secs(20))
}

/// A session set through the skewed node with a 3 s TTL reads as alive through it until
/// the leader's deadline, and is gone, on every node, soon after.
fn session_ends_on_time(c: &Cluster) {
    let mut via3 = c.node(2).conn();
    let set = Instant::now();
    let _: () = redis::cmd("SET")
        .arg("sess:skew")
        .arg("v")
        .arg("PX")
        .arg(3000)
        .query(&mut via3)
        .expect("SET through node 3");
    let pttl: i64 = redis::cmd("PTTL")
        .arg("sess:skew")
        .query(&mut via3)
        .expect("PTTL");
    assert!(
        (2300..=3000).contains(&pttl),
        "PTTL through the skewed node is {pttl} ms, not about 3000"
    );
    let mut gone_at = None;
    let _ = wait_until(Duration::from_secs(10), || {
        let v: Option<String> = redis::cmd("GET")
            .arg("sess:skew")
            .query(&mut via3)
            .unwrap_or(Some("?".into()));
        if v.is_none() {
            gone_at = Some(set.elapsed());
        }
        v.is_none()
    });
    let gone = gone_at.expect("the session never ended");
    eprintln!("FIGURE 3 s session through the skewed node ended after {gone:?}");
    assert!(
        gone >= Duration::from_millis(2500) && gone <= Duration::from_millis(4000),
        "a 3 s session ended after {gone:?}"
    );
    for i in 0..3 {
        let mut con = c.node(i).conn();
        let v: Option<String> = redis::cmd("GET")
            .arg("sess:skew")
            .query(&mut con)
            .expect("GET");
        assert_eq!(v, None, "node {} still has the session", i + 1);
    }
}

#[test]
fn a_node_30s_ahead_says_so_does_not_lead_and_expires_on_time() {
    let mut c = cluster("+30");
    let leader = wait_flagged(&c, 30_000);
    // Once the leader has measured it too, a transfer to it is refused with the reason.
    // (Before that, node 3 refuses the leader's hand-over itself, and the transfer times
    // out.)
    let measured = wait_until(Duration::from_secs(10), || {
        c.raft_field(leader, "raft_node3")
            .and_then(|v| {
                v.split("clock_offset_ms=")
                    .nth(1)
                    .and_then(|o| o.split(',').next()?.parse::<i64>().ok())
            })
            .is_some_and(|o| (o - 30_000).abs() < 1000)
    });
    assert!(measured, "the leader did not measure node 3's clock");
    let mut con = c.node(leader).conn();
    let r: redis::RedisResult<String> = redis::cmd("RAFT.TRANSFER-LEADER").arg(3).query(&mut con);
    let e = r.expect_err("a transfer to the skewed node must fail");
    assert!(
        format!("{e}").contains("may not lead"),
        "unexpected error: {e}\n{}",
        c.logs()
    );
    session_ends_on_time(&c);
    // The leader dies: the other healthy node takes over, never node 3.
    c.kill9(leader);
    let new = c.wait_leader(Duration::from_secs(20));
    assert_ne!(new, 2, "the skewed node took leadership\n{}", c.logs());
}

#[test]
fn a_node_30s_behind_says_so_does_not_lead_and_expires_on_time() {
    let c = cluster("-30");
    wait_flagged(&c, -30_000);
    session_ends_on_time(&c);
}

#[test]
fn a_node_an_hour_ahead_says_so_does_not_lead_and_expires_on_time() {
    let c = cluster("+1h");
    wait_flagged(&c, 3_600_000);
    session_ends_on_time(&c);
}
