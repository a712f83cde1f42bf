//! Snapshot files: written as the state is captured, made durable in one piece, and
//! read back.

use super::*;

/// Write a snapshot durably in one piece (see [`SnapshotFile`]).
pub fn write_snapshot(dir: &Path, meta: &SnapshotMetadata, data: &[u8]) -> Result<(), WalError> {
    let mut f = SnapshotFile::create(dir, meta)?;
    f.write(data)?;
    f.finish()
}

/// Where a snapshot file is written through: `O_DIRECT` where the file system takes it.
enum SnapshotOut {
    Direct(DirectLog),
    Buffered(BufWriter<File>),
}

/// A snapshot file being written as its data is captured, so that the data never has to
/// be held in memory whole. The layout: magic, index, term, the conf state (length and
/// bytes), the data, the data's length (u64), and a CRC-32 of everything before it. The
/// file is written under a temporary name; [`SnapshotFile::finish`] fsyncs it, renames it
/// into place, fsyncs the folder and removes older snapshots.
///
/// A snapshot is written once and read back only on restart or for a follower that needs
/// it, so it skips the page cache: copying hundreds of megabytes into the cache cost more
/// CPU than taking the snapshot, on every replica at once. File systems without
/// `O_DIRECT` (tmpfs) are written through the cache.
pub struct SnapshotFile {
    dir: PathBuf,
    path: PathBuf,
    tmp: PathBuf,
    out: SnapshotOut,
    crc: crc32fast::Hasher,
    /// Bytes written, header included.
    written: u64,
    header_len: u64,
    index: u64,
    /// Set once the file is in place; until then dropping it removes the temporary file.
    done: bool,
}

impl Drop for SnapshotFile {
    fn drop(&mut self) {
        if !self.done {
            fs::remove_file(&self.tmp).ok();
        }
    }
}

