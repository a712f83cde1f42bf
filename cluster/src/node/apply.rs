//! Applying committed entries to the state machine, freeing the in-memory log behind
//! them, and publishing the node's state for the server to read.

use super::*;

impl Node {
    /// Apply queued committed entries, unless a snapshot is being captured.
    pub(super) fn apply(&mut self) {
        // (Without a log on disk, a snapshot is durable as soon as it is installed.)
        self.applied_snapshot_persisted();
        if self.capturing() {
            return;
        }
        self.publish_lease();
        let start = self.applied;
        while let Some(e) = self.unapplied.pop_front() {
            if e.index <= self.applied {
                continue;
            }
            self.applied_bytes += e.data.len() as u64 + crate::ENTRY_OVERHEAD;
            match e.get_entry_type() {
                EntryType::EntryNormal => self.apply_normal(&e),
                EntryType::EntryConfChange => match ConfChange::parse_from_bytes(&e.data) {
                    Ok(cc) => self.apply_conf_change(cc.into_v2()),
                    Err(err) => warn!(index = e.index, error = %err, "bad conf change"),
                },
                EntryType::EntryConfChangeV2 => match ConfChangeV2::parse_from_bytes(&e.data) {
                    Ok(cc) => self.apply_conf_change(cc),
                    Err(err) => warn!(index = e.index, error = %err, "bad conf change"),
                },
            }
            self.applied = e.index;
        }
        if self.applied != start {
            self.fence_step(false);
            self.sm.set_horizon(self.apply_now);
            self.raw.advance_apply_to(self.applied);
            self.status
                .entries_applied
                .fetch_add(self.applied - start, std::sync::atomic::Ordering::Relaxed);
            self.publish_applied();
        }
        self.answer_reads();
        self.regroup.applied(Instant::now());
    }

    /// raft-rs does not move its own applied index to a snapshot this node installed:
    /// once the snapshot is persisted, say so at once, before anything else runs (a tick
    /// may start an election, which reads the entries after raft-rs's applied index,
    /// gone with the snapshot: raft-rs stops the node). This used to wait for the next
    /// apply, which a snapshot capture in progress defers: the simulation hit it about
    /// once in ten runs.
    pub(super) fn applied_snapshot_persisted(&mut self) {
        let rl = &self.raw.raft.raft_log;
        if rl.applied < self.applied && self.applied <= rl.committed.min(rl.persisted) {
            self.raw.advance_apply_to(self.applied);
        }
    }

    /// A snapshot from the leader is installed (the log starts after it) and raft-rs
    /// does not know it is durable yet: between `advance_append_async` and the log's
    /// report, raft-rs's applied index is behind the log's first entry, and an election
    /// started now would read the entries in between, which are gone (raft-rs stops the
    /// node). Ticks and leadership offers wait that moment out (`Node::tick`).
    pub(super) fn snapshot_unreported(&self) -> bool {
        let rl = &self.raw.raft.raft_log;
        rl.unstable_snapshot().is_none()
            && self
                .storage
                .first_index()
                .is_ok_and(|first| rl.applied + 1 < first)
    }

    /// Answer the reads whose index this node has applied.
    pub(super) fn answer_reads(&mut self) {
        let applied = self.applied;
        let mut i = 0;
        while i < self.reads_ready.len() {
            if self.reads_ready[i].0 <= applied {
                let (_, ws) = self.reads_ready.swap_remove(i);
                self.status
                    .reads
                    .fetch_add(ws.len() as u64, std::sync::atomic::Ordering::Relaxed);
                self.regroup_reads.replied += ws.len();
                for w in ws {
                    let _ = w.tx.send(Ok(()));
                }
            } else {
                i += 1;
            }
        }
        self.regroup_reads.applied(Instant::now());
    }

    pub(super) fn apply_normal(&mut self, e: &Entry) {
        if e.data.is_empty() {
            return; // a new leader's empty entry
        }
        let (stamp, records) = match payload::decode(&e.data) {
            Ok(x) => x,
            Err(err) => {
                warn!(index = e.index, error = %err, "undecodable entry");
                return;
            }
        };
        let now = stamp.max(self.apply_now);
        self.apply_now = now;
        self.sm.set_horizon(now);
        for r in records {
            let r = match r {
                Ok(r) => r,
                Err(err) => {
                    warn!(index = e.index, error = %err, "undecodable record");
                    break;
                }
            };
            let mine = r.origin == self.cfg.id && self.pending.contains_key(&r.request);
            let reply = self.sm.apply(e.data.slice_ref(r.data), now, mine);
            if mine {
                if let Some(p) = self.pending.remove(&r.request) {
                    if let Waiter::Write(tx) = p.waiter {
                        self.regroup.replied += 1;
                        // Sent once every node whose clients cache keys has applied it.
                        self.fence.reply(e.index, tx, reply, Instant::now());
                    }
                }
            }
        }
    }

    /// Drop from the in-memory log the entries that this node has applied and, on a
    /// leader, that every follower has, but for the last `log_memory` bytes of them (see
    /// `window`). The write-ahead log keeps them until the next snapshot.
    pub(super) fn compact_memory(&mut self) {
        let mut floor = self.applied;
        if self.raw.raft.state == StateRole::Leader {
            for (_, pr) in self.raw.raft.prs().iter() {
                floor = floor.min(pr.matched);
            }
        }
        let Some(to) = self.window.compaction_point(floor, self.cfg.log_memory) else {
            return;
        };
        if let Err(e) = self.storage.mem.wl().compact(to) {
            warn!(error = %e, "in-memory log compaction");
            return;
        }
        self.window.compact(to);
    }

    pub(super) fn publish(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let st = &self.status;
        st.commit.store(self.raw.raft.raft_log.committed, Relaxed);
        st.applied.store(self.applied, Relaxed);
        st.log_memory.store(self.window.held(), Relaxed);
        st.term.store(self.raw.raft.term, Relaxed);
        st.leader.store(self.raw.raft.leader_id, Relaxed);
        if let Ok(f) = self.storage.first_index() {
            st.first_index.store(f, Relaxed);
        }
        if let Ok(l) = self.storage.last_index() {
            st.last_index.store(l, Relaxed);
        }
        self.publish_progress();
    }

    /// On the leader, each follower's progress into the status (for `ROLE` and `INFO
    /// replication`); elsewhere none.
    pub(super) fn publish_progress(&self) {
        let leader = self.raw.raft.state == StateRole::Leader;
        let last = self.raw.raft.raft_log.last_index();
        let now = unix_ms();
        let mut peers = self.status.peers.lock();
        for (id, p) in peers.iter_mut() {
            if *id == self.status.id {
                continue;
            }
            let pr = if leader {
                self.raw.raft.prs().get(*id)
            } else {
                None
            };
            p.progress = pr.map(|pr| {
                let old = p.progress.as_ref();
                let moved = old.is_none_or(|o| o.matched != pr.matched) || pr.matched >= last;
                Progress {
                    matched: pr.matched,
                    state: match pr.state {
                        raft::ProgressState::Probe => "probe",
                        raft::ProgressState::Replicate => "replicate",
                        raft::ProgressState::Snapshot => "snapshot",
                    },
                    active: pr.recent_active,
                    caught_up_ms: if moved {
                        now
                    } else {
                        old.map_or(now, |o| o.caught_up_ms)
                    },
                }
            });
        }
    }
}
