//! The simulation's targeted tests: each drives the nodes step by step through one
//! situation (a log's report, the lease, regrouping), with the harness of `sim.rs`.

use super::*;

/// A log's report wakes a node only when the node's own fsync holds something up: a
/// leader that has one acknowledgement and needs its own to commit, a follower that
/// learnt of a commit before its fsync ended. Any other report is read on the node's
/// next turn, and a follower's acknowledgement leaves from the log's side.
#[test]
fn a_report_wakes_a_node_only_when_its_own_fsync_holds_something_up() {
    let mut sim = Sim::new(2, 3);
    sim.settle();
    let leader = sim.leader_index();
    let (f1, f2) = ((leader + 1) % 3, (leader + 2) % 3);
    let node = |sim: &Sim, i: usize| sim.node(i).waits_on_own_fsync();
    let reports = |sim: &Sim, i: usize| sim.node(i).reports_waiting();
    let turn = |sim: &mut Sim, i: usize| sim.turn_one(i);
    let deliver_to = |sim: &mut Sim, i: usize| sim.deliver_to(i);

    sim.members[leader].disk.stall(true);
    let mut ack = sim.node(leader).handle().propose(b"w".to_vec());
    turn(&mut sim, leader);
    assert!(
        !node(&sim, leader),
        "no follower has acknowledged the entry yet"
    );

    // The first follower syncs: its acknowledgement goes out from the log, no wake-up.
    deliver_to(&mut sim, f1);
    turn(&mut sim, f1);
    assert!(!node(&sim, f1));
    let synced = sim.members[f1].disk.sync();
    assert!(synced >= 1, "{synced}");
    assert_eq!(reports(&sim, f1), 0, "a quiet report");
    let sent = std::mem::take(&mut *sim.members[f1].net.outbox.lock());
    assert!(
        sent.iter()
            .any(|m| m.get_msg_type() == MessageType::MsgAppendResponse),
        "the log sent the acknowledgement: {sent:?}"
    );
    sim.net.extend(sent);

    // With that acknowledgement, the leader's own fsync completes a quorum.
    deliver_to(&mut sim, leader);
    turn(&mut sim, leader);
    assert!(node(&sim, leader));
    assert!(
        ack.try_recv().is_err(),
        "not committed before the leader's fsync"
    );
    sim.members[leader].disk.stall(false);
    assert!(sim.members[leader].disk.sync() >= 1);
    assert_eq!(reports(&sim, leader), 1, "a report that wakes");
    turn(&mut sim, leader);
    assert!(matches!(ack.try_recv(), Ok(Ok(_))), "committed and applied");

    // The second follower hears of the commit before its own fsync: it asks to be woken.
    deliver_to(&mut sim, f2);
    turn(&mut sim, f2);
    assert!(node(&sim, f2));
    sim.members[f2].disk.sync();
    assert_eq!(reports(&sim, f2), 1, "a report that wakes");
    turn(&mut sim, f2);
    assert_eq!(
        sim.members[f2].applied.lock().last().map(Vec::as_slice),
        Some(&b"w"[..])
    );

    // The first follower applies on the leader's next append, from its quiet report.
    deliver_to(&mut sim, f1);
    turn(&mut sim, f1);
    assert_eq!(
        sim.members[f1].applied.lock().last().map(Vec::as_slice),
        Some(&b"w"[..])
    );
    assert!(!node(&sim, f1));
}

