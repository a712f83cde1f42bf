//! `INFO` and its sections, from the default ones to `commandstats`, `errorstats` and
//! `latencystats` (which only `INFO all`, `everything` or their own name show).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use sessiond_protocol::encode;

use super::server::REDIS_VERSION;
use super::Ctx;
use crate::clock::now_us;
use crate::mem;

const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "keyspace",
    "expiry",
    "raft",
];

/// Sections only `INFO all`, `INFO everything` or their own name show.
const EXTRA_SECTIONS: &[&str] = &["commandstats", "errorstats", "latencystats"];

/// `INFO [section [section ...]]`
pub fn info(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let mut wanted: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    if wanted.is_empty() {
        wanted.push("default".into());
    }
    if wanted.iter().any(|w| w == "all" || w == "everything") {
        wanted.extend(SECTIONS.iter().chain(EXTRA_SECTIONS).map(|s| s.to_string()));
    } else if wanted.iter().any(|w| w == "default") {
        wanted.extend(SECTIONS.iter().map(|s| s.to_string()));
    }
    let mut text = String::new();
    for section in SECTIONS.iter().chain(EXTRA_SECTIONS) {
        if !wanted.iter().any(|w| w == section) {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        write_section(ctx, section, &mut text);
    }
    let r3 = ctx.resp3();
    encode::verbatim(ctx.out, b"txt", text.as_bytes(), r3);
}

/// Keys, keys with a TTL, and expired-key count over every shard.
pub(super) fn keyspace_totals(ctx: &mut Ctx<'_>) -> (usize, usize, u64, usize) {
    let (mut keys, mut volatile, mut expired, mut table_bytes) = (0, 0, 0, 0);
    for i in 0..ctx.ks.store().shard_count() {
        let s = ctx.ks.shard(i);
        keys += s.len();
        volatile += s.volatile();
        expired += s.expired();
        table_bytes += s.table_bytes();
    }
    (keys, volatile, expired, table_bytes)
}

fn write_section(ctx: &mut Ctx<'_>, section: &str, t: &mut String) {
    let sh = ctx.shared;
    let st = &sh.stats;
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let uptime = sh.started.elapsed().as_secs();
    match section {
        "commandstats" => return sh.cmdstats.write_commandstats(t),
        "errorstats" => return sh.cmdstats.write_errorstats(t),
        "latencystats" => return sh.cmdstats.write_latencystats(t),
        _ => {}
    }
    // Writing to a String cannot fail.
    let _ = match section {
        "server" => write!(
            t,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:10\r\nconfigured_hz:10\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\nsessiond_version:{}\r\nsessiond_shards:{}\r\nsessiond_threads:{}\r\nsessiond_coalesce_us:{}\r\nsessiond_coalesce_settled_us:{}\r\n",
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::process::id(),
            sh.run_id,
            sh.local_addr.port(),
            now_us(),
            uptime,
            uptime / 86400,
            (ctx.now / 1000) & ((1 << 24) - 1),
            std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
            sh.config.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            env!("CARGO_PKG_VERSION"),
            sh.config.shards,
            sh.config.threads,
            sh.config.coalesce_us,
            crate::park::settled_us()
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        "clients" => write!(
            t,
            "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:0\r\ntracking_clients:{}\r\nclients_in_timeout_table:0\r\ntotal_blocking_keys:0\r\n",
            sh.connected.load(Ordering::Relaxed),
            sh.runtime.maxclients(),
            sh.tracking.clients(),
        ),
        "memory" => {
            let used = mem::allocated();
            let rss = mem::rss();
            let peak = sh.peak_memory.fetch_max(used, Ordering::Relaxed).max(used);
            let (_, _, _, table_bytes) = keyspace_totals(ctx);
            let total = mem::total_system();
            write!(
                t,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nused_memory_overhead:{table_bytes}\r\nused_memory_dataset:{}\r\ntotal_system_memory:{total}\r\ntotal_system_memory_human:{}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_allocator:libc\r\nlazyfree_pending_objects:{}\r\nnumber_of_cached_scripts:{}\r\nused_memory_scripts_eval:{}\r\n",
                mem::human(used),
                mem::human(rss),
                mem::human(peak),
                used.saturating_sub(table_bytes as u64),
                mem::human(total),
                sh.runtime.maxmemory(),
                mem::human(sh.runtime.maxmemory()),
                sh.runtime.policy().name(),
                if used > 0 { rss as f64 / used as f64 } else { 0.0 },
                sh.expirer.pending_free.load(Ordering::Relaxed),
                sh.scripts.count(),
                sh.scripts.bytes(),
            )
        }
        "persistence" => write!(
            t,
            "# Persistence\r\nloading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\nrdb_last_bgsave_time_sec:-1\r\nrdb_current_bgsave_time_sec:-1\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:ok\r\naof_last_write_status:ok\r\n",
            sh.started_ms / 1000,
        ),
        "stats" => {
            let (_, _, expired, _) = keyspace_totals(ctx);
            let evicted: u64 = (0..ctx.ks.store().shard_count())
                .map(|i| ctx.ks.shard(i).evicted())
                .sum();
            let (tk, ti, tp) = sh.tracking.totals();
            write!(
                t,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{expired}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nevicted_keys:{evicted}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\nlatest_fork_usec:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\ntotal_error_replies:{}\r\nunexpected_error_replies:{}\r\nclient_query_buffer_limit_disconnections:{}\r\nclient_output_buffer_limit_disconnections:{}\r\nexpiry_thread_rounds:{}\r\nexpiry_thread_reclaimed:{}\r\nexpiry_max_lag_ms:{}\r\n",
                ld(&st.connections_received),
                ld(&st.commands),
                ld(&sh.rates.ops_per_sec),
                ld(&st.net_input_bytes),
                ld(&st.net_output_bytes),
                ld(&st.rejected_connections),
                ld(&st.keyspace_hits),
                ld(&st.keyspace_misses),
                sh.pubsub.channels(None).len(),
                sh.pubsub.numpat(),
                tk,
                ti,
                tp,
                sh.cmdstats.total_errors(),
                ld(&st.protocol_errors),
                ld(&st.query_limit_disconnections),
                ld(&st.output_limit_disconnections),
                ld(&sh.expirer.rounds),
                ld(&sh.expirer.reclaimed),
                ld(&sh.expirer.max_lag_ms),
            )
        }
        "replication" if sh.cluster().is_some() => {
            if let Some(c) = sh.cluster() {
                super::cluster::replication_section(&c.status, &sh.run_id, t);
            }
            Ok(())
        }
        "raft" => {
            super::cluster::raft_section(sh.cluster(), t);
            Ok(())
        }
        "expiry" => {
            let (_, timers, expired, _) = keyspace_totals(ctx);
            write!(
                t,
                "# Expiry\r\nexpiry_timers:{timers}\r\nexpired_keys:{expired}\r\nexpired_per_sec:{}\r\nexpiry_max_lag_ms:{}\r\nexpiry_rounds:{}\r\nexpiry_lazyfree_pending:{}\r\n",
                ld(&sh.rates.expired_per_sec),
                ld(&sh.expirer.max_lag_ms),
                ld(&sh.expirer.rounds),
                ld(&sh.expirer.pending_free),
            )
        }
        "replication" => write!(
            t,
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
            sh.run_id,
        ),
        "cpu" => {
            let (user, sys) = mem::cpu_seconds();
            write!(
                t,
                "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n"
            )
        }
        "keyspace" => {
            t.push_str("# Keyspace\r\n");
            super::databases::keyspace_lines(ctx, t);
            Ok(())
        }
        _ => Ok(()),
    };
}
