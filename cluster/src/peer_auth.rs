//! Peers prove they hold the cluster's secret (`--cluster-secret`) before any raft
//! message is accepted, by a mutual challenge over the new connection:
//!
//! ```text
//! acceptor  -> connector: nonce_a (16 bytes)
//! connector -> acceptor:  nonce_c (16) | HMAC-SHA256(secret, "connect" | nonce_a | nonce_c)
//! acceptor  -> connector: HMAC-SHA256(secret, "accept" | nonce_c | nonce_a)
//! ```
//!
//! Each side checks the other's tag in constant time and drops the connection on a
//! mismatch, so a process without the secret can neither inject messages nor pose as a
//! peer to receive them, and a recorded handshake cannot be replayed (fresh nonces). The
//! secret itself never crosses the wire. Without a secret no handshake is made.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

type HmacSha256 = Hmac<Sha256>;

const NONCE: usize = 16;
const TAG: usize = 32;
/// How long a handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A fresh nonce: unique per call (a counter and the clock, mixed with per-process
/// random keys), so that a recorded handshake never matches a new one.
fn nonce() -> [u8; NONCE] {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut out = [0u8; NONCE];
    for (i, half) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u128(t);
        h.write_usize(i);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

fn tag(secret: &[u8], label: &[u8], a: &[u8], b: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    let mut m = <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(label);
    m.update(a);
    m.update(b);
    m
}

/// The accepting side's handshake. `Err` means: drop the connection.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &[u8],
) -> Result<(), String> {
    let na = nonce();
    s.write_all(&na).await.map_err(|e| e.to_string())?;
    let mut msg = [0u8; NONCE + TAG];
    s.read_exact(&mut msg).await.map_err(|e| e.to_string())?;
    let (nc, their) = msg.split_at(NONCE);
    tag(secret, b"connect", &na, nc)
        .verify_slice(their)
        .map_err(|_| "peer failed authentication (wrong or missing cluster secret)".to_string())?;
    let ours = tag(secret, b"accept", nc, &na).finalize().into_bytes();
    s.write_all(&ours).await.map_err(|e| e.to_string())
}

/// The connecting side's handshake. `Err` means: drop the connection.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &[u8],
) -> Result<(), String> {
    let mut na = [0u8; NONCE];
    s.read_exact(&mut na).await.map_err(|e| e.to_string())?;
    let nc = nonce();
    let ours = tag(secret, b"connect", &na, &nc).finalize().into_bytes();
    let mut msg = Vec::with_capacity(NONCE + TAG);
    msg.extend_from_slice(&nc);
    msg.extend_from_slice(&ours);
    s.write_all(&msg).await.map_err(|e| e.to_string())?;
    let mut their = [0u8; TAG];
    s.read_exact(&mut their).await.map_err(|e| e.to_string())?;
    tag(secret, b"accept", &nc, &na)
        .verify_slice(&their)
        .map_err(|_| "peer failed authentication (wrong cluster secret)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair(a: &'static [u8], c: &'static [u8]) -> (Result<(), String>, Result<(), String>) {
        let (mut x, mut y) = tokio::io::duplex(1024);
        let acc = tokio::spawn(async move { accept(&mut x, a).await });
        let con = connect(&mut y, c).await;
        (acc.await.unwrap_or_else(|e| Err(e.to_string())), con)
    }

    #[tokio::test]
    async fn same_secret_passes_both_ways() {
        let (a, c) = pair(b"s3cret", b"s3cret").await;
        assert_eq!(a, Ok(()));
        assert_eq!(c, Ok(()));
    }

    #[tokio::test]
    async fn a_wrong_secret_fails_on_the_acceptor() {
        let (a, c) = pair(b"s3cret", b"guess").await;
        assert!(a.is_err_and(|e| e.contains("failed authentication")));
        // The acceptor hung up instead of answering.
        assert!(c.is_err());
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
    }
}
