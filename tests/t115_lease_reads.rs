//! `--read-consistency lease`: the leader answers reads from a lease that a quorum's
//! answers to its read barriers give it, instead of a quorum round per batch of reads.
//!
//! The lease is measured on the monotonic clock from when the barrier left, so a leader
//! paused past it must not answer from its old state when it resumes, even while it has
//! not heard that others have elected a leader since. (raft-rs's own lease mode, which
//! `lease` used to be, trusts ticks that a paused leader does not count, and answered
//! such a read with the value from before the pause.) That test needs root, iproute2 and
//! iptables for the one-way cut (`support/netns.rs`); without them it fails.
//!
//! The lease allows for clocks that run at somewhat different rates; a leader does not
//! hold one while a voter's clock runs much faster than its own (`faketime`'s `x1.5`,
//! which that test needs; without it, it fails).

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::cluster::Cluster;
use support::netns::Net;
use support::{resp, wait_until, Launch};

const LEASE: &[&str] = &["--read-consistency", "lease"];

/// Every read sees every write acknowledged before it, whichever node either went
/// through: a lease read waits for the leader's commit index to be applied where it is
/// served.
#[test]
fn lease_reads_see_every_write_acknowledged_before_them() {
    let c = Cluster::start(3, LEASE);
    let l = c.wait_leader(Duration::from_secs(20));
    let mut cons: Vec<redis::Connection> = (0..3).map(|i| c.node(i).conn()).collect();
    for i in 0..300u64 {
        let (w, r) = ((i % 3) as usize, ((i / 3 + i) % 3) as usize);
        let _: () = redis::cmd("SET")
            .arg("k")
            .arg(i)
            .query(&mut cons[w])
            .expect("SET");
        let got: u64 = redis::cmd("GET").arg("k").query(&mut cons[r]).expect("GET");
        assert_eq!(got, i, "written through node {w}, read through node {r}");
    }
    let mode = c.raft_field(l, "raft_read_consistency");
    assert_eq!(mode.as_deref(), Some("Lease"));
    // The reads did come from a lease: the clocks' rates are measured and allow one.
    let held = wait_until(Duration::from_secs(10), || {
        let _: Option<u64> = redis::cmd("GET").arg("k").query(&mut cons[l]).ok();
        c.raft_field(l, "raft_lease").as_deref() == Some("1")
    });
    assert!(held, "no lease held\n{}", c.logs());
    assert_eq!(c.raft_field(l, "raft_clock_rates_ok").as_deref(), Some("1"));
}

/// Node 3's clocks, wall and monotonic, run half again as fast as the others'
/// (libfaketime's `x1.5`): its election timeout passes in two thirds of the time, so a
/// lease that counted on its refusing votes would outlast it. The leader measures the
/// rate and holds no lease: reads take a quorum round and still work.
#[test]
fn no_lease_while_a_voter_clock_runs_fast() {
    let mut launch = vec![Launch::default(); 3];
    launch[2].wrapper = vec!["faketime".into(), "-f".into(), "+0 x1.5".into()];
    let c = Cluster::start_as(launch, vec![0; 3], LEASE);
    let ppm = |l: usize| {
        c.raft_field(l, "raft_node3").and_then(|v| {
            v.split("clock_rate_ppm=")
                .nth(1)
                .and_then(|r| r.split(',').next()?.parse::<i64>().ok())
        })
    };
    // Node 3's wall clock soon runs too far ahead for it to lead, too.
    let mut l = 0;
    let measured = wait_until(Duration::from_secs(30), || {
        l = match c.leader() {
            Some(l) if l != 2 => l,
            _ => return false,
        };
        ppm(l).is_some_and(|r| (400_000..=600_000).contains(&r))
    });
    assert!(
        measured,
        "node 3's rate not measured at about +500,000 ppm: {:?}\n{}",
        ppm(l),
        c.logs()
    );
    let mut con = c.node(l).conn();
    for i in 0..200u64 {
        let _: () = redis::cmd("SET")
            .arg("k")
            .arg(i)
            .query(&mut con)
            .expect("SET");
        let got: u64 = redis::cmd("GET").arg("k").query(&mut con).expect("GET");
        assert_eq!(got, i);
    }
    assert_eq!(c.raft_field(l, "raft_clock_rates_ok").as_deref(), Some("0"));
    assert_eq!(
        c.raft_field(l, "raft_lease").as_deref(),
        Some("0"),
        "a lease while node 3 runs fast"
    );
}

/// The leader is paused (SIGSTOP) and cannot hear the others (a one-way cut) while they
/// elect a new leader and take a write. A read sent to the old leader while it is
/// stopped reaches it when it resumes: it must get an error or the new value, never the
/// old one.
#[test]
fn a_leader_paused_past_its_lease_answers_no_stale_read() {
    let net = Net::new(3);
    let launch = (0..3).map(|i| net.launch(i)).collect();
    let mut args = vec!["--protected-mode", "no"];
    args.extend_from_slice(LEASE);
    let c = Cluster::start_as(launch, vec![7000; 3], &args);
    let old = c.wait_leader(Duration::from_secs(20));
    let mut con = c.node(old).conn();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("old")
        .query(&mut con)
        .expect("SET");
    for _ in 0..20 {
        let v: String = redis::cmd("GET").arg("k").query(&mut con).expect("GET");
        assert_eq!(v, "old");
    }
    let mut raw = c.node(old).raw();
    raw.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");

    c.node(old).signal("STOP");
    let others: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    for &i in &others {
        net.cut_one_way(i, old);
    }
    let Some(new) = c.wait_leader_among(&others, Duration::from_secs(15)) else {
        c.node(old).signal("CONT");
        panic!("no new leader while the old one was stopped\n{}", c.logs());
    };
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("new")
        .query(&mut c.node(new).conn())
        .expect("SET through the new leader");

    raw.write_all(&resp(&[b"GET", b"k"])).expect("send GET");
    c.node(old).signal("CONT");
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    while !complete(&reply) {
        let n = raw.read(&mut buf).expect("a reply from the resumed leader");
        assert!(n > 0, "the resumed leader closed the connection");
        reply.extend_from_slice(&buf[..n]);
    }
    let reply = String::from_utf8_lossy(&reply).to_string();
    eprintln!("the resumed leader answered {reply:?}");
    assert!(
        !reply.contains("old"),
        "the resumed leader answered from before the pause: {reply:?}\n{}",
        c.logs()
    );
    net.heal();
    let l = c.wait_leader(Duration::from_secs(20));
    let v: String = redis::cmd("GET")
        .arg("k")
        .query(&mut c.node(l).conn())
        .expect("GET after healing");
    assert_eq!(v, "new");
}

/// Whether `r` holds one whole RESP2 reply (a line, or a bulk string's two).
fn complete(r: &[u8]) -> bool {
    let lines = r.windows(2).filter(|w| w == b"\r\n").count();
    match r.first() {
        Some(b'$') if !r.starts_with(b"$-1") => lines >= 2,
        Some(_) => lines >= 1,
        None => false,
    }
}
