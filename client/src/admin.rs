//! Cluster administration, as `sessiond-cli` does it: the status of every member, and
//! membership, leadership and snapshot changes sent to the leader.
//!
//! Members are found from the seeds' `CLUSTER NODES` (every node that has announced its
//! client address); each one is asked for `RAFT.INFO`. A member that does not answer is
//! listed as down.

use std::fmt::Write as _;
use std::time::Duration;

use crate::{Client, ClientError, Reply};

/// What one member reports (or that it did not answer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub addr: String,
    /// `None`: the node did not answer.
    pub fields: Option<Vec<(String, String)>>,
}

impl NodeStatus {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .as_ref()?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

const TIMEOUT: Duration = Duration::from_secs(3);

async fn ask(addr: &str, args: &[&str]) -> Result<Reply, ClientError> {
    let fut = async {
        let mut c = Client::connect(addr).await?;
        c.cmd(args).await
    };
    tokio::time::timeout(TIMEOUT, fut)
        .await
        .map_err(|_| ClientError::Io(std::io::Error::other("timed out")))?
}

fn text(r: &Reply) -> Option<String> {
    match r {
        Reply::Bulk(b) | Reply::Simple(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Reply::Verbatim { text, .. } => Some(String::from_utf8_lossy(text).into_owned()),
        _ => None,
    }
}

fn parse_info(t: &str) -> Vec<(String, String)> {
    t.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Every member reachable from `seeds` (plus the seeds), with its `RAFT.INFO`.
pub async fn status(seeds: &[String]) -> Vec<NodeStatus> {
    let mut addrs: Vec<String> = seeds.to_vec();
    for s in seeds {
        if let Ok(r) = ask(s, &["CLUSTER", "NODES"]).await {
            for line in text(&r).unwrap_or_default().lines() {
                if let Some(a) = line.split_whitespace().nth(1) {
                    let a = a.split('@').next().unwrap_or(a).to_string();
                    if !addrs.contains(&a) {
                        addrs.push(a);
                    }
                }
            }
        }
    }
    let mut out = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let fields = match ask(&addr, &["RAFT.INFO"]).await {
            Ok(r) => text(&r).map(|t| parse_info(&t)),
            Err(_) => None,
        };
        out.push(NodeStatus { addr, fields });
    }
    out.sort_by_key(|n| {
        n.get("raft_node_id")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    });
    out
}

/// The status as a table, one row per member.
pub fn table(nodes: &[NodeStatus]) -> String {
    let cols = [
        ("ID", "raft_node_id"),
        ("ROLE", "raft_role"),
        ("TERM", "raft_term"),
        ("LEADER", "raft_leader_id"),
        ("COMMIT", "raft_commit_index"),
        ("APPLIED", "raft_applied_index"),
        ("SNAPSHOT", "raft_snapshot_index"),
        ("SNAP AGE s", "raft_snapshot_age_seconds"),
        ("FSYNC µs", "raft_fsync_avg_us"),
    ];
    let mut rows: Vec<Vec<String>> = vec![std::iter::once("ADDRESS".to_string())
        .chain(cols.iter().map(|(h, _)| h.to_string()))
        .collect()];
    for n in nodes {
        let mut row = vec![n.addr.clone()];
        for (i, (_, f)) in cols.iter().enumerate() {
            row.push(match (&n.fields, n.get(f)) {
                (None, _) if i == 1 => "down".into(),
                (None, _) => "-".into(),
                (Some(_), v) => v.unwrap_or("-").to_string(),
            });
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut t = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        let _ = writeln!(t, "{}", line.join("  ").trim_end());
    }
    t
}

/// The leader's client address, as any reachable node reports it.
pub async fn leader(seeds: &[String]) -> Option<String> {
    for n in status(seeds).await {
        if let Some(a) = n.get("raft_leader_addr").filter(|a| !a.is_empty()) {
            return Some(a.to_string());
        }
    }
    None
}

/// Send an admin command to the leader; its reply as text (or the error text).
pub async fn to_leader(seeds: &[String], args: &[&str]) -> Result<String, String> {
    let Some(addr) = leader(seeds).await else {
        return Err("no node knows a leader".into());
    };
    send(&addr, args).await
}

/// Send a command to one node; its reply as text (or the error text).
pub async fn send(addr: &str, args: &[&str]) -> Result<String, String> {
    match ask(addr, args).await {
        Ok(Reply::Error(e)) => Err(String::from_utf8_lossy(&e).into_owned()),
        Ok(r) => Ok(text(&r).unwrap_or_else(|| format!("{r:?}"))),
        Err(e) => Err(format!("{addr}: {e}")),
    }
}
