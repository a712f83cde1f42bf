//! Differential test against a real `redis-server`: the same seeded random stream of
//! commands goes to both servers, over RESP2 and RESP3 connections, and every reply
//! must match in type and value; then the final keyspaces must match.
//!
//! The stream covers every string, key, hash, set and sorted-set command sessiond
//! implements (`support::diff_types` draws the last two), transactions
//! (`MULTI`, `EXEC`, `DISCARD`, `UNWATCH`; not `WATCH`, see below), whole `SCAN` iterations (compared as
//! sets of keys, since cursors differ), `KEYS`, `HSCAN`, `SELECT`, `PUBLISH`, `ECHO` and
//! `PING`, with their options and their error paths: wrong arity, wrong type, bad integers and floats,
//! invalid expire values on present and missing keys, conflicting options, empty and
//! binary keys. Replies that depend on time are compared with a tolerance (TTLs), and
//! replies whose order is unspecified (HGETALL, KEYS, HSCAN, HRANDFIELD) as sets. Left
//! out, because the answer is random or describes the process: `RANDOMKEY`,
//! `HRANDFIELD` with a negative count, `TIME`, `INFO`, `CLIENT`, `CONFIG`, `COMMAND`,
//! `OBJECT` (see the README's differences), `MONITOR`, `SUBSCRIBE`, `ACL`; and `WATCH`,
//! whose false conflicts (per hash slot, a listed difference) would make the keyspaces
//! part.
//!
//! `DIFF_SEED` picks the seed (printed either way); `DIFF_COMMANDS` the length (20,000
//! by default; CI runs that with a new seed each time). It needs `redis-server` on the
//! PATH and fails without it.

mod support;

use support::diff::{b, show, Conn, RedisServer, Reply, Rng};
use support::diff_types;
use support::Server;

const KEYS: &[&str] = &[
    "k0",
    "k1",
    "k2",
    "k3",
    "h0",
    "h1",
    "h2",
    "",
    "\u{0}bin\u{1}",
    "n0",
];
const FIELDS: &[&str] = &["f0", "f1", "f2", "", "f\u{0}x"];

fn key(r: &mut Rng) -> Vec<u8> {
    r.pick(KEYS).as_bytes().to_vec()
}

fn value(r: &mut Rng) -> Vec<u8> {
    match r.below(8) {
        0 => b"".to_vec(),
        1 => r.below(100).to_string().into_bytes(),
        2 => format!("-{}", r.below(1000)).into_bytes(),
        3 => b"9223372036854775807".to_vec(),
        4 => format!("{}.{}", r.below(100), r.below(100)).into_bytes(),
        5 => b" 12".to_vec(),
        6 => vec![0, 255, 10, 13],
        _ => format!("v{}", r.below(50)).into_bytes(),
    }
}

fn int_arg(r: &mut Rng) -> Vec<u8> {
    r.pick(&[
        "0",
        "1",
        "-1",
        "5",
        "100",
        "-100",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "abc",
        "",
        "1.5",
        " 1",
        "01",
        "+1",
    ])
    .as_bytes()
    .to_vec()
}

fn float_arg(r: &mut Rng) -> Vec<u8> {
    r.pick(&[
        "0", "1", "-1.5", "0.1", "10.5", "1e3", "abc", "", "inf", "nan", " 1", "3.25",
    ])
    .as_bytes()
    .to_vec()
}

/// A seconds or milliseconds count for an expire option: mostly valid, sometimes
/// invalid. Valid ones are long enough (100 s and more, even as milliseconds) that no key
/// expires by itself during a run: when each server reclaims such a key differs, and
/// `DBSIZE` would show it. Deadlines in the past still come from the `*AT` forms.
fn ttl_arg(r: &mut Rng) -> Vec<u8> {
    r.pick(&[
        "100000",
        "500000",
        "86400000",
        "0",
        "-1",
        "abc",
        "9223372036854775807",
        "4611686018427387904",
    ])
    .as_bytes()
    .to_vec()
}

fn abs_time(r: &mut Rng, ms: bool) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t = match r.below(4) {
        0 => now + 10_000,
        1 => now.saturating_sub(100),
        2 => 0,
        _ => now + 500_000,
    };
    let t = if ms { t * 1000 } else { t };
    t.to_string().into_bytes()
}

/// An absolute time in the future (or 0, which is invalid).
fn future_time(r: &mut Rng, ms: bool) -> Vec<u8> {
    loop {
        let t = abs_time(r, ms);
        let v: u64 = String::from_utf8_lossy(&t).parse().unwrap_or(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| {
                if ms {
                    d.as_millis() as u64
                } else {
                    d.as_secs()
                }
            });
        if v == 0 || v > now {
            return t;
        }
    }
}

