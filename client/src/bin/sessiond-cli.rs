//! `sessiond-cli`: administer a sessiond cluster.
//!
//! ```text
//! sessiond-cli status                        # every member, one row each
//! sessiond-cli add 4 10.0.0.4:17004          # a new voter (start it with --join first)
//! sessiond-cli remove 3
//! sessiond-cli transfer-leader 2
//! sessiond-cli snapshot                      # on every member
//! sessiond-cli import --from redis://10.0.0.9:6379   # copy a Redis server's keys in
//! ```
//!
//! `--nodes` (or `SESSIOND_NODES`) names some members' client addresses; the others are
//! found from them. Changes go to the leader.

use clap::{Parser, Subcommand};
use sessiond_client::admin;

#[derive(Parser)]
#[command(
    name = "sessiond-cli",
    version,
    about = "Administer a sessiond cluster"
)]
struct Cli {
    /// Client addresses (host:port) of some cluster members, comma-separated
    #[arg(
        short,
        long,
        env = "SESSIOND_NODES",
        value_delimiter = ',',
        default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
    )]
    nodes: Vec<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show every member: role, term, leader, commit/applied/snapshot index, fsync time
    Status,
    /// Add a voter: its node id and raft address (start it with --join --node-id first)
    Add { id: u64, raft_addr: String },
    /// Remove a member by node id
    Remove { id: u64 },
    /// Hand leadership to another voter
    TransferLeader { id: u64 },
    /// Take a snapshot and compact the log, on one member (host:port) or on all
    Snapshot { node: Option<String> },
    /// Copy every key (with its TTL) of a Redis server into sessiond (the first of
    /// --nodes), with SCAN, DUMP and RESTORE; rerunnable
    Import {
        /// The source: redis://[user:password@]host:port[/db]
        #[arg(long)]
        from: String,
        /// Only keys matching this pattern
        #[arg(long = "match")]
        pattern: Option<String>,
        /// Keys per SCAN page
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Leave keys sessiond already has (default: overwrite them)
        #[arg(long)]
        no_replace: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sessiond-cli: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(run(cli));
    match res {
        Ok(out) => {
            print!("{out}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sessiond-cli: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<String, String> {
    let seeds = &cli.nodes;
    match cli.cmd {
        Cmd::Status => {
            let nodes = admin::status(seeds).await;
            if nodes.iter().all(|n| n.fields.is_none()) {
                return Err(format!("no member answered ({})", seeds.join(", ")));
            }
            Ok(admin::table(&nodes))
        }
        Cmd::Add { id, raft_addr } => {
            let id = id.to_string();
            admin::to_leader(seeds, &["RAFT.NODE", "ADD", &id, &raft_addr])
                .await
                .map(|r| format!("{r}\n"))
        }
        Cmd::Remove { id } => {
            let id = id.to_string();
            admin::to_leader(seeds, &["RAFT.NODE", "REMOVE", &id])
                .await
                .map(|r| format!("{r}\n"))
        }
        Cmd::TransferLeader { id } => {
            let id = id.to_string();
            admin::to_leader(seeds, &["RAFT.TRANSFER-LEADER", &id])
                .await
                .map(|r| format!("{r}\n"))
        }
        Cmd::Import {
            from,
            pattern,
            batch,
            no_replace,
        } => {
            let to = seeds.first().cloned().unwrap_or_default();
            let opts = sessiond_client::import::ImportOptions {
                from,
                to,
                pattern,
                batch,
                replace: !no_replace,
            };
            let p = sessiond_client::import::import(&opts, |p| {
                eprint!(
                    "\rscanned {}, copied {}, kept {}, vanished {}, failed {}",
                    p.scanned,
                    p.copied,
                    p.kept,
                    p.vanished,
                    p.failed.len()
                );
            })
            .await?;
            eprintln!();
            let mut out = format!(
                "scanned {}, copied {}, kept {}, vanished {}, failed {}\n",
                p.scanned,
                p.copied,
                p.kept,
                p.vanished,
                p.failed.len()
            );
            for (k, e) in p.failed.iter().take(20) {
                out.push_str(&format!("  {k}: {e}\n"));
            }
            if p.failed.is_empty() {
                Ok(out)
            } else {
                Err(format!("{out}some keys were not copied"))
            }
        }
        Cmd::Snapshot { node } => {
            let targets: Vec<String> = match node {
                Some(n) => vec![n],
                None => admin::status(seeds)
                    .await
                    .into_iter()
                    .filter(|n| n.fields.is_some())
                    .map(|n| n.addr)
                    .collect(),
            };
            let mut out = String::new();
            for t in targets {
                let r = admin::send(&t, &["RAFT.SNAPSHOT"]).await?;
                out.push_str(&format!("{t}: {r}\n"));
            }
            Ok(out)
        }
    }
}
