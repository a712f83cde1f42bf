//! TLS for clients: redis-cli `--tls` against `--tls-port`, the server certificate
//! checked by the client, client certificates required with `--tls-ca-cert-file`, and
//! plain text on the TLS port refused without harm; and mutual TLS between cluster peers.
//! Certificates are made with openssl (the test fails, never skips, without it).

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{wait_until, Server};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// A self-signed CA: `<name>.key` and `<name>.crt` in `dir`.
fn make_ca(dir: &Path, name: &str) {
    let (key, crt, subj) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN=sessiond test {name}"),
    );
    let mut ca = vec!["req", "-x509"];
    ca.extend(EC);
    ca.extend([
        "-keyout",
        &key,
        "-out",
        &crt,
        "-days",
        "2",
        "-subj",
        &subj,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
}

/// A certificate `<name>.crt` (key `<name>.key`) signed by the CA `<ca>`, with `ext`.
fn sign(dir: &Path, ca: &str, name: &str, ext: &str) {
    let mut req = vec!["req"];
    req.extend(EC);
    let (key, csr, crt) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
    );
    let ext_file = format!("{name}.ext");
    std::fs::write(dir.join(&ext_file), ext).expect("ext file");
    let subj = format!("/CN={name}");
    req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
    openssl(dir, &req);
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext_file,
        ],
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, in `dir`.
fn make_certs(dir: &Path) {
    make_ca(dir, "ca");
    sign(dir, "ca", "server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n");
    sign(
        dir,
        "ca",
        "client",
        "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
    );
}

fn tls_port(srv: &Server) -> u16 {
    let mut port = None;
    assert!(wait_until(Duration::from_secs(10), || {
        port = srv
            .log_text()
            .lines()
            .find_map(|l| l.split("TLS clients at ").nth(1))
            .and_then(|a| a.trim().rsplit(':').next()?.parse().ok());
        port.is_some()
    }));
    port.unwrap_or_default()
}