/// One random command.
fn command(r: &mut Rng) -> Vec<Vec<u8>> {
    if r.chance(35) {
        return diff_types::command(r);
    }
    let name = r.pick(&[
        "GET",
        "SET",
        "SETEX",
        "PSETEX",
        "SETNX",
        "GETEX",
        "GETDEL",
        "GETSET",
        "MGET",
        "MSET",
        "MSETNX",
        "STRLEN",
        "APPEND",
        "INCR",
        "INCRBY",
        "DECR",
        "DECRBY",
        "INCRBYFLOAT",
        "GETRANGE",
        "SETRANGE",
        "DEL",
        "UNLINK",
        "EXISTS",
        "TOUCH",
        "TYPE",
        "RENAME",
        "RENAMENX",
        "EXPIRE",
        "PEXPIRE",
        "EXPIREAT",
        "PEXPIREAT",
        "TTL",
        "PTTL",
        "EXPIRETIME",
        "PEXPIRETIME",
        "PERSIST",
        "COPY",
        "HSET",
        "HMSET",
        "HSETNX",
        "HGET",
        "HMGET",
        "HGETALL",
        "HDEL",
        "HEXISTS",
        "HLEN",
        "HSTRLEN",
        "HINCRBY",
        "HINCRBYFLOAT",
        "HKEYS",
        "HVALS",
        "DBSIZE",
        "ECHO",
        "PING",
        "NOSUCHCMD",
        "SUBSTR",
        "KEYS",
        "HSCAN",
        "HRANDFIELD",
        "SELECT",
        "PUBLISH",
        "UNWATCH",
        "EXEC",
        "DISCARD",
    ]);
    let mut c = vec![b(name)];
    // Now and then, a wrong number of arguments (HRANDFIELD key alone is random).
    if name != "HRANDFIELD" && r.chance(3) {
        let extra = r.below(2);
        for _ in 0..extra {
            c.push(key(r));
        }
        return c;
    }
    match name {
        "GET" | "GETDEL" | "STRLEN" | "INCR" | "DECR" | "TYPE" | "TTL" | "PTTL" | "EXPIRETIME"
        | "PEXPIRETIME" | "PERSIST" | "HGETALL" | "HLEN" | "HKEYS" | "HVALS" => c.push(key(r)),
        "SET" => {
            c.push(key(r));
            c.push(value(r));
            for _ in 0..r.below(3) {
                match r.below(9) {
                    0 => c.push(b("NX")),
                    1 => c.push(b("XX")),
                    2 => c.push(b("GET")),
                    3 => c.extend([b("EX"), ttl_arg(r)]),
                    4 => c.extend([b("PX"), ttl_arg(r)]),
                    // In the future only: a key SET with a past deadline stays in
                    // Redis's DBSIZE until its expiry cycle finds it, a race.
                    5 => c.extend([b("EXAT"), future_time(r, false)]),
                    6 => c.extend([b("PXAT"), future_time(r, true)]),
                    7 => c.push(b("KEEPTTL")),
                    _ => c.push(b("BOGUS")),
                }
            }
        }
        "SETEX" | "PSETEX" => c.extend([key(r), ttl_arg(r), value(r)]),
        "SETNX" | "GETSET" | "APPEND" => c.extend([key(r), value(r)]),
        "GETEX" => {
            c.push(key(r));
            match r.below(7) {
                0 => c.extend([b("EX"), ttl_arg(r)]),
                1 => c.extend([b("PX"), ttl_arg(r)]),
                2 => c.extend([b("EXAT"), abs_time(r, false)]),
                3 => c.extend([b("PXAT"), abs_time(r, true)]),
                4 => c.push(b("PERSIST")),
                5 => c.extend([b("EX"), ttl_arg(r), b("PERSIST")]),
                _ => {}
            }
        }
        "MGET" | "DEL" | "UNLINK" | "EXISTS" | "TOUCH" => {
            for _ in 0..1 + r.below(3) {
                c.push(key(r));
            }
        }
        "MSET" | "MSETNX" => {
            for _ in 0..1 + r.below(3) {
                c.extend([key(r), value(r)]);
            }
        }
        "INCRBY" | "DECRBY" => c.extend([key(r), int_arg(r)]),
        "INCRBYFLOAT" => c.extend([key(r), float_arg(r)]),
        "GETRANGE" | "SUBSTR" => c.extend([key(r), int_arg(r), int_arg(r)]),
        "KEYS" => c.push(b(
            r.pick(&["*", "k*", "h?", "*0", "[hk]*", "\\*", "n[^0]", ""])
        )),
        "HSCAN" => {
            c.extend([key(r), b(r.pick(&["0", "x", "-1"]))]);
            if r.chance(40) {
                c.extend([b("MATCH"), b(r.pick(&["f*", "*1", "?"]))]);
            }
            if r.chance(30) {
                c.extend([b("COUNT"), b(r.pick(&["10", "0", "x"]))]);
            }
        }
        // Counts with a deterministic answer: none, or at least every field.
        "HRANDFIELD" => {
            c.extend([key(r), b(r.pick(&["0", "10", "x"]))]);
            if r.chance(50) {
                c.push(b(r.pick(&["WITHVALUES", "BAD"])));
            }
        }
        // One database: SELECT 1 is a listed difference.
        // Database 0 only: both connections' keyspace comparisons read database 0.
        "SELECT" => c.push(b(r.pick(&["0", "x", "-1", "100000", "16"]))),
        "PUBLISH" => c.extend([b("chan"), value(r)]),
        "SETRANGE" => {
            let off = r.pick(&["0", "1", "5", "-1", "abc", "3"]);
            c.extend([key(r), b(off), value(r)]);
        }
        "RENAME" | "RENAMENX" => c.extend([key(r), key(r)]),
        "COPY" => {
            c.extend([key(r), key(r)]);
            if r.chance(40) {
                c.push(b("REPLACE"));
            }
            if r.chance(10) {
                // Other databases: tests/t230_databases.
                c.extend([b("DB"), b(r.pick(&["0", "x", "-1", "16"]))]);
            }
        }
        "EXPIRE" | "PEXPIRE" => {
            c.extend([key(r), ttl_arg(r)]);
            if r.chance(30) {
                c.push(b(r.pick(&["NX", "XX", "GT", "LT", "BAD"])));
            }
            if r.chance(10) {
                c.push(b(r.pick(&["NX", "XX", "GT", "LT"])));
            }
        }
        "EXPIREAT" | "PEXPIREAT" => {
            c.extend([key(r), abs_time(r, name == "PEXPIREAT")]);
            if r.chance(30) {
                c.push(b(r.pick(&["NX", "XX", "GT", "LT"])));
            }
        }
        "HSET" | "HMSET" => {
            c.push(key(r));
            for _ in 0..1 + r.below(3) {
                c.extend([b(r.pick(FIELDS)), value(r)]);
            }
        }
        "HSETNX" => c.extend([key(r), b(r.pick(FIELDS)), value(r)]),
        "HGET" | "HEXISTS" | "HSTRLEN" => c.extend([key(r), b(r.pick(FIELDS))]),
        "HMGET" | "HDEL" => {
            c.push(key(r));
            for _ in 0..1 + r.below(3) {
                c.push(b(r.pick(FIELDS)));
            }
        }
        "HINCRBY" => c.extend([key(r), b(r.pick(FIELDS)), int_arg(r)]),
        "HINCRBYFLOAT" => c.extend([key(r), b(r.pick(FIELDS)), float_arg(r)]),
        "ECHO" => c.push(value(r)),
        "PING" if r.chance(50) => c.push(value(r)),
        "NOSUCHCMD" => c.push(key(r)),
        _ => {}
    }
    c
}

