//! Cluster commands: `ROLE`, `RAFT.INFO`, `RAFT.NODE`, `RAFT.TRANSFER-LEADER`,
//! `RAFT.SNAPSHOT`, the `CLUSTER` subcommands that cluster-mode clients use to find
//! the leader (one shard owning all 16384 slots, its primary the raft leader), and the
//! `SENTINEL` queries that Sentinel-aware clients use (every node acts as a sentinel
//! watching one master named `mymaster`: the raft leader).
//!
//! The `RAFT.*` changes wait for the raft group, so in a cluster the connection runs
//! them through [`admin`] (async) instead of the table's synchronous handler; the
//! handlers here answer only on a node that is not in a cluster.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use sessiond_cluster::node::Admin;
use sessiond_cluster::{ClusterStatus, Handle};
use sessiond_protocol::encode;

use super::{parse_i64, Ctx};
use crate::replicated::{cluster_error, key_slot};

const NOT_CLUSTER: &[u8] =
    b"ERR this node is not part of a cluster (start it with --node-id and --peers, or --dir)";

fn host_port(addr: &str) -> (&str, i64) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().unwrap_or(0)),
        None => (addr, 0),
    }
}

/// `ROLE`: the leader reports itself as master with its followers as replicas; a
/// follower reports the leader as its master. Sentinel-aware clients use this.
pub fn role(ctx: &mut Ctx<'_>, _args: &[Bytes]) {
    let Some(c) = ctx.shared.cluster() else {
        encode::array_len(ctx.out, 3);
        encode::bulk(ctx.out, b"master");
        encode::integer(ctx.out, 0);
        encode::array_len(ctx.out, 0);
        return;
    };
    let st = &c.status;
    let applied = st.applied.load(Ordering::Relaxed) as i64;
    if st.is_leader() {
        let followers = followers(st);
        encode::array_len(ctx.out, 3);
        encode::bulk(ctx.out, b"master");
        encode::integer(ctx.out, applied);
        encode::array_len(ctx.out, followers.len());
        for f in followers {
            let (h, p) = host_port(&f.addr);
            encode::array_len(ctx.out, 3);
            encode::bulk(ctx.out, h.as_bytes());
            encode::bulk(ctx.out, p.to_string().as_bytes());
            encode::bulk(ctx.out, f.matched.to_string().as_bytes());
        }
    } else {
        let leader = st.leader_client_addr();
        let (h, p) = leader.as_deref().map_or(("", -1), host_port);
        encode::array_len(ctx.out, 5);
        encode::bulk(ctx.out, b"slave");
        encode::bulk(ctx.out, h.as_bytes());
        encode::integer(ctx.out, p);
        encode::bulk(
            ctx.out,
            if leader.is_some() {
                b"connected"
            } else {
                b"connect"
            },
        );
        encode::integer(ctx.out, applied);
    }
}

