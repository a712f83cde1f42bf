//! The store under raft: what a client connection proposes, and how every replica
//! applies it.
//!
//! A connection in a cluster sorts each command (see [`classify`]):
//! - **write** (Redis's `write` flag): consecutive writes of one connection become one
//!   [`Record`] proposed through raft; the reply is what applying it produced on this
//!   node, sent only once the entry is committed and applied;
//! - **read** (`readonly`): waits for one read barrier per batch (ReadIndex), then runs
//!   on the local store;
//! - `EXEC`: the queued transaction becomes one record, applied atomically;
//! - everything else (PING, CLIENT, CONFIG, INFO...) runs locally at once.
//!
//! Records are applied by [`ServerSm`] with the entry's stamp as the clock, so `SET k v
//! EX 10` expires at the same absolute time on every replica, and lazy expiry during
//! apply decides the same way everywhere. The leader's timing wheel proposes
//! [`Record::Expire`] batches; each deletion names the deadline it saw, so a key re-set
//! meanwhile survives.

use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sessiond_cluster::{ClusterError, ClusterStatus, StateMachine};
use sessiond_protocol::encode;
use thiserror::Error;

use crate::cmd::{self, Ctx};
use crate::connection::{ClientInfo, Conn};
use crate::reader::ByteReader;
use crate::server::Shared;
use crate::store::{snapshot, Direct, PREFETCH_MAX};

const BATCH: u8 = 1;
const EXEC: u8 = 2;
const EXPIRE: u8 = 3;
const EXEC_WATCHED: u8 = 4;
const FIELD_EXPIRE: u8 = 5;
const EVICT: u8 = 6;
const FLAG_RESP3: u8 = 1;
/// The record names the user that sent it (after the flags byte).
const FLAG_USER: u8 = 2;
/// The record's commands run in a numbered database other than 0 (a byte after the
/// user): records for database 0 carry nothing more.
const FLAG_DB: u8 = 4;
/// The record names the proposing node's client (8 bytes after the database), for
/// `CLIENT TRACKING ... NOLOOP`: set only when that client asked for NOLOOP, and read
/// only on the node that proposed it (client ids are the node's own).
const FLAG_ORIGIN: u8 = 8;

/// What one raft record asks every replica to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Commands run one after another; the replies are concatenated.
    Batch {
        resp3: bool,
        user: Option<Bytes>,
        db: u8,
        cmds: Vec<Vec<Bytes>>,
    },
    /// A `MULTI` transaction: run atomically, one array reply; aborted (a null reply)
    /// if a watched key's digest differs when applied.
    Exec {
        resp3: bool,
        user: Option<Bytes>,
        db: u8,
        cmds: Vec<Vec<Bytes>>,
        watched: Vec<(Bytes, u64)>,
    },
    /// Delete each key of a database if its deadline is still the one given.
    Expire(u8, Vec<(Vec<u8>, u64)>),
    /// Delete each (key, field) of a database's hashes if the field's deadline is still
    /// the one given (`HEXPIRE`).
    FieldExpire(u8, Vec<(Vec<u8>, Vec<u8>, u64)>),
    /// Evict each key of a database for `maxmemory` if its content still has the
    /// fingerprint given (see `store::Victim`).
    Evict(u8, Vec<(Vec<u8>, u64)>),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record truncated")]
    Truncated,
    #[error("unknown record kind {0}")]
    Kind(u8),
}

fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_cmds(out: &mut Vec<u8>, cmds: &[Vec<Bytes>]) {
    out.extend_from_slice(&(cmds.len() as u32).to_le_bytes());
    for c in cmds {
        out.extend_from_slice(&(c.len() as u32).to_le_bytes());
        for a in c {
            put(out, a);
        }
    }
}

