//! The differential tests' side of the wire: a RESP reader that keeps every reply
//! type apart, a connection, `redis-server` as a child process, and the seeded random
//! stream. Used by `t200_differential` and `t201_differential_conn`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::cluster::free_port;

/// A reply, normalised for comparison.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Double(String),
    Null,
    Bool(bool),
    /// A RESP3 push (pub/sub messages and confirmations).
    Push(Vec<Reply>),
}

pub fn read_reply(r: &mut BufReader<TcpStream>) -> Reply {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).expect("read reply");
    assert!(line.ends_with(b"\r\n"), "bad line {line:?}");
    let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    let int = |s: &str| s.parse::<i64>().expect("length");
    match line[0] {
        b'+' => Reply::Simple(body),
        b'-' => Reply::Error(body),
        b':' => Reply::Int(int(&body)),
        b'$' => {
            let n = int(&body);
            if n < 0 {
                return Reply::Bulk(None);
            }
            let mut buf = vec![0u8; n as usize + 2];
            r.read_exact(&mut buf).expect("bulk");
            buf.truncate(n as usize);
            Reply::Bulk(Some(buf))
        }
        b'*' => {
            let n = int(&body);
            if n < 0 {
                return Reply::Array(None);
            }
            Reply::Array(Some((0..n).map(|_| read_reply(r)).collect()))
        }
        b'%' => Reply::Map(
            (0..int(&body))
                .map(|_| (read_reply(r), read_reply(r)))
                .collect(),
        ),
        b'>' => Reply::Push((0..int(&body)).map(|_| read_reply(r)).collect()),
        b'~' => Reply::Set((0..int(&body)).map(|_| read_reply(r)).collect()),
        b',' => Reply::Double(body),
        b'(' => Reply::Simple(format!("(big) {body}")),
        b'_' => Reply::Null,
        b'#' => Reply::Bool(body == "t"),
        b'=' | b'!' => {
            let n = int(&body);
            let mut buf = vec![0u8; n as usize + 2];
            r.read_exact(&mut buf).expect("verbatim");
            buf.truncate(n as usize);
            Reply::Bulk(Some(buf))
        }
        c => panic!("unknown reply type {}", c as char),
    }
}

pub struct Conn {
    pub r: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(port: u16, resp3: bool) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut c = Conn {
            r: BufReader::new(s),
        };
        if resp3 {
            c.call(&[b"HELLO".to_vec(), b"3".to_vec()]);
        }
        c
    }

    pub fn call(&mut self, args: &[Vec<u8>]) -> Reply {
        self.send(args);
        self.read()
    }

    /// Send a command without reading its reply.
    pub fn send(&mut self, args: &[Vec<u8>]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.r.get_mut().write_all(&out).expect("write");
    }

    /// The next reply or push.
    pub fn read(&mut self) -> Reply {
        read_reply(&mut self.r)
    }

    /// Whether nothing more has arrived within `wait`.
    pub fn quiet(&mut self, wait: Duration) -> bool {
        if !self.r.buffer().is_empty() {
            return false;
        }
        let s = self.r.get_mut();
        s.set_read_timeout(Some(wait)).expect("timeout");
        let mut one = [0u8; 1];
        let idle = matches!(s.peek(&mut one), Err(ref e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        idle
    }
}

pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        // A free port can be taken by another test's server before this one binds it:
        // then this redis-server exits, and another port is tried. The server that
        // answers must be this child (its pid in INFO).
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed (apt-get install redis-server)");
            let pid_line = format!("process_id:{}", child.id());
            let mut exited = false;
            let ours = super::wait_until(Duration::from_secs(10), || {
                if let Ok(Some(_)) = child.try_wait() {
                    exited = true;
                    return true;
                }
                probe_info(port).is_some_and(|t| t.contains(&pid_line))
            });
            if ours && !exited {
                return RedisServer { child, port };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start");
    }
}

/// `INFO server` from whatever listens on `port`, or `None` on any failure: a server
/// that is starting, or another test's process exiting, may reset the connection.
fn probe_info(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n").ok()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let n: usize = line.strip_prefix('$')?.trim_end().parse().ok()?;
    let mut body = vec![0u8; n];
    r.read_exact(&mut body).ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// xorshift64*: the stream is a function of the seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

pub fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

pub fn show(c: &[Vec<u8>]) -> String {
    c.iter()
        .map(|a| format!("{:?}", String::from_utf8_lossy(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Bulk strings shown as text, so that a difference reads.
impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Simple(s) => write!(f, "+{s:?}"),
            Reply::Error(s) => write!(f, "-{s:?}"),
            Reply::Int(i) => write!(f, ":{i}"),
            Reply::Bulk(None) => write!(f, "nil"),
            Reply::Bulk(Some(b)) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Reply::Array(None) => write!(f, "*nil"),
            Reply::Array(Some(v)) => f.debug_list().entries(v).finish(),
            Reply::Map(m) => f
                .debug_map()
                .entries(m.iter().map(|(k, v)| (k, v)))
                .finish(),
            Reply::Set(v) => write!(f, "~{v:?}"),
            Reply::Double(d) => write!(f, ",{d}"),
            Reply::Null => write!(f, "null"),
            Reply::Bool(b) => write!(f, "#{b}"),
            Reply::Push(v) => write!(f, ">{v:?}"),
        }
    }
}

/// `DIFF_SEED` (or one from the clock) and `DIFF_COMMANDS` (or `default`): a
/// differential run's seed and length.
pub fn seed_and_len(default: usize) -> (u64, usize) {
    let seed = super::seed_from_env("DIFF_SEED");
    let n = std::env::var("DIFF_COMMANDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    (seed, n)
}