/// The `# Raft` section of `INFO`, also `RAFT.INFO`'s reply.
pub fn raft_section(cluster: Option<&Handle>, t: &mut String) {
    let Some(c) = cluster else {
        t.push_str("# Raft\r\nraft_enabled:0\r\n");
        return;
    };
    let st = &c.status;
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let snap_ms = ld(&st.snapshot_ms);
    let snap_age = if snap_ms == 0 {
        -1
    } else {
        (crate::clock::now_ms().saturating_sub(snap_ms) / 1000) as i64
    };
    let fsyncs = ld(&st.fsyncs);
    let _ = write!(
        t,
        "# Raft\r\nraft_enabled:1\r\nraft_node_id:{}\r\nraft_role:{}\r\nraft_leader_id:{}\r\nraft_leader_addr:{}\r\nraft_term:{}\r\nraft_commit_index:{}\r\nraft_applied_index:{}\r\nraft_first_index:{}\r\nraft_last_index:{}\r\nraft_snapshot_index:{}\r\nraft_snapshot_age_seconds:{}\r\nraft_log_bytes_written:{}\r\nraft_log_memory_bytes:{}\r\nraft_fsyncs:{}\r\nraft_fsync_avg_us:{}\r\nraft_leader_changes:{}\r\nraft_proposals:{}\r\nraft_entries_applied:{}\r\nraft_reads:{}\r\nraft_timeouts:{}\r\nraft_read_consistency:{:?}\r\nraft_invalidation_fence:{}\r\nraft_invalidation_fence_timeouts:{}\r\nraft_clock_skew_ms:{}\r\nraft_clock_too_far:{}\r\nraft_clock_leader_offset_ms:{}\r\nraft_max_clock_skew_ms:{}\r\nraft_clock_rates_ok:{}\r\nraft_lease:{}\r\n",
        st.id,
        st.role().name(),
        st.leader_id(),
        st.leader_client_addr().unwrap_or_default(),
        ld(&st.term),
        ld(&st.commit),
        ld(&st.applied),
        ld(&st.first_index),
        ld(&st.last_index),
        ld(&st.snapshot_index),
        snap_age,
        ld(&st.log_bytes),
        ld(&st.log_memory),
        fsyncs,
        ld(&st.fsync_us).checked_div(fsyncs).unwrap_or(0),
        ld(&st.leader_changes),
        ld(&st.proposals),
        ld(&st.entries_applied),
        ld(&st.reads),
        ld(&st.timeouts),
        c.read_consistency,
        if st.fence.load(std::sync::atomic::Ordering::Relaxed) {
            "on"
        } else {
            "off"
        },
        ld(&st.fence_timeouts),
        st.clock_skew_us.load(std::sync::atomic::Ordering::Relaxed) / 1000,
        u8::from(st.clock_skewed.load(std::sync::atomic::Ordering::Relaxed)),
        st.leader_offset_us.load(std::sync::atomic::Ordering::Relaxed) / 1000,
        c.max_clock_skew_ms(),
        u8::from(st.clock_rates_ok.load(std::sync::atomic::Ordering::Relaxed)),
        u8::from(st.lease_view().0),
    );
    for (id, p) in st.peers() {
        let _ = write!(
            t,
            "raft_node{id}:raft_addr={},client_addr={},voter={},clock_offset_ms={},clock_rate_ppm={}\r\n",
            p.raft_addr,
            p.client_addr.unwrap_or_default(),
            u8::from(p.voter),
            p.clock_offset_ms.map_or(String::new(), |o| o.to_string()),
            p.clock_rate_ppm.map_or(String::new(), |o| o.to_string()),
        );
    }
}

/// A follower as the leader sees it: its client address and replication progress.
struct Follower {
    addr: String,
    matched: u64,
    /// Redis's replica states: `online`, or `send_bulk` while it gets a snapshot.
    state: &'static str,
    /// Seconds since it last caught up (0 while it keeps up).
    lag: u64,
}

/// The followers the leader hears from (a silent one is left out, as Redis lists only
/// connected replicas).
fn followers(st: &ClusterStatus) -> Vec<Follower> {
    let now = crate::clock::now_ms();
    st.peers()
        .into_iter()
        .filter(|(id, _)| *id != st.id)
        .filter_map(|(_, p)| {
            let pr = p.progress?;
            pr.active.then(|| Follower {
                addr: p.client_addr.unwrap_or_else(|| p.raft_addr.clone()),
                matched: pr.matched,
                state: if pr.state == "snapshot" {
                    "send_bulk"
                } else {
                    "online"
                },
                lag: now.saturating_sub(pr.caught_up_ms) / 1000,
            })
        })
        .collect()
}

/// The `# Replication` section of `INFO` in a cluster.
pub fn replication_section(st: &ClusterStatus, run_id: &str, t: &mut String) {
    let applied = st.applied.load(Ordering::Relaxed);
    if st.is_leader() {
        let followers = followers(st);
        let _ = write!(
            t,
            "# Replication\r\nrole:master\r\nconnected_slaves:{}\r\n",
            followers.len()
        );
        for (i, f) in followers.iter().enumerate() {
            let (h, p) = host_port(&f.addr);
            let _ = write!(
                t,
                "slave{i}:ip={h},port={p},state={},offset={},lag={}\r\n",
                f.state, f.matched, f.lag
            );
        }
    } else {
        let leader = st.leader_client_addr();
        let (h, p) = leader.as_deref().map_or(("", 0), host_port);
        let _ = write!(
            t,
            "# Replication\r\nrole:slave\r\nmaster_host:{h}\r\nmaster_port:{p}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:0\r\nmaster_sync_in_progress:0\r\nslave_read_repl_offset:{applied}\r\nslave_repl_offset:{applied}\r\nslave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\nconnected_slaves:0\r\n",
            if leader.is_some() { "up" } else { "down" },
        );
    }
    let _ = write!(
        t,
        "master_failover_state:no-failover\r\nmaster_replid:{run_id}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:{applied}\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n"
    );
}

pub fn raft_info(ctx: &mut Ctx<'_>, _args: &[Bytes]) {
    let mut t = String::new();
    raft_section(ctx.shared.cluster(), &mut t);
    let r3 = ctx.resp3();
    encode::verbatim(ctx.out, b"txt", t.as_bytes(), r3);
}

