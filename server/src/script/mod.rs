//! Lua scripting: what `EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO` and `SCRIPT` (the
//! commands, in `cmd::scripting`) run on.
//!
//! - [`Scripts`] (here): the script cache every thread shares (SHA-1 → body), the state
//!   of the script running now (since when, whether it wrote, whether `SCRIPT KILL` asked
//!   it to stop), the [`Gate`] and the script thread's queue.
//! - [`vm`]: a Lua 5.1 state per thread, sandboxed as Redis's: the `redis` library,
//!   `KEYS`/`ARGV`, read-only globals, the busy hook; `vm::errors`, what a failing
//!   script replies. Lua 5.1 has room for 8,000 values held from Rust at once: the
//!   libraries and the reply hold one table's values at a time, and a script that still
//!   exhausts the room (a call with thousands of arguments) fails alone, the next one
//!   getting a fresh interpreter.
//! - [`convert`]: values between RESP and Lua, exactly as Redis converts them.
//! - [`libs`]: the `cjson` and `bit` libraries Redis ships; [`pack`]: `cmsgpack` and
//!   `struct`.
//!
//! **Where a script runs.** A script must run alone: it holds every shard
//! (`store::Exclusive`) while it runs. A client's `EVAL` is sent to the script thread, so
//! the event loops stay free: while a script runs, they hold their clients' commands back
//! (asynchronously) and, once it has run longer than `busy-reply-threshold`, answer
//! `-BUSY`, and run `SCRIPT KILL` and `SHUTDOWN NOSAVE`. The [`Gate`] is how they know: an
//! event loop runs a command only while it holds its slot of the gate for reading, and a
//! script takes every slot for writing before it locks the shards. In a cluster, a
//! replicated `EVAL` runs on every replica as the log applies it (see ARCHITECTURE.md);
//! inside `MULTI`, a script runs within the `EXEC` that already holds every shard.

pub mod convert;
pub mod libs;
pub mod pack;
pub mod vm;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use crossbeam::utils::CachePadded;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use sha1::{Digest, Sha1};

use crate::cmd::admit::Admitted;
use crate::connection::Conn;

/// The lowercase hex SHA-1 of a script body: its name for `EVALSHA`.
pub fn sha1_hex(body: &[u8]) -> String {
    let d = Sha1::digest(body);
    let mut s = String::with_capacity(40);
    for b in d {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

const GATE_SLOTS: usize = 16;

/// Slots of a reader-writer lock: each thread reads its own slot (uncontended), a script
/// writes them all.
pub struct Gate {
    slots: Vec<CachePadded<RwLock<()>>>,
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static SLOT: usize = NEXT_SLOT.fetch_add(1, Relaxed) % GATE_SLOTS;
}

impl Gate {
    fn new() -> Gate {
        Gate {
            slots: (0..GATE_SLOTS)
                .map(|_| CachePadded::new(RwLock::new(())))
                .collect(),
        }
    }

    /// This thread's pass, unless a script runs or is about to (never blocks).
    pub fn enter(&self) -> Option<RwLockReadGuard<'_, ()>> {
        SLOT.with(|&i| self.slots[i].try_read())
    }

    /// Every slot, for a script: waits for the commands running now to finish.
    pub fn close(&self) -> Vec<RwLockWriteGuard<'_, ()>> {
        self.slots.iter().map(|s| s.write()).collect()
    }
}

/// A client's script, for the script thread.
pub struct Job {
    pub conn: Conn,
    pub out: BytesMut,
    pub cmd: Admitted,
    pub args: Vec<Bytes>,
    pub now: u64,
    pub done: tokio::sync::oneshot::Sender<(Conn, BytesMut)>,
}

/// The running script's state: read by the event loops (busy or not), by `SCRIPT KILL`,
/// and by the script's own instruction hook.
#[derive(Default)]
pub struct Busy {
    /// When the running script started (Unix ms), 0 when none runs.
    started_ms: AtomicU64,
    /// `SCRIPT KILL` asked the running script to stop.
    kill: AtomicBool,
    /// The running script cannot be killed: it wrote, or every replica runs it.
    unkillable: AtomicBool,
}

impl Busy {
    fn begin(&self, killable: bool) {
        self.kill.store(false, Relaxed);
        self.unkillable.store(!killable, Relaxed);
        self.started_ms
            .store(crate::clock::now_ms().max(1), Relaxed);
    }

