//! The syscall-pattern experiment of issue 19: does io_uring cut the CPU a server spends
//! per unpipelined request, against an epoll loop that does what Redis's does?
//!
//! Both loops below decode commands with sessiond's own decoder and answer each with
//! `+OK` (no store: what is measured is the I/O around a request):
//! - `epoll`: `epoll_wait`, one `read` per readable connection, then one `write` per
//!   connection that has replies once the ready ones are all read (Redis's order).
//! - `uring`: one `recv` always queued per connection and a `send` per reply batch, all
//!   submitted with one `io_uring_enter` per pass that also waits for the next
//!   completion; no readiness step and no per-request system call.
//!
//! ```text
//! ioprobe epoll 0     # prints the port, serves until killed
//! ioprobe uring 0
//! ```
//!
//! `scripts/ioprobe` runs both beside Redis under redis-benchmark and reports each one's
//! CPU per request (utime + stime from /proc).
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, IntoRawFd};

use bytes::BytesMut;
use io_uring::{opcode, squeue, types, IoUring};
use sessiond_protocol::{CommandDecoder, Limits};

const READ_CHUNK: usize = 16 * 1024;

/// Decode every complete command in `input` and append one `+OK` per command to `out`.
/// False when the input is not RESP.
fn answer(dec: &mut CommandDecoder, input: &mut BytesMut, out: &mut Vec<u8>) -> bool {
    loop {
        match dec.decode(input) {
            Ok(Some(_)) => out.extend_from_slice(b"+OK\r\n"),
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

struct Conn {
    stream: TcpStream,
    dec: CommandDecoder,
    input: BytesMut,
    out: Vec<u8>,
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            dec: CommandDecoder::new(Limits::default()),
            input: BytesMut::with_capacity(READ_CHUNK),
            out: Vec::with_capacity(1024),
        }
    }
}

fn run_epoll(listener: TcpListener) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    // SAFETY: plain epoll system calls on descriptors this function owns.
    let ep = unsafe { libc::epoll_create1(0) };
    if ep < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let watch = |fd: i32| {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: `ev` lives across the call; `ep` and `fd` are open.
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) }
    };
    let lfd = listener.as_raw_fd();
    watch(lfd);
    let mut conns: HashMap<i32, Conn> = HashMap::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut to_write = Vec::new();
    loop {
        // SAFETY: `events` has room for the count passed.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        for ev in events.iter().take(n.max(0) as usize) {
            let fd = ev.u64 as i32;
            if fd == lfd {
                while let Ok((s, _)) = listener.accept() {
                    s.set_nonblocking(true)?;
                    s.set_nodelay(true)?;
                    watch(s.as_raw_fd());
                    conns.insert(s.as_raw_fd(), Conn::new(s));
                }
                continue;
            }
            let Some(c) = conns.get_mut(&fd) else {
                continue;
            };
            match c.stream.read(&mut chunk) {
                Ok(0) => {
                    conns.remove(&fd);
                }
                Ok(k) => {
                    c.input.extend_from_slice(&chunk[..k]);
                    if !answer(&mut c.dec, &mut c.input, &mut c.out) {
                        conns.remove(&fd);
                    } else if !c.out.is_empty() {
                        to_write.push(fd);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    conns.remove(&fd);
                }
            }
        }
        for fd in to_write.drain(..) {
            if let Some(c) = conns.get_mut(&fd) {
                // Replies of a few bytes: a short write does not happen at -P 1, and the
                // probe keeps what is left for the next pass if it does.
                if let Ok(k) = c.stream.write(&c.out) {
                    c.out.drain(..k);
                }
            }
        }
    }
}

const ACCEPT: u64 = 1 << 40;
const RECV: u64 = 2 << 40;
const SEND: u64 = 3 << 40;

struct UConn {
    fd: i32,
    dec: CommandDecoder,
    chunk: Vec<u8>,
    input: BytesMut,
    /// Replies being sent (the kernel holds a pointer into this until the send ends).
    sending: Vec<u8>,
    /// Replies made while a send is in flight.
    next: Vec<u8>,
    /// The peer closed (or sent garbage) while a send was in flight: close after it.
    closing: bool,
}

fn push(ring: &mut IoUring, e: &squeue::Entry) -> std::io::Result<()> {
    // SAFETY: every buffer an entry points to lives in a `UConn` that stays in its
    // `Box` (the map moves only the box) until the entry's completion is reaped.
    unsafe {
        while ring.submission().push(e).is_err() {
            ring.submit()?;
        }
    }
    Ok(())
}