/// Encode commands as a [`Record::Batch`] or [`Record::Exec`] without building one.
/// `user`: the user that sent them, whose rules every replica checks them against.
pub fn encode_cmds(
    kind_exec: bool,
    resp3: bool,
    user: Option<&[u8]>,
    db: u8,
    cmds: &[Vec<Bytes>],
) -> Vec<u8> {
    encode_from(kind_exec, resp3, user, db, 0, cmds)
}

/// [`encode_cmds`] for client `origin` of this node (0: none; see [`FLAG_ORIGIN`]).
pub fn encode_from(
    kind_exec: bool,
    resp3: bool,
    user: Option<&[u8]>,
    db: u8,
    origin: u64,
    cmds: &[Vec<Bytes>],
) -> Vec<u8> {
    let size: usize = cmds
        .iter()
        .map(|c| 4 + c.iter().map(|a| 4 + a.len()).sum::<usize>())
        .sum();
    let mut out = Vec::with_capacity(10 + user.map_or(0, <[u8]>::len) + size);
    out.push(if kind_exec { EXEC } else { BATCH });
    out.push(
        u8::from(resp3) * FLAG_RESP3
            + u8::from(user.is_some()) * FLAG_USER
            + u8::from(db != 0) * FLAG_DB
            + u8::from(origin != 0) * FLAG_ORIGIN,
    );
    if let Some(u) = user {
        put(&mut out, u);
    }
    if db != 0 {
        out.push(db);
    }
    if origin != 0 {
        out.extend_from_slice(&origin.to_le_bytes());
    }
    put_cmds(&mut out, cmds);
    out
}

/// Encode a [`Record::Exec`] without building one.
pub fn encode_exec(
    resp3: bool,
    user: Option<&[u8]>,
    db: u8,
    origin: u64,
    cmds: &[Vec<Bytes>],
    watched: &[(Bytes, u64)],
) -> Vec<u8> {
    let mut out = encode_from(true, resp3, user, db, origin, cmds);
    if !watched.is_empty() {
        out[0] = EXEC_WATCHED;
        out.extend_from_slice(&(watched.len() as u32).to_le_bytes());
        for (k, d) in watched {
            out.extend_from_slice(&d.to_le_bytes());
            put(&mut out, k);
        }
    }
    out
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Record::Batch {
                resp3,
                user,
                db,
                cmds,
            } => encode_cmds(false, *resp3, user.as_deref(), *db, cmds),
            Record::Exec {
                resp3,
                user,
                db,
                cmds,
                watched,
            } => encode_exec(*resp3, user.as_deref(), *db, 0, cmds, watched),
            Record::Expire(db, keys) => encode_keys(EXPIRE, *db, keys),
            Record::Evict(db, keys) => encode_keys(EVICT, *db, keys),
            Record::FieldExpire(db, items) => {
                let mut out = Vec::with_capacity(6 + items.len() * 48);
                out.push(FIELD_EXPIRE);
                out.push(*db);
                out.extend_from_slice(&(items.len() as u32).to_le_bytes());
                for (k, f, d) in items {
                    out.extend_from_slice(&d.to_le_bytes());
                    put(&mut out, k);
                    put(&mut out, f);
                }
                out
            }
        }
    }

    /// Decode a record. Arguments are slices of `data`, not copies.
    pub fn decode(data: &Bytes) -> Result<Record, RecordError> {
        Record::read(data, &mut ByteReader::new(data)).ok_or(RecordError::Truncated)?
    }

    fn read(data: &Bytes, r: &mut ByteReader<'_>) -> Option<Result<Record, RecordError>> {
        let kind = r.take(1)?[0];
        let flags = r.take(1)?[0];
        let resp3 = flags & FLAG_RESP3 != 0;
        Some(Ok(match kind {
            BATCH | EXEC | EXEC_WATCHED => {
                let user = if flags & FLAG_USER != 0 {
                    Some(data.slice_ref(r.bytes()?))
                } else {
                    None
                };
                let db = if flags & FLAG_DB != 0 {
                    r.take(1)?[0]
                } else {
                    0
                };
                if flags & FLAG_ORIGIN != 0 {
                    r.u64()?;
                }
                let mut cmds = Vec::new();
                read_cmds_into(data, r, &mut cmds)?;
                let mut watched = Vec::new();
                if kind == EXEC_WATCHED {
                    let n = r.u32()? as usize;
                    watched.reserve(n.min(4096));
                    for _ in 0..n {
                        let d = r.u64()?;
                        watched.push((data.slice_ref(r.bytes()?), d));
                    }
                }
                match kind {
                    BATCH => Record::Batch {
                        resp3,
                        user,
                        db,
                        cmds,
                    },
                    _ => Record::Exec {
                        resp3,
                        user,
                        db,
                        cmds,
                        watched,
                    },
                }
            }
            EXPIRE => Record::Expire(flags, read_keys(r)?),
            EVICT => Record::Evict(flags, read_keys(r)?),
            FIELD_EXPIRE => {
                let n = r.u32()? as usize;
                let mut items = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    let d = r.u64()?;
                    let k = r.bytes()?.to_vec();
                    items.push((k, r.bytes()?.to_vec(), d));
                }
                Record::FieldExpire(flags, items)
            }
            k => return Some(Err(RecordError::Kind(k))),
        }))
    }
}