    fn end(&self) {
        self.started_ms.store(0, Relaxed);
        self.kill.store(false, Relaxed);
    }

    /// The running script wrote: `SCRIPT KILL` can no longer stop it.
    fn wrote(&self) {
        self.unkillable.store(true, Relaxed);
    }

    fn killed(&self) -> bool {
        self.kill.load(Relaxed)
    }
}

/// The script cache, the running script's state, and the way to the script thread.
pub struct Scripts {
    cache: RwLock<HashMap<String, Bytes>>,
    pub gate: Gate,
    busy: std::sync::Arc<Busy>,
    /// Woken when a script ends.
    pub ended: tokio::sync::Notify,
    runner: OnceLock<crossbeam::channel::Sender<Job>>,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts {
            cache: RwLock::new(HashMap::new()),
            gate: Gate::new(),
            busy: std::sync::Arc::default(),
            ended: tokio::sync::Notify::new(),
            runner: OnceLock::new(),
        }
    }
}

/// What `SCRIPT KILL` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Kill {
    NotBusy,
    Unkillable,
    Killed,
}

impl Scripts {
    /// Add a body to the cache; its SHA-1.
    pub fn load(&self, body: &Bytes) -> String {
        let sha = sha1_hex(body);
        self.cache
            .write()
            .entry(sha.clone())
            .or_insert_with(|| body.clone());
        sha
    }

    pub fn get(&self, sha: &[u8]) -> Option<Bytes> {
        let sha = std::str::from_utf8(sha).ok()?.to_ascii_lowercase();
        self.cache.read().get(&sha).cloned()
    }

    pub fn exists(&self, sha: &[u8]) -> bool {
        self.get(sha).is_some()
    }

    pub fn flush(&self) {
        self.cache.write().clear();
        vm::forget_all();
    }

    /// How many scripts the cache holds (`INFO memory`).
    pub fn count(&self) -> usize {
        self.cache.read().len()
    }

    /// Their bodies' bytes.
    pub fn bytes(&self) -> usize {
        self.cache.read().values().map(|b| b.len() + 40).sum()
    }

    /// Every cached script, for snapshots.
    pub fn all(&self) -> Vec<Bytes> {
        let mut v: Vec<Bytes> = self.cache.read().values().cloned().collect();
        v.sort();
        v
    }

    /// Replace the cache (a snapshot's).
    pub fn replace(&self, bodies: Vec<Bytes>) {
        let mut c = self.cache.write();
        c.clear();
        for b in bodies {
            c.insert(sha1_hex(&b), b);
        }
        drop(c);
        vm::forget_all();
    }

    /// How long the running script has run (ms), if one runs.
    pub fn running_for(&self, now_ms: u64) -> Option<u64> {
        match self.busy.started_ms.load(Relaxed) {
            0 => None,
            t => Some(now_ms.saturating_sub(t)),
        }
    }

    pub fn kill(&self) -> Kill {
        if self.busy.started_ms.load(Relaxed) == 0 {
            Kill::NotBusy
        } else if self.busy.unkillable.load(Relaxed) {
            Kill::Unkillable
        } else {
            self.busy.kill.store(true, Relaxed);
            Kill::Killed
        }
    }

    /// A script starts: the caller holds every shard.
    fn begin(&self, killable: bool) -> std::sync::Arc<Busy> {
        self.busy.begin(killable);
        self.busy.clone()
    }

    fn end(&self) {
        self.busy.end();
        self.ended.notify_waiters();
    }

    /// The script thread's queue, once [`start_runner`] ran.
    pub fn runner(&self) -> Option<&crossbeam::channel::Sender<Job>> {
        self.runner.get()
    }
}

