//! Differential tests against a real `redis-server`, for what `t200_differential`
//! leaves out because it is connection state rather than keyspace:
//!
//! - **pub/sub**: seeded random `SUBSCRIBE`, `PSUBSCRIBE`, `UNSUBSCRIBE`,
//!   `PUNSUBSCRIBE` (with and without arguments), `RESET`, and commands in subscribed
//!   mode, on a RESP2 and a RESP3 subscriber per server; `PUBLISH` from a third
//!   connection, after which each subscriber's deliveries are read up to a `PING` (a
//!   barrier: both servers deliver a message before they answer a later command on the
//!   same connection) and compared; and `PUBSUB CHANNELS|NUMSUB|NUMPAT`;
//! - **the error paths of the administrative commands**: `CONFIG`, `CLIENT`, `ACL`,
//!   `COMMAND`, `OBJECT`, `MEMORY`, with random subcommands and arguments. Forms whose
//!   answer describes the process (`CONFIG GET *`, `CLIENT LIST`, `CLIENT ID`,
//!   `COMMAND COUNT`, `ACL LOG`, `ACL GENPASS`...) are left out; the error texts, the
//!   validation of every `CONFIG SET` parameter drawn, and what `CONFIG GET` then shows
//!   are compared.
//!
//! `DIFF_SEED` picks the seed (printed either way) and `DIFF_COMMANDS` the length
//! (10,000 steps each by default). It needs `redis-server` on the PATH and fails without.

mod support;

use std::collections::BTreeSet;

use support::diff::{b, seed_and_len, show, Conn, RedisServer, Reply, Rng};
use support::Server;

const CHANNELS: &[&str] = &["c0", "c1", "c2", "news.a", "news.b", "", "\u{0}bin"];
const PATTERNS: &[&str] = &["c*", "news.*", "*", "c[01]", "n?ws.*", "\\*", "x*"];

/// One subscriber pair (the same subscriptions on both servers) and what it holds.
struct Sub {
    redis: Conn,
    ours: Conn,
    resp3: bool,
    channels: BTreeSet<String>,
    patterns: BTreeSet<String>,
}

impl Sub {
    fn subscribed(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty()
    }
}

/// Read `n` replies from each side; sorted when the order is unspecified.
fn read_both(s: &mut Sub, n: usize, sort: bool) -> (Vec<Reply>, Vec<Reply>) {
    let mut a: Vec<Reply> = (0..n).map(|_| s.redis.read()).collect();
    let mut o: Vec<Reply> = (0..n).map(|_| s.ours.read()).collect();
    if sort {
        // In hash order, each reply counting down what is left: compare the names as a
        // set and the counts as a set.
        for side in [&mut a, &mut o] {
            let mut names = Vec::new();
            let mut counts = Vec::new();
            for r in side.drain(..) {
                match r {
                    Reply::Array(Some(mut x)) | Reply::Push(mut x) if x.len() == 3 => {
                        counts.push(x.pop().unwrap_or(Reply::Null));
                        names.push(Reply::Array(Some(x)));
                    }
                    other => names.push(other),
                }
            }
            names.sort();
            counts.sort();
            side.extend(names);
            side.extend(counts);
        }
    }
    (a, o)
}

/// Everything each side delivered before its answer to a `PING tag`, sorted (Redis
/// walks its pattern table in hash order).
fn drain_to_ping(s: &mut Sub, tag: &str) -> (Vec<Reply>, Vec<Reply>) {
    let ping = [b("PING"), b(tag)];
    s.redis.send(&ping);
    s.ours.send(&ping);
    let is_pong = |r: &Reply| match r {
        Reply::Bulk(Some(t)) => t == tag.as_bytes(),
        Reply::Array(Some(items)) | Reply::Push(items) => {
            items.len() == 2 && items[1] == Reply::Bulk(Some(b(tag)))
        }
        _ => false,
    };
    let mut out = (Vec::new(), Vec::new());
    for (c, got) in [(&mut s.redis, &mut out.0), (&mut s.ours, &mut out.1)] {
        for _ in 0..64 {
            let r = c.read();
            if is_pong(&r) {
                break;
            }
            got.push(r);
        }
        got.sort();
    }
    out
}

fn pick_some(r: &mut Rng, from: &[&str], max: usize) -> Vec<String> {
    (0..1 + r.below(max))
        .map(|_| r.pick(from).to_string())
        .collect()
}

