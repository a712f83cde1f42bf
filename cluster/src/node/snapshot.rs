//! Snapshots: when one is due, capturing the store on a thread while applying waits,
//! writing it to its file, reading it back for a follower, and installing the leader's.

use super::*;

impl Node {
    /// While a capture runs, take parts of it from the back for up to 2 ms (applying is
    /// held back meanwhile, so this thread would otherwise wait). True if parts are left.
    pub(super) fn help_capture(&mut self) -> bool {
        let Some(job) = &self.capture_job else {
            return false;
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(2) {
            if !job.step(None) {
                self.capture_job = None;
                return false;
            }
        }
        true
    }

    /// Whether the log has grown enough for a snapshot (see `Config::snapshot_bytes`).
    /// Capturing pauses applying. On the leader that pause holds back every client's
    /// reply; on a follower it delays no client. So the leader waits for twice the
    /// thresholds, and followers for 1 to 1.4 times them, drawn anew for each snapshot,
    /// so that the leader seldom captures at the same time as a follower and never
    /// systematically. (With followers at a fixed 1.5 times a leader at 1, both
    /// followers captured at the same index as the leader at every third leader
    /// snapshot, and that capture took 1.2-1.7 s instead of 0.2 s.) The leader's log
    /// grows twice as long in memory for it.
    pub(super) fn snapshot_due(&self) -> bool {
        let (num, den) = if self.raw.raft.state == StateRole::Leader {
            (2, 1)
        } else {
            (self.follower_snapshot_permille, 1000)
        };
        let entries = self.cfg.snapshot_entries * num / den;
        let bytes = self.cfg.snapshot_bytes.max(self.last_snapshot_len) * num / den;
        self.applied >= self.storage.snapshot_index() + entries || self.applied_bytes >= bytes
    }

    /// Capture the state at `applied` on another thread; applying waits until it is done.
    /// Start capturing a snapshot at the applied index; false when none was started
    /// (nothing applied since the last one).
    pub(super) fn start_snapshot(&mut self) -> bool {
        let index = self.applied;
        if index <= self.storage.snapshot_index() {
            return false;
        }
        let term = match self.storage.term(index) {
            Ok(t) => t,
            Err(e) => {
                warn!(index, error = %e, "no term for snapshot index");
                return false;
            }
        };
        let mut meta = SnapshotMetadata {
            index,
            term,
            ..Default::default()
        };
        meta.set_conf_state(self.conf_state.clone());
        let mut data = Vec::new();
        encode_meta(self.apply_now, &self.peers, &mut data);
        let job = self.sm.snapshot_job();
        self.capture_job = Some(job.clone());
        self.applied_bytes = 0;
        self.follower_snapshot_permille = follower_snapshot_permille();
        let dir = self.log.as_ref().and_then(|l| l.dir());
        let tx = self.tx.clone();
        let (captured_tx, captured_rx) = crossbeam::channel::bounded(1);
        debug!(index, "snapshot capture started");
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                let t = Instant::now();
                let captured = || {
                    // Applying may go on while the file is completed.
                    let _ = captured_tx.send(());
                    let _ = tx.send(Event::SnapshotCaptured);
                };
                let done = match dir {
                    Some(d) => {
                        let mut captured_ms = 0;
                        let file = capture_to_file(&*job, &d, &meta, &data, || {
                            captured_ms = t.elapsed().as_millis() as u64;
                            captured();
                        });
                        let t = Instant::now();
                        let res = file.and_then(|f| {
                            let len = f.data_len();
                            f.finish().map(|()| len).map_err(|e| e.to_string())
                        });
                        if let Ok(len) = res {
                            info!(
                                index,
                                bytes = len,
                                captured_ms,
                                written_ms = t.elapsed().as_millis() as u64,
                                "snapshot captured and written"
                            );
                        }
                        res.map(|len| (meta, len, None))
                    }
                    None => {
                        job.run(&mut data);
                        captured();
                        let captured_ms = t.elapsed().as_millis() as u64;
                        info!(index, bytes = data.len(), captured_ms, "snapshot captured");
                        Ok((meta, data.len() as u64, Some(Bytes::from(data))))
                    }
                };
                let _ = tx.send(Event::SnapshotDone(done));
            });
        match spawned {
            Ok(_) => {
                self.capture = Some(captured_rx);
                self.snapshot_busy = true;
                true
            }
            Err(e) => {
                self.capture_job = None;
                warn!(error = %e, "cannot start the snapshot thread");
                false
            }
        }
    }

    /// The file of the snapshot at `index`, for a node with a folder.
    pub(super) fn snapshot_file(&self, index: u64) -> Option<std::path::PathBuf> {
        self.log
            .as_ref()
            .and_then(|l| l.dir())
            .map(|d| wal::snapshot_file(&d, index))
    }

    /// Read the latest snapshot back from its file on another thread, for a follower
    /// that needs it (see `storage`).
    pub(super) fn load_snapshot(&mut self, index: u64, path: std::path::PathBuf) {
        if self.snapshot_loading {
            return;
        }
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot-read".into())
            .spawn(move || {
                // Whatever happens on this thread, the raft thread hears that it ended.
                let guard = SendOnDrop(Some((
                    tx,
                    Event::SnapshotLoaded(Err("the snapshot reading thread failed".into())),
                )));
                let res = wal::read_snapshot(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|s| {
                        if s.get_metadata().index == index {
                            Ok(s)
                        } else {
                            Err(format!("{} does not hold index {index}", path.display()))
                        }
                    });
                guard.send(Event::SnapshotLoaded(res));
            });
        match spawned {
            Ok(_) => self.snapshot_loading = true,
            Err(e) => warn!(error = %e, "cannot start the snapshot reading thread"),
        }
    }

    /// Wait until the snapshot thread has finished reading the store.
    pub(super) fn wait_captured(&mut self) {
        self.capture_job = None;
        if let Some(rx) = self.capture.take() {
            let _ = rx.recv();
        }
    }

    pub(super) fn snapshot_done(
        &mut self,
        res: Result<(SnapshotMetadata, u64, Option<Bytes>), String>,
    ) {
        self.wait_captured();
        self.snapshot_busy = false;
        match res {
            Ok((meta, len, data)) => {
                let index = meta.index;
                if index > self.storage.snapshot_index() {
                    self.last_snapshot_len = len;
                    let mut s = Snapshot::default();
                    s.set_metadata(meta);
                    let file = match data {
                        Some(data) => {
                            s.data = data;
                            None
                        }
                        None => self.snapshot_file(index),
                    };
                    let taken = s.clone();
                    self.storage.set_snapshot(s, file);
                    let compact = index.saturating_sub(self.cfg.snapshot_keep);
                    if compact > 1 {
                        if let Err(e) = self.storage.mem.wl().compact(compact) {
                            warn!(error = %e, "log compaction");
                        }
                        self.window.compact(compact);
                    }
                    if let Some(l) = &self.log {
                        match l.snapshot_taken(&taken) {
                            Ok(n) => debug!(pieces = n, "log compacted"),
                            Err(e) => warn!(error = %e, "log compaction"),
                        }
                    }
                    self.publish_snapshot(index);
                    info!(index, "snapshot taken");
                }
            }
            Err(e) => error!(error = %e, "snapshot failed"),
        }
        self.apply();
        self.publish();
    }

    /// Replace the state with a snapshot from the leader.
    pub(super) fn install_snapshot(&mut self, snap: Snapshot) {
        self.wait_captured();
        let meta = snap.get_metadata().clone();
        let index = meta.index;
        let (now, peers, data) = match decode_meta(&snap.data) {
            Ok(x) => x,
            Err(e) => fatal("snapshot from the leader", &e),
        };
        if let Some(l) = &self.log {
            // Everything queued before the snapshot goes to the log first.
            if let Err(e) = l.install_snapshot(&meta, &snap.data) {
                fatal("installing the leader's snapshot in the log", &e);
            }
        }
        if let Err(e) = self.sm.restore(data) {
            fatal("restoring the leader's snapshot", &e);
        }
        self.apply_now = now;
        for (id, addr) in peers {
            if !self.peers.contains_key(&id) {
                self.transport.set_peer(id, &addr);
                self.peers.insert(id, addr);
            }
        }
        self.conf_state = meta.get_conf_state().clone();
        if let Err(e) = self.storage.mem.wl().apply_snapshot(snap.clone()) {
            warn!(error = %e, "snapshot out of date");
        }
        self.window.clear();
        self.last_snapshot_len = snap.data.len() as u64;
        self.applied_bytes = 0;
        let file = self.snapshot_file(index);
        self.storage.set_snapshot(snap, file);
        self.applied = index;
        self.unapplied.retain(|e| e.index > index);
        {
            let mut sp = self.status.peers.lock();
            for (&id, a) in &self.peers {
                let p = sp.entry(id).or_default();
                p.raft_addr = a.clone();
                p.voter = self.conf_state.voters.contains(&id);
            }
        }
        self.publish_snapshot(index);
        info!(index, "installed the leader's snapshot");
    }

    /// The status shows the snapshot at `index` as the latest, taken now.
    fn publish_snapshot(&self, index: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.status.snapshot_index.store(index, Relaxed);
        self.status.snapshot_ms.store(unix_ms(), Relaxed);
    }
}
