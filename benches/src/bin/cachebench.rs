//! A read-mostly session workload with and without a client-side cache, for
//! `scripts/bench --cache`: many clients, each reading 9 sessions for every one it
//! writes, over a fixed set of 200-byte sessions. Each session belongs to one client, as
//! with sticky load balancing (`--shared`: every client reads and writes every session). With `--cache`, each client keeps what
//! it read and turns `CLIENT TRACKING` on (RESP3), dropping a session when the server
//! pushes its invalidation. A client also keeps what it writes (`NOLOOP`: its own writes
//! are not pushed back), as a session store that knows the session it just saved does;
//! `--invalidate-own` drops it instead, as redis-py's and node-redis's caches do.
//!
//! Prints one line of `key=value` figures: reads, writes, the client's read latency
//! (p50/p99, µs, cache hits included), and the servers' CPU time per session read and
//! per request (utime+stime of `--pids` over the run). Then, with `--probe`, the
//! invalidation delay: a tracking connection on the first port holds a session that a
//! writer on the last port changes, 200 times; the figures are the time from sending
//! the write to the push's arrival, and how many pushes had arrived when the write's
//! reply did.
//!
//!     cachebench --ports 7001[,7002,...] --pids 123[,124,...] [--cache] [--clients 32]
//!                [--seconds 5] [--sessions 1000] [--shared] [--invalidate-own] [--probe]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sessiond_protocol::{Frame, FrameDecoder, Limits};

struct Args {
    ports: Vec<u16>,
    pids: Vec<u32>,
    cache: bool,
    clients: usize,
    seconds: u64,
    sessions: usize,
    probe: bool,
    shared: bool,
    invalidate_own: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        ports: Vec::new(),
        pids: Vec::new(),
        cache: false,
        clients: 32,
        seconds: 5,
        sessions: 1000,
        probe: false,
        shared: false,
        invalidate_own: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--ports" => {
                a.ports = value()?
                    .split(',')
                    .map(|p| p.parse().map_err(|_| format!("bad port {p}")))
                    .collect::<Result<_, _>>()?
            }
            "--pids" => {
                a.pids = value()?
                    .split(',')
                    .map(|p| p.parse().map_err(|_| format!("bad pid {p}")))
                    .collect::<Result<_, _>>()?
            }
            "--cache" => a.cache = true,
            "--probe" => a.probe = true,
            "--shared" => a.shared = true,
            "--invalidate-own" => a.invalidate_own = true,
            "--clients" => a.clients = value()?.parse().map_err(|_| "bad --clients")?,
            "--seconds" => a.seconds = value()?.parse().map_err(|_| "bad --seconds")?,
            "--sessions" => a.sessions = value()?.parse().map_err(|_| "bad --sessions")?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.ports.is_empty() {
        return Err("--ports is required".into());
    }
    Ok(a)
}

/// A blocking RESP3 connection that sets invalidation pushes aside as they come.
struct Conn {
    s: TcpStream,
    buf: BytesMut,
    dec: FrameDecoder,
    /// Keys invalidated since last asked (`None`: everything, a flush).
    invalidated: Vec<Option<Bytes>>,
}

