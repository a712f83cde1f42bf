//! The checks every [`RaftLog`] must pass: durability across a restart, raft's overwrite
//! rule, the hard state, reports in order with the messages that waited for them,
//! barriers, snapshots taken (compaction) and installed (reset). The write-ahead log
//! and the simulation's in-memory log both run them (their unit tests); a new
//! implementation should too. Torn and corrupt records are the WAL's own tests.

use std::time::Duration;

use crossbeam::channel::Receiver;
use raft::prelude::{Entry, HardState, Message, Snapshot, SnapshotMetadata};

use super::{Job, Persisted, RaftLog};
use crate::wal::Recovered;

/// A log implementation under test.
pub trait Subject {
    /// Open the log (the first time, or again after the last one was stopped): the log,
    /// the channel of its reports, and what it recovered.
    fn open(&mut self) -> (Box<dyn RaftLog>, Receiver<Persisted>, Recovered);
    /// Make submitted jobs durable, if the implementation waits to be told (the
    /// simulation's disk); a no-op for a log that syncs by itself.
    fn sync(&mut self) {}
}

fn ents(from: u64, to: u64, term: u64) -> Vec<Entry> {
    (from..=to)
        .map(|index| Entry {
            index,
            term,
            data: format!("{index}@{term}").into_bytes().into(),
            ..Default::default()
        })
        .collect()
}

fn hs(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..Default::default()
    }
}

fn job(number: u64, entries: Vec<Entry>, hard: Option<HardState>, msg_to: u64) -> Job {
    let msgs = (msg_to != 0)
        .then(|| Message {
            to: msg_to,
            ..Default::default()
        })
        .into_iter()
        .collect();
    Job {
        number,
        entries,
        hs: hard,
        msgs,
        must_sync: true,
    }
}

fn meta(index: u64, term: u64) -> SnapshotMetadata {
    let mut m = SnapshotMetadata {
        index,
        term,
        ..Default::default()
    };
    m.mut_conf_state().voters = vec![1, 2, 3];
    m
}

/// Wait for the report of ready `number`, collecting the messages of every report.
fn wait_for(done: &Receiver<Persisted>, number: u64, subject: &mut dyn Subject) -> Vec<u64> {
    let mut to = Vec::new();
    for _ in 0..100 {
        subject.sync();
        if let Ok(p) = done.recv_timeout(Duration::from_millis(100)) {
            to.extend(p.msgs.iter().map(|m| m.to));
            assert!(p.number <= number, "reported {} beyond {number}", p.number);
            if p.number == number {
                return to;
            }
        }
    }
    panic!("ready {number} never reported durable");
}

fn reopen(
    log: &mut Box<dyn RaftLog>,
    subject: &mut dyn Subject,
) -> (Box<dyn RaftLog>, Receiver<Persisted>, Recovered) {
    log.stop();
    subject.open()
}

fn indexes(rec: &Recovered) -> Vec<(u64, u64)> {
    rec.entries.iter().map(|e| (e.index, e.term)).collect()
}

/// Run every check on `subject`, which must start empty. Panics on the first failure.
pub fn check(subject: &mut dyn Subject) {
    let (mut log, done, rec) = subject.open();
    assert!(
        rec.snapshot.is_none() && rec.entries.is_empty(),
        "a new log is empty"
    );
    assert_eq!(rec.hard_state, HardState::default());
    // Every node's log starts from a snapshot (a founding member's is at index 1).
    log.write_snapshot(&meta(1, 1), b"")
        .expect("first snapshot");

    // Reports come in order, each with the messages that waited for it.
    log.submit(job(1, ents(2, 4, 1), Some(hs(1, 2, 0)), 2));
    log.submit(job(2, ents(5, 10, 1), Some(hs(1, 2, 4)), 3));
    assert_eq!(wait_for(&done, 2, subject), vec![2, 3]);
    let (mut log, done, rec) = reopen(&mut log, subject);
    assert_eq!(indexes(&rec), (2..=10).map(|i| (i, 1)).collect::<Vec<_>>());
    assert_eq!(rec.hard_state, hs(1, 2, 4), "the hard state survives");
    assert_eq!(&rec.entries[3].data[..], b"5@1", "entries keep their data");

    // A new leader's entries replace the tail from their first index.
    log.submit(job(1, ents(8, 9, 2), Some(hs(2, 3, 7)), 0));
    wait_for(&done, 1, subject);
    let (mut log, done, rec) = reopen(&mut log, subject);
    let want: Vec<_> = (2..=7).map(|i| (i, 1)).chain([(8, 2), (9, 2)]).collect();
    assert_eq!(indexes(&rec), want, "entry 10 of the old term is gone");
    assert_eq!(rec.hard_state, hs(2, 3, 7));

    // A barrier returns once everything before it is durable.
    log.submit(job(1, ents(10, 12, 2), None, 0));
    log.barrier();
    let mut reported = None;
    for _ in 0..10 {
        subject.sync();
        if let Ok(p) = done.recv_timeout(Duration::from_millis(100)) {
            reported = Some(p.number);
            break;
        }
    }
    assert_eq!(reported, Some(1), "what a barrier covered is reported");

    // A snapshot this node took: what it covers may go, what follows stays.
    let mut snap = Snapshot::default();
    snap.set_metadata(meta(6, 1));
    snap.data = b"state at 6".to_vec().into();
    log.write_snapshot(snap.get_metadata(), &snap.data)
        .expect("snapshot written");
    log.snapshot_taken(&snap).expect("compaction");
    let (mut log, done, rec) = reopen(&mut log, subject);
    let s = rec.snapshot.as_ref().expect("the snapshot survives");
    assert_eq!(
        (s.get_metadata().index, &s.data[..]),
        (6, &b"state at 6"[..])
    );
    assert_eq!(s.get_metadata().get_conf_state().voters, vec![1, 2, 3]);
    let want: Vec<_> = [(7, 1)]
        .into_iter()
        .chain((8..=12).map(|i| (i, 2)))
        .collect();
    assert_eq!(
        indexes(&rec),
        want,
        "entries after the snapshot, contiguous"
    );

    // The leader's snapshot replaces the log; the hard state stays.
    log.submit(job(1, Vec::new(), Some(hs(3, 1, 12)), 0));
    wait_for(&done, 1, subject);
    log.install_snapshot(&meta(40, 3), b"state at 40")
        .expect("installed");
    log.submit(job(2, ents(41, 42, 3), None, 0));
    wait_for(&done, 2, subject);
    let (mut log, _done, rec) = reopen(&mut log, subject);
    let s = rec
        .snapshot
        .as_ref()
        .expect("the leader's snapshot survives");
    assert_eq!(
        (s.get_metadata().index, &s.data[..]),
        (40, &b"state at 40"[..])
    );
    assert_eq!(indexes(&rec), vec![(41, 3), (42, 3)]);
    assert_eq!(rec.hard_state.term, 3);
    log.stop();
}
