use super::*;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sessiond-wal-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    fs::create_dir_all(&d).expect("tmpdir");
    d
}

/// A folder under target/, which is on a disk, where O_DIRECT works (a tmpfs, where
/// the temp folder may be, refuses it).
fn disk_tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/tmp-wal-tests")
        .join(format!("{name}-{}", std::process::id()));
    fs::create_dir_all(&d).expect("dir");
    d
}

fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
    let mut e = Entry::default();
    e.index = index;
    e.term = term;
    e.data = bytes::Bytes::copy_from_slice(data);
    e
}

fn summary(r: &Recovered) -> Vec<(u64, u64)> {
    r.entries.iter().map(|e| (e.index, e.term)).collect()
}

#[test]
fn replay_follows_raft_overwrite_rules_and_keeps_the_last_hard_state() {
    let d = tmpdir("replay");
    {
        let (mut w, r) = Wal::open(&d, 1 << 20).expect("open");
        assert!(r.entries.is_empty());
        w.append(&[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")])
            .expect("append");
        let mut hs = HardState::default();
        hs.term = 2;
        hs.vote = 3;
        hs.commit = 1;
        w.set_hard_state(&hs).expect("hs");
        // A new leader overwrites index 2 onward.
        w.append(&[entry(2, 2, b"B")]).expect("append");
        w.sync().expect("sync");
    }
    let (_, r) = Wal::open(&d, 1 << 20).expect("reopen");
    assert_eq!(summary(&r), vec![(1, 1), (2, 2)]);
    assert_eq!(&r.entries[1].data[..], b"B");
    assert_eq!(
        (r.hard_state.term, r.hard_state.vote, r.hard_state.commit),
        (2, 3, 1)
    );
    fs::remove_dir_all(&d).ok();
}

#[test]
fn torn_tail_is_truncated_and_writing_goes_on() {
    let d = tmpdir("torn");
    let seg;
    {
        let (mut w, _) = Wal::open(&d, 1 << 20).expect("open");
        // A plain segment: cutting its file cuts its last record.
        w.without_preparation();
        w.append(&[entry(1, 1, b"one"), entry(2, 1, b"two")])
            .expect("append");
        w.sync().expect("sync");
        seg = w.current_path();
    }
    // Cut the last record in half, as a crash mid-write would.
    let len = fs::metadata(&seg).expect("meta").len();
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .and_then(|f| f.set_len(len - 3))
        .expect("truncate");
    {
        let (mut w, r) = Wal::open(&d, 1 << 20).expect("reopen");
        assert_eq!(summary(&r), vec![(1, 1)]);
        w.append(&[entry(2, 2, b"again")]).expect("append");
        w.sync().expect("sync");
    }
    let (_, r) = Wal::open(&d, 1 << 20).expect("reopen");
    assert_eq!(summary(&r), vec![(1, 1), (2, 2)]);
    fs::remove_dir_all(&d).ok();
}

#[test]
fn corruption_in_an_older_segment_refuses_to_start() {
    let d = tmpdir("corrupt");
    let first;
    {
        let (mut w, _) = Wal::open(&d, 64).expect("open");
        first = w.current_path();
        for i in 1..=10 {
            w.append(&[entry(i, 1, b"0123456789abcdef")])
                .expect("append");
        }
        w.sync().expect("sync");
    }
    let mut bytes = fs::read(&first).expect("read");
    let n = bytes.len();
    bytes[n - 2] ^= 0xff;
    fs::write(&first, bytes).expect("write");
    assert!(matches!(Wal::open(&d, 64), Err(WalError::Corrupt { .. })));
    fs::remove_dir_all(&d).ok();
}

impl Wal {
    /// Keep writing into the plain segment opened at start (no early roll).
    fn without_preparation(&mut self) {
        self.prepare = false;
        self.next = None;
    }

    /// Wait (bounded) until the next segment's file is allocated.
    fn wait_prepared(&mut self) {
        let p = self.next.as_mut().expect("a segment is being prepared");
        let r = p
            .done
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("preparer finished in time");
        p.made = Some(r.ok());
        assert!(matches!(p.made, Some(Some(_))), "the segment was made");
    }
}

/// Turn the last record of `seg` to zeros from `keep` bytes into it to the end of
/// the valid records, as a write that did not all reach the disk leaves it.
fn zero_last_record(seg: &Path, keep: usize) {
    let mut bytes = fs::read(seg).expect("read");
    let (records, valid) = read_records(&bytes);
    let last = records.last().expect("records").2 as usize;
    bytes[last + keep..valid].fill(0);
    fs::write(seg, &bytes).expect("write");
}

#[test]
fn allocated_segments_are_used_and_replay_up_to_their_zeros() {
    let d = tmpdir("prealloc");
    let seg;
    {
        let (mut w, _) = Wal::open(&d, 4096).expect("open");
        w.wait_prepared();
        // The first append leaves the plain segment opened at start for the prepared
        // file, which already has its full length.
        for i in 1..=20 {
            w.append(&[entry(i, 1, &[b'x'; 100])]).expect("append");
            w.sync().expect("sync");
            if i == 1 {
                assert_eq!(w.segments.len(), 2, "rolled into the prepared segment");
                w.wait_prepared();
            }
        }
        seg = w.current_path();
        assert_eq!(w.segments.len(), 2, "no roll past the prepared segment");
        let prealloc = (4096u64 + 4096 / 16).next_multiple_of(4096);
        assert_eq!(fs::metadata(&seg).expect("meta").len(), prealloc);
        assert!(w.size < prealloc, "what was written fits before the zeros");
    }
    let len = fs::metadata(&seg).expect("meta").len();
    // Twice: the allocated segment is first the newest one, then an older one.
    for _ in 0..2 {
        let (_, r) = Wal::open(&d, 4096).expect("reopen");
        assert_eq!(summary(&r).len(), 20);
        assert_eq!(summary(&r).last(), Some(&(20, 1)));
        // The zeros were read as unused room, not as a torn tail to cut off.
        assert_eq!(fs::metadata(&seg).expect("meta").len(), len);
    }

    // A torn write into zeros: the last record's tail never reached the disk.
    zero_last_record(&seg, RECORD_HEADER + 10);
    // `seg` is no longer the newest segment, so this is corruption.
    assert!(matches!(Wal::open(&d, 4096), Err(WalError::Corrupt { .. })));
    fs::remove_dir_all(&d).ok();
}

#[test]
fn a_snapshot_written_in_pieces_reads_back_whole_and_a_damaged_one_is_refused() {
    // On a disk (O_DIRECT), and in the temp folder, which covers the buffered
    // fallback where it is a tmpfs.
    let on_disk = disk_tmpdir("snap");
    for d in [on_disk.clone(), tmpdir("snap-pieces")] {
        let data: Vec<u8> = (0..(3 << 20) + 777u32)
            .map(|i| (i * 7 + i / 4099) as u8)
            .collect();
        let mut meta = SnapshotMetadata::default();
        meta.index = 9;
        meta.term = 2;
        meta.mut_conf_state().voters = vec![1, 2];
        let mut f = SnapshotFile::create(&d, &meta).expect("create");
        for piece in [
            &data[..7],
            &data[7..(1 << 20) + 20],
            &data[(1 << 20) + 20..],
        ] {
            f.write(piece).expect("write");
        }
        assert_eq!(f.data_len(), data.len() as u64);
        f.finish().expect("finish");
        let path = snapshot_file(&d, 9);
        let s = read_snapshot(&path).expect("read");
        assert_eq!(s.get_metadata().index, 9);
        assert_eq!(s.get_metadata().term, 2);
        assert_eq!(s.get_metadata().get_conf_state().voters, vec![1, 2]);
        assert!(s.data[..] == data[..], "data differs");
        // An older snapshot is removed when a newer one is complete.
        meta.index = 12;
        write_snapshot(&d, &meta, b"newer").expect("newer");
        assert!(!path.exists());
        let path = snapshot_file(&d, 12);
        assert_eq!(&read_snapshot(&path).expect("read").data[..], b"newer");
        // One byte changed in the data, or the file cut short: refused.
        let good = fs::read(&path).expect("read file");
        let mut bad = good.clone();
        bad[good.len() - 14] ^= 1;
        fs::write(&path, &bad).expect("write");
        assert!(read_snapshot(&path).is_err());
        fs::write(&path, &good[..good.len() - 1]).expect("write");
        assert!(read_snapshot(&path).is_err());
        fs::remove_dir_all(&d).ok();
    }
}

#[test]
fn a_snapshot_in_the_first_layout_still_reads() {
    let d = tmpdir("snap-v1");
    let mut cs = ConfState::default();
    cs.voters = vec![1, 2, 3];
    let cs = cs.write_to_bytes().expect("conf state");
    let data = b"state in the old layout";
    let mut f = Vec::new();
    f.extend_from_slice(SNAP_MAGIC_V1);
    f.extend_from_slice(&7u64.to_le_bytes());
    f.extend_from_slice(&3u64.to_le_bytes());
    f.extend_from_slice(&(cs.len() as u32).to_le_bytes());
    f.extend_from_slice(&cs);
    f.extend_from_slice(&(data.len() as u64).to_le_bytes());
    f.extend_from_slice(data);
    let crc = crc32fast::hash(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    let path = snapshot_file(&d, 7);
    fs::write(&path, &f).expect("write");
    let s = read_snapshot(&path).expect("read");
    assert_eq!((s.get_metadata().index, s.get_metadata().term), (7, 3));
    assert_eq!(s.get_metadata().get_conf_state().voters, vec![1, 2, 3]);
    assert_eq!(&s.data[..], data);
    // The same bytes under the new magic do not parse: the length is not at the end.
    f[..8].copy_from_slice(SNAP_MAGIC);
    let n = f.len();
    let crc = crc32fast::hash(&f[..n - 4]);
    f[n - 4..].copy_from_slice(&crc.to_le_bytes());
    fs::write(&path, &f).expect("write");
    assert!(read_snapshot(&path).is_err());
    fs::remove_dir_all(&d).ok();
}

#[test]
fn direct_log_writes_what_it_is_given_across_partial_blocks() {
    let d = disk_tmpdir("direct");
    let path = d.join("seg.wal");
    assert!(
        make_segment(&path, 64 * 1024).expect("made"),
        "O_DIRECT here"
    );
    let mut log = DirectLog::new(open_direct(&path).expect("open"));
    let mut expect = Vec::new();
    let mut x = 7u32;
    // Writes of every size class: inside a block, across blocks, past the buffer,
    // each followed by a sync that pads and later rewrites the last block.
    for round in 0..40 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let n = match round % 5 {
            0 => (x % 100) as usize + 1,
            1 => (x % 9000) as usize + 1,
            2 => BLOCK,
            3 => (x % 70_000) as usize + 1,
            // More than the buffer holds: whole blocks go out before the sync.
            _ => 2 * DIRECT_BUF + (x % 5000) as usize,
        };
        let chunk: Vec<u8> = (0..n).map(|i| (i as u32 ^ x) as u8 | 1).collect();
        log.write_all(&chunk).expect("write");
        expect.extend_from_slice(&chunk);
        if round % 3 != 1 {
            log.sync().expect("sync");
            let got = fs::read(&path).expect("read");
            assert_eq!(&got[..expect.len()], &expect[..], "round {round}");
        }
    }
    log.sync().expect("sync");
    let got = fs::read(&path).expect("read");
    assert_eq!(&got[..expect.len()], &expect[..]);
    assert!(got[expect.len()..].iter().all(|&b| b == 0), "zeros after");
    fs::remove_dir_all(&d).ok();
}

#[test]
fn records_lost_to_zeros_in_an_older_segment_are_a_hole_not_an_end() {
    let d = tmpdir("hole");
    let p1;
    {
        let (mut w, _) = Wal::open(&d, 64).expect("open");
        w.wait_prepared();
        w.append(&[entry(1, 1, b"0123456789abcdef")])
            .expect("append");
        p1 = w.current_path();
        w.wait_prepared();
        w.append(&[entry(2, 1, b"0123456789abcdef")])
            .expect("append");
        assert_eq!(w.current_path(), p1, "entries 1 and 2 share a segment");
        w.append(&[entry(3, 1, b"0123456789abcdef")])
            .expect("append");
        assert_ne!(w.current_path(), p1, "entry 3 starts the next one");
        w.sync().expect("sync");
    }
    // Entry 2's record turns to zeros, as a device fault might leave it.
    zero_last_record(&p1, 0);
    assert!(matches!(
        Wal::open(&d, 64),
        Err(WalError::Hole {
            last: 1,
            next: 3,
            ..
        })
    ));
    fs::remove_dir_all(&d).ok();
}

#[test]
fn torn_write_into_an_allocated_newest_segment_is_truncated() {
    let d = tmpdir("prealloc-torn");
    let seg;
    {
        let (mut w, _) = Wal::open(&d, 4096).expect("open");
        w.wait_prepared();
        for i in 1..=20 {
            w.append(&[entry(i, 1, &[b'x'; 100])]).expect("append");
            w.sync().expect("sync");
        }
        seg = w.current_path();
        assert_eq!(w.segments.len(), 2, "rolled into the prepared segment");
    }
    zero_last_record(&seg, RECORD_HEADER + 10);
    let (_, r) = Wal::open(&d, 4096).expect("reopen");
    assert_eq!(summary(&r), (1..=19).map(|i| (i, 1)).collect::<Vec<_>>());
    fs::remove_dir_all(&d).ok();
}

#[test]
fn snapshot_then_compaction_then_reset_marker() {
    let d = tmpdir("snap");
    {
        let (mut w, _) = Wal::open(&d, 64).expect("open");
        for i in 1..=20 {
            w.append(&[entry(i, 1, b"0123456789abcdef")])
                .expect("append");
        }
        w.sync().expect("sync");
        let mut meta = SnapshotMetadata::default();
        meta.index = 15;
        meta.term = 1;
        meta.mut_conf_state().voters = vec![1, 2, 3];
        write_snapshot(w.dir(), &meta, b"state at 15").expect("snapshot");
        let before = w.segments.len();
        let removed = w.compact(15).expect("compact");
        assert!(removed > 0 && w.segments.len() == before - removed);
    }
    {
        let (mut w, r) = Wal::open(&d, 64).expect("reopen");
        let s = r.snapshot.as_ref().expect("snapshot");
        assert_eq!(s.get_metadata().index, 15);
        assert_eq!(s.get_metadata().get_conf_state().voters, vec![1, 2, 3]);
        assert_eq!(&s.data[..], b"state at 15");
        assert_eq!(summary(&r).first(), Some(&(16, 1)));
        assert_eq!(summary(&r).last(), Some(&(20, 1)));
        // A leader's snapshot at 40 replaces the whole log.
        let mut meta = SnapshotMetadata::default();
        meta.index = 40;
        meta.term = 3;
        write_snapshot(w.dir(), &meta, b"state at 40").expect("snapshot");
        w.reset_to_snapshot(40).expect("reset");
        w.append(&[entry(41, 3, b"x")]).expect("append");
        w.sync().expect("sync");
    }
    let (_, r) = Wal::open(&d, 64).expect("reopen");
    assert_eq!(
        r.snapshot.as_ref().map(|s| s.get_metadata().index),
        Some(40)
    );
    assert_eq!(summary(&r), vec![(41, 3)]);
    fs::remove_dir_all(&d).ok();
}
