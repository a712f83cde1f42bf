//! Settings `CONFIG SET` changes while the server runs: `maxmemory`,
//! `maxmemory-policy`, `timeout`, `maxclients`, `protected-mode`, `tcp-keepalive`,
//! `loglevel`, and `hz`, `appendfsync` and `replica-read-only` (kept and reported; see
//! the README's "Differences"). They start from the [`Config`] and are read from here
//! (relaxed atomics) wherever they take effect: the expiry thread's memory check, the
//! idle timer, the accept path, the log filter.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

use crate::config::{parse_memory, Config, MaxmemoryPolicy};

pub struct Runtime {
    maxmemory: AtomicU64,
    policy: AtomicU8,
    timeout: AtomicU64,
    maxclients: AtomicUsize,
    protected_mode: AtomicBool,
    tcp_keepalive: AtomicU64,
    hz: AtomicU64,
    appendfsync: AtomicU8,
    replica_read_only: AtomicBool,
    loglevel: AtomicU8,
}

/// Redis's log levels, in its order; `loglevel` indexes this.
pub const LOGLEVELS: [&str; 4] = ["debug", "verbose", "notice", "warning"];
/// `appendfsync`'s values; a cluster node fsyncs every entry whatever this says.
pub const APPENDFSYNC: [&str; 3] = ["always", "everysec", "no"];

/// What changes the process's log filter: `main` installs it (the library does not own
/// the subscriber). Takes a tracing filter directive.
pub type LogHook = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;
static LOG_HOOK: OnceLock<LogHook> = OnceLock::new();

/// Called once by `main`, after it builds the subscriber.
pub fn set_log_hook(hook: LogHook) {
    let _ = LOG_HOOK.set(hook);
}

/// The tracing directive for a Redis log level.
fn directive(level: &str) -> &'static str {
    match level {
        "debug" | "verbose" => "debug",
        "warning" => "warn",
        _ => "info",
    }
}

const POLICIES: [MaxmemoryPolicy; 3] = [
    MaxmemoryPolicy::VolatileTtl,
    MaxmemoryPolicy::AllkeysLru,
    MaxmemoryPolicy::Noeviction,
];

/// One validated change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Maxmemory(u64),
    Policy(MaxmemoryPolicy),
    Timeout(u64),
    Maxclients(usize),
    ProtectedMode(bool),
    TcpKeepalive(u64),
    Hz(u64),
    Appendfsync(u8),
    ReplicaReadOnly(bool),
    Loglevel(u8),
}

fn yes_no(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

fn one_of(list: &[&str], value: &str) -> Result<u8, String> {
    list.iter()
        .position(|v| v.eq_ignore_ascii_case(value))
        .map(|i| i as u8)
        .ok_or_else(|| {
            // Redis lists them in its own table order.
            let mut names = list.to_vec();
            if list == APPENDFSYNC {
                names = vec!["everysec", "always", "no"];
            }
            format!(
                "argument(s) must be one of the following: {}",
                names.join(", ")
            )
        })
}

fn non_negative(value: &str) -> Result<u64, String> {
    match value.parse::<i64>() {
        Ok(v) if (0..=i64::from(i32::MAX)).contains(&v) => Ok(v as u64),
        Ok(_) => Err("argument must be between 0 and 2147483647 inclusive".into()),
        Err(_) => Err("argument couldn't be parsed into an integer".into()),
    }
}

impl Runtime {
    pub fn new(c: &Config) -> Runtime {
        Runtime {
            maxmemory: AtomicU64::new(c.maxmemory),
            policy: AtomicU8::new(
                POLICIES
                    .iter()
                    .position(|p| *p == c.maxmemory_policy)
                    .unwrap_or(0) as u8,
            ),
            timeout: AtomicU64::new(c.timeout),
            maxclients: AtomicUsize::new(c.maxclients),
            protected_mode: AtomicBool::new(c.protected_mode),
            tcp_keepalive: AtomicU64::new(300),
            hz: AtomicU64::new(10),
            appendfsync: AtomicU8::new(1),
            replica_read_only: AtomicBool::new(true),
            loglevel: AtomicU8::new(match c.log_level.as_str() {
                "debug" | "trace" => 0,
                "warn" | "error" => 3,
                _ => 2,
            }),
        }
    }

    pub fn protected_mode(&self) -> bool {
        self.protected_mode.load(Relaxed)
    }

    /// Seconds between keepalive probes on an idle client connection (0: none).
    pub fn tcp_keepalive(&self) -> u64 {
        self.tcp_keepalive.load(Relaxed)
    }

    pub fn hz(&self) -> u64 {
        self.hz.load(Relaxed)
    }

    pub fn appendfsync(&self) -> &'static str {
        APPENDFSYNC[usize::from(self.appendfsync.load(Relaxed)).min(2)]
    }

    pub fn replica_read_only(&self) -> bool {
        self.replica_read_only.load(Relaxed)
    }

    pub fn loglevel(&self) -> &'static str {
        LOGLEVELS[usize::from(self.loglevel.load(Relaxed)).min(3)]
    }

    pub fn maxmemory(&self) -> u64 {
        self.maxmemory.load(Relaxed)
    }

    pub fn policy(&self) -> MaxmemoryPolicy {
        POLICIES[usize::from(self.policy.load(Relaxed)).min(POLICIES.len() - 1)]
    }

    pub fn timeout(&self) -> u64 {
        self.timeout.load(Relaxed)
    }

    pub fn maxclients(&self) -> usize {
        self.maxclients.load(Relaxed)
    }

    pub fn apply(&self, c: Change) {
        match c {
            Change::Maxmemory(v) => self.maxmemory.store(v, Relaxed),
            Change::Policy(p) => self.policy.store(
                POLICIES.iter().position(|x| *x == p).unwrap_or(0) as u8,
                Relaxed,
            ),
            Change::Timeout(v) => self.timeout.store(v, Relaxed),
            Change::Maxclients(v) => self.maxclients.store(v, Relaxed),
            Change::ProtectedMode(v) => self.protected_mode.store(v, Relaxed),
            Change::TcpKeepalive(v) => self.tcp_keepalive.store(v, Relaxed),
            // Redis clamps it to 1..=500.
            Change::Hz(v) => self.hz.store(v.clamp(1, 500), Relaxed),
            Change::Appendfsync(v) => self.appendfsync.store(v, Relaxed),
            Change::ReplicaReadOnly(v) => self.replica_read_only.store(v, Relaxed),
            Change::Loglevel(v) => {
                self.loglevel.store(v, Relaxed);
                if let Some(hook) = LOG_HOOK.get() {
                    let level = LOGLEVELS[usize::from(v).min(3)];
                    if let Err(e) = hook(directive(level)) {
                        tracing::warn!(error = %e, "loglevel not applied");
                    }
                }
            }
        }
    }
}

