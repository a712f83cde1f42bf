//! The redis.conf-style settings file, and the memory sizes it (and `CONFIG SET`)
//! takes.

use super::*;

/// Parse a memory size the way redis.conf does: `1024`, `1k`, `1kb`, `512mb`, `1gb`.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mul = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// Split a redis.conf line into words, honouring double and single quotes.
fn words(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else {
            return Some(out);
        };
        let mut w = String::new();
        if c == '"' || c == '\'' {
            chars.next();
            loop {
                match chars.next() {
                    Some(ch) if ch == c => break,
                    Some('\\') if c == '"' => w.push(chars.next()?),
                    Some(ch) => w.push(ch),
                    None => return None,
                }
            }
        } else {
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                w.push(ch);
                chars.next();
            }
        }
        out.push(w);
    }
}

/// Parse a redis.conf-style file. Unknown directives are errors, so typos don't pass
/// silently; Redis persistence directives that describe what sessiond already does
/// (`save ""`, `appendonly no`, `daemonize no`, `protected-mode`) are accepted.
pub fn parse_file(path: &Path, text: &str) -> Result<Args, ConfigError> {
    let mut a = Args::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |msg: String| ConfigError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            msg,
        };
        let w = words(line).ok_or_else(|| err("unbalanced quotes".into()))?;
        let Some((name, rest)) = w.split_first() else {
            continue;
        };
        let name = name.to_ascii_lowercase().replace('_', "-");
        let one = || -> Result<&String, ConfigError> {
            rest.first()
                .filter(|_| rest.len() == 1 || name == "bind" || name == "save")
                .ok_or_else(|| err(format!("'{name}' takes one argument")))
        };
        let num = |v: &String| -> Result<u64, ConfigError> {
            parse_memory(v).ok_or_else(|| err(format!("'{name}': '{v}' is not a number")))
        };
        match name.as_str() {
            "bind" => a.bind = Some(one()?.clone()),
            "port" => {
                let p = num(one()?)?;
                a.port = Some(u16::try_from(p).map_err(|_| err(format!("port {p} out of range")))?);
            }
            "metrics-port" => {
                let p = num(one()?)?;
                a.metrics_port =
                    Some(u16::try_from(p).map_err(|_| err(format!("port {p} out of range")))?);
            }
            "shards" => a.shards = Some(num(one()?)? as usize),
            "coalesce-us" => a.coalesce_us = Some(one()?.parse().map_err(err)?),
            "threads" | "io-threads" => a.threads = Some(num(one()?)? as usize),
            "runtime" => {
                let v = one()?;
                a.runtime = Some(<RuntimeKind as clap::ValueEnum>::from_str(v, true).map_err(
                    |_| {
                        err(format!(
                            "'runtime' must be per-thread or work-stealing, not '{v}'"
                        ))
                    },
                )?);
            }
            "log-format" => {
                let v = one()?;
                a.log_format = Some(
                    <LogFormat as clap::ValueEnum>::from_str(v, true).map_err(|_| {
                        err(format!("'log-format' must be text or json, not '{v}'"))
                    })?,
                );
            }
            "loglevel" | "log-level" => {
                let v = one()?.to_ascii_lowercase();
                a.log_level = Some(match v.as_str() {
                    "verbose" => "debug".into(),
                    "notice" => "info".into(),
                    "warning" => "warn".into(),
                    _ => v,
                });
            }
            "proto-max-bulk-len" => a.proto_max_bulk_len = Some(num(one()?)?),
            "node-id" => a.node_id = Some(num(one()?)?),
            "peers" => a.peers = Some(one()?.clone()),
            "raft-port" => {
                let p = num(one()?)?;
                a.raft_port =
                    Some(u16::try_from(p).map_err(|_| err(format!("port {p} out of range")))?);
            }
            "cluster-addr" => a.cluster_addr = Some(one()?.clone()),
            "advertise-addr" => a.advertise_addr = Some(one()?.clone()),
            "dir" => a.dir = Some(PathBuf::from(one()?)),
            "join" => a.join = one()?.eq_ignore_ascii_case("yes"),
            "read-consistency" => {
                let v = one()?;
                a.read_consistency = Some(
                    <ReadMode as clap::ValueEnum>::from_str(v, true).map_err(|_| {
                        err(format!(
                            "'read-consistency' must be linearizable, lease or stale, not '{v}'"
                        ))
                    })?,
                );
            }
            "follower-mode" => {
                let v = one()?;
                a.follower_mode = Some(
                    <FollowerMode as clap::ValueEnum>::from_str(v, true).map_err(|_| {
                        err(format!(
                            "'follower-mode' must be proxy or redirect, not '{v}'"
                        ))
                    })?,
                );
            }
            "tick-ms" => a.tick_ms = Some(num(one()?)?),
            "snapshot-entries" => a.snapshot_entries = Some(num(one()?)?),
            "snapshot-bytes" => a.snapshot_bytes = Some(num(one()?)?),
            "wal-segment-bytes" => a.wal_segment_bytes = Some(num(one()?)?),
            "raft-log-memory" => a.raft_log_memory = Some(num(one()?)?),
            "request-timeout-ms" => a.request_timeout_ms = Some(num(one()?)?),
            "max-clock-skew" => a.max_clock_skew = Some(num(one()?)?),
            "cluster-secret" => a.cluster_secret = Some(one()?.clone()),
            "requirepass" => a.requirepass = Some(one()?.clone()),
            "user" => a.users.push(one()?.clone()),
            "aclfile" => a.aclfile = Some(one()?.clone()),
            "protected-mode" => {
                let v = one()?;
                a.protected_mode =
                    Some(<YesNo as clap::ValueEnum>::from_str(v, true).map_err(|_| {
                        err(format!("'protected-mode' must be yes or no, not '{v}'"))
                    })?);
            }
            "maxclients" => a.maxclients = Some(num(one()?)? as usize),
            "timeout" => a.timeout = Some(num(one()?)?),
            "client-output-limit" => a.client_output_limit = Some(num(one()?)?),
            "client-query-buffer-limit" => a.client_query_buffer_limit = Some(num(one()?)?),
            "maxmemory" => a.maxmemory = Some(num(one()?)?),
            "tls-port" => {
                let p = num(one()?)?;
                a.tls_port =
                    Some(u16::try_from(p).map_err(|_| err(format!("port {p} out of range")))?);
            }
            "tls-cert-file" => a.tls_cert_file = Some(PathBuf::from(one()?)),
            "tls-key-file" => a.tls_key_file = Some(PathBuf::from(one()?)),
            "tls-ca-cert-file" => a.tls_ca_cert_file = Some(PathBuf::from(one()?)),
            "cluster-tls-cert-file" => a.cluster_tls_cert_file = Some(PathBuf::from(one()?)),
            "cluster-tls-key-file" => a.cluster_tls_key_file = Some(PathBuf::from(one()?)),
            "cluster-tls-ca-cert-file" => a.cluster_tls_ca_cert_file = Some(PathBuf::from(one()?)),
            "tls-auth-clients" => {
                let v = one()?;
                a.tls_auth_clients = Some(
                    <TlsAuthClients as clap::ValueEnum>::from_str(v, true).map_err(|_| {
                        err(format!(
                            "'tls-auth-clients' must be yes, optional or no, not '{v}'"
                        ))
                    })?,
                );
            }
            "maxmemory-policy" => {
                let v = one()?;
                a.maxmemory_policy = Some(
                    <MaxmemoryPolicy as clap::ValueEnum>::from_str(v, true).map_err(|_| {
                        err(format!(
                            "'maxmemory-policy' must be volatile-ttl, allkeys-lru or noeviction, not '{v}'"
                        ))
                    })?,
                );
            }
            "client-write-timeout" => a.client_write_timeout = Some(num(one()?)?),
            "save" | "appendonly" | "daemonize" | "databases" => {
                let v = rest.join(" ");
                let ok = match name.as_str() {
                    "save" => v.is_empty(),
                    "appendonly" | "daemonize" => v.eq_ignore_ascii_case("no"),
                    "databases" => v
                        .parse::<usize>()
                        .is_ok_and(|n| (1..=crate::server::DATABASES).contains(&n)),
                    _ => true,
                };
                if !ok {
                    return Err(err(format!("'{name} {v}' is not supported by sessiond")));
                }
            }
            _ => return Err(err(format!("unknown directive '{name}'"))),
        }
    }
    Ok(a)
}
