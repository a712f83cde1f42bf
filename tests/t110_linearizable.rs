//! Linearizability of a 3-node cluster under faults, checked per key by our own register
//! checker (`support/linearizable.rs`).
//!
//! Client threads run GET / SET / DEL on a few keys through every node (leaders and
//! follower proxies) while the test kills the leader with -9 and restarts it, pauses a
//! follower with SIGSTOP/SIGCONT, and adds and removes a member. Each client records
//! when it invoked every operation and when (and what) it was answered. Any history that
//! cannot be linearized fails the test. It runs with linearizable reads (the default)
//! and with lease reads.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::cluster::Cluster;
use support::history::{assert_linearizable, client_loop, Keys};
use support::wait_until;

#[test]
fn t111_get_set_del_stay_linearizable_through_kills_pauses_and_membership_changes() {
    under_faults(&[]);
}

/// The same with lease reads (`node/lease.rs`): the leader answers reads without a
/// quorum round while its lease holds.
#[test]
fn t112_lease_reads_stay_linearizable_through_kills_pauses_and_membership_changes() {
    under_faults(&["--read-consistency", "lease"]);
}

fn under_faults(extra: &[&str]) {
    let mut args = vec!["--request-timeout-ms", "1500"];
    args.extend_from_slice(extra);
    let mut c = Cluster::start(3, &args);
    c.wait_leader(Duration::from_secs(15));
    let urls: Vec<String> = (0..3).map(|i| c.node(i).url()).collect();
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let history = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|id| {
            let (urls, stop, history) = (urls.clone(), stop.clone(), history.clone());
            std::thread::spawn(move || {
                client_loop(id, urls, &Keys::default(), start, stop, history)
            })
        })
        .collect();
    let count = || history.lock().unwrap_or_else(|e| e.into_inner()).len();
    let mut target = 500;
    let mut progress = |what: &str| {
        assert!(
            wait_until(Duration::from_secs(20), || count() >= target),
            "clients made no progress after {what}"
        );
        eprintln!(
            "{:>6} ms: {what}: {} operations",
            start.elapsed().as_millis(),
            count()
        );
        target = count() + 500;
    };
    progress("start");

    // 1. kill -9 the leader, then bring it back.
    let l = c.wait_leader(Duration::from_secs(15));
    c.kill9(l);
    progress("the leader kill");
    c.restart(l);
    c.wait_leader(Duration::from_secs(15));
    progress("the restart");

    // 2. Pause a follower, let the others go on, resume it.
    let l = c.wait_leader(Duration::from_secs(15));
    let f = (l + 1) % 3;
    c.node(f).signal("STOP");
    progress("pausing a follower");
    c.node(f).signal("CONT");
    progress("resuming it");

    // 3. Membership: add node 4, then remove it again.
    let l = c.wait_leader(Duration::from_secs(15));
    let j = c.spawn_joiner();
    let mut lc = c.node(l).conn();
    let _ = lc.set_read_timeout(Some(Duration::from_secs(10)));
    let r: String = redis::cmd("RAFT.NODE")
        .arg("ADD")
        .arg(j + 1)
        .arg(c.raft_addr(j))
        .query(&mut lc)
        .expect("RAFT.NODE ADD");
    assert!(r.contains("added"), "{r}");
    progress("adding a node");
    let r: String = redis::cmd("RAFT.NODE")
        .arg("REMOVE")
        .arg(j + 1)
        .query(&mut lc)
        .expect("RAFT.NODE REMOVE");
    assert!(r.contains("removed"), "{r}");
    c.kill9(j);
    progress("removing it");

    stop.store(true, Ordering::Relaxed);
    for t in clients {
        let _ = t.join();
    }
    let history = history.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let unknown = history.iter().filter(|e| e.complete.is_none()).count();
    eprintln!(
        "{} operations over {:?} ({} with unknown outcome)",
        history.len(),
        start.elapsed(),
        unknown
    );
    assert_linearizable(&history);
}

/// The checker itself (in one test binary only; every other includes `support`).
mod checker {
    use super::support::linearizable::*;

    fn ev(client: usize, op: Op, invoke: u64, complete: Option<u64>) -> Event {
        Event {
            client,
            key: "k".into(),
            op,
            invoke,
            complete,
        }
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn accepts_overlapping_write_and_read_either_way() {
        let h = [
            ev(0, Op::Write(s("a")), 0, Some(10)),
            ev(1, Op::Read(s("a")), 5, Some(6)),
            ev(2, Op::Read(None), 4, Some(7)),
        ];
        assert!(check_key(&h));
    }

    #[test]
    fn rejects_a_stale_read_after_a_completed_write() {
        let h = [
            ev(0, Op::Write(s("a")), 0, Some(10)),
            ev(0, Op::Write(s("b")), 11, Some(20)),
            ev(1, Op::Read(s("a")), 21, Some(22)),
        ];
        assert!(!check_key(&h));
    }

    #[test]
    fn unknown_writes_may_or_may_not_happen_but_not_before_invocation() {
        let took_effect = [
            ev(0, Op::Write(s("a")), 0, None),
            ev(1, Op::Read(s("a")), 5, Some(6)),
        ];
        assert!(check_key(&took_effect));
        let never = [
            ev(0, Op::Write(s("a")), 0, None),
            ev(1, Op::Read(None), 5, Some(6)),
        ];
        assert!(check_key(&never));
        let before_invoked = [
            ev(1, Op::Read(s("a")), 0, Some(1)),
            ev(0, Op::Write(s("a")), 5, None),
        ];
        assert!(!check_key(&before_invoked));
    }

    #[test]
    fn rejects_a_lost_acknowledged_write() {
        let h = [
            ev(0, Op::Write(s("a")), 0, Some(1)),
            ev(1, Op::Read(None), 2, Some(3)),
        ];
        assert!(!check_key(&h));
    }
}
