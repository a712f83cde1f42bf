//! What `CLIENT LIST`, `CLIENT INFO` and `CLIENT KILL` see of a connection: a shared
//! [`ClientInfo`] that the connection's task keeps up to date at the end of each batch
//! (buffers, subscriptions, transaction) and that other connections read.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    /// The socket's file descriptor (-1 for the log's applier and other internal ones).
    pub fd: i32,
    pub created: Instant,
    pub name: Mutex<Option<Bytes>>,
    pub lib_name: Mutex<Option<Bytes>>,
    pub lib_ver: Mutex<Option<Bytes>>,
    pub last_cmd: Mutex<&'static str>,
    pub last_active_ms: AtomicU64,
    pub resp: AtomicU8,
    pub in_multi: AtomicBool,
    /// The authenticated user's name.
    pub user: Mutex<Arc<str>>,
    /// Bytes in the query buffer (while a batch runs: the batch's commands) and its free
    /// room.
    pub qbuf: AtomicU64,
    pub qbuf_free: AtomicU64,
    /// Replies waiting to be written, and the reply buffer's size.
    pub obl: AtomicU64,
    pub omem: AtomicU64,
    pub sub: AtomicU64,
    pub psub: AtomicU64,
    /// The selected database (`CLIENT LIST`'s `db=`).
    pub db: AtomicU8,
    /// Commands queued in `MULTI`, or -1 outside a transaction.
    pub multi: AtomicI64,
    /// `CLIENT KILL`: set, then `kill` notified; the connection closes.
    pub killed: AtomicBool,
    pub kill: Notify,
    /// Pushes for this client from elsewhere (tracking invalidations): written between
    /// its commands, or at once while it waits (see `crate::tracking::deliver`).
    pub inbox: Mutex<bytes::BytesMut>,
    pub inbox_ready: AtomicBool,
    /// The epoch the inbox filled in (`crate::tracking::mark`); 0 when its pushes are
    /// not counted (they came while the client waited on its own write).
    pub inbox_epoch: AtomicU64,
    /// The epoch of pushes taken from the inbox and not yet written to the socket (0:
    /// none); the oldest when several were taken.
    pub out_epoch: AtomicU64,
    /// In a cluster, the connection waits on its own write: pushes for it go out after
    /// that write's reply, so the invalidation fence does not wait on them.
    pub proposing: AtomicBool,
    /// Notified when the inbox fills.
    pub wake: Notify,
    /// `CLIENT TRACKING` flags for `CLIENT LIST` (`crate::tracking::FLAG_*`), and the
    /// redirect (-1 when not tracking).
    pub tracking: AtomicU8,
    pub redirect: AtomicI64,
}

impl ClientInfo {
    pub fn set_db(&self, db: usize) {
        self.db.store(db as u8, Relaxed);
    }

    pub fn new(id: u64, addr: SocketAddr, laddr: SocketAddr, fd: i32) -> ClientInfo {
        ClientInfo {
            id,
            addr,
            laddr,
            fd,
            created: Instant::now(),
            name: Mutex::new(None),
            lib_name: Mutex::new(None),
            lib_ver: Mutex::new(None),
            last_cmd: Mutex::new("NULL"),
            last_active_ms: AtomicU64::new(crate::clock::now_ms()),
            resp: AtomicU8::new(2),
            in_multi: AtomicBool::new(false),
            user: Mutex::new(Arc::from(crate::acl::DEFAULT)),
            qbuf: AtomicU64::new(0),
            qbuf_free: AtomicU64::new(0),
            obl: AtomicU64::new(0),
            omem: AtomicU64::new(0),
            sub: AtomicU64::new(0),
            psub: AtomicU64::new(0),
            db: AtomicU8::new(0),
            multi: AtomicI64::new(-1),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
            inbox: Mutex::new(bytes::BytesMut::new()),
            inbox_ready: AtomicBool::new(false),
            inbox_epoch: AtomicU64::new(0),
            proposing: AtomicBool::new(false),
            out_epoch: AtomicU64::new(0),
            wake: Notify::new(),
            tracking: AtomicU8::new(0),
            redirect: AtomicI64::new(-1),
        }
    }

    /// The identity of a connection that is not a client's (the state machine applying
    /// the log, the model checker).
    pub fn internal(id: u64) -> ClientInfo {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        let c = ClientInfo::new(id, unspecified, unspecified, -1);
        c.last_active_ms.store(0, Relaxed);
        c
    }

    /// Ask the connection to close (`CLIENT KILL`).
    pub fn kill(&self) {
        self.killed.store(true, Relaxed);
        self.kill.notify_one();
    }

    /// One `CLIENT LIST` line, without the trailing newline.
    pub fn line(&self, now: u64) -> String {
        let s = |m: &Mutex<Option<Bytes>>| {
            m.lock()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let idle = now.saturating_sub(self.last_active_ms.load(Relaxed)) / 1000;
        let (sub, psub) = (self.sub.load(Relaxed), self.psub.load(Relaxed));
        let multi = self.multi.load(Relaxed);
        let mut flags = String::new();
        if sub + psub > 0 {
            flags.push('P');
        }
        if multi >= 0 {
            flags.push('x');
        }
        let tracking = self.tracking.load(Relaxed);
        for (bit, c) in [
            (crate::tracking::FLAG_ON, 't'),
            (crate::tracking::FLAG_BROKEN, 'R'),
            (crate::tracking::FLAG_BCAST, 'B'),
        ] {
            if tracking & bit != 0 {
                flags.push(c);
            }
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let (qbuf, qfree) = (self.qbuf.load(Relaxed), self.qbuf_free.load(Relaxed));
        let (obl, omem) = (self.obl.load(Relaxed), self.omem.load(Relaxed));
        // The connection's own structures, roughly, plus its buffers.
        let tot = 1024 + qbuf + qfree + omem;
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={flags} db={} sub={sub} psub={psub} ssub=0 multi={multi} qbuf={qbuf} qbuf-free={qfree} argv-mem=0 multi-mem=0 rbs={} rbp=0 obl={obl} oll=0 omem={omem} tot-mem={tot} events=r cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            s(&self.name),
            self.created.elapsed().as_secs(),
            idle,
            self.db.load(Relaxed),
            qbuf + qfree,
            self.last_cmd.lock(),
            self.user.lock(),
            self.redirect.load(Relaxed),
            self.resp.load(Relaxed),
            s(&self.lib_name),
            s(&self.lib_ver),
        )
    }
}
