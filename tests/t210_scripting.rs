//! Lua scripting: replies compared with a real `redis-server` (conversions, error texts,
//! libraries, RESP2 and RESP3), the session-lock scripts libraries send, busy scripts and
//! `SCRIPT KILL`, ACLs inside scripts, and scripts in a cluster (every node ends with
//! the same keyspace; `EVALSHA` finds through any node what was loaded through one; the
//! cache survives a restart from a snapshot). Needs `redis-server`, and fails without it.

mod support;

use std::io::{BufReader, Write};
use std::time::Duration;

use support::cluster::Cluster;
use support::diff::{b, Conn, RedisServer, Reply, Rng};
use support::{wait_until, Server};

/// Scripts whose replies must be Redis's, byte for byte.
const SCRIPTS: &[&str] = &[
    "return 1",
    "return 3.99",
    "return -3.7",
    "return 1e100",
    "return 'x'",
    "return true",
    "return false",
    "return nil",
    "return {1, 2, nil, 4}",
    "return {1, 'a', {2, {3}}, false, true}",
    "return {err='My Error'}",
    "return {ok='fine'}",
    "return {ok='a\\r\\nb'}",
    "return redis.error_reply('hi')",
    "return redis.error_reply('-X hi')",
    "return redis.error_reply('two words')",
    "return redis.status_reply('fine')",
    "return {double=1.5}",
    "return {map={a=1}}",
    "return {set={a=true}}",
    "return {big_number='123456789012345678901234567890'}",
    "return redis.call('get')",
    "return redis.call('nosuch')",
    "return redis.call()",
    "return redis.call('get', {})",
    "return redis.pcall('nosuch')",
    "local ok, e = pcall(redis.call, 'nosuch') return e.err",
    "return x",
    "x = 1",
    "error('boom')",
    "error({err='E1 custom'})",
    "local t = {err='X'} error(t, 0)",
    "syntax error here",
    "return os",
    "return loadfile",
    "return redis.call('set', KEYS[1], ARGV[1])",
    "return redis.call('get', KEYS[1])",
    "return redis.call('hget', KEYS[1], 'f')",
    "redis.call('hset', 'h', 'f', 'v') return redis.call('hgetall', 'h')",
    "redis.setresp(3) redis.call('hset', 'h', 'f', 'v') return redis.call('hgetall', 'h')",
    "redis.setresp(3) return type(redis.call('hgetall', 'h')['map'])",
    "redis.setresp(3) return redis.call('get', 'nosuchkey')",
    "redis.setresp(3) return false",
    "redis.setresp(4)",
    "return redis.call('get', 'nosuchkey')",
    "return redis.call('incr', KEYS[1])",
    "redis.call('set', 'n', 0.1) return redis.call('get', 'n')",
    "redis.call('set', 'n', 1/3) return redis.call('get', 'n')",
    "redis.call('set', 'n', 3) return redis.call('get', 'n')",
    "return tostring(1/3)",
    "return redis.sha1hex('')",
    "return redis.sha1hex('abc')",
    "return cjson.encode({a=1})",
    "return cjson.encode({1,2,3,'x/y'})",
    "return cjson.encode({})",
    "return cjson.encode(1/3)",
    "return cjson.encode(123456789012345)",
    "return cjson.decode('[1,2,{\"x\":\"y\"}]')[3].x",
    "return cjson.decode('{\"a\":[1,2]}').a[2]",
    "return {string.byte(cmsgpack.pack(1.5, 0.1, 2^40, -2^40, {1, 2}, {a = 1}, 'abc', true), 1, -1)}",
    "local t = cmsgpack.unpack(cmsgpack.pack({a = {1, 'x'}})) return t.a[2]",
    "return struct.pack('>I2', 258)",
    "return struct.size('!4bi')",
    "local a, b, n = struct.unpack('<hs', struct.pack('<hs', -2, 'hi')) return {a, b, n}",
    "return {unpack({1, 2, 3}, 2)}",
    "return {pcall(unpack, {1, 2, 3}, -2, 2147483647)}",
    "cjson.encode_max_depth(1) return {pcall(cjson.encode, {{1}})}",
    "return bit.band(7, 3)",
    "return bit.bor(1, 2, 4)",
    "return bit.tohex(65535)",
    "return bit.tohex(-1, -4)",
    "return bit.lshift(1, 31)",
    "return bit.bnot(0)",
    // Redis draws from one sequence across scripts; sessiond starts each script at the
    // sequence's start (so replicas agree): compare after a seed.
    "math.randomseed(0) return {math.random(100), math.random(100)}",
    "math.randomseed(7) return math.floor(math.random() * 1000)",
    "local ok, e = pcall(redis.call, 'nosuch') return e",
    "local ok, e = pcall(redis.call, 'get', 'str', 'x') return {tostring(ok), e}",
    "local ok, e = pcall(cjson.decode, '{') return e",
    "return #KEYS + #ARGV",
    "return redis.call('eval', 'return 1', 0)",
    "return redis.call('multi')",
    "return redis.call('subscribe', 'x')",
    "return redis.call('ping')",
    "return redis.call('echo', 'e')",
    "redis.log(redis.LOG_WARNING, 'from a script') return 1",
    "return redis.LOG_NOTICE",
    "string.x = 1",
    "redis.call = nil",
    "return type(_G)",
    "local t = {} t[1] = t return 1",
    "return string.format('%d-%s', 5, 'x')",
    "return table.concat({'a','b'}, ',')",
    "return string.rep('x', 3)",
    "#!lua\nreturn 1",
    "#!not-lua\nreturn 1",
    "#!lua badger=data\nreturn 1",
    "#!lua flags=allow-oom,what?\nreturn 1",
    "#!lua flags=no-writes\nredis.call('set', 'x', 1)",
    "#!lua flags=no-writes,allow-stale\nreturn redis.call('get', KEYS[1])",
    "#!lua\nerror('on line two')",
    "#!lua",
    // Tables bigger than Lua's C stack (8,000 slots) through every library and the reply.
    "local m = {} for i = 1, 100000 do m['k' .. i] = i end return cmsgpack.unpack(cmsgpack.pack(m)).k99999",
    "local m = {} for i = 1, 100000 do m['k' .. i] = 'v' .. i end return #cjson.encode(m)",
    "local m = {} for i = 1, 100000 do m[i] = 'v' .. i end return #cjson.encode(m)",
    "local t = {} for i = 1, 20000 do t[i] = 'v' .. i end return t",
    "local t = {} for i = 1, 20000 do t[i] = {ok = 'v' .. i} end return t",
    "local s = string.rep(cmsgpack.pack('ab'), 10000) return #{cmsgpack.unpack(s)}",
    "return #{struct.unpack(string.rep('c1', 9000), string.rep('x', 9000))}",
    // A library's error says where the script called it, as a C function's does.
    "return cjson.encode(function() end)",
    "\nreturn cjson.decode('[1,')",
    "local ok, e = pcall(function() return cjson.encode(function() end) end) return e",
    "local ok, e = pcall(cjson.encode, function() end) return e",
];