/// Start the thread that runs clients' scripts (one, as Redis runs one script at a time).
pub fn start_runner(shared: std::sync::Arc<crate::server::Shared>) -> std::io::Result<()> {
    let (tx, rx) = crossbeam::channel::unbounded::<Job>();
    if shared.scripts.runner.set(tx).is_err() {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("sessiond-lua".into())
        .spawn(move || {
            for mut job in rx {
                let mut ks = crate::store::Direct(shared.db(job.conn.db));
                let mut ctx = crate::cmd::Ctx {
                    ks: &mut ks,
                    out: &mut job.out,
                    conn: &mut job.conn,
                    shared: &shared,
                    now: job.now,
                };
                crate::cmd::run_admitted(&mut ctx, &job.cmd, job.args);
                let _ = job.done.send((job.conn, job.out));
            }
        })?;
    Ok(())
}

/// The `EVAL` family, which a connection sends to the script thread.
pub fn is_script(args: &[Bytes]) -> bool {
    let n = &args[0];
    n.len() >= 4
        && n.len() <= 10
        && (n.eq_ignore_ascii_case(b"eval")
            || n.eq_ignore_ascii_case(b"evalsha")
            || n.eq_ignore_ascii_case(b"eval_ro")
            || n.eq_ignore_ascii_case(b"evalsha_ro"))
}

/// Commands that run while a script is busy, without the store: `SCRIPT KILL` and
/// `SHUTDOWN NOSAVE` (Redis's way out of a runaway script), and the connection's own
/// state (`AUTH`, `HELLO`, `MULTI`, `DISCARD`, `RESET`, `QUIT`...).
pub fn runs_while_busy(args: &[Bytes]) -> bool {
    let is = |i: usize, w: &[u8]| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(w));
    if is(0, b"script") {
        return is(1, b"kill");
    }
    if is(0, b"shutdown") {
        return args[1..].iter().any(|a| a.eq_ignore_ascii_case(b"nosave"));
    }
    crate::cmd::lookup(&args[0]).is_some_and(|s| {
        s.is(crate::cmd::Flags::ALLOW_BUSY) && !matches!(s.name, "watch" | "shutdown")
    })
}

const BUSY: &[u8] =
    b"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

/// A script holds the store: wait for it (without blocking the event loop) until it
/// ends, or answer `-BUSY` once it has run past `busy-reply-threshold`. Returns whether
/// to try again; false when the reply was written.
pub async fn wait_turn(
    shared: &crate::server::Shared,
    conn: &mut Conn,
    args: &[Bytes],
    out: &mut BytesMut,
) -> bool {
    let threshold = shared
        .tunables
        .lock()
        .get("busy-reply-threshold")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(5000);
    let now = crate::clock::now_ms();
    match shared.scripts.running_for(now) {
        Some(ran) if ran >= threshold => {
            if conn.multi.is_some() {
                if args[0].eq_ignore_ascii_case(b"exec") {
                    // As Redis: the transaction is discarded, the connection leaves MULTI.
                    conn.end_multi();
                    let mut msg = b"EXECABORT Transaction discarded because of: ".to_vec();
                    msg.extend_from_slice(BUSY);
                    sessiond_protocol::encode::error(out, &msg);
                    return false;
                }
                conn.multi_failed = true;
            }
            sessiond_protocol::encode::error(out, BUSY);
            false
        }
        ran => {
            // Until it ends, or the threshold, checking at least every 10 ms (a script
            // may be about to start: the gate is closed before it begins).
            let left = threshold.saturating_sub(ran.unwrap_or(0)).clamp(1, 10);
            let ended = shared.scripts.ended.notified();
            let _ = tokio::time::timeout(std::time::Duration::from_millis(left), ended).await;
            true
        }
    }
}

/// Run a client's script on the script thread; the connection's state and reply buffer
/// go with it and come back. Admission happens here, on the connection's thread.
pub async fn offload(
    shared: &crate::server::Shared,
    mut conn: Conn,
    mut out: BytesMut,
    args: Vec<Bytes>,
    now: u64,
) -> std::io::Result<(Conn, BytesMut)> {
    let Some(runner) = shared.scripts.runner() else {
        return Err(std::io::Error::other("no script thread"));
    };
    let cmd = match crate::cmd::admit(&mut conn, shared, &args) {
        Ok(cmd) => cmd,
        Err(refusal) => {
            refusal.reply(&mut out, &args);
            return Ok((conn, out));
        }
    };
    let (done, rx) = tokio::sync::oneshot::channel();
    let job = Job {
        conn,
        out,
        cmd,
        args,
        now,
        done,
    };
    runner
        .send(job)
        .map_err(|_| std::io::Error::other("the script thread stopped"))?;
    rx.await
        .map_err(|_| std::io::Error::other("the script thread stopped"))
}
