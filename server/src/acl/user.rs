//! One ACL user: its passwords, commands, key and channel patterns, Redis 7's rule
//! syntax to change them (`ACL SETUSER`), and the text that describes them (`ACL LIST`).

use sha2::{Digest, Sha256};

use crate::cmd::table::{acl_entry, acl_ids, Cats, COMMANDS, SUBCOMMANDS};
use crate::glob::Glob;

/// A key pattern and what it grants: `~p` both, `%R~p` reads, `%W~p` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    pub glob: Glob,
    pub read: bool,
    pub write: bool,
}

#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    /// `sanitize-payload` (true) or `skip-sanitize-payload` (false), as set; sessiond's
    /// RESTORE always checks its payload, so this is kept and reported only.
    sanitize: Option<bool>,
    /// SHA-256 of each password, as Redis keeps them.
    passwords: Vec<[u8; 32]>,
    /// One bit per ACL id (commands, then subcommands; see `cmd::table`).
    allowed: Vec<u64>,
    /// The command rules as given, normalised (`+@all`, `-get`...), for `ACL LIST`.
    cmd_rules: Vec<String>,
    pub keys: Vec<KeyPattern>,
    pub all_keys: bool,
    pub channels: Vec<Glob>,
    pub all_channels: bool,
    /// Every command, key and channel (kept up to date by `apply`): admission skips the
    /// checks, so the default user costs one test per command.
    open: bool,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password hashes.
        f.debug_struct("User")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("commands", &self.cmd_rules)
            .finish_non_exhaustive()
    }
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Compare without leaking, through timing, where the first difference lies.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

