//! TLS for clients, with rustls: `--tls-port` serves the same protocol as the plain port
//! over TLS, with the certificate and key from `--tls-cert-file` / `--tls-key-file`.
//! With `--tls-ca-cert-file`, client certificates signed by that CA are verified:
//! required (`--tls-auth-clients yes`, the default then, as in Redis), optional, or not
//! asked for (`no`).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use crate::config::{Config, TlsAuthClients};
use crate::server::Shared;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut BufReader::new(f)).collect();
    let certs = certs.map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", path.display()));
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut BufReader::new(f))
        .map_err(|e| format!("{}: {e}", path.display()))?
        .ok_or_else(|| format!("{}: no private key found", path.display()))
}

/// The TLS acceptor `--tls-*` describe, or `None` without `--tls-port`.
pub fn acceptor(cfg: &Config) -> Result<Option<TlsAcceptor>, String> {
    if cfg.tls_port.is_none() {
        return Ok(None);
    }
    let (Some(cert), Some(key_file)) = (&cfg.tls_cert_file, &cfg.tls_key_file) else {
        return Err("--tls-port needs --tls-cert-file and --tls-key-file".into());
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match (&cfg.tls_ca_cert_file, cfg.tls_auth_clients) {
        (Some(ca), auth) if auth != TlsAuthClients::No => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca)? {
                roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if auth == TlsAuthClients::Optional {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder.with_client_cert_verifier(v.build().map_err(|e| e.to_string())?)
        }
        _ => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs(cert)?, key(key_file)?)
        .map_err(|e| e.to_string())?;
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// Mutual TLS between cluster peers from `--cluster-tls-*`: both sides present the
/// node's certificate, and both require the other's to chain to the cluster's CA (the
/// connecting side also checks that it names the host it dialled).
pub fn peer_tls(
    cert: &Path,
    key_file: &Path,
    ca: &Path,
) -> Result<sessiond_cluster::PeerTls, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in certs(ca)? {
        roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let roots = Arc::new(roots);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(cert)?, key(key_file)?)
        .map_err(|e| e.to_string())?;
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs(cert)?, key(key_file)?)
        .map_err(|e| e.to_string())?;
    Ok(sessiond_cluster::PeerTls {
        client: Arc::new(client),
        server: Arc::new(server),
    })
}

/// Accept TLS clients on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    let laddr = listener.local_addr().unwrap_or(shared.local_addr);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "TLS accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        crate::connection::tune_socket(&tcp, &shared);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&tcp);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => crate::connection::serve_stream(tls, peer, laddr, fd, shared).await,
                Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// The address the TLS listener should bind.
pub fn bind_addr(cfg: &Config, port: u16) -> String {
    format!("{}:{port}", cfg.bind)
}