/// An expiry or eviction record: its kind, its database (in the flags byte's place), and
/// (key, guard) pairs.
fn encode_keys(kind: u8, db: u8, keys: &[(Vec<u8>, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + keys.len() * 32);
    out.push(kind);
    out.push(db);
    out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
    for (k, d) in keys {
        out.extend_from_slice(&d.to_le_bytes());
        put(&mut out, k);
    }
    out
}

fn read_keys(r: &mut ByteReader<'_>) -> Option<Vec<(Vec<u8>, u64)>> {
    let n = r.u32()? as usize;
    let mut keys = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let d = r.u64()?;
        keys.push((r.bytes()?.to_vec(), d));
    }
    Some(keys)
}

/// Read a record's commands into `cmds[..n]`, returning `n`. The vectors already in
/// `cmds` are reused (cleared first), so a state machine that keeps `cmds` between
/// records allocates nothing per command. Arguments are slices of `data`.
fn read_cmds_into(
    data: &Bytes,
    r: &mut ByteReader<'_>,
    cmds: &mut Vec<Vec<Bytes>>,
) -> Option<usize> {
    let n = r.u32()? as usize;
    for i in 0..n {
        let argc = r.u32()? as usize;
        if i == cmds.len() {
            cmds.push(Vec::with_capacity(argc.min(4096)));
        }
        let args = &mut cmds[i];
        args.clear();
        for _ in 0..argc {
            args.push(data.slice_ref(r.bytes()?));
        }
    }
    Some(n)
}

/// How a connection in a cluster handles a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Local,
    Read,
    Write,
    Exec,
}

/// Sort an admitted command (see the module docs). Everything queued inside `MULTI` is
/// local: queueing does not depend on the data.
pub fn classify(spec: &cmd::Spec, args: &[Bytes], conn: &Conn) -> Class {
    if conn.multi.is_some() {
        return if spec.name == "exec" && !conn.multi_failed {
            Class::Exec
        } else {
            Class::Local
        };
    }
    match spec.kind_of(args) {
        cmd::Kind::Write => Class::Write,
        // WATCH reads the keys it watches: it must see every acknowledged write.
        _ if spec.name == "watch" => Class::Read,
        cmd::Kind::Read => Class::Read,
        cmd::Kind::Local => Class::Local,
    }
}

/// The reply for a request the cluster could not complete.
pub fn cluster_error(out: &mut BytesMut, e: &ClusterError) {
    let msg = match e {
        ClusterError::NoLeader => "CLUSTERDOWN No raft leader".to_string(),
        ClusterError::Timeout => format!("TIMEOUT {e}"),
        ClusterError::Stopped => "CLUSTERDOWN The raft node stopped".to_string(),
        ClusterError::Admin(m) => format!("ERR {m}"),
    };
    encode::error(out, msg.as_bytes());
}