/// Replies whose order is not specified, sorted; times compared with a tolerance.
fn normalise(cmd: &str, reply: Reply) -> Reply {
    match (cmd, reply) {
        ("HGETALL", Reply::Array(Some(items))) => {
            let mut pairs: Vec<Reply> = items
                .chunks(2)
                .map(|p| Reply::Array(Some(p.to_vec())))
                .collect();
            pairs.sort();
            Reply::Array(Some(pairs))
        }
        ("HGETALL", Reply::Map(mut pairs)) => {
            pairs.sort();
            Reply::Map(pairs)
        }
        ("HKEYS" | "HVALS" | "KEYS", Reply::Array(Some(mut items))) => {
            items.sort();
            Reply::Array(Some(items))
        }
        ("HRANDFIELD", Reply::Array(Some(items))) => {
            // With values: pairs (RESP3) or a flat list (RESP2); sorted either way.
            let mut pairs: Vec<Reply> = if items.iter().all(|i| matches!(i, Reply::Array(_))) {
                items
            } else {
                items
                    .chunks(1)
                    .map(|p| Reply::Array(Some(p.to_vec())))
                    .collect()
            };
            pairs.sort();
            Reply::Array(Some(pairs))
        }
        ("HSCAN", Reply::Array(Some(mut page))) if page.len() == 2 => {
            if let Reply::Array(Some(items)) = &page[1] {
                let mut pairs: Vec<Reply> = items
                    .chunks(2)
                    .map(|p| Reply::Array(Some(p.to_vec())))
                    .collect();
                pairs.sort();
                page[1] = Reply::Array(Some(pairs));
            }
            Reply::Array(Some(page))
        }
        (cmd, r) => diff_types::normalise(cmd, r),
    }
}

