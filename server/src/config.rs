//! Settings: command-line flags (clap, each also read from a `SESSIOND_*` environment
//! variable) layered over an optional redis.conf-style file, layered over defaults.
//!
//! Precedence: flag > environment > `--config` file > default.

use std::path::{Path, PathBuf};

use clap::Parser;
use thiserror::Error;

/// sessiond: a datastore for web sessions that speaks the Redis protocol.
///
/// Start it with no flags to listen on 127.0.0.1:6379, then use redis-cli or any Redis
/// client library.
#[derive(Parser, Debug, Default, Clone)]
#[command(name = "sessiond", version, about, long_about)]
pub struct Args {
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long, env = "SESSIOND_BIND")]
    pub bind: Option<String>,

    /// TCP port to listen on; 0 picks a free port [default: 6379]
    #[arg(long, env = "SESSIOND_PORT")]
    pub port: Option<u16>,

    /// Number of lock stripes in the store, a power of two up to 1024 [default: 64]
    #[arg(long, env = "SESSIOND_SHARDS")]
    pub shards: Option<usize>,

    /// Threads serving clients [default: 1]
    #[arg(long, env = "SESSIOND_THREADS")]
    pub threads: Option<usize>,

    /// How threads serve clients: `per-thread` (one tokio current-thread event loop per
    /// thread, each owning the connections it accepted) or `work-stealing` (tokio's
    /// multi-thread runtime) [default: per-thread]
    #[arg(long, env = "SESSIOND_RUNTIME")]
    pub runtime: Option<RuntimeKind>,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive [default: info]
    #[arg(long, env = "SESSIOND_LOG_LEVEL")]
    pub log_level: Option<String>,

    /// Largest bulk string a client may send, in bytes (Redis's proto-max-bulk-len)
    /// [default: 536870912]
    #[arg(long, env = "SESSIOND_PROTO_MAX_BULK_LEN")]
    pub proto_max_bulk_len: Option<u64>,

    /// A redis.conf-style file of `directive value` lines for the settings above
    #[arg(long, env = "SESSIOND_CONFIG")]
    pub config: Option<PathBuf>,
}

/// How client connections are spread over threads.
#[derive(clap::ValueEnum, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// One current-thread tokio runtime per thread; a connection stays where it was accepted.
    #[default]
    PerThread,
    /// tokio's multi-thread, work-stealing runtime with `threads` workers.
    WorkStealing,
}

/// The resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub bind: String,
    pub port: u16,
    pub shards: usize,
    pub threads: usize,
    pub runtime: RuntimeKind,
    pub log_level: String,
    pub proto_max_bulk_len: u64,
    pub config_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".into(),
            port: 6379,
            shards: 64,
            threads: 1,
            runtime: RuntimeKind::PerThread,
            log_level: "info".into(),
            proto_max_bulk_len: 512 * 1024 * 1024,
            config_file: None,
        }
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}, line {line}: {msg}")]
    Line {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl Config {
    /// Resolve flags (and env) over the config file over defaults.
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        let mut file = Args::default();
        if let Some(path) = &args.config {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            file = parse_file(path, &text)?;
        }
        let d = Config::default();
        let cfg = Config {
            bind: args.bind.or(file.bind).unwrap_or(d.bind),
            port: args.port.or(file.port).unwrap_or(d.port),
            shards: args.shards.or(file.shards).unwrap_or(d.shards),
            threads: args.threads.or(file.threads).unwrap_or(d.threads),
            runtime: args.runtime.or(file.runtime).unwrap_or(d.runtime),
            log_level: args.log_level.or(file.log_level).unwrap_or(d.log_level),
            proto_max_bulk_len: args
                .proto_max_bulk_len
                .or(file.proto_max_bulk_len)
                .unwrap_or(d.proto_max_bulk_len),
            config_file: args.config,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.shards == 0
            || self.shards > crate::store::MAX_SHARDS
            || !self.shards.is_power_of_two()
        {
            return Err(ConfigError::Invalid(format!(
                "shards must be a power of two between 1 and {}, got {}",
                crate::store::MAX_SHARDS,
                self.shards
            )));
        }
        if self.threads == 0 || self.threads > 256 {
            return Err(ConfigError::Invalid(format!(
                "threads must be between 1 and 256, got {}",
                self.threads
            )));
        }
        if self.proto_max_bulk_len < 1024 * 1024 {
            return Err(ConfigError::Invalid(
                "proto-max-bulk-len must be at least 1mb".into(),
            ));
        }
        Ok(())
    }
}

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
            "shards" => a.shards = Some(num(one()?)? as usize),
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
            "save" | "appendonly" | "daemonize" | "protected-mode" | "databases" => {
                let v = rest.join(" ");
                let ok = match name.as_str() {
                    "save" => v.is_empty(),
                    "appendonly" | "daemonize" => v.eq_ignore_ascii_case("no"),
                    "databases" => v == "1",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_fill_in_under_flags() {
        let f = parse_file(
            Path::new("x.conf"),
            "# comment\nport 7000\nbind \"0.0.0.0\"\nshards 16\nloglevel notice\nsave \"\"\nproto-max-bulk-len 1gb\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.port, Some(7000));
        assert_eq!(f.bind.as_deref(), Some("0.0.0.0"));
        assert_eq!(f.shards, Some(16));
        assert_eq!(f.log_level.as_deref(), Some("info"));
        assert_eq!(f.proto_max_bulk_len, Some(1024 * 1024 * 1024));
    }

    #[test]
    fn unknown_directive_is_an_error() {
        let e = parse_file(Path::new("x.conf"), "port 1\nmaxmemroy 1gb\n");
        assert!(matches!(e, Err(ConfigError::Line { line: 2, .. })));
        assert!(parse_file(Path::new("x.conf"), "appendonly yes\n").is_err());
        assert!(parse_file(Path::new("x.conf"), "port 70000\n").is_err());
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("512mb"), Some(512 << 20));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("12"), Some(12));
        assert_eq!(parse_memory("x"), None);
    }

    #[test]
    fn defaults_validate() {
        let c = Config::from_args(Args::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c, Config::default());
        let bad = Args {
            shards: Some(3),
            ..Args::default()
        };
        assert!(Config::from_args(bad).is_err());
    }
}
