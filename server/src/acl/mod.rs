//! Access control as Redis 7 has it: users with passwords, allowed commands and
//! categories, key patterns and channel patterns ([`user`]), the registry of users
//! ([`Users`]), `ACL LOG` ([`log`]), the ACL file, and protected mode.
//!
//! `--requirepass` and `--user name:password[:all|noadmin|readonly]` are shorthands for
//! ACL rules. A connection holds an `Arc` of its user and picks up a changed or deleted
//! user when the registry's version moves (see `Conn::refresh_user`). In a cluster every
//! change goes through the log (`ACL SETUSER`/`DELUSER`/`LOAD` are replicated writes) and
//! the users are part of each snapshot, so every node enforces the same rules.

pub mod log;
pub mod user;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

pub use user::User;

pub const DEFAULT: &str = "default";

/// The rules each `--user` shorthand stands for.
pub fn shorthand_rules(rules: &str) -> Option<&'static str> {
    Some(match rules {
        "all" | "" => "+@all",
        // Everything but @admin and the flushes; ROLE and SENTINEL stay, since
        // Sentinel-aware clients ask them.
        "noadmin" | "no-admin" => "+@all -@admin -flushall -flushdb +role +sentinel",
        "readonly" | "read-only" => {
            "+@all -@admin -flushall -flushdb +role +sentinel -@write -publish"
        }
        _ => return None,
    })
}

/// All users, by name; `default` always exists.
pub struct Users {
    map: RwLock<BTreeMap<String, Arc<User>>>,
    /// Moves on every change, so connections know to look their user up again.
    version: AtomicU64,
    pub log: log::AclLog,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.map.read().values()).finish()
    }
}

/// The `default` user as Redis starts it: every command, key and channel, no password.
pub fn default_user() -> User {
    let mut u = User::new(DEFAULT);
    u.apply_all(&["on", "nopass", "allkeys", "allchannels", "+@all"])
        .unwrap_or_default();
    u
}

impl Users {
    pub fn from_users(users: Vec<User>) -> Users {
        let mut map: BTreeMap<String, Arc<User>> = users
            .into_iter()
            .map(|u| (u.name.clone(), Arc::new(u)))
            .collect();
        map.entry(DEFAULT.into())
            .or_insert_with(|| Arc::new(default_user()));
        Users {
            map: RwLock::new(map),
            version: AtomicU64::new(1),
            log: log::AclLog::default(),
        }
    }

    /// From `--requirepass` and `--user name:password[:rules]` specs.
    pub fn new(requirepass: Option<&str>, specs: &[String]) -> Result<Users, String> {
        let mut default = default_user();
        if let Some(p) = requirepass.filter(|p| !p.is_empty()) {
            default
                .apply_all(&["resetpass", &format!(">{p}")])
                .map_err(|e| e.to_string())?;
        }
        let mut users = vec![default];
        for spec in specs {
            let mut parts = spec.splitn(3, ':');
            let (Some(name), Some(pass)) = (parts.next(), parts.next()) else {
                return Err(format!(
                    "--user wants name:password[:rules], got '{}'",
                    redact(spec)
                ));
            };
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(format!("--user: invalid user name '{name}'"));
            }
            if pass.is_empty() {
                return Err(format!("--user {name}: the password is empty"));
            }
            let r = parts.next().unwrap_or("all");
            let Some(rules) = shorthand_rules(r) else {
                return Err(format!(
                    "--user {name}: unknown rules '{r}' (all, noadmin or readonly)"
                ));
            };
            let mut u = User::new(name);
            let mut list = vec![
                "on".to_string(),
                format!(">{pass}"),
                "allkeys".into(),
                "allchannels".into(),
            ];
            list.extend(rules.split(' ').map(str::to_string));
            u.apply_all(&list).map_err(|e| redact_rules(&e))?;
            users.retain(|x| x.name != name);
            users.push(u);
        }
        Ok(Users::from_users(users))
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn get(&self, name: &str) -> Option<Arc<User>> {
        self.map.read().get(name).cloned()
    }

    pub fn get_bytes(&self, name: &[u8]) -> Option<Arc<User>> {
        std::str::from_utf8(name).ok().and_then(|n| self.get(n))
    }

    pub fn names(&self) -> Vec<String> {
        self.map.read().keys().cloned().collect()
    }

    pub fn all(&self) -> Vec<Arc<User>> {
        self.map.read().values().cloned().collect()
    }