/// Validate `CONFIG SET name value` for a runtime setting: `None` when `name` is not
/// one, else the change or Redis's reason for refusing it.
pub fn parse(name: &str, value: &str) -> Option<Result<Change, String>> {
    Some(match name {
        "maxmemory" => parse_memory(value)
            .map(Change::Maxmemory)
            .ok_or_else(|| "argument must be a memory value".to_string()),
        "maxmemory-policy" => {
            match POLICIES
                .iter()
                .find(|p| p.name().eq_ignore_ascii_case(value))
            {
                Some(p) => Ok(Change::Policy(*p)),
                None => Err(
                    "argument must be one of the following: volatile-ttl, allkeys-lru, noeviction (sessiond's policies)"
                        .into(),
                ),
            }
        }
        "timeout" => match value.parse::<i64>() {
            Ok(v) if v >= 0 => Ok(Change::Timeout(v as u64)),
            Ok(_) => Err("argument must be between 0 and 2147483647 inclusive".into()),
            Err(_) => Err("argument couldn't be parsed into an integer".into()),
        },
        "maxclients" => match value.parse::<i64>() {
            Ok(v) if v >= 1 => Ok(Change::Maxclients(v as usize)),
            Ok(_) => Err("argument must be between 1 and 4294967295 inclusive".into()),
            Err(_) => Err("argument couldn't be parsed into an integer".into()),
        },
        "protected-mode" => yes_no(value).map(Change::ProtectedMode),
        "replica-read-only" | "slave-read-only" => yes_no(value).map(Change::ReplicaReadOnly),
        "tcp-keepalive" => non_negative(value).map(Change::TcpKeepalive),
        "hz" => non_negative(value).map(Change::Hz),
        "appendfsync" => one_of(&APPENDFSYNC, value).map(Change::Appendfsync),
        "loglevel" => one_of(&LOGLEVELS, value).map(Change::Loglevel),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_settings_change_and_are_checked() {
        let r = Runtime::new(&Config::default());
        assert_eq!(
            parse("maxmemory", "10mb"),
            Some(Ok(Change::Maxmemory(10 << 20)))
        );
        assert!(parse("maxmemory", "lots").is_some_and(|r| r.is_err()));
        assert!(parse("maxmemory-policy", "ALLKEYS-LRU").is_some_and(|r| r.is_ok()));
        assert!(parse("maxmemory-policy", "allkeys-lfu").is_some_and(|r| r.is_err()));
        assert_eq!(parse("port", "1"), None);
        r.apply(Change::Policy(MaxmemoryPolicy::AllkeysLru));
        r.apply(Change::Maxmemory(5));
        r.apply(Change::Timeout(7));
        r.apply(Change::Maxclients(3));
        assert_eq!(r.policy(), MaxmemoryPolicy::AllkeysLru);
        assert_eq!((r.maxmemory(), r.timeout(), r.maxclients()), (5, 7, 3));
        for (name, value, ok) in [
            ("hz", "1000", true),
            ("hz", "-1", false),
            ("loglevel", "warning", true),
            ("loglevel", "loud", false),
            ("appendfsync", "no", true),
            ("appendfsync", "sometimes", false),
            ("protected-mode", "maybe", false),
            ("tcp-keepalive", "60", true),
        ] {
            let got = parse(name, value).expect("a runtime setting");
            assert_eq!(got.is_ok(), ok, "{name} {value}");
            if let Ok(c) = got {
                r.apply(c);
            }
        }
        assert_eq!(r.hz(), 500, "clamped as Redis does");
        assert_eq!((r.loglevel(), r.appendfsync()), ("warning", "no"));
        assert_eq!(r.tcp_keepalive(), 60);
    }
}