impl User {
    /// A new user as `ACL SETUSER name` makes it: off, no passwords, no commands, no
    /// keys, no channels.
    pub fn new(name: &str) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            allowed: vec![0; acl_ids().div_ceil(64)],
            cmd_rules: vec!["-@all".into()],
            keys: Vec::new(),
            all_keys: false,
            channels: Vec::new(),
            all_channels: false,
            open: false,
        }
    }

    /// Apply rules in order; on an error nothing changes and the error names the rule.
    pub fn apply_all<S: AsRef<str>>(&mut self, rules: &[S]) -> Result<(), String> {
        let mut u = self.clone();
        for r in rules {
            let r = r.as_ref();
            u.apply(r).map_err(|e| {
                format!(
                    "Error in ACL SETUSER modifier '{}': {e}",
                    crate::cmd::printable(r.as_bytes(), 128)
                )
            })?;
        }
        *self = u;
        Ok(())
    }

    fn compute_open(&self) -> bool {
        self.all_keys && self.all_channels && (0..acl_ids()).all(|i| self.allows_id(i))
    }

    /// Apply one rule.
    pub fn apply(&mut self, rule: &str) -> Result<(), &'static str> {
        let r = self.apply_rule(rule);
        self.open = self.compute_open();
        r
    }

    fn apply_rule(&mut self, rule: &str) -> Result<(), &'static str> {
        let lower = rule.to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "allkeys" => {
                self.all_keys = true;
                self.keys.clear();
            }
            "resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
            }
            "allchannels" => {
                self.all_channels = true;
                self.channels.clear();
            }
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            "allcommands" => self.commands(true, None, "+@all"),
            "nocommands" => self.commands(false, None, "-@all"),
            "reset" => {
                *self = User::new(&self.name);
                self.sanitize = Some(true);
            }
            "sanitize-payload" => self.sanitize = Some(true),
            "skip-sanitize-payload" => self.sanitize = Some(false),
            _ => return self.apply_valued(rule),
        }
        Ok(())
    }

    fn apply_valued(&mut self, rule: &str) -> Result<(), &'static str> {
        let (head, rest) = rule.split_at(rule.chars().next().map_or(0, char::len_utf8));
        match head {
            ">" => {
                let h = Sha256::digest(rest.as_bytes()).into();
                if !self.passwords.contains(&h) {
                    self.passwords.push(h);
                }
                self.nopass = false;
            }
            "<" => {
                let h: [u8; 32] = Sha256::digest(rest.as_bytes()).into();
                let before = self.passwords.len();
                self.passwords.retain(|p| *p != h);
                if self.passwords.len() == before {
                    return Err(
                        "The password you are trying to remove from the user does not exist",
                    );
                }
            }
            "#" => {
                let h = unhex(rest).ok_or("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")?;
                if !self.passwords.contains(&h) {
                    self.passwords.push(h);
                }
                self.nopass = false;
            }
            "!" => {
                let h = unhex(rest).ok_or("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")?;
                let before = self.passwords.len();
                self.passwords.retain(|p| *p != h);
                if self.passwords.len() == before {
                    return Err(
                        "The password you are trying to remove from the user does not exist",
                    );
                }
            }
            "~" => self.add_key(rest.as_bytes(), true, true)?,
            "%" => {
                let (perm, pat) = rest.split_once('~').ok_or("Syntax error")?;
                let perm = perm.to_ascii_uppercase();
                if perm.is_empty() || !perm.chars().all(|c| c == 'R' || c == 'W') {
                    return Err("Syntax error");
                }
                self.add_key(pat.as_bytes(), perm.contains('R'), perm.contains('W'))?;
            }
            "&" => {
                if self.all_channels {
                    return Err("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels");
                }
                if rest == "*" {
                    self.all_channels = true;
                    self.channels.clear();
                } else if !self.channels.iter().any(|c| c.pattern() == rest.as_bytes()) {
                    self.channels.push(Glob::new(rest.as_bytes(), false));
                }
            }
            "+" | "-" => self.command_rule(head == "+", rest)?,
            _ => return Err("Syntax error"),
        }
        Ok(())
    }

    fn add_key(&mut self, pat: &[u8], read: bool, write: bool) -> Result<(), &'static str> {
        if self.all_keys {
            return Err("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns");
        }
        if pat == b"*" && read && write {
            self.all_keys = true;
            self.keys.clear();
            return Ok(());
        }
        match self.keys.iter_mut().find(|k| k.glob.pattern() == pat) {
            Some(k) => {
                k.read |= read;
                k.write |= write;
            }
            None => self.keys.push(KeyPattern {
                glob: Glob::new(pat, false),
                read,
                write,
            }),
        }
        Ok(())
    }

    /// `+cmd`, `-cmd`, `+cmd|sub`, `+@cat`, `-@cat`.
    fn command_rule(&mut self, allow: bool, what: &str) -> Result<(), &'static str> {
        const UNKNOWN: &str = "Unknown command or category name in ACL";
        let sign = if allow { '+' } else { '-' };
        let what = what.to_ascii_lowercase();
        if let Some(cat) = what.strip_prefix('@') {
            let text = format!("{sign}@{cat}");
            if cat == "all" {
                self.commands(allow, None, &text);
                return Ok(());
            }
            let c = Cats::named(cat).ok_or(UNKNOWN)?;
            self.commands(allow, Some(c), &text);
            return Ok(());
        }
        let ids: Vec<usize> = match what.split_once('|') {
            Some((parent, sub)) => {
                let i = SUBCOMMANDS
                    .iter()
                    .position(|s| s.parent == parent && s.name == sub)
                    .ok_or(UNKNOWN)?;
                vec![COMMANDS.len() + i]
            }
            None => {
                let spec = crate::cmd::table::lookup(what.as_bytes()).ok_or(UNKNOWN)?;
                let mut ids = vec![spec.id()];
                ids.extend(
                    SUBCOMMANDS
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.parent == spec.name)
                        .map(|(i, _)| COMMANDS.len() + i),
                );
                ids
            }
        };
        for id in ids {
            self.set_bit(id, allow);
        }
        // Redis 7.2 keeps the rules as given, one per command: a later rule for the same
        // command replaces the earlier one.
        self.cmd_rules.retain(|r| r[1..] != *what);
        self.cmd_rules.push(format!("{sign}{what}"));
        Ok(())
    }

    /// Allow or deny every command (`cat: None`) or those in a category.
    fn commands(&mut self, allow: bool, cat: Option<Cats>, text: &str) {
        for id in 0..acl_ids() {
            if cat.is_none_or(|c| acl_entry(id).1.has(c)) {
                self.set_bit(id, allow);
            }
        }
        if cat.is_none() {
            self.cmd_rules.clear();
        }
        self.cmd_rules.push(text.to_string());
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        let (w, b) = (id / 64, 1u64 << (id % 64));
        if on {
            self.allowed[w] |= b;
        } else {
            self.allowed[w] &= !b;
        }
    }

    pub fn allows_id(&self, id: usize) -> bool {
        self.allowed[id / 64] & (1 << (id % 64)) != 0
    }

    /// Every command, every key and every channel: admission can skip the checks.
    pub fn unrestricted(&self) -> bool {
        self.open
    }

    pub fn password_ok(&self, pass: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let h: [u8; 32] = Sha256::digest(pass).into();
        // Check them all, so the time does not say which one matched.
        self.passwords.iter().fold(false, |ok, p| ct_eq(p, &h) | ok)
    }

    pub fn has_password(&self) -> bool {
        !self.passwords.is_empty()
    }

    /// Whether a key may be read (`read`) and/or written (`write`).
    pub fn key_ok(&self, key: &[u8], read: bool, write: bool) -> bool {
        if self.all_keys {
            return true;
        }
        let (mut r, mut w) = (!read, !write);
        for k in &self.keys {
            if (k.read && !r || k.write && !w) && k.glob.matches(key) {
                r |= k.read;
                w |= k.write;
            }
            if r && w {
                return true;
            }
        }
        false
    }

    /// Whether a channel (or, for `PSUBSCRIBE`, a pattern taken literally) is allowed.
    pub fn channel_ok(&self, channel: &[u8], literal: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|c| {
                if literal {
                    c.pattern() == channel
                } else {
                    c.matches(channel)
                }
            })
    }

    /// `ACL GETUSER`'s flags.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            Some(false) => f.push("skip-sanitize-payload"),
            Some(true) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    pub fn password_hashes(&self) -> Vec<String> {
        self.passwords.iter().map(|p| hex(p)).collect()
    }

    pub fn command_rules(&self) -> String {
        self.cmd_rules.join(" ")
    }

    pub fn key_rules(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        let v: Vec<String> = self
            .keys
            .iter()
            .map(|k| {
                let p = String::from_utf8_lossy(k.glob.pattern());
                match (k.read, k.write) {
                    (true, true) => format!("~{p}"),
                    (true, false) => format!("%R~{p}"),
                    _ => format!("%W~{p}"),
                }
            })
            .collect();
        v.join(" ")
    }

    pub fn channel_rules(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        self.channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c.pattern())))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The rules that rebuild this user from `reset`, as `ACL LIST` and the ACL file
    /// write them (`user` and the name not included).
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.flags().iter().map(|s| s.to_string()).collect();
        parts.extend(self.password_hashes().into_iter().map(|h| format!("#{h}")));
        let keys = self.key_rules();
        if !keys.is_empty() {
            parts.push(keys);
        }
        if !self.all_channels {
            parts.push("resetchannels".into());
        }
        let chans = self.channel_rules();
        if !chans.is_empty() {
            parts.push(chans);
        }
        parts.push(self.command_rules());
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::table::{acl_id, lookup};
    use bytes::Bytes;

    fn id(name: &str) -> usize {
        lookup(name.as_bytes()).expect(name).id()
    }

    #[test]
    fn rules_build_what_redis_lists() {
        let mut u = User::new("bob");
        assert_eq!(u.describe(), "off resetchannels -@all");
        u.apply_all(&[
            "on",
            ">pw",
            "~sess:*",
            "%R~ro:*",
            "&chan",
            "+get",
            "+set",
            "-@admin",
            "+config|get",
        ])
        .expect("valid");
        assert_eq!(
            u.describe(),
            format!(
                "on #{} ~sess:* %R~ro:* resetchannels &chan -@all +get +set -@admin +config|get",
                sha256_hex(b"pw")
            )
        );
        assert!(u.allows_id(id("get")) && !u.allows_id(id("del")));
        let cfg = |sub: &str| {
            acl_id(
                lookup(b"config").expect("config"),
                &[
                    Bytes::from_static(b"config"),
                    Bytes::copy_from_slice(sub.as_bytes()),
                ],
            )
        };
        assert!(u.allows_id(cfg("get")) && !u.allows_id(cfg("set")));
        assert!(u.password_ok(b"pw") && !u.password_ok(b"pw2"));
        assert!(u.key_ok(b"sess:1", true, true));
        assert!(u.key_ok(b"ro:1", true, false) && !u.key_ok(b"ro:1", false, true));
        assert!(!u.key_ok(b"other", true, false));
        assert!(u.channel_ok(b"chan", false) && !u.channel_ok(b"other", false));
    }

    #[test]
    fn bad_rules_change_nothing_and_say_why() {
        let mut u = User::new("bob");
        let before = u.clone();
        for (rule, why) in [
            ("<nope", "The password you are trying to remove from the user does not exist"),
            ("xyz", "Syntax error"),
            ("+nosuch", "Unknown command or category name in ACL"),
            ("#abc", "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"),
        ] {
            let e = u.apply_all(&["on", rule]).expect_err(rule);
            assert_eq!(e, format!("Error in ACL SETUSER modifier '{rule}': {why}"));
            assert!(u == before);
        }
    }

    #[test]
    fn categories_and_all() {
        let mut u = User::new("x");
        u.apply_all(&["+@all", "-@write"]).expect("valid");
        assert!(u.allows_id(id("get")) && !u.allows_id(id("set")) && u.allows_id(id("publish")));
        u.apply_all(&["allcommands", "allkeys", "allchannels"])
            .expect("valid");
        assert!(u.unrestricted());
        assert_eq!(u.command_rules(), "+@all");
        u.apply_all(&["nopass"]).expect("valid");
        assert!(u.password_ok(b"anything"));
        u.apply_all(&["reset"]).expect("valid");
        assert_eq!(u.describe(), "off sanitize-payload resetchannels -@all");
        // As redis-server 7.0 shows a reset user (ACL LIST).
    }
}