/// Redis Cluster's slot of a key: CRC16 (XMODEM) of the key, or of the part inside
/// the first non-empty `{...}`, modulo 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let key = match key.iter().position(|&c| c == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&c| c == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    let mut crc: u16 = 0;
    for &b in key {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc & 0x3fff
}

/// `--follower-mode redirect`: send the client to the leader, as a Redis Cluster node
/// sends it to a slot's owner.
pub fn moved(out: &mut BytesMut, args: &[Bytes], status: &ClusterStatus) {
    match status.leader_client_addr() {
        Some(addr) => {
            let slot = cmd::lookup(&args[0])
                .filter(|s| s.first_key > 0)
                .and_then(|s| args.get(s.first_key as usize))
                .map_or(0, |k| key_slot(k));
            encode::error(out, format!("MOVED {slot} {addr}").as_bytes());
        }
        None => cluster_error(out, &ClusterError::NoLeader),
    }
}

/// A snapshot capture by shard: the snapshot thread takes shards from the front, writing
/// into its buffer (the header before shard 0), the raft thread from the back, each
/// shard into a buffer set aside; `finish` appends those in order.
struct StoreCapture {
    shared: Arc<Shared>,
    /// The databases captured (those made when the capture began), in order.
    dbs: Vec<usize>,
    /// Shards per database.
    per_db: usize,
    /// Parts `lo..hi` are not taken yet; part `p` is shard `p % per_db` of database
    /// `dbs[p / per_db]`.
    claims: parking_lot::Mutex<(usize, usize)>,
    aside: parking_lot::Mutex<Vec<(usize, Vec<u8>)>>,
    /// Shards written.
    done: AtomicUsize,
    n: usize,
}

impl sessiond_cluster::SnapshotCapture for StoreCapture {
    fn step(&self, out: Option<&mut Vec<u8>>) -> bool {
        let shard = {
            let mut c = self.claims.lock();
            if c.0 >= c.1 {
                return false;
            }
            if out.is_some() {
                c.0 += 1;
                c.0 - 1
            } else {
                c.1 -= 1;
                c.1
            }
        };
        let part = shard;
        let (db, shard) = (self.dbs[part / self.per_db], part % self.per_db);
        let store = self.shared.db(db);
        let write = |out: &mut Vec<u8>| {
            if shard == 0 && db != 0 {
                snapshot::dump_db_marker(out, db);
            }
            snapshot::dump_shard(&store.lock(shard), out);
        };
        match out {
            Some(out) => {
                if part == 0 {
                    dump_header(&self.shared, out);
                }
                write(out);
            }
            None => {
                let mut buf = Vec::new();
                write(&mut buf);
                self.aside.lock().push((part, buf));
            }
        }
        self.done.fetch_add(1, AtomicOrdering::Release);
        true
    }

    fn wait_parts(&self) {
        // The raft thread finishes a shard it took before it waits for the capture, so
        // this wait is at most one shard long.
        while self.done.load(AtomicOrdering::Acquire) < self.n {
            std::thread::yield_now();
        }
    }

    fn finish(&self, write: &mut dyn FnMut(&[u8])) {
        self.wait_parts();
        let mut aside = std::mem::take(&mut *self.aside.lock());
        aside.sort_unstable_by_key(|(i, _)| *i);
        if aside.first().is_some_and(|(i, _)| *i == 0) {
            // The raft thread took every shard: the header goes first.
            let mut header = Vec::new();
            dump_header(&self.shared, &mut header);
            write(&header);
        }
        for (_, buf) in aside {
            write(&buf);
        }
    }
}

