//! Operability: rates sampled the way Redis samples them, and a Prometheus `/metrics`
//! endpoint on `--metrics-port`.
//!
//! [`sample`] runs every 100 ms and keeps the last 16 samples of the command and
//! expired-key counters, from which `INFO` reports `instantaneous_ops_per_sec` and the
//! expiry section's `expired_per_sec`. [`serve`] answers HTTP `GET /metrics` with the
//! text exposition format: throughput, the batch latency histogram, keys and memory,
//! expiry lag, and the raft state with its fsync latency histogram.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sessiond_cluster::status::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

use crate::server::Shared;

const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const SAMPLES: usize = 16;

/// Rates computed by [`sample`].
#[derive(Default)]
pub struct Rates {
    pub ops_per_sec: AtomicU64,
    pub expired_per_sec: AtomicU64,
}

/// Sample the counters every 100 ms until the task is dropped.
pub async fn sample(shared: Arc<Shared>) {
    let mut ring: Vec<(Instant, u64, u64)> = Vec::with_capacity(SAMPLES);
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Client tracking's upkeep: a table over its limit shrinks, and BCAST changes
        // no command sent yet (the expiry thread's) go out.
        shared.tracking.enforce_limit();
        shared.tracking.broadcast();

        let now = Instant::now();
        let cmds = shared.stats.commands.load(Ordering::Relaxed);
        // Not while a script holds the store (see `crate::script`): skip this sample.
        let Some(expired) = shared
            .scripts
            .gate
            .enter()
            .map(|_pass| expired_total(&shared))
        else {
            continue;
        };
        if ring.len() == SAMPLES {
            ring.remove(0);
        }
        ring.push((now, cmds, expired));
        if let (Some(first), Some(last)) = (ring.first(), ring.last()) {
            let secs = last.0.duration_since(first.0).as_secs_f64();
            if secs > 0.0 {
                let rate = |a: u64, b: u64| (b.saturating_sub(a) as f64 / secs).round() as u64;
                let r = &shared.rates;
                r.ops_per_sec
                    .store(rate(first.1, last.1), Ordering::Relaxed);
                r.expired_per_sec
                    .store(rate(first.2, last.2), Ordering::Relaxed);
            }
        }
    }
}

/// Keys removed because they expired, over every shard of every database.
pub fn expired_total(shared: &Shared) -> u64 {
    shared
        .dbs()
        .map(|(_, s)| {
            (0..s.shard_count())
                .map(|i| s.lock(i).expired())
                .sum::<u64>()
        })
        .sum()
}

/// Accept HTTP connections on `listener` and answer each with the metrics.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &shared).await {
                debug!(error = %e, "metrics request");
            }
        });
    }
}

/// One request: read the head (bounded), reply, close.
async fn answer(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(deadline);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        tokio::select! {
            n = stream.read(&mut buf) => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                head.extend_from_slice(&buf[..n]);
                if head.len() > 8192 {
                    break;
                }
            }
            _ = &mut deadline => return Ok(()),
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let page = || shared.scripts.gate.enter().map(|_pass| render(shared));
    let (status, ctype, body) = if method == b"GET" && (path == b"/metrics" || path == b"/") {
        match page() {
            Some(body) => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body),
            // A script holds the store.
            None => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                "busy running a script\n".to_string(),
            ),
        }
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "try GET /metrics\n".to_string(),
        )
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    );
}

fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    let (buckets, sum_us) = h.snapshot();
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} histogram\n");
    let mut count = 0;
    for (le, n) in buckets {
        count = n;
        match le {
            Some(us) => {
                let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {n}", us as f64 / 1e6);
            }
            None => {
                let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
            }
        }
    }
    let _ = writeln!(out, "{name}_sum {}", sum_us as f64 / 1e6);
    let _ = writeln!(out, "{name}_count {count}");
}