#[test]
fn pubsub_matches_redis_server() {
    let (seed, n) = seed_and_len(10_000);
    println!("pubsub differential: DIFF_SEED={seed} DIFF_COMMANDS={n}");
    let redis = RedisServer::start();
    let ours = Server::start();
    let mut rng = Rng(seed | 1);
    let mut subs: Vec<Sub> = [false, true]
        .into_iter()
        .map(|resp3| Sub {
            redis: Conn::open(redis.port, resp3),
            ours: Conn::open(ours.port, resp3),
            resp3,
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
        })
        .collect();
    let mut pub_a = Conn::open(redis.port, false);
    let mut pub_o = Conn::open(ours.port, false);
    let mut diffs = Vec::new();
    for i in 0..n {
        let p = rng.below(2);
        let action = rng.below(100);
        let (what, want, got) = if action < 30 {
            // SUBSCRIBE (up to 3 channels) or PSUBSCRIBE (up to 2 patterns).
            let pattern = action >= 15;
            let (name, vocab, max) = if pattern {
                ("PSUBSCRIBE", PATTERNS, 2)
            } else {
                ("SUBSCRIBE", CHANNELS, 3)
            };
            let items = pick_some(&mut rng, vocab, max);
            let s = &mut subs[p];
            let mut cmd = vec![b(name)];
            cmd.extend(items.iter().map(|c| b(c)));
            s.redis.send(&cmd);
            s.ours.send(&cmd);
            let held = if pattern {
                &mut s.patterns
            } else {
                &mut s.channels
            };
            held.extend(items.iter().cloned());
            let (a, o) = read_both(s, items.len(), false);
            (show(&cmd), a, o)
        } else if action < 40 {
            let pattern = rng.chance(50);
            let all = rng.chance(30);
            let vocab = if pattern { PATTERNS } else { CHANNELS };
            let args = if all {
                Vec::new()
            } else {
                pick_some(&mut rng, vocab, 2)
            };
            let s = &mut subs[p];
            let held = if pattern {
                &mut s.patterns
            } else {
                &mut s.channels
            };
            let replies = if all { held.len().max(1) } else { args.len() };
            if all {
                held.clear();
            } else {
                for a in &args {
                    held.remove(a);
                }
            }
            let mut cmd = vec![b(if pattern {
                "PUNSUBSCRIBE"
            } else {
                "UNSUBSCRIBE"
            })];
            cmd.extend(args.iter().map(|c| b(c)));
            s.redis.send(&cmd);
            s.ours.send(&cmd);
            // Without arguments the order is the server's hash order.
            let (a, o) = read_both(s, replies, all);
            (show(&cmd), a, o)
        } else if action < 70 {
            let chan = rng.pick(CHANNELS);
            let cmd = vec![b("PUBLISH"), b(chan), format!("m{i}").into_bytes()];
            let want = pub_a.call(&cmd);
            let got = pub_o.call(&cmd);
            if want != got {
                diffs.push(format!(
                    "#{i} {}\n  redis:    {want:?}\n  sessiond: {got:?}",
                    show(&cmd)
                ));
            }
            let mut a = Vec::new();
            let mut o = Vec::new();
            for s in subs.iter_mut() {
                let (x, y) = drain_to_ping(s, &format!("t{i}"));
                a.extend(x);
                o.extend(y);
            }
            (format!("deliveries of {}", show(&cmd)), a, o)
        } else if action < 80 {
            // Another command on a subscriber: refused in RESP2's subscribed mode.
            let cmd = match rng.below(5) {
                0 => vec![b("GET"), b("k")],
                1 => vec![b("SET"), b("k"), b("v")],
                2 => vec![b("PING")],
                3 => vec![b("ECHO"), b("e")],
                _ => vec![b("SUBSCRIBE")],
            };
            let s = &mut subs[p];
            let a = s.redis.call(&cmd);
            let o = s.ours.call(&cmd);
            let mode = if s.resp3 { "RESP3" } else { "RESP2" };
            (
                format!("{mode} subscribed={} {}", s.subscribed(), show(&cmd)),
                vec![a],
                vec![o],
            )
        } else if action < 97 {
            let cmd = match rng.below(4) {
                0 => vec![b("PUBSUB"), b("NUMPAT")],
                1 => {
                    let mut c = vec![b("PUBSUB"), b("NUMSUB")];
                    c.extend(pick_some(&mut rng, CHANNELS, 3).iter().map(|x| b(x)));
                    c
                }
                2 => vec![b("PUBSUB"), b("CHANNELS")],
                _ => vec![b("PUBSUB"), b("CHANNELS"), b(rng.pick(PATTERNS))],
            };
            let mut a = pub_a.call(&cmd);
            let mut o = pub_o.call(&cmd);
            for r in [&mut a, &mut o] {
                if let Reply::Array(Some(items)) = r {
                    if cmd[1] == b("CHANNELS") {
                        items.sort();
                    }
                }
            }
            (show(&cmd), vec![a], vec![o])
        } else {
            let s = &mut subs[p];
            s.channels.clear();
            s.patterns.clear();
            let cmd = vec![b("RESET")];
            let a = s.redis.call(&cmd);
            let o = s.ours.call(&cmd);
            (show(&cmd), vec![a], vec![o])
        };
        if want != got {
            diffs.push(format!(
                "#{i} RESP{} {what}\n  redis:    {want:?}\n  sessiond: {got:?}",
                p + 2
            ));
            if diffs.len() >= 20 {
                break;
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{} difference(s) with DIFF_SEED={seed}:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// A random administrative command, mostly its error paths.
fn admin_command(r: &mut Rng) -> Vec<Vec<u8>> {
    let mut cmd: Vec<Vec<u8>> = Vec::new();
    let word = |r: &mut Rng, from: &[&str]| b(r.pick(from));
    match r.below(6) {
        0 => {
            cmd.push(b("CONFIG"));
            match r.below(4) {
                0 => cmd.push(word(
                    r,
                    &["bogus", "GET", "SET", "RESETSTAT x", "help x", "REWRITE"],
                )),
                1 => {
                    cmd.push(b("GET"));
                    cmd.push(word(
                        r,
                        &[
                            "nosuch",
                            "maxmemory",
                            "hz",
                            "notify-keyspace-events",
                            "timeout",
                            "slowlog-max-len",
                            "appendfsync",
                            "loglevel",
                            "no*such",
                        ],
                    ));
                }
                _ => {
                    cmd.push(b("SET"));
                    let pairs: &[(&str, &[&str])] = &[
                        ("maxmemory", &["lots", "10mb", "-1", "0", "1gb", "5k"]),
                        ("hz", &["abc", "1000", "0", "-5", "20"]),
                        ("timeout", &["-1", "x", "0", "30"]),
                        ("loglevel", &["loud", "warning", "notice", "VERBOSE"]),
                        ("appendfsync", &["always", "sometimes", "everysec"]),
                        ("slowlog-log-slower-than", &["x", "-1", "10000"]),
                        ("slowlog-max-len", &["-1", "x", "128"]),
                        (
                            "notify-keyspace-events",
                            &["KEA", "Kx", "", "Elg", "AKE$", "q", "gKn"],
                        ),
                        ("databases", &["16", "1"]),
                        ("dir", &["/tmp", "."]),
                        ("bogus", &["1"]),
                        ("protected-mode", &["yes", "maybe"]),
                        ("tcp-keepalive", &["-1", "60", "x"]),
                    ];
                    for _ in 0..1 + r.below(2) {
                        let (k, vs) = pairs[r.below(pairs.len())];
                        cmd.push(b(k));
                        cmd.push(word(r, vs));
                    }
                    if r.chance(10) {
                        cmd.pop();
                    }
                }
            }
        }
        1 => {
            cmd.push(b("CLIENT"));
            let forms: &[&[&str]] = &[
                &["bogus"],
                &["GETNAME", "x"],
                &["SETNAME", "a b"],
                &["SETNAME", "ok-name"],
                &["SETNAME"],
                &["GETNAME"],
                &["KILL", "1.2.3.4:5"],
                &["KILL", "ID", "abc"],
                &["KILL", "ID", "999999"],
                &["KILL", "ADDR", "1.2.3.4:5", "SKIPME", "maybe"],
                &["KILL", "USER", "nosuch"],
                &["KILL", "BOGUS", "x"],
                &["REPLY", "bad"],
                &["NO-EVICT", "maybe"],
                &["NO-EVICT", "on"],
                &["LIST", "TYPE", "bogus"],
                &["LIST", "ID", "abc"],
                &["LIST", "bogus"],
                &["INFO", "x"],
            ];
            cmd.extend(forms[r.below(forms.len())].iter().map(|s| b(s)));
        }
        2 => {
            cmd.push(b("ACL"));
            let forms: &[&[&str]] = &[
                &["bogus"],
                &["WHOAMI"],
                &["WHOAMI", "x"],
                &["CAT", "nosuchcat"],
                &["CAT", "a", "b"],
                &["USERS"],
                &["SETUSER", "u1", "on", ">pw", "~k*", "+get"],
                &["SETUSER", "u1", "badrule"],
                &["SETUSER", "u1", "+nosuchcmd"],
                &["SETUSER", "u1", "-@nosuchcat"],
                &[
                    "SETUSER", "u2", "reset", "nopass", "allkeys", "+@read", "-keys",
                ],
                &["SETUSER", "u2", "<nosuchpass"],
                &["SETUSER", "u2", "#abc"],
                &["SETUSER"],
                &["GETUSER", "nosuch"],
                &["GETUSER", "u1"],
                &["GETUSER", "u2"],
                &["LIST"],
                &["DELUSER", "nosuch"],
                &["DELUSER", "u2"],
                &["DELUSER", "default"],
                &["DRYRUN", "nosuch", "get", "k"],
                &["DRYRUN", "u1", "get", "k1"],
                &["DRYRUN", "u1", "get", "x"],
                &["DRYRUN", "u1", "set", "k", "v"],
                &["DRYRUN", "u1", "nosuchcmd"],
                &["DRYRUN", "u1", "get"],
                &["LOG", "RESET"],
                &["LOG", "bogus"],
                &["LOG", "-1"],
                &["LOAD"],
                &["SAVE"],
                &["GENPASS", "0"],
                &["GENPASS", "x"],
            ];
            cmd.extend(forms[r.below(forms.len())].iter().map(|s| b(s)));
        }
        3 => {
            cmd.push(b("COMMAND"));
            let forms: &[&[&str]] = &[
                &["bogus"],
                &["INFO", "nosuch"],
                &["INFO", "nosuch", "nosuch2"],
                &["GETKEYS", "get", "k"],
                &["GETKEYS", "mset", "a", "1", "b", "2"],
                &["GETKEYS", "nosuch", "x"],
                &["GETKEYS", "set"],
                &["GETKEYS", "ping"],
                &["GETKEYS"],
                &["DOCS", "nosuch"],
                &["COUNT", "x"],
                &["LIST", "FILTERBY", "bogus", "x"],
                &["LIST", "FILTERBY", "pattern", "xyz*"],
                &["LIST", "FILTERBY", "aclcat", "nosuchcat"],
                &["LIST", "FILTERBY", "module", "nosuch"],
            ];
            cmd.extend(forms[r.below(forms.len())].iter().map(|s| b(s)));
        }
        4 => {
            cmd.push(b("OBJECT"));
            let forms: &[&[&str]] = &[
                &["bogus"],
                &["ENCODING", "missing"],
                &["ENCODING"],
                &["REFCOUNT", "missing"],
                &["IDLETIME", "missing"],
                &["FREQ", "missing"],
            ];
            cmd.extend(forms[r.below(forms.len())].iter().map(|s| b(s)));
        }
        _ => {
            cmd.push(b("MEMORY"));
            let forms: &[&[&str]] = &[
                &["bogus"],
                &["USAGE", "missing"],
                &["USAGE", "missing", "SAMPLES", "x"],
                &["USAGE", "missing", "bogus", "1"],
                &["USAGE"],
            ];
            cmd.extend(forms[r.below(forms.len())].iter().map(|s| b(s)));
        }
    }
    cmd
}

/// Replies listing things in the server's own order, sorted.
fn sorted(mut r: Reply) -> Reply {
    if let Reply::Array(Some(items)) | Reply::Set(items) = &mut r {
        items.sort();
    }
    r
}

#[test]
fn admin_error_paths_match_redis_server() {
    let (seed, n) = seed_and_len(10_000);
    println!("admin differential: DIFF_SEED={seed} DIFF_COMMANDS={n}");
    let redis = RedisServer::start();
    let ours = Server::start();
    let mut rng = Rng(seed | 1);
    let mut conns = [
        (Conn::open(redis.port, false), Conn::open(ours.port, false)),
        (Conn::open(redis.port, true), Conn::open(ours.port, true)),
    ];
    let mut diffs = Vec::new();
    for i in 0..n {
        let proto = rng.below(2);
        let (ra, rb) = &mut conns[proto];
        let cmd = admin_command(&mut rng);
        let want = sorted(ra.call(&cmd));
        let got = sorted(rb.call(&cmd));
        if want != got {
            diffs.push(format!(
                "#{i} RESP{} {}\n  redis:    {want:?}\n  sessiond: {got:?}",
                proto + 2,
                show(&cmd)
            ));
            if diffs.len() >= 20 {
                break;
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{} difference(s) with DIFF_SEED={seed}:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