/// A snapshot's header: the magic, then the users and the script cache (replicated
/// state, like the keys: `EVALSHA` must find on every node what it finds on one).
fn dump_header(shared: &Shared, out: &mut Vec<u8>) {
    snapshot::dump_header(out);
    snapshot::dump_meta(out, b"acl", shared.users.list().join("\n").as_bytes());
    let mut scripts = Vec::new();
    for body in shared.scripts.all() {
        scripts.extend_from_slice(&(body.len() as u32).to_le_bytes());
        scripts.extend_from_slice(&body);
    }
    snapshot::dump_meta(out, b"scripts", &scripts);
}

/// The script bodies of a snapshot's `scripts` record.
fn parse_scripts(v: &[u8]) -> Result<Vec<Bytes>, String> {
    let mut r = crate::reader::ByteReader::new(v);
    let mut out = Vec::new();
    while !r.is_done() {
        let body = r
            .bytes()
            .ok_or_else(|| "the snapshot's scripts are cut short".to_string())?;
        out.push(Bytes::copy_from_slice(body));
    }
    Ok(out)
}

/// The server's store as raft's state machine.
pub struct ServerSm {
    shared: Arc<Shared>,
    conn: Conn,
    out: BytesMut,
    dead: Vec<crate::store::Entry>,
    /// Argument vectors reused from one batch record to the next.
    cmds: Vec<Vec<Bytes>>,
}

impl ServerSm {
    pub fn new(shared: Arc<Shared>) -> ServerSm {
        let mut conn = Conn::new(Arc::new(ClientInfo::internal(0)));
        conn.replica = true;
        conn.trusted = true;
        ServerSm {
            shared,
            conn,
            out: BytesMut::with_capacity(4096),
            dead: Vec::new(),
            cmds: Vec::new(),
        }
    }

    fn run_cmds(&mut self, cmds: &[Vec<Bytes>], now: u64) {
        let shared = self.shared.clone();
        for args in cmds.chunks(PREFETCH_MAX).flat_map(|chunk| {
            if chunk.len() > 1 {
                crate::connection::prefetch_keys(&shared, chunk);
            }
            chunk
        }) {
            let mut ks = Direct(shared.db(self.conn.db));
            let mut ctx = Ctx {
                ks: &mut ks,
                out: &mut self.out,
                conn: &mut self.conn,
                shared: &shared,
                now,
            };
            match cmd::admit::admit_replicated(ctx.conn, args) {
                Ok(cmd) => {
                    cmd.run(&mut ctx, args);
                    if cmd.spec().name != "exec" && !cmd.spec().is(cmd::Flags::SKIP_MONITOR) {
                        shared.monitors.feed(None, args);
                    }
                }
                Err(refusal) => refusal.reply(ctx.out, args),
            }
        }
    }

    /// Run the next record's commands as `user` (checked against the replicated users as
    /// they stand at this point of the log), or as the system when it names none.
    fn act_as(&mut self, user: Option<&[u8]>) {
        self.conn.trusted = user.is_none();
        self.conn.user = user.and_then(|u| self.shared.users.get_bytes(u));
    }

    /// The common record: decoded into argument vectors kept from the last one.
    fn apply_batch(&mut self, record: &Bytes, now: u64) {
        let mut r = ByteReader::new(record);
        let flags = r.take(2).map_or(0, |h| h[1]);
        let resp3 = flags & FLAG_RESP3 != 0;
        let user = match flags & FLAG_USER {
            0 => None,
            _ => match r.bytes() {
                Some(u) => Some(u),
                None => {
                    tracing::warn!("undecodable record skipped");
                    encode::error(&mut self.out, b"ERR undecodable replicated record");
                    return;
                }
            },
        };
        let db = if flags & FLAG_DB != 0 {
            match r.take(1) {
                Some(d) => d[0],
                None => {
                    tracing::warn!("undecodable record skipped");
                    encode::error(&mut self.out, b"ERR undecodable replicated record");
                    return;
                }
            }
        } else {
            0
        };
        if flags & FLAG_ORIGIN != 0 && r.u64().is_none() {
            tracing::warn!("undecodable record skipped");
            encode::error(&mut self.out, b"ERR undecodable replicated record");
            return;
        }
        if usize::from(db) >= crate::server::DATABASES {
            tracing::warn!(db, "record for an unknown database skipped");
            encode::error(&mut self.out, b"ERR DB index is out of range");
            return;
        }
        self.act_as(user);
        self.conn.db = usize::from(db);
        let mut cmds = std::mem::take(&mut self.cmds);
        match read_cmds_into(record, &mut r, &mut cmds) {
            Some(n) => {
                self.conn.resp3 = resp3;
                self.run_cmds(&cmds[..n], now);
            }
            None => {
                tracing::warn!("undecodable record skipped");
                encode::error(&mut self.out, b"ERR undecodable replicated record");
            }
        }
        // Let go of the record's bytes; keep the vectors, unless one grew big.
        cmds.iter_mut().for_each(Vec::clear);
        cmds.retain(|c| c.capacity() <= 64);
        cmds.truncate(64);
        self.cmds = cmds;
    }

