//! Wall-clock time in Unix milliseconds, the unit of every deadline in the store.
//!
//! In a cluster, deadlines are read by the leader's clock: a follower adds the offset
//! from its clock to the leader's, which the raft layer measures (see
//! `sessiond_cluster::clocks`), so that a follower whose clock is off still expires
//! sessions when the leader does. On the leader, and on a single node, the offset is 0.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use sessiond_cluster::status::ClusterStatus;

/// The raft node's status, whose `leader_offset_us` is the leader's clock minus this
/// node's (set once, when the node starts).
static CLUSTER: OnceLock<Arc<ClusterStatus>> = OnceLock::new();

/// Milliseconds since the Unix epoch, by the leader's clock in a cluster.
pub fn now_ms() -> u64 {
    let local = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let off = CLUSTER
        .get()
        .map_or(0, |s| s.leader_offset_us.load(Ordering::Relaxed) / 1000);
    (local + off).max(0) as u64
}

/// Read deadlines by the leader's clock, as this node's raft status measures it.
pub fn follow(status: Arc<ClusterStatus>) {
    let _ = CLUSTER.set(status);
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
