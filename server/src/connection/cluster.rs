//! A cluster node's connection loop: reads wait on a read barrier, writes are proposed
//! through raft and answered once applied.

use super::*;

/// The same loop for a cluster node: reads wait on a read barrier, writes go through
/// raft and are answered once applied (see `crate::replicated`). Commands of one batch
/// still run in order, and consecutive writes share one proposal.
pub(super) async fn io_loop_cluster<S: ClientStream>(
    mut stream: S,
    shared: &Shared,
    info: Arc<ClientInfo>,
    cluster: &sessiond_cluster::Handle,
) -> std::io::Result<()> {
    let mut input = Input::new(shared);
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    let me = info.clone();
    let mut conn = Conn::new(info);
    conn.set_user(shared.users.initial());
    conn.acl_version = shared.users.version();
    let mut cmds: Vec<Vec<Bytes>> = Vec::new();
    let redirect = shared
        .config
        .cluster
        .as_ref()
        .is_some_and(|c| c.follower_mode == FollowerMode::Redirect);
    loop {
        if !next_input(&mut stream, &mut input, &mut out, &mut conn, &me, shared).await? {
            return Ok(());
        }
        let mut bad_input = None;
        loop {
            match input.decode() {
                Ok(Some(args)) => cmds.push(args),
                Ok(None) => break,
                Err(e) => {
                    bad_input = Some(e);
                    break;
                }
            }
        }
        let commands = cmds.len() as u64;
        let start_us = now_us();
        let mut barrier = false;
        let mut it = std::mem::take(&mut cmds).into_iter().peekable();
        while let Some(args) = it.next() {
            // Admission (authentication, ACL, -OOM...) before anything is proposed or run.
            let cmd = match cmd::admit(&mut conn, shared, &args) {
                Ok(cmd) => cmd,
                Err(refusal) => {
                    refusal.reply(&mut out, &args);
                    if conn.close {
                        break;
                    }
                    continue;
                }
            };
            let class = replicated::classify(cmd.spec(), &args, &conn);
            if class == Class::Local && conn.multi.is_none() && cmd::cluster::is_admin(&args[0]) {
                cmd::cluster::admin(&mut out, &args, cluster).await;
                continue;
            }
            if redirect && class != Class::Local && !cluster.status.is_leader() {
                replicated::moved(&mut out, &args, &cluster.status);
                if class == Class::Exec {
                    conn.end_multi();
                }
                continue;
            }
            match class {
                Class::Local | Class::Read => {
                    if class == Class::Read && !barrier {
                        match cluster.read_barrier().await {
                            Ok(Ok(())) => barrier = true,
                            Ok(Err(e)) => {
                                replicated::cluster_error(&mut out, &e);
                                continue;
                            }
                            Err(_) => {
                                replicated::cluster_error(&mut out, &ClusterError::Stopped);
                                continue;
                            }
                        }
                    }
                    if conn.multi.is_none() && crate::script::is_script(&args) {
                        // EVAL_RO: on the script thread, as on a single node.
                        (conn, out) =
                            crate::script::offload(shared, conn, out, args, now_ms()).await?;
                        continue;
                    }
                    loop {
                        if let Some(_pass) = shared.scripts.gate.enter() {
                            run_admitted(shared, &mut out, &mut conn, &cmd, args);
                            break;
                        }
                        if crate::script::runs_while_busy(&args) {
                            run_admitted(shared, &mut out, &mut conn, &cmd, args);
                            break;
                        }
                        if !crate::script::wait_turn(shared, &mut conn, &args, &mut out).await {
                            break;
                        }
                    }
                    if conn.close {
                        break;
                    }
                }
                Class::Write | Class::Exec => {
                    let mut args = args;
                    if let Err(e) = cmd::acl::prepare_load(shared, &mut args) {
                        sessiond_protocol::encode::error(&mut out, &e);
                        continue;
                    }
                    propose(&mut out, &mut conn, shared, cluster, class, args, &mut it).await;
                }
            }
            if out.len() >= OUT_FLUSH {
                write_out(&mut stream, &mut out, shared).await?;
            }
        }
        if let Some(e) = bad_input {
            protocol_error(shared, &mut out, &mut conn, &e);
        }
        finish_batch(shared, &mut conn, commands, now_ms());
        if end_batch(&mut stream, &mut out, &conn, shared, start_us).await? {
            return Ok(());
        }
        input.trim();
        show_input(&me, &input);
    }
}

/// Propose a write, with the writes that follow it in the batch (each one admitted on
/// its own: one refused ends the group, and gets its own reply in order), or an
/// `EXEC`'s queue, as one raft record; write the replies once it is applied.
async fn propose(
    out: &mut BytesMut,
    conn: &mut Conn,
    shared: &Shared,
    cluster: &sessiond_cluster::Handle,
    class: Class,
    first: Vec<Bytes>,
    rest: &mut std::iter::Peekable<std::vec::IntoIter<Vec<Bytes>>>,
) {
    let exec = class == Class::Exec;
    let mut watched = Vec::new();
    let group = if exec {
        let queue = conn.multi.take().unwrap_or_default();
        watched = std::mem::take(&mut conn.watched_values);
        let other_db = conn.watch_db.is_some_and(|d| d != conn.db);
        conn.end_multi();
        conn.last_cmd = "exec";
        if other_db {
            sessiond_protocol::encode::null_array(out, conn.resp3);
            return;
        }
        queue
    } else {
        let mut group = vec![first];
        while group.len() < 1024 {
            let next = rest.next_if(|a| {
                // ACL LOAD is read before it is proposed: it starts a group of its own.
                !cmd::acl::is_load(a)
                    && cmd::admit::admissible(conn, shared, a)
                        .is_some_and(|c| replicated::classify(c.spec(), a, conn) == Class::Write)
            });
            match next {
                Some(a) => group.push(a),
                None => break,
            }
        }
        if let Some(spec) = group.last().and_then(|a| cmd::lookup(&a[0])) {
            conn.last_cmd = spec.name;
        }
        group
    };
    let user = conn.user.as_ref().map(|u| u.name.as_bytes());
    let origin = match conn.tracking.as_mut() {
        Some(t) => {
            // CACHING lasts one command or transaction.
            t.caching = false;
            if t.mode.noloop {
                conn.id
            } else {
                0
            }
        }
        None => 0,
    };
    let record = if exec {
        replicated::encode_exec(conn.resp3, user, conn.db as u8, origin, &group, &watched)
    } else {
        replicated::encode_from(false, conn.resp3, user, conn.db as u8, origin, &group)
    };
    let replies = if exec { 1 } else { group.len() };
    conn.info.proposing.store(true, Ordering::Relaxed);
    let outcome = cluster.propose(record).await;
    conn.info.proposing.store(false, Ordering::Relaxed);
    match outcome {
        Ok(Ok(reply)) => {
            out.extend_from_slice(&reply);
            // Invalidations the write caused for this client follow its reply.
            crate::tracking::drain(&conn.info, out);
        }
        Ok(Err(e)) => {
            for _ in 0..replies {
                replicated::cluster_error(out, &e);
            }
        }
        Err(_) => {
            for _ in 0..replies {
                replicated::cluster_error(out, &ClusterError::Stopped);
            }
        }
    }
}