    fn apply_record(&mut self, rec: Record, now: u64) {
        if let Record::Batch { db, .. } | Record::Exec { db, .. } = &rec {
            if usize::from(*db) >= crate::server::DATABASES {
                tracing::warn!(db, "record for an unknown database skipped");
                encode::error(&mut self.out, b"ERR DB index is out of range");
                return;
            }
        }
        match rec {
            Record::Batch {
                resp3,
                user,
                db,
                cmds,
            } => {
                self.conn.resp3 = resp3;
                self.conn.db = usize::from(db);
                self.act_as(user.as_deref());
                self.run_cmds(&cmds, now);
            }
            Record::Exec {
                resp3,
                user,
                db,
                cmds,
                watched,
            } => {
                self.conn.resp3 = resp3;
                self.conn.db = usize::from(db);
                self.act_as(user.as_deref());
                self.conn.watched_values = watched;
                self.conn.multi = Some(cmds);
                self.conn.multi_failed = false;
                self.run_cmds(&[vec![Bytes::from_static(b"exec")]], now);
            }
            Record::Expire(db, keys) => {
                self.act_as(None);
                self.remove_guarded("expiry", db, keys, |shard, hash, key, deadline| {
                    shard.expire_guarded(hash, key, deadline)
                });
            }
            Record::Evict(db, keys) => {
                self.remove_guarded("eviction", db, keys, |shard, hash, key, digest| {
                    shard.evict_guarded(hash, key, digest)
                });
            }
            Record::FieldExpire(db, items) => {
                if usize::from(db) >= crate::server::DATABASES {
                    tracing::warn!(db, "expiry record for an unknown database skipped");
                    return;
                }
                let store = self.shared.db(usize::from(db));
                for (key, field, deadline) in items {
                    let loc = store.locate(&key);
                    store
                        .lock(loc.shard)
                        .expire_field_guarded(loc.hash, &key, &field, deadline);
                }
            }
        }
    }
}

impl ServerSm {
    /// Apply an expiry or eviction record: `remove` each (key, guard) of database `db`
    /// under its shard's lock; what it takes out is freed here, in batches.
    fn remove_guarded(
        &mut self,
        what: &str,
        db: u8,
        keys: Vec<(Vec<u8>, u64)>,
        remove: impl Fn(&mut crate::store::Shard, u64, &[u8], u64) -> Option<crate::store::Entry>,
    ) {
        if usize::from(db) >= crate::server::DATABASES {
            tracing::warn!(db, "{what} record for an unknown database skipped");
            return;
        }
        let store = self.shared.db(usize::from(db));
        for (key, guard) in keys {
            let loc = store.locate(&key);
            if let Some(e) = remove(&mut store.lock(loc.shard), loc.hash, &key, guard) {
                self.dead.push(e);
            }
            if self.dead.len() >= 1024 {
                self.dead.clear();
            }
        }
        self.dead.clear();
    }
}