/// `--read-consistency lease`: once a quorum has answered a read barrier, the leader
/// answers reads, its own and those followers forward, without a round; a leadership
/// transfer ends that for the term; a node that has just started gives no vote.
#[test]
fn a_lease_answers_reads_without_a_round_until_a_transfer_ends_it() {
    use MessageType::*;
    let mut sim = Sim::new(2, 3);
    for m in &mut sim.members {
        m.reads = ReadConsistency::Lease;
        m.boot();
    }
    sim.settle();
    let l = sim.leader_index();
    let (f1, f2) = ((l + 1) % 3, (l + 2) % 3);
    sim.net.clear();

    // The first read takes a round, which gives the lease.
    let mut first = sim.node(l).handle().read_barrier();
    sim.turn_one(l);
    assert_eq!(sim.on_net(MsgHeartbeat), 2, "a barrier's heartbeats");
    for f in [f1, f2] {
        sim.deliver_to(f);
        sim.turn_one(f);
    }
    sim.deliver_to(l);
    sim.turn_one(l);
    assert!(
        matches!(first.try_recv(), Ok(Ok(()))),
        "answered after the round"
    );
    sim.net.clear();

    // A write commits: every message that tells of it leaves after the commit index is
    // published for the lease.
    let mut write = sim.node(l).handle().propose(b"w".to_vec());
    for _ in 0..20 {
        sim.collect(100);
        for i in 0..3 {
            sim.deliver_to(i);
        }
    }
    assert!(
        matches!(write.try_recv(), Ok(Ok(_))),
        "the write is applied"
    );
    assert_eq!(*sim.members[l].net.commits_ahead.lock(), []);
    sim.net.clear();

    // The next ones, the leader's own and a follower's, take none. The leader's own is
    // answered on the caller's thread, before the raft thread turns.
    let mut own = sim.node(l).handle().read_barrier();
    assert!(
        matches!(own.try_recv(), Ok(Ok(()))),
        "answered from the lease, on the caller's thread"
    );
    sim.turn_one(l);
    assert_eq!(sim.on_net(MsgHeartbeat), 0);
    let mut forwarded = sim.node(f1).handle().read_barrier();
    sim.turn_one(f1);
    sim.deliver_to(l);
    sim.turn_one(l);
    assert_eq!(sim.on_net(MsgReadIndexResp), 1, "answered from the lease");
    assert_eq!(sim.on_net(MsgHeartbeat), 0);
    sim.deliver_to(f1);
    sim.turn_one(f1);
    assert!(matches!(forwarded.try_recv(), Ok(Ok(()))));
    sim.net.clear();

    // A transfer to f1 starts: from then on, reads take rounds again.
    let mut transfer = Message {
        from: sim.members[f1].id,
        to: sim.members[l].id,
        ..Default::default()
    };
    transfer.set_msg_type(MsgTransferLeader);
    sim.deliver(transfer);
    sim.turn_one(l);
    assert_eq!(sim.on_net(MsgTimeoutNow), 1, "f1 is up to date");
    assert_eq!(
        *sim.members[l].net.lease_at_timeout_now.lock(),
        [false],
        "the lease ended before MsgTimeoutNow left"
    );
    sim.net.clear();
    let mut after = sim.node(l).handle().read_barrier();
    assert!(
        after.try_recv().is_err(),
        "the caller's thread no longer answers once MsgTimeoutNow is out"
    );
    sim.turn_one(l);
    assert!(after.try_recv().is_err(), "no answer without a round");
    assert_eq!(sim.on_net(MsgHeartbeat), 2);

    // A node that has just started refuses to vote, whatever the candidate's term.
    sim.members[f2].boot();
    sim.net.clear();
    let mut vote = Message {
        from: sim.members[f1].id,
        to: sim.members[f2].id,
        term: 1 << 20,
        log_term: 1 << 20,
        index: 1 << 20,
        ..Default::default()
    };
    vote.set_msg_type(MsgRequestVote);
    sim.deliver(vote);
    sim.turn_one(f2);
    assert_eq!(sim.on_net(MsgRequestVoteResponse), 0, "no answer at all");
    assert_eq!(
        sim.node(f2).raft().1,
        sim.node(l).raft().1,
        "its term is unchanged"
    );
}

/// A settled group of three that regroups (`ClusterConfig::regroup`), with an empty
/// network, and its leader.
fn regrouping_group() -> (Sim, usize) {
    let mut sim = Sim::new(1, 3);
    for m in &mut sim.members {
        m.regroup = true;
        m.boot();
    }
    sim.settle();
    let l = sim.leader_index();
    sim.net.clear();
    (sim, l)
}

/// Turn every node and deliver until each of `waits` is answered with success.
fn answer_all<T: std::fmt::Debug>(
    sim: &mut Sim,
    waits: &mut Vec<oneshot::Receiver<Result<T, ClusterError>>>,
) {
    for _ in 0..50 {
        sim.collect(100);
        for i in 0..3 {
            sim.deliver_to(i);
        }
        waits.retain_mut(|w| match w.try_recv() {
            Ok(Ok(_)) => false,
            Err(oneshot::error::TryRecvError::Empty) => true,
            other => panic!("a request failed: {other:?}"),
        });
        if waits.is_empty() {
            return;
        }
    }
    panic!("the requests were not answered:\n{}", sim.state());
}

/// Regrouping: once an apply has answered a leader's clients, the next batch waits until
/// as many proposals have come back, then goes at once as one entry. Without it,
/// unpipelined clients split into groups that take turns, each in entries of its own.
#[test]
fn unpipelined_clients_come_back_into_one_entry() {
    let (mut sim, l) = regrouping_group();

    // Three clients write together: one entry, answered by one apply.
    let mut acks: Vec<_> = (0..3u8)
        .map(|k| sim.node(l).handle().propose(vec![b'a', k]))
        .collect();
    answer_all(&mut sim, &mut acks);

    // They come back one by one: the first two wait, the third sends all three.
    let last = |sim: &Sim| sim.node(l).raft().3;
    let before = last(&sim);
    let mut acks = Vec::new();
    for k in 0..3u8 {
        acks.push(sim.node(l).handle().propose(vec![b'b', k]));
        sim.turn_one(l);
        let grown = last(&sim) - before;
        assert_eq!(grown, u64::from(k == 2), "after {} of 3 came back", k + 1);
    }
    answer_all(&mut sim, &mut acks);
    assert_eq!(last(&sim), before + 1, "one entry for the three");
}

/// Reads regroup alike: once a barrier's reads were answered, the next barrier waits
/// until as many reads have come back, then goes at once for all of them.
#[test]
fn unpipelined_readers_come_back_into_one_barrier() {
    use MessageType::MsgHeartbeat;
    let (mut sim, l) = regrouping_group();

    // Three readers together: one barrier, answered at once.
    let mut reads: Vec<_> = (0..3)
        .map(|_| sim.node(l).handle().read_barrier())
        .collect();
    answer_all(&mut sim, &mut reads);
    sim.net.clear();

    // They come back one by one: the first two wait, the third sends one barrier.
    let mut reads = Vec::new();
    for k in 0..3 {
        reads.push(sim.node(l).handle().read_barrier());
        sim.turn_one(l);
        let want = if k == 2 { 2 } else { 0 };
        assert_eq!(
            sim.on_net(MsgHeartbeat),
            want,
            "after {} of 3 came back",
            k + 1
        );
    }
    answer_all(&mut sim, &mut reads);
}
