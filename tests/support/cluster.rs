//! A local raft cluster of real `sessiond` processes, on loopback, for the cluster
//! tests. Each node gets its own data folder under one temporary directory, which is
//! removed when the cluster is dropped, a client port the node binds itself (`--port
//! 0`), and a raft listener this harness binds (port 0) and hands the node as an
//! inherited descriptor (`--cluster-fd`): every node's raft address is known before any
//! node starts, with no port guessed. A restarted node gets its old port again.
//! Nodes in network namespaces (`launch.host` set) bind their own fixed ports.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{wait_until, Launch, Server};

/// A free TCP port on 127.0.0.1 for a node to listen on later, from below the kernel's
/// ephemeral range (32768 and up on Linux). A port the kernel handed out for `:0` could be
/// handed out again, to another `--port 0` listener or to an outgoing connection, before
/// the node binds it; these ports never are. Nor is a port handed out twice by this
/// process. For what cannot take a bound listener (a `redis-server`); cluster nodes
/// take one (see the module's doc).
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for attempt in 0u64..1000 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(attempt);
        h.write_u128(Instant::now().elapsed().as_nanos());
        h.write_u32(std::process::id());
        let port = 20_000 + (h.finish() % 12_000) as u16;
        let mut taken = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if taken.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.push(port);
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// A listener for node raft traffic on loopback: port 0 the first time, the node's old
/// port again after it stopped (waiting a little for the old process to let go of it).
fn raft_listener(port: u16) -> TcpListener {
    if port == 0 {
        return TcpListener::bind("127.0.0.1:0").expect("bind a raft listener");
    }
    let mut got = None;
    wait_until(Duration::from_secs(10), || {
        got = TcpListener::bind(("127.0.0.1", port)).ok();
        got.is_some()
    });
    got.unwrap_or_else(|| panic!("raft port {port} is still taken after its node stopped"))
}

fn host_of(how: &Launch) -> String {
    how.host.clone().unwrap_or_else(|| "127.0.0.1".into())
}

pub struct Cluster {
    /// `nodes[i]` is node id `i + 1`; `None` while it is down.
    pub nodes: Vec<Option<Server>>,
    pub raft_ports: Vec<u16>,
    pub dir: PathBuf,
    pub peers: String,
    pub extra: Vec<String>,
    /// How each node's process starts (wrapper, environment, host).
    pub launch: Vec<Launch>,
    /// Raft listeners bound and not yet handed to their node.
    listeners: Vec<Option<TcpListener>>,
}

