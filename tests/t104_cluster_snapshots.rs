//! Cluster snapshots and the in-memory log, with real `sessiond` processes on loopback:
//! a paused follower catches up from a snapshot, snapshots trigger on log bytes and
//! wait for the log to grow as big as the store, and applied entries leave memory
//! between snapshots.

mod support;

use std::time::Duration;

use support::cluster::{conn, get, serial, try_get, Cluster, LEADER_WAIT};
use support::wait_until;

/// A follower paused with SIGSTOP while the others take writes past the snapshot
/// threshold catches up from a snapshot once it resumes.
#[test]
fn t104_paused_follower_catches_up_from_snapshot() {
    let _g = serial();
    let c = Cluster::start(3, &["--snapshot-entries", "200"]);
    let l = c.wait_leader(LEADER_WAIT);
    let f = (l + 1) % 3;
    c.node(f).signal("STOP");
    let mut con = conn(&c, l);
    for i in 0..700 {
        let _: () = redis::cmd("SET")
            .arg(format!("s{i}"))
            .arg(i)
            .query(&mut con)
            .expect("SET with one follower paused");
    }
    let first = c.raft_index(l, "raft_first_index");
    assert!(
        first > 100,
        "the leader compacted its log (first index {first})"
    );
    c.node(f).signal("CONT");
    let mut fc = conn(&c, f);
    assert!(
        wait_until(Duration::from_secs(20), || try_get(&mut fc, "s699")
            .as_deref()
            == Some("699")),
        "the follower caught up\n{}",
        c.logs()
    );
    assert_eq!(get(&mut fc, "s0").as_deref(), Some("0"));
    assert!(
        c.node(f)
            .log_text()
            .contains("installed the leader's snapshot"),
        "the follower caught up from a snapshot\n{}",
        c.node(f).log_text()
    );
}

/// Snapshots also trigger on applied log bytes (`--snapshot-bytes`), so a node's
/// in-memory log stays bounded when few entries carry many writes each.
#[test]
fn t10c_snapshots_trigger_on_log_bytes() {
    let _g = serial();
    // The entry trigger is far away: only the byte trigger can fire.
    let c = Cluster::start(
        3,
        &[
            "--snapshot-bytes",
            "65536",
            "--snapshot-entries",
            "1000000",
            "--metrics-port",
            "0",
        ],
    );
    let l = c.wait_leader(LEADER_WAIT);
    let mut lc = conn(&c, l);
    let value = "x".repeat(1024);
    for round in 0..4 {
        set_pipelined(&mut lc, &format!("big:{round}:"), 100, &value);
    }
    for i in 0..3 {
        assert!(
            wait_until(Duration::from_secs(20), || c
                .raft_index(i, "raft_snapshot_index")
                > 1),
            "node {i} took no snapshot after 400 KB of log"
        );
    }
    assert_eq!(get(&mut lc, "big:3:99").as_deref(), Some(value.as_str()));
    // The leader's /metrics show its raft state and fsync latencies.
    let log = c.node(l).log_text();
    let url = log
        .lines()
        .find_map(|l| l.split("metrics at http://").nth(1))
        .expect("metrics address in the log");
    let addr: String = url.chars().take_while(|&c| c != '/').collect();
    let mut s = std::net::TcpStream::connect(&addr).expect("metrics");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    std::io::Write::write_all(&mut s, b"GET /metrics HTTP/1.1\r\n\r\n").expect("request");
    let mut body = String::new();
    std::io::Read::read_to_string(&mut s, &mut body).expect("response");
    assert!(
        body.contains("\n# TYPE sessiond_raft_is_leader gauge\n"),
        "{body}"
    );
    let leader: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("sessiond_raft_leader_id "))
        .and_then(|v| v.parse().ok())
        .expect("leader id");
    assert!(leader > 0, "{body}");
    let fsyncs: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("sessiond_raft_fsync_duration_seconds_count "))
        .and_then(|v| v.parse().ok())
        .expect("fsync histogram");
    assert!(fsyncs > 0, "{body}");
}

/// On a store bigger than `--snapshot-bytes`, the next snapshot waits until the log has
/// grown as big as the last snapshot: a snapshot costs in proportion to the store.
#[test]
fn t10f_snapshots_wait_for_the_log_to_grow_as_big_as_the_store() {
    let _g = serial();
    let c = Cluster::start(
        3,
        &["--snapshot-bytes", "65536", "--snapshot-entries", "1000000"],
    );
    let l = c.wait_leader(LEADER_WAIT);
    let mut lc = conn(&c, l);
    let snap_index = |c: &Cluster| c.raft_index(l, "raft_snapshot_index");
    // One transaction of 1 MiB: applied as one entry, then a snapshot of about 1 MiB.
    let value = "x".repeat(1024);
    set_atomic(&mut lc, "big:", 1024, &value);
    assert!(
        wait_until(Duration::from_secs(20), || snap_index(&c) > 1),
        "no snapshot after 1 MiB of log"
    );
    let first = snap_index(&c);
    // 256 KiB more: past --snapshot-bytes, but far from the size of the snapshot.
    for round in 0..4 {
        set_pipelined(&mut lc, &format!("more:{round}:"), 64, &value);
    }
    let probe = "probe";
    let _: () = redis::cmd("SET")
        .arg(probe)
        .arg("1")
        .query(&mut lc)
        .expect("SET");
    assert!(
        !wait_until(Duration::from_secs(2), || snap_index(&c) > first),
        "a snapshot came before the log grew as big as the last one"
    );
    // 2 MiB more: the log is now past twice the last snapshot, which is where the
    // leader takes the next one (followers take theirs at 1 to 1.4 times).
    set_pipelined(&mut lc, "big:", 1024, &value);
    set_pipelined(&mut lc, "big2:", 1024, &value);
    assert!(
        wait_until(Duration::from_secs(20), || snap_index(&c) > first),
        "no snapshot after the log grew past the snapshot's size"
    );
}

