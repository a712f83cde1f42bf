//! Settings `CONFIG SET` changes while the server runs: `maxmemory`,
//! `maxmemory-policy`, `timeout` and `maxclients`. They start from the [`Config`] and are
//! read from here (relaxed atomics) wherever they take effect: the expiry thread's
//! memory check, the idle timer, the accept path.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};

use crate::config::{parse_memory, Config, MaxmemoryPolicy};

pub struct Runtime {
    maxmemory: AtomicU64,
    policy: AtomicU8,
    timeout: AtomicU64,
    maxclients: AtomicUsize,
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
        }
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
        }
    }
}

/// Validate `CONFIG SET name value` for a runtime setting: `None` when `name` is not
/// one, else the change or Redis's reason for refusing it.
pub fn parse(name: &str, value: &str, cluster: bool) -> Option<Result<Change, String>> {
    Some(match name {
        "maxmemory" => parse_memory(value)
            .map(Change::Maxmemory)
            .ok_or_else(|| "argument must be a memory value".to_string()),
        "maxmemory-policy" => {
            match POLICIES
                .iter()
                .find(|p| p.name().eq_ignore_ascii_case(value))
            {
                Some(MaxmemoryPolicy::Noeviction) => Ok(Change::Policy(MaxmemoryPolicy::Noeviction)),
                // Evictions are not replicated: a cluster keeps noeviction.
                Some(_) if cluster => Err("a cluster supports noeviction only".into()),
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
            parse("maxmemory", "10mb", false),
            Some(Ok(Change::Maxmemory(10 << 20)))
        );
        assert!(parse("maxmemory", "lots", false).is_some_and(|r| r.is_err()));
        assert!(parse("maxmemory-policy", "allkeys-lru", true).is_some_and(|r| r.is_err()));
        assert!(parse("maxmemory-policy", "allkeys-lfu", false).is_some_and(|r| r.is_err()));
        assert_eq!(parse("port", "1", false), None);
        r.apply(Change::Policy(MaxmemoryPolicy::AllkeysLru));
        r.apply(Change::Maxmemory(5));
        r.apply(Change::Timeout(7));
        r.apply(Change::Maxclients(3));
        assert_eq!(r.policy(), MaxmemoryPolicy::AllkeysLru);
        assert_eq!((r.maxmemory(), r.timeout(), r.maxclients()), (5, 7, 3));
    }
}