impl Cluster {
    /// Start `n` founding members with `extra` flags each.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_as(vec![Launch::default(); n], vec![0; n], extra)
    }

    /// Start one founding member per entry of `launch`, node `i` with its raft port
    /// `raft_ports[i]` on its launch's host; 0: a port this harness binds on loopback.
    pub fn start_as(launch: Vec<Launch>, mut raft_ports: Vec<u16>, extra: &[&str]) -> Cluster {
        static CLUSTERS: AtomicU64 = AtomicU64::new(0);
        let n = launch.len();
        let mut listeners = Vec::new();
        for (port, how) in raft_ports.iter_mut().zip(&launch) {
            let l = (*port == 0).then(|| {
                assert!(
                    how.host.is_none(),
                    "a node in a namespace needs a fixed raft port"
                );
                raft_listener(0)
            });
            if let Some(l) = &l {
                *port = l.local_addr().expect("raft listener address").port();
            }
            listeners.push(l);
        }
        let peers = raft_ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}={}:{p}", i + 1, host_of(&launch[i])))
            .collect::<Vec<_>>()
            .join(",");
        let dir = std::env::temp_dir().join(format!(
            "sessiond-cluster-{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let mut c = Cluster {
            nodes: Vec::new(),
            raft_ports,
            dir,
            peers,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            launch,
            listeners,
        };
        for i in 0..n {
            let s = c.spawn(i, false);
            c.nodes.push(Some(s));
        }
        c
    }

    fn spawn(&mut self, i: usize, join: bool) -> Server {
        let id = (i + 1).to_string();
        let how = self.launch.get(i).cloned().unwrap_or_default();
        let node_dir = how
            .data_dir
            .clone()
            .unwrap_or_else(|| self.dir.join(format!("n{id}")));
        let node_dir = node_dir.to_string_lossy().into_owned();
        let mut args: Vec<String> = vec![
            "--node-id".into(),
            id,
            "--dir".into(),
            node_dir,
            "--cluster-addr".into(),
            self.raft_addr(i),
        ];
        if let Some(h) = &how.host {
            args.push("--bind".into());
            args.push(h.clone());
        }
        if join {
            args.push("--join".into());
        } else {
            args.push("--peers".into());
            args.push(self.peers.clone());
        }
        // A loopback node takes its raft listener from this harness.
        let listener = match self.listeners.get_mut(i).and_then(Option::take) {
            Some(l) => Some(l),
            None if how.host.is_none() => Some(raft_listener(self.raft_ports[i])),
            None => None,
        };
        if let Some(l) = &listener {
            use std::os::fd::AsRawFd;
            args.push("--cluster-fd".into());
            args.push(l.as_raw_fd().to_string());
        }
        args.extend(self.extra.iter().cloned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        // The node has its own copy of the listener; this one closes on return.
        Server::launch_inheriting(&how, &refs, listener.as_ref())
    }

    /// Start node `i` (0-based) again, from its data folder.
    pub fn restart(&mut self, i: usize) {
        let s = self.spawn(i, false);
        self.nodes[i] = Some(s);
    }

    /// Start a new, empty node that waits to be added; returns its index.
    pub fn spawn_joiner(&mut self) -> usize {
        let l = raft_listener(0);
        self.raft_ports
            .push(l.local_addr().expect("raft listener address").port());
        self.listeners.resize_with(self.nodes.len(), || None);
        self.listeners.push(Some(l));
        let i = self.nodes.len();
        let s = self.spawn(i, true);
        self.nodes.push(Some(s));
        i
    }

    pub fn node(&self, i: usize) -> &Server {
        self.nodes[i].as_ref().expect("node is up")
    }

    pub fn kill9(&mut self, i: usize) {
        if let Some(mut s) = self.nodes[i].take() {
            s.kill9();
        }
    }

    pub fn up(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_some())
            .collect()
    }

    pub fn raft_addr(&self, i: usize) -> String {
        let how = self.launch.get(i).cloned().unwrap_or_default();
        format!("{}:{}", host_of(&how), self.raft_ports[i])
    }

    /// A node's view of a `RAFT.INFO` field.
    pub fn raft_field(&self, i: usize, field: &str) -> Option<String> {
        let mut con = self.node(i).client().get_connection().ok()?;
        let text: String = redis::cmd("RAFT.INFO").query(&mut con).ok()?;
        text.lines().find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
    }

    /// A numeric `RAFT.INFO` field (an index), 0 when the node does not answer.
    pub fn raft_index(&self, i: usize, field: &str) -> u64 {
        self.raft_field(i, field)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// The index of the node that is leader and that every live node agrees on.
    pub fn leader(&self) -> Option<usize> {
        let up = self.up();
        let mut leader = None;
        for &i in &up {
            if self.raft_field(i, "raft_role").as_deref() == Some("leader") {
                leader = Some(i);
            }
        }
        let l = leader?;
        let id = (l + 1).to_string();
        up.iter()
            .all(|&i| self.raft_field(i, "raft_leader_id").as_deref() == Some(&id))
            .then_some(l)
    }

    /// Wait (bounded) for a leader all live nodes know.
    pub fn wait_leader(&self, limit: Duration) -> usize {
        let mut found = None;
        let ok = wait_until(limit, || {
            found = self.leader();
            found.is_some()
        });
        assert!(ok, "no agreed leader within {limit:?}\n{}", self.logs());
        found.unwrap_or(0)
    }

    /// Wait (bounded) for one of `among` to say it leads (the others may not know yet,
    /// or may be cut off); `None` if none did in time.
    pub fn wait_leader_among(&self, among: &[usize], limit: Duration) -> Option<usize> {
        let mut found = None;
        wait_until(limit, || {
            found = among
                .iter()
                .copied()
                .find(|&i| self.raft_field(i, "raft_role").as_deref() == Some("leader"));
            found.is_some()
        });
        found
    }

    /// Every node's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut t = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(s) = n {
                t.push_str(&format!("---- node {} ----\n{}\n", i + 1, s.log_text()));
            }
        }
        t
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(s) = n.as_mut() {
                s.signal("CONT");
                s.kill9();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Cluster tests of one binary run one at a time: each starts three or four processes,
/// and elections are timing-sensitive on a busy two-core machine.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long a test waits for a leader.
pub const LEADER_WAIT: Duration = Duration::from_secs(15);

/// A connection to node `i` whose reads give up after 10 s.
pub fn conn(c: &Cluster, i: usize) -> redis::Connection {
    let con = c.node(i).conn();
    con.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    con
}

pub fn get(con: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(con).expect("GET")
}

/// `GET` that treats an error (a node still catching up) as "not there yet".
pub fn try_get(con: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(con).ok().flatten()
}
