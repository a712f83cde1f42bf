//! Shared helpers for the integration tests: start the real `sessiond` binary on a free
//! port, connect to it, and wait on conditions with deadlines.
#![allow(dead_code)]

pub mod cluster;
pub mod cmds;
pub mod diff;
pub mod diff_types;
pub mod faults;
pub mod history;
pub mod linearizable;
pub mod netns;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Path of the binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_sessiond");

/// The binary to run: `$SESSIOND_BIN` (for example a release build) or [`BIN`].
pub fn bin() -> String {
    std::env::var("SESSIOND_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// A randomized test's seed: `$var` when set, else one from the clock (never 0).
pub fn seed_from_env(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        })
}

/// A running `sessiond` process; killed when dropped.
/// How to start a server process beyond its flags.
#[derive(Clone, Default)]
pub struct Launch {
    /// A command the binary runs under, such as `ip netns exec NS`.
    pub wrapper: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where clients reach it (default 127.0.0.1).
    pub host: Option<String>,
    /// A cluster node's data folder, instead of one under the cluster's.
    pub data_dir: Option<std::path::PathBuf>,
}

pub struct Server {
    child: Child,
    /// Started in its own process group (under a wrapper).
    group: bool,
    pub port: u16,
    pub host: String,
    pub log: Arc<Mutex<String>>,
    /// Closed when the process's stderr reaches EOF, that is, when it has exited.
    exited: mpsc::Receiver<()>,
}

impl Server {
    /// Start with default settings on a free port.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Start with extra flags. `--port 0` is added unless `args` names a port or a
    /// config file, and the real port is read from the startup log line.
    pub fn start_with(args: &[&str]) -> Server {
        Server::launch(&Launch::default(), args)
    }

    /// Start as `how` says: under a wrapper command (`ip netns exec NS`), with extra
    /// environment (`LD_PRELOAD`), serving clients at `how.host`.
    pub fn launch(how: &Launch, args: &[&str]) -> Server {
        Server::launch_inheriting(how, args, None)
    }

    /// [`Server::launch`], handing the process `inherit` (a bound listener) under its
    /// own descriptor number, which `args` name (`--cluster-fd`).
    #[allow(unsafe_code)]
    pub fn launch_inheriting(
        how: &Launch,
        args: &[&str],
        inherit: Option<&std::net::TcpListener>,
    ) -> Server {
        let bin = bin();
        let mut cmd = match how.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.envs(how.env.iter().map(|(k, v)| (k, v)));
        // A wrapper may run the server as its child (faketime does): the whole group is
        // signalled and killed.
        let group = !how.wrapper.is_empty();
        if group {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        if !args.iter().any(|a| *a == "--port" || *a == "--config") {
            cmd.args(["--port", "0"]);
        }
        if let Some(l) = inherit {
            use std::os::fd::AsRawFd;
            use std::os::unix::process::CommandExt;
            let fd = l.as_raw_fd();
            // SAFETY: between fork and exec, only fcntl (async-signal-safe) on a
            // descriptor this process owns: the child keeps it across exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::fcntl(fd, libc::F_SETFD, 0) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        let (exit_tx, exited) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            // Dropped when stderr closes, which tells `wait_exit` the process is gone.
            let _exit_tx = exit_tx;
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(port) = ready_port(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(port);
                    }
                }
                let mut l = sink.lock().unwrap_or_else(|e| e.into_inner());
                l.push_str(&line);
                l.push('\n');
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "sessiond did not report readiness within 30s; log:\n{}",
                    log.lock().unwrap_or_else(|e| e.into_inner())
                );
            }
        };
        Server {
            child,
            group,
            port,
            host: how.host.clone().unwrap_or_else(|| "127.0.0.1".into()),
            log,
            exited,
        }
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub fn url(&self) -> String {
        format!("redis://{}:{}/", self.host, self.port)
    }

    /// A `redis` crate client (RESP2).
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("valid url")
    }

    /// A `redis` crate client speaking RESP3.
    pub fn client3(&self) -> redis::Client {
        redis::Client::open(format!("{}?protocol=resp3", self.url())).expect("valid url")
    }

    /// A synchronous `redis` connection.
    pub fn conn(&self) -> redis::Connection {
        self.client().get_connection().expect("connect")
    }

    pub fn conn3(&self) -> redis::Connection {
        self.client3().get_connection().expect("connect")
    }

    /// A raw TCP connection with a read timeout, for protocol-level tests.
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        s
    }

    /// Send SIGTERM and wait (bounded) for the process to exit. Returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait_exit(Duration::from_secs(20))
            .expect("sessiond exits after SIGTERM")
    }

    /// Wait for the process to exit on its own, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        match self.exited.recv_timeout(limit) {
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            // stderr closed: the process has exited, so this wait returns at once.
            _ => self.child.wait().ok(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: the process gets no chance to clean up.
    pub fn kill9(&mut self) {
        if self.group {
            self.signal("KILL");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Send a signal by name (`STOP`, `CONT`, ...), to the whole group under a wrapper.
    pub fn signal(&self, sig: &str) {
        let target = if self.group {
            format!("-{}", self.child.id())
        } else {
            self.child.id().to_string()
        };
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), "--", &target])
            .stderr(Stdio::null())
            .status();
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.group {
            self.signal("KILL");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port in sessiond's startup line (`... ready to accept connections addr=IP:PORT ...`).
fn ready_port(line: &str) -> Option<u16> {
    if !line.contains("ready to accept connections") {
        return None;
    }
    // Text logs say `addr=127.0.0.1:6379`, JSON logs `"addr":"127.0.0.1:6379"`.
    let at = match line.find("addr=") {
        Some(i) => i + 5,
        None => line.find("\"addr\":\"")? + 8,
    };
    let addr: String = line[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();
    addr.rsplit(':').next()?.parse().ok()
}

/// Poll `cond` until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Write `req` and read until `expect` bytes arrived, the peer closed, or the read timed
/// out. Returns what was read.
pub fn roundtrip(s: &mut TcpStream, req: &[u8], expect: usize) -> Vec<u8> {
    s.write_all(req).expect("write");
    read_at_least(s, expect)
}

pub fn read_at_least(s: &mut TcpStream, expect: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while out.len() < expect {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

/// Read until the peer closes the connection (or 10 s pass). Returns what was read.
pub fn read_to_close(s: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

/// Run a command and return the server's error text (panics if it succeeded).
pub fn err_of(con: &mut redis::Connection, cmd: &redis::Cmd) -> String {
    match cmd.query::<redis::Value>(con) {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => error_text(&e),
    }
}

/// The full `CODE message` text of a server error, as the server sent it.
pub fn error_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

/// `DBSIZE`.
pub fn dbsize(con: &mut redis::Connection) -> u64 {
    redis::cmd("DBSIZE").query(con).expect("DBSIZE")
}

/// `used_memory` from `INFO memory`.
pub fn used_memory(con: &mut redis::Connection) -> u64 {
    info_field(con, "memory", "used_memory")
        .and_then(|v| v.parse().ok())
        .expect("used_memory")
}

/// `INFO` field as a string.
pub fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let text: String = redis::cmd("INFO").arg(section).query(con).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(&format!("{field}:"))
            .map(|v| v.trim().to_string())
    })
}

/// Encode a command as a RESP array of bulk strings.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}