/// Entries applied everywhere leave memory (`--raft-log-memory`) long before any
/// snapshot: every node's in-memory log moves on while the snapshot stays at index 1.
/// Then a follower is killed while the others go on, the leader is killed too, and the
/// follower restarts: the new leader no longer holds in memory the entries the follower
/// lacks, and its snapshot at index 1 does not reach them, so it takes a fresh one for
/// it, and can then take over the leadership at once. The old leader, restarted, replays
/// the entries from its disk.
#[test]
fn t10g_applied_entries_leave_memory_between_snapshots() {
    let _g = serial();
    let mut c = Cluster::start(
        3,
        &[
            "--raft-log-memory",
            "16384",
            "--snapshot-entries",
            "1000000",
            "--snapshot-bytes",
            "1000000000",
        ],
    );
    let l = c.wait_leader(LEADER_WAIT);
    let mut lc = conn(&c, l);
    let value = "y".repeat(1024);
    for round in 0..10 {
        set_pipelined(&mut lc, &format!("w:{round}:"), 20, &value);
    }
    for i in 0..3 {
        assert!(
            wait_until(Duration::from_secs(20), || c
                .raft_index(i, "raft_first_index")
                > 5),
            "node {i} kept its whole log in memory (first index {})\n{}",
            c.raft_index(i, "raft_first_index"),
            c.logs()
        );
        assert_eq!(
            c.raft_index(i, "raft_snapshot_index"),
            1,
            "node {i} took a snapshot"
        );
    }
    let down = (l + 1) % 3;
    let other = (l + 2) % 3;
    c.kill9(down);
    let behind = c.raft_index(other, "raft_applied_index");
    for round in 10..20 {
        set_pipelined(&mut lc, &format!("w:{round}:"), 20, &value);
    }
    assert!(
        wait_until(Duration::from_secs(20), || c
            .raft_index(other, "raft_first_index")
            > behind + 2),
        "node {other} moved its in-memory log past what node {down} has\n{}",
        c.logs()
    );
    // Node `other`, with the longest log left, becomes the leader.
    c.kill9(l);
    c.restart(down);
    assert!(
        wait_until(Duration::from_secs(30), || c
            .node(down)
            .log_text()
            .contains("installed the leader's snapshot")),
        "the node that was down caught up from a fresh snapshot\n{}",
        c.logs()
    );
    assert!(
        c.raft_index(other, "raft_snapshot_index") > behind,
        "{}",
        c.logs()
    );
    c.restart(l);
    let target = c.raft_index(other, "raft_commit_index");
    for i in [l, down] {
        assert!(
            wait_until(Duration::from_secs(30), || c
                .raft_index(i, "raft_applied_index")
                >= target),
            "node {i} caught up to {target}\n{}",
            c.logs()
        );
    }
    // The node that installed the snapshot can lead at once, with no entry applied
    // since: raft-rs's own applied index must have moved to the snapshot.
    let mut oc = conn(&c, other);
    let r: String = redis::cmd("RAFT.TRANSFER-LEADER")
        .arg(down + 1)
        .query(&mut oc)
        .unwrap_or_else(|e| panic!("RAFT.TRANSFER-LEADER: {e}\n{}", c.logs()));
    assert!(r.contains("transferred"), "{r}\n{}", c.logs());
    assert_eq!(c.wait_leader(LEADER_WAIT), down, "{}", c.logs());
    // Every write is there, read through each node.
    for i in 0..3 {
        let mut con = conn(&c, i);
        assert_eq!(get(&mut con, "w:0:0").as_deref(), Some(value.as_str()));
        assert_eq!(get(&mut con, "w:19:19").as_deref(), Some(value.as_str()));
    }
}

/// `SET <prefix><i> value` for i in 0..n, in one pipeline (one raft entry).
fn set_pipelined(con: &mut redis::Connection, prefix: &str, n: usize, value: &str) {
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("SET").arg(format!("{prefix}{i}")).arg(value).ignore();
    }
    let _: () = p.query(con).expect("pipeline");
}

/// `n` SETs in one MULTI/EXEC: one raft entry, applied at once.
fn set_atomic(con: &mut redis::Connection, prefix: &str, n: usize, value: &str) {
    let mut p = redis::pipe();
    p.atomic();
    for i in 0..n {
        p.cmd("SET").arg(format!("{prefix}{i}")).arg(value).ignore();
    }
    let _: () = p.query(con).expect("transaction");
}