fn recv(ring: &mut IoUring, c: &mut UConn) -> std::io::Result<()> {
    let e = opcode::Recv::new(types::Fd(c.fd), c.chunk.as_mut_ptr(), c.chunk.len() as u32)
        .build()
        .user_data(RECV | c.fd as u64);
    push(ring, &e)
}

fn send(ring: &mut IoUring, c: &mut UConn) -> std::io::Result<()> {
    let e = opcode::Send::new(types::Fd(c.fd), c.sending.as_ptr(), c.sending.len() as u32)
        .build()
        .user_data(SEND | c.fd as u64);
    push(ring, &e)
}

fn run_uring(listener: TcpListener) -> std::io::Result<()> {
    // One thread submits and reaps, and completions' work runs only when it asks for
    // them (DEFER_TASKRUN) instead of interrupting it as they come: the setup the
    // kernel's networking guidance gives for this shape of loop.
    let mut ring = match std::env::var("IOPROBE_PLAIN") {
        Ok(_) => IoUring::new(4096)?,
        Err(_) => IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(4096)?,
    };
    let lfd = listener.as_raw_fd();
    let accept = opcode::Accept::new(types::Fd(lfd), std::ptr::null_mut(), std::ptr::null_mut())
        .build()
        .user_data(ACCEPT);
    push(&mut ring, &accept)?;
    let mut conns: HashMap<i32, Box<UConn>> = HashMap::new();
    let mut done = Vec::new();
    loop {
        ring.submit_and_wait(1)?;
        done.extend(ring.completion().map(|c| (c.user_data(), c.result())));
        for (data, res) in done.drain(..) {
            let fd = (data & 0xffff_ffff) as i32;
            match data & !0xffff_ffff {
                ACCEPT => {
                    push(&mut ring, &accept)?;
                    if res < 0 {
                        continue;
                    }
                    // SAFETY: the kernel handed us this new descriptor.
                    let s = unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(res) };
                    s.set_nodelay(true)?;
                    let mut c = Box::new(UConn {
                        fd: s.into_raw_fd(),
                        dec: CommandDecoder::new(Limits::default()),
                        chunk: vec![0; READ_CHUNK],
                        input: BytesMut::with_capacity(READ_CHUNK),
                        sending: Vec::with_capacity(1024),
                        next: Vec::with_capacity(1024),
                        closing: false,
                    });
                    recv(&mut ring, &mut c)?;
                    conns.insert(res, c);
                }
                RECV => {
                    let Some(c) = conns.get_mut(&fd) else {
                        continue;
                    };
                    let ok = res > 0 && {
                        c.input.extend_from_slice(&c.chunk[..res as usize]);
                        let UConn {
                            dec, input, next, ..
                        } = &mut **c;
                        answer(dec, input, next)
                    };
                    if !ok {
                        // A send may still be in flight: the kernel holds a pointer
                        // into this connection until it completes.
                        if c.sending.is_empty() {
                            // SAFETY: the descriptor is ours and nothing else is queued.
                            unsafe { libc::close(fd) };
                            conns.remove(&fd);
                        } else {
                            c.closing = true;
                        }
                        continue;
                    }
                    if c.sending.is_empty() && !c.next.is_empty() {
                        std::mem::swap(&mut c.sending, &mut c.next);
                        send(&mut ring, c)?;
                    }
                    recv(&mut ring, c)?;
                }
                SEND => {
                    let Some(c) = conns.get_mut(&fd) else {
                        continue;
                    };
                    if res < 0 {
                        // A recv is still queued into this connection's buffer: end it
                        // with a shutdown, and let its completion close and free.
                        c.sending.clear();
                        c.next.clear();
                        // SAFETY: shutdown on a descriptor we own touches no memory.
                        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
                        continue;
                    }
                    c.sending.drain(..res as usize);
                    if c.sending.is_empty() {
                        std::mem::swap(&mut c.sending, &mut c.next);
                    }
                    if !c.sending.is_empty() {
                        send(&mut ring, c)?;
                    } else if c.closing {
                        // SAFETY: as above; the last send is done.
                        unsafe { libc::close(fd) };
                        conns.remove(&fd);
                    }
                }
                _ => {}
            }
        }
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("epoll", String::as_str);
    let port = args.get(2).and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!("{}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    match mode {
        "uring" => run_uring(listener),
        _ => run_epoll(listener),
    }
}
