//! A client for a sessiond cluster: a seed list, leader discovery, and retry when the
//! leader changes.
//!
//! Any node serves any client (followers proxy through raft), but talking to the leader
//! saves a hop. [`ClusterClient`] asks the seeds for `RAFT.INFO`, connects to the
//! leader it names, and on `-CLUSTERDOWN`, `-MOVED` or a lost connection finds the
//! leader again. Retrying is safe only when the command did not take effect:
//! [`ClusterClient::cmd`] retries `-CLUSTERDOWN` (nothing was proposed) and `-MOVED`
//! (nothing was run); [`ClusterClient::cmd_idempotent`] also retries a lost connection
//! and `-TIMEOUT` (outcome unknown), for commands that may run twice, such as `SET`.

use std::time::{Duration, Instant};

use crate::{Client, ClientError, Reply};

/// How long a command may spend finding a leader and retrying.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
const PAUSE: Duration = Duration::from_millis(50);

pub struct ClusterClient {
    seeds: Vec<String>,
    conn: Option<(String, Client)>,
    pub deadline: Duration,
}

fn field(text: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(text);
    text.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    })
}

fn error_text(r: &Reply) -> Option<String> {
    match r {
        Reply::Error(e) => Some(String::from_utf8_lossy(e).into_owned()),
        _ => None,
    }
}

impl ClusterClient {
    /// `seeds`: client addresses of some cluster nodes, `host:port`.
    pub fn new<S: Into<String>>(seeds: impl IntoIterator<Item = S>) -> Self {
        ClusterClient {
            seeds: seeds.into_iter().map(Into::into).collect(),
            conn: None,
            deadline: DEFAULT_DEADLINE,
        }
    }

    /// The address of the node this client talks to now.
    pub fn current(&self) -> Option<&str> {
        self.conn.as_ref().map(|(a, _)| a.as_str())
    }

    /// Ask the seeds who leads, and connect there.
    async fn discover(&mut self) -> Result<(), ClientError> {
        self.conn = None;
        for seed in self.seeds.clone() {
            let Ok(mut c) = Client::connect(seed.as_str()).await else {
                continue;
            };
            let leader = match c.cmd(&["RAFT.INFO"]).await {
                Ok(Reply::Bulk(t)) | Ok(Reply::Verbatim { text: t, .. }) => {
                    field(&t, "raft_leader_addr").filter(|a| !a.is_empty())
                }
                _ => None,
            };
            let Some(addr) = leader else { continue };
            if addr == seed {
                self.conn = Some((addr, c));
                return Ok(());
            }
            if let Ok(lc) = Client::connect(addr.as_str()).await {
                if !self.seeds.contains(&addr) {
                    self.seeds.push(addr.clone());
                }
                self.conn = Some((addr, lc));
                return Ok(());
            }
        }
        Err(ClientError::NoLeader(self.seeds.join(",")))
    }

    async fn run(&mut self, args: &[&[u8]], idempotent: bool) -> Result<Reply, ClientError> {
        let start = Instant::now();
        loop {
            let out_of_time = start.elapsed() > self.deadline;
            if self.conn.is_none() {
                if let Err(e) = self.discover().await {
                    if out_of_time {
                        return Err(e);
                    }
                    tokio::time::sleep(PAUSE).await;
                    continue;
                }
            }
            let Some((_, c)) = self.conn.as_mut() else {
                continue;
            };
            match c.cmd(args).await {
                Ok(reply) => {
                    let retry = match error_text(&reply) {
                        Some(e) if e.starts_with("CLUSTERDOWN") || e.starts_with("MOVED") => true,
                        Some(e) if e.starts_with("TIMEOUT") => idempotent,
                        _ => false,
                    };
                    if !retry || out_of_time {
                        return Ok(reply);
                    }
                    self.conn = None;
                }
                Err(e) => {
                    self.conn = None;
                    if !idempotent || out_of_time {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Run a command on the leader, retrying only when it certainly did not run.
    pub async fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply, ClientError> {
        let a: Vec<&[u8]> = args.iter().map(AsRef::as_ref).collect();
        self.run(&a, false).await
    }

    /// Run a command that may safely run twice, retrying through a failover.
    pub async fn cmd_idempotent<A: AsRef<[u8]>>(
        &mut self,
        args: &[A],
    ) -> Result<Reply, ClientError> {
        let a: Vec<&[u8]> = args.iter().map(AsRef::as_ref).collect();
        self.run(&a, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_of_raft_info() {
        let t = b"# Raft\r\nraft_role:follower\r\nraft_leader_addr:127.0.0.1:7002\r\n";
        assert_eq!(
            field(t, "raft_leader_addr").as_deref(),
            Some("127.0.0.1:7002")
        );
        assert_eq!(field(t, "raft_role").as_deref(), Some("follower"));
        assert_eq!(field(t, "raft_term"), None);
    }
}
