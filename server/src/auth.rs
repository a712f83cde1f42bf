//! Who may connect and what each user may run: `--requirepass`, `--user
//! name:password[:rules]`, protected mode.
//!
//! The `default` user needs no password unless `--requirepass` gives it one; then, and
//! for every other user, a connection starts unauthenticated and may only send `AUTH`,
//! `HELLO`, `QUIT` and `RESET` (Redis's `NOAUTH` otherwise). Passwords are compared in
//! constant time and never logged or shown by `CONFIG GET`, `INFO` or `CLIENT LIST`.
//!
//! Rules, Redis ACL in miniature: `all` (the default), `noadmin` (no `CONFIG`,
//! `FLUSHDB`/`FLUSHALL`, `SHUTDOWN`, `SLOWLOG`, `RAFT.*`...: commands with Redis's `admin`
//! or `dangerous` flags), and `readonly` (only commands that do not write, and no admin
//! commands).

use std::net::IpAddr;

use crate::cmd::Spec;

/// What a user may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    All,
    NoAdmin,
    ReadOnly,
}

pub struct User {
    pub name: String,
    /// `None`: no password needed (`nopass`).
    password: Option<Vec<u8>>,
    pub rules: Rules,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("User")
            .field("name", &self.name)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// The configured users; index 0 is `default`.
#[derive(Debug)]
pub struct Users {
    users: Vec<User>,
}

pub const DEFAULT: usize = 0;

/// Compare without leaking, through timing, where the first difference lies (the
/// length still shows, as it does in Redis).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}

/// Admin commands that Redis flags `admin` or `dangerous`, which our table may not.
const ADMIN: &[&str] = &[
    "config",
    "flushall",
    "flushdb",
    "shutdown",
    "slowlog",
    "raft.node",
    "raft.transfer-leader",
    "raft.snapshot",
];

impl Users {
    /// From `--requirepass` and `--user name:password[:rules]` specs.
    pub fn new(requirepass: Option<&str>, specs: &[String]) -> Result<Users, String> {
        let mut users = vec![User {
            name: "default".into(),
            password: requirepass
                .filter(|p| !p.is_empty())
                .map(|p| p.as_bytes().to_vec()),
            rules: Rules::All,
        }];
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
            let rules = match parts.next().unwrap_or("all") {
                "all" | "" => Rules::All,
                "noadmin" | "no-admin" => Rules::NoAdmin,
                "readonly" | "read-only" => Rules::ReadOnly,
                r => {
                    return Err(format!(
                        "--user {name}: unknown rules '{r}' (all, noadmin or readonly)"
                    ))
                }
            };
            let user = User {
                name: name.to_string(),
                password: Some(pass.as_bytes().to_vec()),
                rules,
            };
            match users.iter_mut().find(|u| u.name == name) {
                Some(u) => *u = user,
                None => users.push(user),
            }
        }
        Ok(Users { users })
    }

    /// The user a new connection starts as: `default` when it needs no password.
    pub fn initial(&self) -> Option<usize> {
        self.users[DEFAULT].password.is_none().then_some(DEFAULT)
    }

    /// Whether the default user has a password (protected mode turns off then).
    pub fn default_has_password(&self) -> bool {
        self.users[DEFAULT].password.is_some()
    }

    pub fn name(&self, user: usize) -> &str {
        self.users.get(user).map_or("default", |u| u.name.as_str())
    }

    /// Check a name and password; the user's index when they match.
    pub fn check(&self, name: &[u8], password: &[u8]) -> Option<usize> {
        let i = self.users.iter().position(|u| u.name.as_bytes() == name)?;
        match &self.users[i].password {
            None => Some(i),
            Some(p) if ct_eq(p, password) => Some(i),
            Some(_) => None,
        }
    }

    /// `None` if `user` may run `spec`, else Redis's `NOPERM` text.
    pub fn denies(&self, user: usize, spec: &Spec) -> Option<String> {
        let u = self.users.get(user)?;
        let admin = || ADMIN.contains(&spec.name) || (spec.is("admin") && spec.name != "sentinel");
        let denied = match u.rules {
            Rules::All => false,
            Rules::NoAdmin => admin(),
            Rules::ReadOnly => admin() || spec.is("write"),
        };
        denied.then(|| {
            format!(
                "NOPERM User {} has no permissions to run the '{}' command",
                u.name, spec.name
            )
        })
    }
}

/// A `--user` spec for an error message, without its password.
fn redact(spec: &str) -> String {
    match spec.split_once(':') {
        Some((name, _)) => format!("{name}:<hidden>"),
        None => spec.to_string(),
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

    #[test]
    fn users_rules_and_checks() {
        let u = Users::new(
            Some("s3cret"),
            &[
                "ro:pw1:readonly".into(),
                "app:pw2:noadmin".into(),
                "root:pw3".into(),
            ],
        )
        .expect("valid");
        assert_eq!(u.initial(), None);
        assert_eq!(u.check(b"default", b"s3cret"), Some(DEFAULT));
        assert_eq!(u.check(b"default", b"s3cre"), None);
        assert_eq!(u.check(b"ro", b"pw1"), Some(1));
        assert_eq!(u.check(b"ro", b"pw2"), None);
        assert_eq!(u.check(b"nobody", b"pw1"), None);
        let get = crate::cmd::lookup(b"get").expect("get");
        let set = crate::cmd::lookup(b"set").expect("set");
        let flush = crate::cmd::lookup(b"flushall").expect("flushall");
        let sentinel = crate::cmd::lookup(b"sentinel").expect("sentinel");
        assert_eq!(u.denies(1, get), None);
        assert!(u
            .denies(1, set)
            .is_some_and(|e| e.starts_with("NOPERM User ro ")));
        assert_eq!(u.denies(2, set), None);
        assert_eq!(
            u.denies(2, flush).as_deref(),
            Some("NOPERM User app has no permissions to run the 'flushall' command")
        );
        assert_eq!(u.denies(2, sentinel), None);
        assert_eq!(u.denies(3, flush), None);
        assert!(format!("{u:?}").find("pw").is_none(), "{u:?}");
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
    fn constant_time_compare_is_equality() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(!ct_eq(b"", b"a"));
        assert!(ct_eq(b"", b""));
    }
}