    /// Apply rules to a user, creating it if needed.
    pub fn set_user(&self, name: &str, rules: &[String]) -> Result<(), String> {
        let mut map = self.map.write();
        let mut u = map
            .get(name)
            .map_or_else(|| User::new(name), |u| (**u).clone());
        u.apply_all(rules)?;
        map.insert(name.to_string(), Arc::new(u));
        self.version.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Remove users; how many existed. `default` cannot be removed.
    pub fn delete(&self, names: &[&str]) -> Result<usize, String> {
        if names.contains(&DEFAULT) {
            return Err("The 'default' user cannot be removed".into());
        }
        let mut map = self.map.write();
        let n = names.iter().filter(|n| map.remove(**n).is_some()).count();
        self.version.fetch_add(1, Ordering::AcqRel);
        Ok(n)
    }

    /// Replace every user (`ACL LOAD`, a snapshot).
    pub fn replace(&self, users: Vec<User>) {
        let fresh = Users::from_users(users);
        *self.map.write() = fresh.map.into_inner();
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// The user a new connection starts as: `default` when it needs no password.
    pub fn initial(&self) -> Option<Arc<User>> {
        self.get(DEFAULT).filter(|u| u.enabled && u.nopass)
    }

    /// Whether `default` needs a password (protected mode turns off then).
    pub fn default_has_password(&self) -> bool {
        self.get(DEFAULT).is_some_and(|u| !u.nopass)
    }

    /// Check a name and password: the user when they match and it is enabled.
    pub fn check(&self, name: &[u8], password: &[u8]) -> Option<Arc<User>> {
        let u = self.get_bytes(name)?;
        (u.enabled && u.password_ok(password)).then_some(u)
    }

    /// Every user as `ACL LIST` and the ACL file write them.
    pub fn list(&self) -> Vec<String> {
        self.map
            .read()
            .values()
            .map(|u| format!("user {} {}", u.name, u.describe()))
            .collect()
    }
}

/// Parse an ACL file's text (`user <name> <rules...>` lines; `#` comments and blank lines
/// ignored). All or nothing: the first bad line is the error.
pub fn parse_acl_file(text: &str) -> Result<Vec<User>, String> {
    let mut users: Vec<User> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        if words.next() != Some("user") {
            return Err(format!("/{}: line should start with user keyword", i + 1));
        }
        let Some(name) = words.next() else {
            return Err(format!("{}: the user name is missing", i + 1));
        };
        if users.iter().any(|u| u.name == name) {
            return Err(format!("{}: Duplicate user '{name}' found", i + 1));
        }
        let rules: Vec<&str> = words.collect();
        let mut u = User::new(name);
        u.apply_all(&rules).map_err(|e| format!("{}: {e}", i + 1))?;
        users.push(u);
    }
    Ok(users)
}

/// A `--user` spec for an error message, without its password.
fn redact(spec: &str) -> String {
    match spec.split_once(':') {
        Some((name, _)) => format!("{name}:<hidden>"),
        None => spec.to_string(),
    }
}

fn redact_rules(e: &str) -> String {
    match e.find("'>") {
        Some(i) => format!("{}'<hidden>'", &e[..i]),
        None => e.to_string(),
    }
}

/// Redis's protected-mode refusal.
pub const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Whether protected mode refuses a client from `peer`.
pub fn protected_refuses(protected: bool, users: &Users, peer: IpAddr) -> bool {
    let loopback = match peer {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    };
    protected && !users.default_has_password() && !loopback
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::table::lookup;

    #[test]
    fn shorthands_and_checks() {
        let u = Users::new(
            Some("s3cret"),
            &[
                "ro:pw1:readonly".into(),
                "app:pw2:noadmin".into(),
                "root:pw3".into(),
            ],
        )
        .expect("valid");
        assert!(u.initial().is_none());
        assert!(u.check(b"default", b"s3cret").is_some());
        assert!(u.check(b"default", b"s3cre").is_none());
        assert!(u.check(b"ro", b"pw1").is_some());
        assert!(u.check(b"ro", b"pw2").is_none());
        assert!(u.check(b"nobody", b"pw1").is_none());
        let id = |n: &str| lookup(n.as_bytes()).expect(n).id();
        let ro = u.get("ro").expect("ro");
        let app = u.get("app").expect("app");
        let root = u.get("root").expect("root");
        assert!(ro.allows_id(id("get")) && !ro.allows_id(id("set")));
        assert!(app.allows_id(id("set")) && !app.allows_id(id("flushall")));
        assert!(app.allows_id(id("sentinel")) && app.allows_id(id("role")));
        assert!(!app.allows_id(id("shutdown")));
        assert!(root.allows_id(id("flushall")));
        assert!(!format!("{u:?}").contains("pw"), "{u:?}");
        assert!(Users::new(None, &["bad".into()])
            .expect_err("no password")
            .contains("name:password"));
        assert!(!Users::new(None, &["x:secret:weird".into()])
            .expect_err("bad rules")
            .contains("secret"));
    }

    #[test]
    fn protected_mode_refuses_only_remote_clients_without_a_password() {
        let open = Users::new(None, &[]).expect("valid");
        let locked = Users::new(Some("p"), &[]).expect("valid");
        let remote: IpAddr = "10.1.2.3".parse().expect("ip");
        let local: IpAddr = "127.0.0.1".parse().expect("ip");
        let local6: IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
        assert!(protected_refuses(true, &open, remote));
        assert!(!protected_refuses(true, &open, local));
        assert!(!protected_refuses(true, &open, local6));
        assert!(!protected_refuses(false, &open, remote));
        assert!(!protected_refuses(true, &locked, remote));
    }

    #[test]
    fn acl_files_are_all_or_nothing() {
        let users = parse_acl_file(
            "# users\nuser default on nopass ~* &* +@all\n\nuser app on >pw ~sess:* +@read\n",
        )
        .expect("valid");
        assert_eq!(users.len(), 2);
        assert!(parse_acl_file("user a on\nuser b +nosuch\n")
            .expect_err("bad rule")
            .starts_with("2: "));
        assert!(parse_acl_file("nope\n").is_err());
        assert!(parse_acl_file("user a on\nuser a off\n").is_err());
    }
}