/// The proposing client a command record names (0: none), see [`FLAG_ORIGIN`].
fn record_origin(record: &[u8]) -> u64 {
    if !matches!(record.first(), Some(&(BATCH | EXEC | EXEC_WATCHED))) {
        return 0;
    }
    let mut r = ByteReader::new(record);
    let flags = r.take(2).map_or(0, |h| h[1]);
    if flags & FLAG_ORIGIN == 0 {
        return 0;
    }
    if flags & FLAG_USER != 0 && r.bytes().is_none() {
        return 0;
    }
    if flags & FLAG_DB != 0 && r.take(1).is_none() {
        return 0;
    }
    r.u64().unwrap_or(0)
}

/// A seed for a record's random draws, the same on every replica: its time, its length
/// and its first bytes (FNV-1a; every record is applied, so this stays cheap).
fn record_seed(record: &[u8], now: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ now;
    for &b in record.iter().take(64) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^ record.len() as u64
}

impl StateMachine for ServerSm {
    fn apply(&mut self, record: Bytes, now: u64, want_reply: bool) -> Bytes {
        self.out.clear();
        // Commands that draw at random and write (`SPOP`) draw alike on every replica:
        // the draws are a function of the record and its time.
        cmd::reseed_random(record_seed(&record, now));
        // NOLOOP: on the node that proposed it, the record's changes are its client's.
        let origin = if want_reply {
            record_origin(&record)
        } else {
            0
        };
        let _me = crate::tracking::enter(origin);
        if record.first() == Some(&BATCH) {
            self.apply_batch(&record, now);
        } else {
            match Record::decode(&record) {
                Ok(rec) => self.apply_record(rec, now),
                Err(e) => {
                    tracing::warn!(error = %e, "undecodable record skipped");
                    encode::error(&mut self.out, b"ERR undecodable replicated record");
                    return self.out.split().freeze();
                }
            }
        }
        // BCAST: the keys this record changed go out now, on every node.
        self.shared.tracking.broadcast();
        if want_reply {
            self.out.split().freeze()
        } else {
            Bytes::new()
        }
    }

    fn set_horizon(&mut self, now: u64) {
        self.shared.store.set_horizon(now);
    }

    fn tracking(&self) -> bool {
        self.shared.tracking.clients() > 0
    }

    fn caching_mark(&self) -> u64 {
        crate::tracking::mark()
    }

    fn caching_settled(&self, mark: u64) -> bool {
        crate::tracking::settled(mark)
    }

    fn snapshot_job(&self) -> sessiond_cluster::SnapshotJob {
        let per_db = self.shared.store.shard_count();
        let dbs: Vec<usize> = self.shared.dbs().map(|(n, _)| n).collect();
        let n = per_db * dbs.len();
        Arc::new(StoreCapture {
            shared: self.shared.clone(),
            dbs,
            per_db,
            claims: parking_lot::Mutex::new((0, n)),
            aside: parking_lot::Mutex::new(Vec::new()),
            done: AtomicUsize::new(0),
            n,
        })
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let mut users = None;
        let mut scripts = Vec::new();
        let shared = &*self.shared;
        let existing: Vec<&crate::store::Store> = shared.dbs().map(|(_, s)| s).collect();
        let db = |n: usize| shared.db(n.min(crate::server::DATABASES - 1));
        snapshot::load_dbs(&db, &existing, data, 0, |name, v| {
            if name == b"acl" {
                users = Some(String::from_utf8_lossy(v).into_owned());
            } else if name == b"scripts" {
                scripts = v.to_vec();
            }
        })
        .map(|n| tracing::info!(keys = n, "store restored from snapshot"))
        .map_err(|e| e.to_string())?;
        if let Some(text) = users {
            let list = crate::acl::parse_acl_file(&text)
                .map_err(|e| format!("the snapshot's users: {e}"))?;
            self.shared.users.replace(list);
        }
        self.shared.scripts.replace(parse_scripts(&scripts)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