/// Table handler for the `RAFT.*` changes: reached only off a cluster.
pub fn raft_admin(ctx: &mut Ctx<'_>, _args: &[Bytes]) {
    ctx.err(NOT_CLUSTER);
}

/// Whether the connection must run this command through [`admin`].
pub fn is_admin(name: &[u8]) -> bool {
    [&b"raft.node"[..], b"raft.transfer-leader", b"raft.snapshot"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

fn parse_id(b: &[u8]) -> Option<u64> {
    parse_i64(b).filter(|&n| n > 0).map(|n| n as u64)
}

/// Run a `RAFT.*` change against the raft group and write its reply.
pub async fn admin(out: &mut BytesMut, args: &[Bytes], cluster: &Handle) {
    let name = args[0].to_ascii_lowercase();
    let sub = args
        .get(1)
        .map(|a| a.to_ascii_lowercase())
        .unwrap_or_default();
    let cmd = match (&name[..], &sub[..], args.len()) {
        (b"raft.node", b"add", 4) => match parse_id(&args[2]) {
            Some(id) => Admin::AddNode {
                id,
                raft_addr: String::from_utf8_lossy(&args[3]).into_owned(),
            },
            None => return encode::error(out, b"ERR invalid node id"),
        },
        (b"raft.node", b"remove", 3) => match parse_id(&args[2]) {
            Some(id) => Admin::RemoveNode { id },
            None => return encode::error(out, b"ERR invalid node id"),
        },
        (b"raft.node", _, _) => {
            return encode::error(
                out,
                b"ERR syntax: RAFT.NODE ADD <id> <host:raftport> | RAFT.NODE REMOVE <id>",
            )
        }
        (b"raft.transfer-leader", _, 2) => match parse_id(&args[1]) {
            Some(id) => Admin::TransferLeader { id },
            None => return encode::error(out, b"ERR invalid node id"),
        },
        (b"raft.snapshot", _, 1) => Admin::Snapshot,
        _ => {
            let msg = format!(
                "ERR wrong number of arguments for '{}' command",
                String::from_utf8_lossy(&name)
            );
            return encode::error(out, msg.as_bytes());
        }
    };
    match cluster.admin(cmd).await {
        Ok(Ok(text)) => encode::simple(out, text.as_bytes()),
        Ok(Err(e)) => cluster_error(out, &e),
        Err(_) => cluster_error(out, &sessiond_cluster::ClusterError::Stopped),
    }
}

/// `CLUSTER INFO|SLOTS|SHARDS|NODES|MYID|KEYSLOT`.
pub fn cluster(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let sub = args[1].to_ascii_lowercase();
    if sub == b"keyslot" && args.len() == 3 {
        ctx.int(i64::from(key_slot(&args[2])));
        return;
    }
    let Some(c) = ctx.shared.cluster() else {
        ctx.err(b"ERR This instance has cluster support disabled");
        return;
    };
    let st = &c.status;
    let peers = st.peers();
    let leader = st.leader_id();
    let node_name = |id: u64| format!("{id:040x}");
    let r3 = ctx.resp3();
    match &sub[..] {
        b"info" => {
            let ok = leader != 0;
            let t = format!(
                "cluster_state:{}\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:{}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{}\r\ncluster_size:1\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\n",
                if ok { "ok" } else { "fail" },
                if ok { 16384 } else { 0 },
                peers.len(),
                st.term.load(Ordering::Relaxed),
                st.term.load(Ordering::Relaxed),
            );
            encode::verbatim(ctx.out, b"txt", t.as_bytes(), r3);
        }
        b"myid" => encode::bulk(ctx.out, node_name(st.id).as_bytes()),
        b"slots" => {
            let Some(laddr) = st.leader_client_addr() else {
                ctx.err(b"CLUSTERDOWN No raft leader");
                return;
            };
            let mut nodes = vec![(leader, laddr)];
            for (&id, p) in &peers {
                if id != leader {
                    if let Some(a) = &p.client_addr {
                        nodes.push((id, a.clone()));
                    }
                }
            }
            encode::array_len(ctx.out, 1);
            encode::array_len(ctx.out, 2 + nodes.len());
            encode::integer(ctx.out, 0);
            encode::integer(ctx.out, 16383);
            for (id, a) in nodes {
                let (h, p) = host_port(&a);
                encode::array_len(ctx.out, 3);
                encode::bulk(ctx.out, h.as_bytes());
                encode::integer(ctx.out, p);
                encode::bulk(ctx.out, node_name(id).as_bytes());
            }
        }
        b"shards" => {
            let live: Vec<(u64, String)> = peers
                .iter()
                .filter_map(|(&id, p)| p.client_addr.clone().map(|a| (id, a)))
                .collect();
            encode::array_len(ctx.out, 1);
            encode::map_len(ctx.out, 2, r3);
            encode::bulk(ctx.out, b"slots");
            encode::array_len(ctx.out, 2);
            encode::integer(ctx.out, 0);
            encode::integer(ctx.out, 16383);
            encode::bulk(ctx.out, b"nodes");
            encode::array_len(ctx.out, live.len());
            for (id, a) in live {
                let (h, p) = host_port(&a);
                encode::map_len(ctx.out, 6, r3);
                encode::bulk(ctx.out, b"id");
                encode::bulk(ctx.out, node_name(id).as_bytes());
                encode::bulk(ctx.out, b"port");
                encode::integer(ctx.out, p);
                encode::bulk(ctx.out, b"ip");
                encode::bulk(ctx.out, h.as_bytes());
                encode::bulk(ctx.out, b"endpoint");
                encode::bulk(ctx.out, h.as_bytes());
                encode::bulk(ctx.out, b"role");
                encode::bulk(
                    ctx.out,
                    if id == leader {
                        &b"master"[..]
                    } else {
                        b"replica"
                    },
                );
                encode::bulk(ctx.out, b"health");
                encode::bulk(ctx.out, b"online");
            }
        }
        b"nodes" => {
            let mut t = String::new();
            for (&id, p) in &peers {
                let Some(a) = &p.client_addr else { continue };
                let (h, port) = host_port(a);
                let myself = if id == st.id { "myself," } else { "" };
                let (flags, master, slots) = if id == leader {
                    ("master", "-".to_string(), " 0-16383")
                } else {
                    ("slave", node_name(leader), "")
                };
                let _ = writeln!(
                    t,
                    "{} {h}:{port}@{port} {myself}{flags} {master} 0 0 {} connected{slots}",
                    node_name(id),
                    st.term.load(Ordering::Relaxed),
                );
            }
            encode::verbatim(ctx.out, b"txt", t.as_bytes(), r3);
        }
        _ => super::unknown_subcommand(ctx.out, "CLUSTER", &args[1]),
    }
}

/// The master name Sentinel clients ask for.
pub const SENTINEL_MASTER: &str = "mymaster";

/// How often a node looks for a new leader to announce.
const ANNOUNCE_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// Sentinel's failover announcement: whenever this node sees the leader's client address
/// change, it publishes `mymaster <old-ip> <old-port> <new-ip> <new-port>` on the
/// `+switch-master` channel to its own subscribers, as a Sentinel does. Clients that
/// follow failovers that way (go-redis FailoverClient, ioredis) switch at once. Runs
/// until the task is dropped.
pub async fn announce_leader_changes(shared: std::sync::Arc<crate::server::Shared>) {
    let Some(c) = shared.cluster() else {
        return;
    };
    let mut last = c.status.leader_client_addr();
    let mut tick = tokio::time::interval(ANNOUNCE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = c.status.leader_client_addr();
        if now.is_none() || now == last {
            continue;
        }
        if let (Some(old), Some(new)) = (&last, &now) {
            let (oh, op) = host_port(old);
            let (nh, np) = host_port(new);
            let msg = format!("{SENTINEL_MASTER} {oh} {op} {nh} {np}");
            shared.pubsub.publish(b"+switch-master", msg.as_bytes());
            tracing::info!(from = %old, to = %new, "announced +switch-master");
        }
        last = now;
    }
}

/// Write `pairs` as a RESP3 map or a RESP2 flat array, as Redis does for SENTINEL.
fn kv(out: &mut BytesMut, pairs: &[(&str, String)], r3: bool) {
    encode::map_len(out, pairs.len(), r3);
    for (k, v) in pairs {
        encode::bulk(out, k.as_bytes());
        encode::bulk(out, v.as_bytes());
    }
}

/// `SENTINEL GET-MASTER-ADDR-BY-NAME|MASTERS|MASTER|REPLICAS|SLAVES|SENTINELS|MYID`.
pub fn sentinel(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let sub = args[1].to_ascii_lowercase();
    let Some(c) = ctx.shared.cluster() else {
        ctx.err(b"ERR unknown command 'SENTINEL': this node is not part of a cluster");
        return;
    };
    let st = &c.status;
    let r3 = ctx.resp3();
    let name_ok = |i: usize| {
        args.get(i)
            .is_some_and(|n| n[..] == *SENTINEL_MASTER.as_bytes())
    };
    let leader = st.leader_id();
    let leader_addr = st.leader_client_addr();
    let peers = st.peers();
    let node_name = |id: u64| format!("{id:040x}");
    let master_info = |laddr: &str| -> Vec<(&'static str, String)> {
        let (h, p) = host_port(laddr);
        let replicas = peers
            .iter()
            .filter(|(&id, p)| id != leader && p.client_addr.is_some())
            .count();
        vec![
            ("name", SENTINEL_MASTER.to_string()),
            ("ip", h.to_string()),
            ("port", p.to_string()),
            ("runid", node_name(leader)),
            ("flags", "master".to_string()),
            ("link-pending-commands", "0".to_string()),
            ("link-refcount", "1".to_string()),
            ("last-ping-sent", "0".to_string()),
            ("last-ok-ping-reply", "0".to_string()),
            ("last-ping-reply", "0".to_string()),
            ("down-after-milliseconds", "1000".to_string()),
            ("role-reported", "master".to_string()),
            ("config-epoch", st.term.load(Ordering::Relaxed).to_string()),
            ("num-slaves", replicas.to_string()),
            (
                "num-other-sentinels",
                peers.len().saturating_sub(1).to_string(),
            ),
            ("quorum", (peers.len() / 2 + 1).to_string()),
            ("failover-timeout", "1000".to_string()),
            ("parallel-syncs", "1".to_string()),
        ]
    };
    match (&sub[..], args.len()) {
        (b"get-master-addr-by-name", 3) => match leader_addr.filter(|_| name_ok(2)) {
            Some(a) => {
                let (h, p) = host_port(&a);
                encode::array_len(ctx.out, 2);
                encode::bulk(ctx.out, h.as_bytes());
                encode::bulk(ctx.out, p.to_string().as_bytes());
            }
            None => encode::null_array(ctx.out, r3),
        },
        (b"masters", 2) => match leader_addr {
            Some(a) => {
                encode::array_len(ctx.out, 1);
                kv(ctx.out, &master_info(&a), r3);
            }
            None => encode::array_len(ctx.out, 0),
        },
        (b"master", 3) => match leader_addr {
            Some(a) if name_ok(2) => kv(ctx.out, &master_info(&a), r3),
            _ => ctx.err(b"ERR No such master with that name"),
        },
        (b"replicas" | b"slaves", 3) => {
            if !name_ok(2) {
                ctx.err(b"ERR No such master with that name");
                return;
            }
            let (mh, mp) = leader_addr.as_deref().map_or(("", 0), host_port);
            let list: Vec<(u64, String)> = peers
                .iter()
                .filter(|(&id, _)| id != leader)
                .filter_map(|(&id, p)| p.client_addr.clone().map(|a| (id, a)))
                .collect();
            encode::array_len(ctx.out, list.len());
            for (_, a) in list {
                let (h, p) = host_port(&a);
                kv(
                    ctx.out,
                    &[
                        ("name", a.clone()),
                        ("ip", h.to_string()),
                        ("port", p.to_string()),
                        ("runid", String::new()),
                        ("flags", "slave".to_string()),
                        ("role-reported", "slave".to_string()),
                        ("master-link-status", "ok".to_string()),
                        ("master-host", mh.to_string()),
                        ("master-port", mp.to_string()),
                        ("slave-priority", "100".to_string()),
                    ],
                    r3,
                );
            }
        }
        (b"sentinels", 3) => {
            if !name_ok(2) {
                ctx.err(b"ERR No such master with that name");
                return;
            }
            let list: Vec<(u64, String)> = peers
                .iter()
                .filter(|(&id, _)| id != st.id)
                .filter_map(|(&id, p)| p.client_addr.clone().map(|a| (id, a)))
                .collect();
            encode::array_len(ctx.out, list.len());
            for (id, a) in list {
                let (h, p) = host_port(&a);
                kv(
                    ctx.out,
                    &[
                        ("name", node_name(id)),
                        ("ip", h.to_string()),
                        ("port", p.to_string()),
                        ("runid", node_name(id)),
                        ("flags", "sentinel".to_string()),
                    ],
                    r3,
                );
            }
        }
        (b"myid", 2) => encode::bulk(ctx.out, node_name(st.id).as_bytes()),
        _ => {
            let msg = format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try SENTINEL HELP.",
                super::printable(&args[1], 128)
            );
            ctx.err(msg.as_bytes());
        }
    }
}