/// Whether two replies agree, allowing for the time between the two calls.
fn agree(cmd: &str, a: &Reply, b: &Reply) -> bool {
    match (a, b) {
        (Reply::Array(Some(x)), Reply::Array(Some(y))) if x.len() == y.len() => {
            return x.iter().zip(y).all(|(p, q)| agree(cmd, p, q));
        }
        (Reply::Map(x), Reply::Map(y)) if x.len() == y.len() => {
            return x
                .iter()
                .zip(y)
                .all(|((k1, v1), (k2, v2))| k1 == k2 && agree(cmd, v1, v2));
        }
        _ => {}
    }
    match (cmd, a, b) {
        ("TTL" | "EXPIRETIME", Reply::Int(x), Reply::Int(y)) if *x >= 0 && *y >= 0 => {
            (x - y).abs() <= 1
        }
        ("PTTL" | "PEXPIRETIME", Reply::Int(x), Reply::Int(y)) if *x >= 0 && *y >= 0 => {
            (x - y).abs() <= 1000
        }
        _ => a == b,
    }
}

/// Iterate a whole `SCAN` (random `MATCH`, `COUNT`, `TYPE`) on both servers and compare
/// the sets of keys; a description of the difference, if any.
fn scan_both(r: &mut Rng, a: &mut Conn, bb: &mut Conn) -> Option<String> {
    let mut opts: Vec<Vec<u8>> = Vec::new();
    if r.chance(40) {
        opts.extend([b("MATCH"), b(r.pick(&["k*", "*1", "h?", "*"]))]);
    }
    if r.chance(40) {
        opts.extend([b("COUNT"), b(r.pick(&["1", "3", "100"]))]);
    }
    if r.chance(30) {
        opts.extend([b("TYPE"), b(r.pick(&["string", "hash", "list"]))]);
    }
    let mut sets = Vec::new();
    let mut failed = None;
    for c in [a, bb] {
        let mut keys = Vec::new();
        let mut cursor = b("0");
        for _ in 0..100_000 {
            let mut cmd = vec![b("SCAN"), cursor.clone()];
            cmd.extend(opts.iter().cloned());
            match c.call(&cmd) {
                Reply::Array(Some(page)) if page.len() == 2 => {
                    if let Reply::Array(Some(items)) = &page[1] {
                        keys.extend(items.iter().cloned());
                    }
                    match &page[0] {
                        Reply::Bulk(Some(next)) => cursor = next.clone(),
                        other => {
                            failed = Some(format!("SCAN cursor {other:?}"));
                            break;
                        }
                    }
                }
                other => {
                    failed = Some(format!("SCAN {} replied {other:?}", show(&cmd)));
                    break;
                }
            }
            if cursor == b"0" {
                break;
            }
        }
        keys.sort();
        keys.dedup();
        sets.push(keys);
    }
    if failed.is_some() {
        return failed;
    }
    (sets[0] != sets[1]).then(|| {
        format!(
            "SCAN {}\n  redis:    {:?}\n  sessiond: {:?}",
            show(&opts),
            sets[0],
            sets[1]
        )
    })
}

/// The whole keyspace of a server: sorted keys with their type and content.
fn keyspace(c: &mut Conn) -> Vec<(Vec<u8>, Reply, Reply)> {
    let Reply::Array(Some(keys)) = c.call(&[b("KEYS"), b("*")]) else {
        panic!("KEYS");
    };
    let mut out = Vec::new();
    for k in keys {
        let Reply::Bulk(Some(k)) = k else { continue };
        let t = c.call(&[b("TYPE"), k.clone()]);
        let v = match &t {
            Reply::Simple(s) if s == "hash" => {
                normalise("HGETALL", c.call(&[b("HGETALL"), k.clone()]))
            }
            Reply::Simple(s) if diff_types::content(s).is_some() => {
                let mut cmd = diff_types::content(s).unwrap_or_default();
                cmd.insert(1, k.clone());
                normalise("SMEMBERS", c.call(&cmd))
            }
            _ => c.call(&[b("GET"), k.clone()]),
        };
        out.push((k, t, v));
    }
    out.sort();
    out
}