fn cli(port: u16, dir: &Path, extra: &[&str], cmd: &[&str]) -> (bool, String) {
    let out = Command::new("redis-cli")
        .args(["--tls", "-p", &port.to_string()])
        .args(extra)
        .args(cmd)
        .current_dir(dir)
        .output()
        .expect("redis-cli must be installed (apt-get install redis-tools)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && !text.contains("Could not"),
        text.trim().to_string(),
    )
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sessiond-tls-{}-{}",
        std::process::id(),
        support::cluster::free_port()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn redis_cli_over_tls_with_and_without_client_certificates() {
    let dir = tempdir();
    make_certs(&dir);
    let p = |f: &str| dir.join(f).display().to_string();
    let srv = Server::start_with(&[
        "--tls-port",
        "0",
        "--tls-cert-file",
        &p("server.crt"),
        "--tls-key-file",
        &p("server.key"),
    ]);
    let port = tls_port(&srv);
    let ca = ["--cacert", "ca.crt"];
    assert_eq!(cli(port, &dir, &ca, &["PING"]), (true, "PONG".to_string()));
    assert_eq!(cli(port, &dir, &ca, &["SET", "tls", "works"]).1, "OK");
    // The same data through the plain port.
    let v: String = redis::cmd("GET")
        .arg("tls")
        .query(&mut srv.conn())
        .expect("GET");
    assert_eq!(v, "works");
    // A client that does not trust our CA refuses the server.
    let (ok, text) = cli(port, &dir, &[], &["PING"]);
    assert!(!ok, "connected without trusting the CA: {text}");
    // Plain text on the TLS port is dropped; the server goes on.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = raw.write_all(b"PING\r\n");
    let mut buf = Vec::new();
    let _ = raw.read_to_end(&mut buf);
    assert!(
        !buf.starts_with(b"+PONG"),
        "plain text answered on the TLS port"
    );
    assert_eq!(cli(port, &dir, &ca, &["PING"]).1, "PONG");

    // The redis crate's TLS (rustls), trusting our CA.
    let client = redis::Client::build_with_tls(
        format!("rediss://127.0.0.1:{port}/"),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(dir.join("ca.crt")).expect("ca.crt")),
        },
    )
    .expect("TLS client");
    let mut con = client.get_connection().expect("TLS connection");
    let v: String = redis::cmd("GET")
        .arg("tls")
        .query(&mut con)
        .expect("GET over TLS");
    assert_eq!(v, "works");

    // Client certificates required.
    let srv2 = Server::start_with(&[
        "--tls-port",
        "0",
        "--tls-cert-file",
        &p("server.crt"),
        "--tls-key-file",
        &p("server.key"),
        "--tls-ca-cert-file",
        &p("ca.crt"),
    ]);
    let port2 = tls_port(&srv2);
    let (ok, text) = cli(port2, &dir, &ca, &["PING"]);
    assert!(!ok, "connected without a client certificate: {text}");
    let with_cert = [
        "--cacert",
        "ca.crt",
        "--cert",
        "client.crt",
        "--key",
        "client.key",
    ];
    assert_eq!(
        cli(port2, &dir, &with_cert, &["PING"]),
        (true, "PONG".to_string())
    );
    let client = redis::Client::build_with_tls(
        format!("rediss://127.0.0.1:{port2}/"),
        redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig {
                client_cert: std::fs::read(dir.join("client.crt")).expect("client.crt"),
                client_key: std::fs::read(dir.join("client.key")).expect("client.key"),
            }),
            root_cert: Some(std::fs::read(dir.join("ca.crt")).expect("ca.crt")),
        },
    )
    .expect("mTLS client");
    let mut con = client.get_connection().expect("mTLS connection");
    let pong: String = redis::cmd("PING").query(&mut con).expect("PING over mTLS");
    assert_eq!(pong, "PONG");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--cluster-tls-*`: a 3-node cluster whose peers talk over mutual TLS elects a leader
/// and replicates; a process with a certificate from another CA, or none, or speaking
/// plain text, is refused at the raft port and changes nothing.
#[test]
fn cluster_peers_talk_over_mutual_tls_and_refuse_strangers() {
    let dir = std::env::temp_dir().join(format!("sessiond-peer-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let peer_ext = "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n";
    make_ca(&dir, "ca");
    sign(&dir, "ca", "peer", peer_ext);
    make_ca(&dir, "rogue-ca");
    sign(&dir, "rogue-ca", "rogue", peer_ext);
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let (cert, key, ca) = (p("peer.crt"), p("peer.key"), p("ca.crt"));
    let c = support::cluster::Cluster::start(
        3,
        &[
            "--cluster-tls-cert-file",
            &cert,
            "--cluster-tls-key-file",
            &key,
            "--cluster-tls-ca-cert-file",
            &ca,
        ],
    );
    let l = c.wait_leader(Duration::from_secs(20));
    let f = (l + 1) % 3;
    let mut con = c.node(f).conn();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("SET via follower");
    for n in 0..3 {
        let mut con = c.node(n).conn();
        assert!(
            wait_until(Duration::from_secs(10), || {
                redis::cmd("GET")
                    .arg("k")
                    .query::<Option<String>>(&mut con)
                    .ok()
                    == Some(Some("v".into()))
            }),
            "node {n} did not get the write"
        );
    }
    // Strangers at a raft port: the rogue CA's certificate, no certificate, plain text.
    let raft = c.raft_addr(l);
    let s_client = |extra: &[&str]| {
        let mut args = vec![
            "s_client",
            "-connect",
            &raft,
            "-CAfile",
            "ca.crt",
            "-verify_return_error",
        ];
        args.extend(extra);
        let out = Command::new("openssl")
            .args(&args)
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut ch| {
                // Something to send once connected: a frame would need a session first.
                let _ = ch.stdin.take().map(|mut i| i.write_all(b"garbage\n"));
                ch.wait_with_output()
            })
            .expect("openssl s_client");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let _ = s_client(&["-cert", "rogue.crt", "-key", "rogue.key"]);
    let _ = s_client(&[]);
    let mut plain = std::net::TcpStream::connect(&raft).expect("raft port");
    let _ = plain.write_all(b"\x00\x00\x00\x10plain text frame");
    let mut sink = [0u8; 64];
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = plain.read(&mut sink);
    assert!(
        wait_until(Duration::from_secs(10), || c
            .logs()
            .matches("rejected a peer connection: TLS")
            .count()
            >= 3),
        "strangers were not refused:\n{}",
        c.logs()
    );
    // The cluster did not notice: same leader, still replicating.
    assert_eq!(c.leader(), Some(l));
    let _: () = redis::cmd("SET")
        .arg("k2")
        .arg("v2")
        .query(&mut con)
        .expect("SET after");
    let _ = std::fs::remove_dir_all(&dir);
}