/// The Prometheus text exposition of this node.
pub fn render(shared: &Shared) -> String {
    let mut o = String::with_capacity(4096);
    let st = &shared.stats;
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let (mut keys, mut timers) = (0, 0);
    for (_, store) in shared.dbs() {
        for i in 0..store.shard_count() {
            let s = store.lock(i);
            keys += s.len();
            timers += s.volatile();
        }
    }
    metric(
        &mut o,
        "sessiond_up",
        "gauge",
        "1 while the server runs.",
        1,
    );
    metric(
        &mut o,
        "sessiond_uptime_seconds",
        "gauge",
        "Seconds since start.",
        shared.started.elapsed().as_secs(),
    );
    metric(
        &mut o,
        "sessiond_commands_processed_total",
        "counter",
        "Commands run.",
        ld(&st.commands),
    );
    metric(
        &mut o,
        "sessiond_instantaneous_ops_per_sec",
        "gauge",
        "Commands per second over the last 1.6 s.",
        ld(&shared.rates.ops_per_sec),
    );
    histogram(
        &mut o,
        "sessiond_batch_duration_seconds",
        "Time to run the commands of one read from a client and write their replies.",
        &st.batch_latency,
    );
    metric(
        &mut o,
        "sessiond_connected_clients",
        "gauge",
        "Client connections.",
        shared.connected.load(Ordering::Relaxed),
    );
    metric(
        &mut o,
        "sessiond_connections_received_total",
        "counter",
        "Connections accepted.",
        ld(&st.connections_received),
    );
    metric(&mut o, "sessiond_keys", "gauge", "Keys in the store.", keys);
    metric(
        &mut o,
        "sessiond_keyspace_hits_total",
        "counter",
        "Lookups that found the key.",
        ld(&st.keyspace_hits),
    );
    metric(
        &mut o,
        "sessiond_keyspace_misses_total",
        "counter",
        "Lookups that did not.",
        ld(&st.keyspace_misses),
    );
    metric(
        &mut o,
        "sessiond_used_memory_bytes",
        "gauge",
        "Bytes allocated.",
        crate::mem::allocated(),
    );
    metric(
        &mut o,
        "sessiond_rss_bytes",
        "gauge",
        "Resident set size.",
        crate::mem::rss(),
    );
    metric(
        &mut o,
        "sessiond_expiry_timers",
        "gauge",
        "Keys with a TTL (timers in the wheels).",
        timers,
    );
    metric(
        &mut o,
        "sessiond_expired_keys_total",
        "counter",
        "Keys removed because they expired.",
        expired_total(shared),
    );
    metric(
        &mut o,
        "sessiond_expired_keys_per_sec",
        "gauge",
        "Keys expired per second over the last 1.6 s.",
        ld(&shared.rates.expired_per_sec),
    );
    metric(
        &mut o,
        "sessiond_expiry_max_lag_seconds",
        "gauge",
        "The longest a due key waited for active expiry.",
        ld(&shared.expirer.max_lag_ms) as f64 / 1e3,
    );
    metric(
        &mut o,
        "sessiond_pubsub_channels",
        "gauge",
        "Channels with subscribers.",
        shared.pubsub.channels(None).len(),
    );
    if let Some(c) = shared.cluster() {
        let cs = &c.status;
        metric(
            &mut o,
            "sessiond_raft_is_leader",
            "gauge",
            "1 on the leader.",
            u8::from(cs.is_leader()),
        );
        metric(
            &mut o,
            "sessiond_raft_leader_id",
            "gauge",
            "The leader's node id (0: none).",
            cs.leader_id(),
        );
        metric(
            &mut o,
            "sessiond_raft_term",
            "gauge",
            "Raft term.",
            ld(&cs.term),
        );
        metric(
            &mut o,
            "sessiond_raft_commit_index",
            "gauge",
            "Highest committed log index.",
            ld(&cs.commit),
        );
        metric(
            &mut o,
            "sessiond_raft_applied_index",
            "gauge",
            "Highest applied log index.",
            ld(&cs.applied),
        );
        metric(
            &mut o,
            "sessiond_raft_snapshot_index",
            "gauge",
            "Log index of the latest snapshot.",
            ld(&cs.snapshot_index),
        );
        metric(
            &mut o,
            "sessiond_raft_leader_changes_total",
            "counter",
            "Leader changes seen.",
            ld(&cs.leader_changes),
        );
        metric(
            &mut o,
            "sessiond_raft_log_bytes_written_total",
            "counter",
            "Bytes written to the raft log.",
            ld(&cs.log_bytes),
        );
        histogram(
            &mut o,
            "sessiond_raft_fsync_duration_seconds",
            "fsync of the raft log.",
            &cs.fsync_hist,
        );
    }
    o
}