impl SnapshotFile {
    /// Start the file of `meta`'s snapshot in `dir` (the `raft` folder, [`Wal::dir`]).
    pub fn create(dir: &Path, meta: &SnapshotMetadata) -> Result<SnapshotFile, WalError> {
        let path = snapshot_path(dir, meta.index);
        let tmp = path.with_extension("tmp");
        let cs = meta.get_conf_state().write_to_bytes()?;
        let mut header = Vec::with_capacity(28 + cs.len());
        header.extend_from_slice(SNAP_MAGIC);
        header.extend_from_slice(&meta.index.to_le_bytes());
        header.extend_from_slice(&meta.term.to_le_bytes());
        header.extend_from_slice(&(cs.len() as u32).to_le_bytes());
        header.extend_from_slice(&cs);
        // Some file systems refuse O_DIRECT at open (tmpfs), others only at the first
        // write: one padded block of the header tells, and either way the file is then
        // written through the page cache.
        let direct = create_direct(&tmp).and_then(|f| {
            let mut d = DirectLog::new(f);
            d.write_all(&header)?;
            d.write_out(true)?;
            Ok(d)
        });
        let out = match direct {
            Ok(d) => SnapshotOut::Direct(d),
            Err(e) => {
                tracing::debug!(error = %e, "direct snapshot write failed, writing buffered");
                let f = File::create(&tmp).map_err(io_err(&tmp))?;
                let mut w = BufWriter::with_capacity(1 << 20, f);
                w.write_all(&header).map_err(io_err(&tmp))?;
                SnapshotOut::Buffered(w)
            }
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        Ok(SnapshotFile {
            dir: dir.to_path_buf(),
            path,
            tmp,
            out,
            crc,
            written: header.len() as u64,
            header_len: header.len() as u64,
            index: meta.index,
            done: false,
        })
    }

    /// Append `data` to the snapshot's data.
    pub fn write(&mut self, data: &[u8]) -> Result<(), WalError> {
        self.crc.update(data);
        self.written += data.len() as u64;
        let res = match &mut self.out {
            SnapshotOut::Direct(d) => d.write_all(data),
            SnapshotOut::Buffered(w) => w.write_all(data),
        };
        res.map_err(io_err(&self.tmp))
    }

    /// The data's length (header excluded) so far.
    pub fn data_len(&self) -> u64 {
        self.written - self.header_len
    }

    /// Complete the file and make it the node's snapshot.
    pub fn finish(mut self) -> Result<(), WalError> {
        let data_len = self.data_len();
        self.write(&data_len.to_le_bytes())?;
        let crc = self.crc.clone().finalize().to_le_bytes();
        self.write(&crc)?;
        let written = self.written;
        let res = match &mut self.out {
            SnapshotOut::Direct(d) => d
                .write_out(true)
                .and_then(|()| d.file.set_len(written))
                .and_then(|()| d.file.sync_all()),
            SnapshotOut::Buffered(w) => w.flush().and_then(|()| w.get_ref().sync_all()),
        };
        res.map_err(io_err(&self.tmp))?;
        fs::rename(&self.tmp, &self.path).map_err(io_err(&self.path))?;
        self.done = true;
        sync_dir(&self.dir)?;
        for ent in fs::read_dir(&self.dir)
            .map_err(io_err(&self.dir))?
            .flatten()
        {
            let name = ent.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name
                .strip_prefix("snap-")
                .and_then(|s| s.strip_suffix(".snap"))
                .and_then(|s| s.parse::<u64>().ok())
            {
                if n < self.index {
                    fs::remove_file(ent.path()).ok();
                }
            }
        }
        Ok(())
    }
}

/// A new file at `path`, written with `O_DIRECT`.
#[cfg(target_os = "linux")]
fn create_direct(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

#[cfg(not(target_os = "linux"))]
fn create_direct(_path: &Path) -> io::Result<File> {
    Err(io::ErrorKind::Unsupported.into())
}

/// The path of the snapshot file of `index` in `dir` (the `raft` folder).
pub fn snapshot_file(dir: &Path, index: u64) -> PathBuf {
    snapshot_path(dir, index)
}

/// Read a snapshot file whole, checking its CRC.
pub fn read_snapshot(path: &Path) -> Result<Snapshot, WalError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let len = f.seek(SeekFrom::End(0)).map_err(io_err(path))?;
    f.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
    let mut buf = Vec::with_capacity(len as usize);
    f.read_to_end(&mut buf).map_err(io_err(path))?;
    let bad = |offset: usize| WalError::Decode {
        path: path.to_path_buf(),
        offset: offset as u64,
        what: "snapshot",
    };
    if buf.len() < 8 + 8 + 8 + 4 + 8 + 4 || (&buf[..8] != SNAP_MAGIC && &buf[..8] != SNAP_MAGIC_V1)
    {
        return Err(bad(0));
    }
    let body = buf.len() - 4;
    let crc = u32::from_le_bytes([buf[body], buf[body + 1], buf[body + 2], buf[body + 3]]);
    if crc32fast::hash(&buf[..body]) != crc {
        return Err(bad(body));
    }
    let u64_at = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&buf[at..at + 8]);
        u64::from_le_bytes(a)
    };
    let index = u64_at(8);
    let term = u64_at(16);
    let cs_len = u32::from_le_bytes([buf[24], buf[25], buf[26], buf[27]]) as usize;
    let cs_end = 28 + cs_len;
    if cs_end + 8 > body {
        return Err(bad(28));
    }
    let cs = ConfState::parse_from_bytes(&buf[28..cs_end]).map_err(|_| bad(28))?;
    let (data_start, data_end, len_at) = if &buf[..8] == SNAP_MAGIC_V1 {
        (cs_end + 8, body, cs_end)
    } else {
        (cs_end, body - 8, body - 8)
    };
    if u64_at(len_at) != (data_end - data_start) as u64 {
        return Err(bad(len_at));
    }
    let mut snap = Snapshot {
        data: bytes::Bytes::from(buf).slice(data_start..data_end),
        ..Default::default()
    };
    let m = snap.mut_metadata();
    m.index = index;
    m.term = term;
    m.set_conf_state(cs);
    Ok(snap)
}