impl Conn {
    fn open(port: u16) -> std::io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        let mut c = Conn {
            s,
            buf: BytesMut::with_capacity(16 * 1024),
            dec: FrameDecoder::new(Limits::default()),
            invalidated: Vec::new(),
        };
        c.call(&[b"HELLO", b"3"])?;
        Ok(c)
    }

    fn send(&mut self, args: &[&[u8]]) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.s.write_all(&out)
    }

    /// Take a push aside, or return the frame.
    fn sort(&mut self, f: Frame) -> Option<Frame> {
        match f {
            Frame::Push(items) if matches!(items.first(), Some(Frame::Bulk(b)) if &b[..] == b"invalidate") =>
            {
                match items.into_iter().nth(1) {
                    Some(Frame::Array(keys)) => {
                        for k in keys {
                            if let Frame::Bulk(k) = k {
                                self.invalidated.push(Some(k));
                            }
                        }
                    }
                    _ => self.invalidated.push(None),
                }
                None
            }
            other => Some(other),
        }
    }

    /// The next reply, setting pushes aside.
    fn read(&mut self) -> std::io::Result<Frame> {
        loop {
            while let Some(f) = self
                .dec
                .decode(&mut self.buf)
                .map_err(std::io::Error::other)?
            {
                if let Some(f) = self.sort(f) {
                    return Ok(f);
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.s.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Frame> {
        self.send(args)?;
        self.read()
    }

    /// Take in whatever pushes have arrived, without waiting.
    fn poll_pushes(&mut self) -> std::io::Result<()> {
        self.s.set_nonblocking(true)?;
        let mut chunk = [0u8; 16 * 1024];
        let r = loop {
            match self.s.read(&mut chunk) {
                Ok(0) => break Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.s.set_nonblocking(false)?;
        r?;
        while let Some(f) = self
            .dec
            .decode(&mut self.buf)
            .map_err(std::io::Error::other)?
        {
            if let Some(other) = self.sort(f) {
                return Err(std::io::Error::other(format!("unexpected frame {other:?}")));
            }
        }
        Ok(())
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(Default)]
struct Tally {
    reads: u64,
    writes: u64,
    hits: u64,
    read_ns: Vec<u32>,
}

fn client(me: usize, port: u16, a: &Args, until: Instant) -> std::io::Result<Tally> {
    let seed = 0x9e37_79b9_7f4a_7c15 ^ (me as u64 + 1);
    let mut c = Conn::open(port)?;
    if a.cache && a.invalidate_own {
        c.call(&[b"CLIENT", b"TRACKING", b"ON"])?;
    } else if a.cache {
        c.call(&[b"CLIENT", b"TRACKING", b"ON", b"NOLOOP"])?;
    }
    let value = vec![b'v'; 200];
    let mut cache: HashMap<Bytes, Bytes> = HashMap::new();
    let mut rng = Rng(seed | 1);
    let mut t = Tally::default();
    while Instant::now() < until {
        let n = if a.shared {
            rng.next() % a.sessions as u64
        } else {
            // This client's own sessions: those equal to `me` modulo the clients.
            let own = (a.sessions / a.clients).max(1) as u64;
            (rng.next() % own) * a.clients as u64 + me as u64
        };
        let key = format!("sess:{n}").into_bytes();
        if rng.next() % 10 == 0 {
            c.call(&[b"SET", &key, &value])?;
            if a.cache && !a.invalidate_own {
                cache.insert(Bytes::from(key), Bytes::from(value.clone()));
            } else {
                cache.remove(&key[..]);
            }
            t.writes += 1;
            continue;
        }
        let start = Instant::now();
        if a.cache {
            c.poll_pushes()?;
            for k in c.invalidated.drain(..) {
                match k {
                    Some(k) => {
                        cache.remove(&k);
                    }
                    None => cache.clear(),
                }
            }
            if cache.contains_key(&key[..]) {
                t.hits += 1;
            } else if let Frame::Bulk(v) = c.call(&[b"GET", &key])? {
                cache.insert(Bytes::from(key), v);
            }
        } else {
            c.call(&[b"GET", &key])?;
        }
        t.read_ns
            .push(start.elapsed().as_nanos().min(u32::MAX as u128) as u32);
        t.reads += 1;
    }
    Ok(t)
}

fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command's closing parenthesis: utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    f64::from(sorted[((sorted.len() - 1) as f64 * q) as usize]) / 1000.0
}

/// Time from sending a write on the last port to an invalidation on the first.
fn probe(a: &Args) -> std::io::Result<(f64, f64, usize, usize)> {
    let mut tracker = Conn::open(a.ports[0])?;
    tracker.call(&[b"CLIENT", b"TRACKING", b"ON"])?;
    let mut writer = Conn::open(*a.ports.last().unwrap_or(&a.ports[0]))?;
    let (mut delays, mut before_reply) = (Vec::new(), 0);
    for i in 0..200 {
        let key = format!("probe:{i}").into_bytes();
        writer.call(&[b"SET", &key, b"0"])?;
        tracker.call(&[b"GET", &key])?;
        tracker.invalidated.clear();
        let start = Instant::now();
        writer.call(&[b"SET", &key, b"1"])?;
        tracker.poll_pushes()?;
        if !tracker.invalidated.is_empty() {
            before_reply += 1;
        }
        let limit = start + Duration::from_secs(5);
        while tracker.invalidated.is_empty() && Instant::now() < limit {
            tracker.poll_pushes()?;
        }
        if tracker.invalidated.is_empty() {
            return Err(std::io::Error::other("no invalidation within 5 s"));
        }
        delays.push(start.elapsed().as_nanos() as u32);
    }
    delays.sort_unstable();
    Ok((
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        before_reply,
        delays.len(),
    ))
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cachebench: {e}");
            std::process::exit(2);
        }
    };
    let tick = 100.0; // USER_HZ: clock ticks per second on Linux.
    let cpu0: u64 = a.pids.iter().map(|&p| cpu_ticks(p)).sum();
    let until = Instant::now() + Duration::from_secs(a.seconds);
    let tallies: Vec<std::io::Result<Tally>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..a.clients)
            .map(|i| {
                let port = a.ports[i % a.ports.len()];
                let a = &a;
                s.spawn(move || client(i, port, a, until))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("client panicked")))
            })
            .collect()
    });
    let cpu_s = (a.pids.iter().map(|&p| cpu_ticks(p)).sum::<u64>() - cpu0) as f64 / tick;
    let mut all = Tally::default();
    for t in tallies {
        match t {
            Ok(t) => {
                all.reads += t.reads;
                all.writes += t.writes;
                all.hits += t.hits;
                all.read_ns.extend(t.read_ns);
            }
            Err(e) => {
                eprintln!("cachebench: a client failed: {e}");
                std::process::exit(1);
            }
        }
    }
    all.read_ns.sort_unstable();
    let requests = all.reads - all.hits + all.writes;
    print!(
        "reads={} writes={} hits={} reads_per_s={:.0} read_p50_us={:.2} read_p99_us={:.2} cpu_us_per_read={:.3} cpu_us_per_request={:.3}",
        all.reads,
        all.writes,
        all.hits,
        all.reads as f64 / a.seconds as f64,
        percentile(&all.read_ns, 0.5),
        percentile(&all.read_ns, 0.99),
        cpu_s * 1e6 / all.reads.max(1) as f64,
        cpu_s * 1e6 / requests.max(1) as f64,
    );
    if a.probe {
        match probe(&a) {
            Ok((p50, p99, before, n)) => print!(
                " invalidation_p50_us={p50:.1} invalidation_p99_us={p99:.1} pushes_before_reply={before}/{n}"
            ),
            Err(e) => {
                eprintln!("cachebench: probe: {e}");
                std::process::exit(1);
            }
        }
    }
    println!();
}
