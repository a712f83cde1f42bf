//! How the transport notices links that fail without closing.
//!
//! A peer that is killed closes its connections, and the kernel says so at once. A link
//! that drops packets says nothing: the sender's data waits in its send queue while TCP
//! retransmits with exponential backoff (0.2 s, 0.4 s, ... 6.4 s), so after the link is
//! back the connection can stay silent for seconds, and an idle receiving connection
//! never learns that its sender is gone. Three mechanisms, each cheap:
//!
//! - **A user timeout** on every peer socket ([`tune`]): data unacknowledged for
//!   [`USER_TIMEOUT`] aborts the connection, and the transport reconnects with a fresh
//!   handshake instead of waiting out the backoff. Keepalive probes after one idle
//!   second do the same for a connection that carries nothing, such as a receiving one.
//! - **A progress check** ([`stuck`]): a sending connection with data in flight and no
//!   acknowledgement for [`STUCK`], while the same peer is heard from on its own
//!   connection, is stuck in backoff on a link that works again; it is dropped at once.
//!   (This is what froze a follower for seconds after a flapping link: its responses
//!   sat in a send queue at backoff 5 while the leader's heartbeats reached it.)
//! - **Connection attempts paced by the network** ([`ConnectTimer`]): when an attempt
//!   has no answer within four times the longest recent handshake (100 ms to 1 s), a
//!   fresh one starts beside it, so that on a LAN a SYN lost to a dead link is sent
//!   again 100 ms later instead of at the kernel's 1 s retransmission, and a slow
//!   network's handshake still completes on the earlier attempt.
//!
//! - **A hang-up check** ([`peer_closed`]): an idle sending connection whose peer closed
//!   it (its process died) is noticed within [`CHECK_EVERY`], not at the next write.
//!
//! None of these acts on a slow peer process: the kernel acknowledges data for a
//! process that is busy or paused, until its receive buffer is full.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Data unacknowledged this long aborts a peer connection (`TCP_USER_TIMEOUT`).
pub const USER_TIMEOUT: Duration = Duration::from_millis(1000);
/// A sending connection whose peer answers elsewhere is stuck after this long without
/// an acknowledgement: longer than one retransmission at the minimum RTO (200 ms).
pub const STUCK: Duration = Duration::from_millis(300);
/// How often a sending connection is checked for progress.
pub const CHECK_EVERY: Duration = Duration::from_millis(100);

fn setopt(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: `value` outlives the call and its size is passed with it; a bad descriptor
    // makes the call fail, which is reported.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

/// Set a peer socket's user timeout and keepalive. False if the system refused.
pub fn tune(fd: RawFd) -> bool {
    let ms = USER_TIMEOUT.as_millis() as libc::c_int;
    setopt(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, ms)
        && setopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)
        && setopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 1)
        && setopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 1)
        && setopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3)
}

/// What the kernel says of a connection's data in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// Segments sent and not acknowledged.
    pub unacked: u32,
    /// Since the last acknowledgement arrived.
    pub since_ack: Duration,
}

pub fn in_flight(fd: RawFd) -> Option<InFlight> {
    #[allow(unsafe_code)]
    // SAFETY: `info` is plain old data of the size passed; the kernel writes at most
    // `len` bytes into it and says how many.
    let (r, info) = unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let r = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        );
        (r, info)
    };
    (r == 0).then(|| InFlight {
        unacked: info.tcpi_unacked,
        since_ack: Duration::from_millis(u64::from(info.tcpi_last_ack_recv)),
    })
}

/// Whether the peer has closed a connection it never sends on (its process is gone, or
/// it hung up): a peek finds the end of the stream, or an error.
pub fn peer_closed(fd: RawFd) -> bool {
    let mut b = [0u8; 1];
    #[allow(unsafe_code)]
    // SAFETY: reads at most one byte into `b`, which outlives the call; MSG_PEEK leaves
    // it in the socket and MSG_DONTWAIT never blocks.
    let n = unsafe {
        libc::recv(
            fd,
            b.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n == 0 {
        return true;
    }
    n < 0
        && !matches!(
            std::io::Error::last_os_error().kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
        )
}

/// Whether a sending connection is stuck: data in flight, no acknowledgement for
/// [`STUCK`], and the peer heard from within that time on another connection.
pub fn stuck(f: InFlight, heard_ago: Option<Duration>) -> bool {
    f.unacked > 0 && f.since_ack >= STUCK && heard_ago.is_some_and(|h| h < STUCK)
}

/// When each peer was last heard from, on any connection.
#[derive(Default)]
pub struct Heard(Mutex<HashMap<u64, Instant>>);

impl Heard {
    pub fn mark(&self, id: u64) {
        self.0.lock().insert(id, Instant::now());
    }

    pub fn ago(&self, id: u64) -> Option<Duration> {
        self.0.lock().get(&id).map(Instant::elapsed)
    }
}

/// A connect timeout of four times the longest recent handshake, within 100 ms to 1 s.
pub struct ConnectTimer {
    recent: Duration,
}

const CONNECT_MIN: Duration = Duration::from_millis(100);
const CONNECT_MAX: Duration = Duration::from_secs(1);

impl Default for ConnectTimer {
    fn default() -> Self {
        // Until a handshake is seen, the shortest timeout: an attempt that needs longer
        // still completes, beside the ones started after it.
        ConnectTimer {
            recent: CONNECT_MIN / 4,
        }
    }
}

impl ConnectTimer {
    pub fn timeout(&self) -> Duration {
        (self.recent * 4).clamp(CONNECT_MIN, CONNECT_MAX)
    }

    /// A handshake took `took`: the longest counts at once, and it fades by half per
    /// later handshake.
    pub fn observe(&mut self, took: Duration) {
        self.recent = took.max(self.recent / 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_needs_data_in_flight_silence_and_a_peer_heard_elsewhere() {
        let ms = Duration::from_millis;
        let f = |unacked, ack| InFlight {
            unacked,
            since_ack: ms(ack),
        };
        assert!(stuck(f(3, 400), Some(ms(50))));
        assert!(!stuck(f(0, 400), Some(ms(50))), "nothing in flight");
        assert!(!stuck(f(3, 100), Some(ms(50))), "acknowledged lately");
        assert!(!stuck(f(3, 400), Some(ms(900))), "the peer is silent too");
        assert!(!stuck(f(3, 400), None), "never heard");
    }

    #[test]
    fn connect_timeout_follows_handshakes_within_bounds() {
        let mut t = ConnectTimer::default();
        assert_eq!(t.timeout(), CONNECT_MIN);
        for _ in 0..40 {
            t.observe(Duration::from_micros(100));
        }
        assert_eq!(t.timeout(), CONNECT_MIN);
        t.observe(Duration::from_millis(80));
        assert_eq!(t.timeout(), Duration::from_millis(320));
        t.observe(Duration::from_secs(5));
        assert_eq!(t.timeout(), CONNECT_MAX);
    }

    #[test]
    fn sockets_take_the_options_and_report_flight() {
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let c = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        assert!(tune(c.as_raw_fd()));
        let f = in_flight(c.as_raw_fd()).expect("tcp_info");
        assert_eq!(f.unacked, 0);
        let (accepted, _) = l.accept().expect("accept");
        assert!(!peer_closed(c.as_raw_fd()));
        drop(accepted);
        let closed = (0..1000).any(|_| {
            std::thread::yield_now();
            peer_closed(c.as_raw_fd())
        });
        assert!(closed, "the peer's close is seen");
    }
}
