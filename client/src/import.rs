//! `sessiond-cli import`: copy every key of a Redis server into sessiond, with its TTL,
//! through `SCAN`, `PTTL` and `DUMP` on the source and `RESTORE` on sessiond, a page at a
//! time (both sides pipelined). Rerunnable: `RESTORE ... REPLACE` overwrites what an
//! earlier run copied; with `replace: false` keys already in sessiond are left alone
//! (the second pass of a move without downtime, see the README).

use sessiond_protocol::Frame;

use crate::Client;

/// Where from, what, and how.
pub struct ImportOptions {
    /// `redis://[user:password@]host:port[/db]`
    pub from: String,
    /// A sessiond node's client address (`host:port`).
    pub to: String,
    /// Only keys matching this glob (`SCAN MATCH`).
    pub pattern: Option<String>,
    /// Keys per `SCAN` page.
    pub batch: usize,
    /// Overwrite keys sessiond has already.
    pub replace: bool,
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Progress {
    pub scanned: u64,
    pub copied: u64,
    /// Gone from the source between `SCAN` and `DUMP` (expired or deleted).
    pub vanished: u64,
    /// Present in sessiond already (with `replace: false`).
    pub kept: u64,
    /// Refused by sessiond (a type it does not hold, for example): key and error.
    pub failed: Vec<(String, String)>,
}

struct Source {
    host: String,
    user: Option<String>,
    password: Option<String>,
    db: Option<String>,
}

fn parse_url(url: &str) -> Result<Source, String> {
    let rest = url
        .strip_prefix("redis://")
        .ok_or_else(|| format!("--from must be redis://host:port, not {url}"))?;
    let (auth, hostpart) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let (host, db) = match hostpart.split_once('/') {
        Some((h, d)) if !d.is_empty() => (h, Some(d.to_string())),
        Some((h, _)) => (h, None),
        None => (hostpart, None),
    };
    let (user, password) = match auth {
        None => (None, None),
        Some(a) => match a.split_once(':') {
            Some(("", p)) => (None, Some(p.to_string())),
            Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
            None => (None, Some(a.to_string())),
        },
    };
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:6379")
    };
    Ok(Source {
        host,
        user,
        password,
        db,
    })
}

fn text(f: &Frame) -> String {
    match f {
        Frame::Simple(b) | Frame::Error(b) | Frame::Bulk(b) => String::from_utf8_lossy(b).into(),
        other => format!("{other:?}"),
    }
}

async fn expect_ok(c: &mut Client, args: &[&[u8]], what: &str) -> Result<(), String> {
    match c.cmd(args).await.map_err(|e| format!("{what}: {e}"))? {
        Frame::Error(e) => Err(format!("{what}: {}", String::from_utf8_lossy(&e))),
        _ => Ok(()),
    }
}

/// Copy the keys; `report` is called after each page.
pub async fn import(
    opts: &ImportOptions,
    mut report: impl FnMut(&Progress),
) -> Result<Progress, String> {
    let src = parse_url(&opts.from)?;
    let mut from = Client::connect(&src.host)
        .await
        .map_err(|e| format!("{}: {e}", src.host))?;
    if let Some(p) = &src.password {
        match &src.user {
            Some(u) => expect_ok(&mut from, &[b"AUTH", u.as_bytes(), p.as_bytes()], "AUTH").await?,
            None => expect_ok(&mut from, &[b"AUTH", p.as_bytes()], "AUTH").await?,
        }
    }
    if let Some(db) = &src.db {
        expect_ok(&mut from, &[b"SELECT", db.as_bytes()], "SELECT").await?;
    }
    let mut to = Client::connect(&opts.to)
        .await
        .map_err(|e| format!("{}: {e}", opts.to))?;
    let mut p = Progress::default();
    let mut cursor = b"0".to_vec();
    let count = opts.batch.max(1).to_string();
    // A SCAN never ends only if the source misbehaves: bound the pages by what a full
    // pass can need, with a generous margin.
    for _ in 0..u32::MAX {
        let mut scan: Vec<&[u8]> = vec![b"SCAN", &cursor, b"COUNT", count.as_bytes()];
        if let Some(m) = &opts.pattern {
            scan.extend_from_slice(&[b"MATCH", m.as_bytes()]);
        }
        let page = from.cmd(&scan).await.map_err(|e| format!("SCAN: {e}"))?;
        let Frame::Array(parts) = page else {
            return Err(format!("SCAN: {}", text(&page)));
        };
        let (Some(Frame::Bulk(next)), Some(Frame::Array(keys))) = (parts.first(), parts.get(1))
        else {
            return Err("SCAN: unexpected reply".into());
        };
        let keys: Vec<Vec<u8>> = keys
            .iter()
            .filter_map(|k| match k {
                Frame::Bulk(b) => Some(b.to_vec()),
                _ => None,
            })
            .collect();
        p.scanned += keys.len() as u64;
        for k in &keys {
            from.send(&[&b"PTTL"[..], k]);
            from.send(&[&b"DUMP"[..], k]);
        }
        from.flush().await.map_err(|e| format!("source: {e}"))?;
        let mut restores = Vec::new();
        for k in &keys {
            let ttl = from.recv().await.map_err(|e| format!("PTTL: {e}"))?;
            let dump = from.recv().await.map_err(|e| format!("DUMP: {e}"))?;
            match (ttl, dump) {
                (Frame::Integer(t), Frame::Bulk(payload)) if t != -2 => {
                    restores.push((k.clone(), t.max(0).to_string(), payload));
                }
                _ => p.vanished += 1,
            }
        }
        for (k, ttl, payload) in &restores {
            let mut cmd: Vec<&[u8]> = vec![b"RESTORE", k, ttl.as_bytes(), payload];
            if opts.replace {
                cmd.push(b"REPLACE");
            }
            to.send(&cmd);
        }
        to.flush().await.map_err(|e| format!("sessiond: {e}"))?;
        for (k, _, _) in &restores {
            match to.recv().await.map_err(|e| format!("RESTORE: {e}"))? {
                Frame::Error(e) if e.starts_with(b"BUSYKEY") => p.kept += 1,
                Frame::Error(e) => p.failed.push((
                    String::from_utf8_lossy(k).into(),
                    String::from_utf8_lossy(&e).into(),
                )),
                _ => p.copied += 1,
            }
        }
        report(&p);
        if next.as_ref() == b"0" {
            return Ok(p);
        }
        cursor = next.to_vec();
    }
    Err("SCAN did not finish".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = parse_url("redis://:pw@10.0.0.1:6380/2").expect("url");
        assert_eq!(
            (
                s.host.as_str(),
                s.user,
                s.password.as_deref(),
                s.db.as_deref()
            ),
            ("10.0.0.1:6380", None, Some("pw"), Some("2"))
        );
        let s = parse_url("redis://app:secret@cache").expect("url");
        assert_eq!(s.host, "cache:6379");
        assert_eq!(s.user.as_deref(), Some("app"));
        assert!(parse_url("http://x").is_err());
    }
}