#[test]
fn replies_match_redis_server() {
    let (seed, n) = support::diff::seed_and_len(20_000);
    println!("differential: DIFF_SEED={seed} DIFF_COMMANDS={n}");
    let redis = RedisServer::start();
    let ours = Server::start();
    let mut rng = Rng(seed | 1);
    let mut conns = [
        (Conn::open(redis.port, false), Conn::open(ours.port, false)),
        (Conn::open(redis.port, true), Conn::open(ours.port, true)),
    ];
    let mut diffs = Vec::new();
    // Which connection has a MULTI open (a whole SCAN would be queued there).
    let mut in_multi = [false, false];
    // What each connection queued since its MULTI, to show with a differing EXEC.
    let mut queued: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    // The names of the commands queued, to compare their replies inside EXEC's.
    let mut queued_names: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    for i in 0..n {
        let proto = rng.below(2);
        let (ra, rb) = &mut conns[proto];
        if !in_multi[proto] && rng.chance(2) {
            // A full SCAN with its options: the same set of keys (cursors differ).
            if let Some(d) = scan_both(&mut rng, ra, rb) {
                diffs.push(format!("#{i} RESP{} {d}", proto + 2));
            }
            continue;
        }
        let cmd = if rng.chance(3) {
            // A transaction: MULTI and the commands that follow; the EXEC or DISCARD that
            // ends it comes from the stream (and sometimes none). No WATCH: sessiond's
            // tracks hash slots and may abort where Redis would not (README), after which
            // the two keyspaces would differ; tests/t50_transactions covers WATCH.
            vec![b("MULTI")]
        } else {
            command(&mut rng)
        };
        let name = String::from_utf8_lossy(&cmd[0]).to_string();
        let mut want = normalise(&name, ra.call(&cmd));
        let mut got = normalise(&name, rb.call(&cmd));
        if name == "EXEC" {
            for r in [&mut want, &mut got] {
                if let Reply::Array(Some(items)) = r {
                    if items.len() == queued_names[proto].len() {
                        for (item, n) in items.iter_mut().zip(&queued_names[proto]) {
                            *item = normalise(n, std::mem::replace(item, Reply::Null));
                        }
                    }
                }
            }
        }
        if std::env::var("DIFF_TRACE").is_ok() {
            println!("#{i} P{proto} {} => {want:?} | {got:?}", show(&cmd));
        }
        let mut context = String::new();
        match name.as_str() {
            "MULTI" if want == Reply::Simple("OK".into()) => {
                in_multi[proto] = true;
                queued[proto].clear();
                queued_names[proto].clear();
            }
            // DISCARD with arguments is refused and leaves the MULTI open.
            "EXEC" | "DISCARD" if name == "EXEC" || cmd.len() == 1 => {
                in_multi[proto] = false;
                context = format!(" after {}", queued[proto].join("; "));
            }
            _ if in_multi[proto] => {
                queued[proto].push(show(&cmd));
                if want == Reply::Simple("QUEUED".into()) {
                    queued_names[proto].push(name.clone());
                }
            }
            _ => {}
        }
        let same = match (&want, &got) {
            // Inside EXEC each reply is compared as its own command's.
            (Reply::Array(Some(w)), Reply::Array(Some(g)))
                if name == "EXEC" && w.len() == g.len() && w.len() == queued_names[proto].len() =>
            {
                w.iter()
                    .zip(g)
                    .zip(&queued_names[proto])
                    .all(|((x, y), n)| agree(n, x, y))
            }
            _ => agree(&name, &want, &got),
        };
        if !same {
            diffs.push(format!(
                "#{i} RESP{} {}{context}\n  redis:    {want:?}\n  sessiond: {got:?}",
                proto + 2,
                show(&cmd)
            ));
            if diffs.len() >= 20 {
                break;
            }
        }
    }
    for (ra, rb) in conns.iter_mut() {
        // Close a transaction left open (its commands are not run).
        ra.call(&[b("DISCARD")]);
        rb.call(&[b("DISCARD")]);
    }
    let (a, bb) = &mut conns[0];
    let (ka, kb) = (keyspace(a), keyspace(bb));
    let same = ka.len() == kb.len()
        && ka
            .iter()
            .zip(&kb)
            .all(|(x, y)| x.0 == y.0 && x.1 == y.1 && agree("GET", &x.2, &y.2));
    if !same {
        diffs.push(format!(
            "final keyspace differs\n  redis:    {ka:?}\n  sessiond: {kb:?}"
        ));
    }
    assert!(
        diffs.is_empty(),
        "{} difference(s) with DIFF_SEED={seed}:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