#[test]
fn replies_match_redis_server() {
    let redis = RedisServer::start();
    let ours = Server::start();
    let mut diffs = Vec::new();
    for resp3 in [false, true] {
        let mut a = Conn::open(redis.port, resp3);
        let mut o = Conn::open(ours.port, resp3);
        for script in SCRIPTS {
            // Each script starts from the same keys on both sides.
            for c in [&mut a, &mut o] {
                c.call(&[b("FLUSHALL")]);
                c.call(&[b("SET"), b("str"), b("v")]);
            }
            let cmd = [b("EVAL"), b(script), b("1"), b("str"), b("arg")];
            let want = a.call(&cmd);
            let got = o.call(&cmd);
            if want != got {
                diffs.push(format!(
                    "RESP{} {script}\n  redis:    {want:?}\n  sessiond: {got:?}",
                    if resp3 { 3 } else { 2 }
                ));
            }
        }
        // The cache: EVALSHA, SCRIPT LOAD|EXISTS|FLUSH, and the argument checks.
        let sha = match a.call(&[b("SCRIPT"), b("LOAD"), b("return ARGV[1]")]) {
            Reply::Bulk(Some(s)) => s,
            other => panic!("SCRIPT LOAD: {other:?}"),
        };
        for cmd in [
            vec![b("SCRIPT"), b("LOAD"), b("return ARGV[1]")],
            vec![b("EVALSHA"), sha.clone(), b("0"), b("x")],
            vec![b("EVALSHA"), sha.to_ascii_uppercase(), b("0"), b("x")],
            vec![b("EVALSHA_RO"), sha.clone(), b("0"), b("y")],
            vec![b("SCRIPT"), b("EXISTS"), sha.clone(), b("ffff")],
            vec![
                b("EVALSHA"),
                b("ffffffffffffffffffffffffffffffffffffffff"),
                b("0"),
            ],
            vec![b("EVALSHA"), b("b70c2384"), b("0")],
            vec![b("EVAL"), b("return 1"), b("-1")],
            vec![b("EVAL"), b("return 1"), b("2"), b("a")],
            vec![b("EVAL"), b("return 1"), b("x")],
            vec![
                b("EVAL_RO"),
                b("return redis.call('set', 'x', '1')"),
                b("0"),
            ],
            vec![b("EVAL_RO"), b("return redis.call('get', 'str')"), b("0")],
            vec![b("SCRIPT"), b("FLUSH"), b("bogus")],
            vec![b("SCRIPT"), b("KILL")],
            vec![b("SCRIPT"), b("FLUSH")],
            vec![b("SCRIPT"), b("EXISTS"), sha.clone()],
            vec![b("EVALSHA"), sha.clone(), b("0")],
            vec![b("SCRIPT"), b("bogus")],
        ] {
            let want = a.call(&cmd);
            let got = o.call(&cmd);
            if want != got {
                diffs.push(format!(
                    "{}\n  redis:    {want:?}\n  sessiond: {got:?}",
                    support::diff::show(&cmd)
                ));
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{} difference(s):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// phpredis's session lock: `SET <id>_LOCK <secret> NX PX`, released by this script
/// (`redis_session.c`). Without scripting the lock stayed and the next request's write
/// was refused.
/// What would exhaust the Lua interpreter's room for values held from Rust (8,000 slots)
/// gets an error, and scripting goes on: more distinct scripts than that, a reply that
/// doubles at each of 1,000 levels (Redis itself dies of it), and a call with as many
/// arguments as Lua's stack holds.
#[test]
fn scripting_survives_what_exhausts_the_interpreter() {
    let ours = Server::start();
    let mut c = Conn::open(ours.port, false);
    for i in 0..8_500 {
        let got = c.call(&[b("EVAL"), b(&format!("return {i}")), b("0")]);
        assert_eq!(got, Reply::Int(i), "distinct script {i}");
    }
    let doubling = c.call(&[
        b("EVAL"),
        b("local t = {} t[1] = t t[2] = t return t"),
        b("0"),
    ]);
    assert_eq!(
        doubling,
        Reply::Error("ERR the script's reply is too large".into())
    );
    let dag = "local t = {1} for i = 1, 40 do t = {t, t} end";
    let got = c.call(&[b("EVAL"), b(&format!("{dag} return t")), b("0")]);
    assert_eq!(
        got,
        Reply::Error("ERR the script's reply is too large".into())
    );
    let got = c.call(&[
        b("EVAL"),
        b(&format!("{dag} return cjson.encode(t)")),
        b("0"),
    ]);
    assert!(
        matches!(&got, Reply::Error(e) if e.contains("the same tables too many times")),
        "{got:?}"
    );
    let many_args = "local function f(n, ...) if n == 0 then return redis.call('del', ...) end \
                     return f(n - 1, 'k' .. n, ...) end return f(7995)";
    match c.call(&[b("EVAL"), b(many_args), b("0")]) {
        Reply::Int(0) => {}
        // Redis takes them; sessiond may not have the room left (an error, not a crash).
        Reply::Error(e) if e.contains("room for") || e.contains("C stack overflow") => {}
        other => panic!("7,995 arguments: {other:?}"),
    }
    // Still answering, not busy, and the cache works (a fresh interpreter compiles again).
    c.call(&[b("SET"), b("k"), b("v")]);
    let get = c.call(&[b("EVAL"), b("return redis.call('get', 'k')"), b("0")]);
    assert_eq!(get, Reply::Bulk(Some(b("v"))));
    assert_eq!(
        c.call(&[b("EVAL"), b("return 8499"), b("0")]),
        Reply::Int(8499)
    );
}

#[test]
fn the_phpredis_session_lock_is_released() {
    let srv = Server::start();
    let mut con = srv.conn();
    const RELEASE: &str =
        "if redis.call(\"get\",KEYS[1]) == ARGV[1] then return redis.call(\"del\",KEYS[1]) else return 0 end";
    let set: Option<String> = redis::cmd("SET")
        .arg("PHPREDIS_SESSION:abc_LOCK")
        .arg("secret")
        .arg("NX")
        .arg("PX")
        .arg(30_000)
        .query(&mut con)
        .expect("lock");
    assert_eq!(set.as_deref(), Some("OK"));
    let other: i64 = redis::cmd("EVAL")
        .arg(RELEASE)
        .arg(1)
        .arg("PHPREDIS_SESSION:abc_LOCK")
        .arg("another")
        .query(&mut con)
        .expect("eval");
    assert_eq!(other, 0, "someone else's secret releases nothing");
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(RELEASE)
        .query(&mut con)
        .expect("load");
    let mine: i64 = redis::cmd("EVALSHA")
        .arg(&sha)
        .arg(1)
        .arg("PHPREDIS_SESSION:abc_LOCK")
        .arg("secret")
        .query(&mut con)
        .expect("evalsha");
    assert_eq!(mine, 1);
    let gone: i64 = redis::cmd("EXISTS")
        .arg("PHPREDIS_SESSION:abc_LOCK")
        .query(&mut con)
        .expect("exists");
    assert_eq!(gone, 0);
}

fn say(s: &mut BufReader<std::net::TcpStream>, cmd: &[&str]) -> String {
    let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
    s.get_mut().write_all(&support::resp(&args)).expect("write");
    let mut c = Conn {
        r: std::mem::replace(s, BufReader::new(s.get_ref().try_clone().expect("clone"))),
    };
    let r = c.read();
    *s = c.r;
    match r {
        Reply::Simple(t) | Reply::Error(t) => t,
        Reply::Bulk(Some(t)) => String::from_utf8_lossy(&t).into_owned(),
        Reply::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// A runaway script: other clients wait, then get -BUSY past `busy-reply-threshold`;
/// `SCRIPT KILL` stops a script that has not written and its caller gets Redis's error;
/// one that wrote is UNKILLABLE, and `SHUTDOWN NOSAVE` ends the server. With one event
/// loop, so the client that sends SCRIPT KILL shares the script caller's thread.
#[test]
fn busy_scripts_answer_busy_and_can_be_killed() {
    let mut srv = Server::start_with(&["--threads", "1"]);
    let mut admin = BufReader::new(srv.raw());
    assert_eq!(
        say(
            &mut admin,
            &["CONFIG", "SET", "busy-reply-threshold", "100"]
        ),
        "OK"
    );
    let mut caller = BufReader::new(srv.raw());
    caller
        .get_mut()
        .write_all(&support::resp(&[b"EVAL", b"while true do end", b"0"]))
        .expect("eval");
    assert!(
        wait_until(Duration::from_secs(10), || say(&mut admin, &["PING"])
            .starts_with("BUSY")),
        "no BUSY while a script loops"
    );
    assert_eq!(
        say(&mut admin, &["GET", "x"]),
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    );
    assert_eq!(say(&mut admin, &["SCRIPT", "KILL"]), "OK");
    let mut c = Conn { r: caller };
    match c.read() {
        Reply::Error(e) => assert!(
            e.starts_with("ERR Script killed by user with SCRIPT KILL... script: "),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(say(&mut admin, &["PING"]), "PONG");
    assert_eq!(
        say(&mut admin, &["SCRIPT", "KILL"]),
        "NOTBUSY No scripts in execution right now."
    );
    c.send(&[
        b("EVAL"),
        b("redis.call('set', 'w', '1') while true do end"),
        b("0"),
    ]);
    assert!(
        wait_until(Duration::from_secs(10), || say(&mut admin, &["PING"])
            .starts_with("BUSY")),
        "no BUSY while a writing script loops"
    );
    assert!(say(&mut admin, &["SCRIPT", "KILL"])
        .starts_with("UNKILLABLE Sorry the script already executed write commands"));
    admin
        .get_mut()
        .write_all(&support::resp(&[b"SHUTDOWN", b"NOSAVE"]))
        .expect("shutdown");
    assert!(
        srv.wait_exit(Duration::from_secs(10)).is_some(),
        "SHUTDOWN NOSAVE did not end the server"
    );
}

/// Commands inside a script pass the caller's ACL: a user limited to `sess:*` keys and
/// without `FLUSHALL` cannot reach them through `EVAL`.
#[test]
fn scripts_run_with_the_callers_rights() {
    let srv = Server::start_with(&["--user", "app:pw:noadmin", "--requirepass", "root"]);
    let mut s = BufReader::new(srv.raw());
    assert_eq!(say(&mut s, &["AUTH", "root"]), "OK");
    assert_eq!(
        say(&mut s, &["ACL", "SETUSER", "app", "resetkeys", "~sess:*"]),
        "OK"
    );
    assert_eq!(say(&mut s, &["AUTH", "app", "pw"]), "OK");
    assert_eq!(
        say(
            &mut s,
            &["EVAL", "return redis.call('set', 'sess:1', 'v')", "0"]
        ),
        "OK"
    );
    let denied = say(
        &mut s,
        &["EVAL", "return redis.call('set', 'other', 'v')", "0"],
    );
    assert!(
        denied.starts_with(
            "ERR The user executing the script can't run this command or subcommand script: "
        ),
        "{denied}"
    );
    let denied = say(&mut s, &["EVAL", "return redis.call('flushall')", "0"]);
    assert!(denied.contains("can't run this command"), "{denied}");
    assert_eq!(say(&mut s, &["EXISTS", "sess:1"]), "1");
}

/// A random script workload through all three nodes: every node ends with the same
/// keyspace (scripts run on every replica as the log applies them, with the same
/// `math.random` draws), a script that fails halfway leaves the same partial writes
/// everywhere, `EVALSHA` works on any node for a script loaded through another, and a
/// node restarted from a snapshot still knows the scripts.
#[test]
fn scripts_in_a_cluster_leave_every_node_alike() {
    let mut c = Cluster::start(3, &[]);
    let l = c.wait_leader(Duration::from_secs(15));
    let seed: u64 = std::env::var("DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    println!("DIFF_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let scripts = [
        "redis.call('incrby', KEYS[1], math.random(10)) return redis.call('get', KEYS[1])",
        "redis.call('hset', KEYS[1], ARGV[1], math.random(1000)) return 1",
        "redis.call('set', KEYS[1], ARGV[1]) redis.call('incr', KEYS[1]) return 1",
        "redis.call('del', KEYS[1]) return 1",
        "redis.call('set', KEYS[1], 'x', 'EX', 1000) return redis.call('ttl', KEYS[1])",
        "redis.call('append', KEYS[1], ARGV[1]) return redis.call('strlen', KEYS[1])",
        // Commands that pick at random pick alike on every replica.
        "local k = redis.call('randomkey') if k then redis.call('set', KEYS[1], k) end return 1",
        "redis.call('hset', 'h', 'a', 1, 'b', 2, 'c', 3) \
         redis.call('set', KEYS[1], redis.call('hrandfield', 'h')) return 1",
    ];
    let mut cons: Vec<redis::Connection> = (0..3).map(|i| c.node(i).conn()).collect();
    let loaded: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return redis.call('set', KEYS[1], ARGV[1])")
        .query(&mut cons[(l + 1) % 3])
        .expect("load through a follower");
    for i in 0..300 {
        let node = rng.below(3);
        let key = format!("k{}", rng.below(12));
        let arg = format!("{}", rng.below(5));
        let r: redis::RedisResult<redis::Value> = if rng.chance(10) {
            redis::cmd("EVALSHA")
                .arg(&loaded)
                .arg(1)
                .arg(&key)
                .arg(&arg)
                .query(&mut cons[node])
        } else {
            let s = scripts[rng.below(scripts.len())];
            redis::cmd("EVAL")
                .arg(s)
                .arg(1)
                .arg(&key)
                .arg(&arg)
                .query(&mut cons[node])
        };
        // Errors (a type clash halfway through a script) are part of the workload.
        if let Err(e) = &r {
            assert!(!e.to_string().contains("NOSCRIPT"), "#{i}: {e}");
        }
    }
    let dump = |con: &mut redis::Connection| -> Vec<(String, String)> {
        let v: redis::Value = redis::cmd("EVAL_RO")
            .arg(
                "local out = {} for _, k in ipairs(redis.call('keys', '*')) do \
                 local t = redis.call('type', k).ok \
                 local v = t == 'hash' and cjson.encode(redis.call('hgetall', k)) or redis.call('get', k) \
                 table.insert(out, k .. '=' .. t .. ':' .. v) end table.sort(out) return out",
            )
            .arg(0)
            .query(con)
            .expect("dump");
        let redis::Value::Array(items) = v else {
            panic!("{v:?}")
        };
        items
            .into_iter()
            .map(|i| match i {
                redis::Value::BulkString(b) => {
                    (String::from_utf8_lossy(&b).into_owned(), String::new())
                }
                other => (format!("{other:?}"), String::new()),
            })
            .collect()
    };
    let leader_view = dump(&mut cons[l]);
    assert!(!leader_view.is_empty());
    for (n, con) in cons.iter_mut().enumerate() {
        assert!(
            wait_until(Duration::from_secs(10), || dump(con) == leader_view),
            "node {n} differs from the leader"
        );
    }
    // Snapshot everywhere, restart one node: it still runs the loaded script.
    for con in cons.iter_mut() {
        let _: redis::Value = redis::cmd("RAFT.SNAPSHOT").query(con).expect("snapshot");
    }
    let victim = (l + 2) % 3;
    c.kill9(victim);
    c.restart(victim);
    let mut con = c.node(victim).conn();
    assert!(
        wait_until(Duration::from_secs(15), || {
            redis::cmd("SCRIPT")
                .arg("EXISTS")
                .arg(&loaded)
                .query::<Vec<i64>>(&mut con)
                .is_ok_and(|v| v == [1])
        }),
        "the restarted node lost the script cache"
    );
}

/// A script that never ends, in a cluster: every replica runs it, so SCRIPT KILL cannot
/// stop it on one node; it stops on every replica at the same instruction (a fixed
/// budget), with an error, and the cluster goes on serving.
#[test]
fn a_runaway_script_cannot_hang_a_cluster() {
    let c = Cluster::start(3, &[]);
    let l = c.wait_leader(Duration::from_secs(15));
    let mut con = c.node(l).conn();
    let started = std::time::Instant::now();
    let err = redis::cmd("EVAL")
        .arg("redis.call('set', 'before', '1') while true do end")
        .arg(0)
        .query::<()>(&mut con)
        .expect_err("the loop is stopped");
    assert!(
        err.to_string()
            .contains("a replicated script may run at most"),
        "{err}"
    );
    println!("stopped after {:?}", started.elapsed());
    for n in 0..3 {
        let mut con = c.node(n).conn();
        assert!(
            wait_until(Duration::from_secs(10), || {
                redis::cmd("GET")
                    .arg("before")
                    .query::<Option<String>>(&mut con)
                    .is_ok_and(|v| v.as_deref() == Some("1"))
            }),
            "node {n}: the write before the loop is not there"
        );
    }
}
