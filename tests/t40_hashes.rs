//! Hash commands against Redis 7 semantics: reply types in RESP2 and RESP3, counts,
//! HINCRBY errors, WRONGTYPE both ways, and a hash large enough to change representation.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use redis::Value;
use support::cmds::{bulk, v};
use support::{err_of, roundtrip, Server};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn exists(con: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("EXISTS").arg(key).query(con).expect("exists")
}

fn hgetall(con: &mut redis::Connection, key: &str) -> HashMap<String, String> {
    redis::cmd("HGETALL").arg(key).query(con).expect("hgetall")
}

/// HSET with several pairs replies the number of fields that were new (updates do not
/// count) and stores every pair.
#[test]
fn hset_counts_new_fields() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(
            &mut con,
            redis::cmd("HSET")
                .arg("h")
                .arg("a")
                .arg("1")
                .arg("b")
                .arg("2")
        ),
        Value::Int(2)
    );
    assert_eq!(
        v(
            &mut con,
            redis::cmd("HSET")
                .arg("h")
                .arg("b")
                .arg("20")
                .arg("c")
                .arg("3")
                .arg("a")
                .arg("10")
        ),
        Value::Int(1)
    );
    assert_eq!(
        v(&mut con, redis::cmd("HSET").arg("h").arg("c").arg("3")),
        Value::Int(0)
    );
    let all = hgetall(&mut con, "h");
    let want: HashMap<String, String> = [("a", "10"), ("b", "20"), ("c", "3")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(all, want);
}

/// HSET or HMSET with a field but no value is an arity error naming the command, and
/// nothing is stored.
#[test]
fn hset_odd_args_is_arity_error() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        err_of(&mut con, redis::cmd("HSET").arg("h").arg("f")),
        "ERR wrong number of arguments for 'hset' command"
    );
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("HSET").arg("h").arg("f").arg("v").arg("g")
        ),
        "ERR wrong number of arguments for 'hset' command"
    );
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("HMSET").arg("h").arg("f").arg("v").arg("g")
        ),
        "ERR wrong number of arguments for 'hmset' command"
    );
    assert_eq!(exists(&mut con, "h"), 0);
}

/// HMSET replies the status OK.
#[test]
fn hmset_replies_ok() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(
            &mut con,
            redis::cmd("HMSET")
                .arg("h")
                .arg("a")
                .arg("1")
                .arg("b")
                .arg("2")
        ),
        Value::Okay
    );
    assert_eq!(v(&mut con, redis::cmd("HGET").arg("h").arg("b")), bulk("2"));
}

/// HGET returns the value or nil; HMGET returns one element per field with nil for
/// missing fields, and all nils for a missing key.
#[test]
fn hget_and_hmget() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: i64 = redis::cmd("HSET")
        .arg("h")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg("")
        .query(&mut con)
        .expect("hset");
    assert_eq!(v(&mut con, redis::cmd("HGET").arg("h").arg("a")), bulk("1"));
    assert_eq!(v(&mut con, redis::cmd("HGET").arg("h").arg("b")), bulk(""));
    assert_eq!(
        v(&mut con, redis::cmd("HGET").arg("h").arg("zz")),
        Value::Nil
    );
    assert_eq!(
        v(&mut con, redis::cmd("HGET").arg("nokey").arg("a")),
        Value::Nil
    );
    assert_eq!(
        v(
            &mut con,
            redis::cmd("HMGET")
                .arg("h")
                .arg("a")
                .arg("zz")
                .arg("b")
                .arg("a")
        ),
        Value::Array(vec![bulk("1"), Value::Nil, bulk(""), bulk("1")])
    );
    assert_eq!(
        v(&mut con, redis::cmd("HMGET").arg("nokey").arg("a").arg("b")),
        Value::Array(vec![Value::Nil, Value::Nil])
    );
}

/// HGETALL in RESP2 is a flat array field, value, field, value...; empty array for a
/// missing key.
#[test]
fn hgetall_resp2_flat_array() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: i64 = redis::cmd("HSET")
        .arg("h")
        .arg("f1")
        .arg("v1")
        .arg("f2")
        .arg("v2")
        .query(&mut con)
        .expect("hset");
    let got = v(&mut con, redis::cmd("HGETALL").arg("h"));
    let Value::Array(items) = got else {
        panic!("HGETALL in RESP2 must be an array, got {got:?}");
    };
    assert_eq!(items.len(), 4);
    let mut pairs: Vec<(Value, Value)> = items
        .chunks(2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect();
    pairs.sort_by_key(|(k, _)| format!("{k:?}"));
    assert_eq!(
        pairs,
        vec![(bulk("f1"), bulk("v1")), (bulk("f2"), bulk("v2"))]
    );
    assert_eq!(
        v(&mut con, redis::cmd("HGETALL").arg("nokey")),
        Value::Array(vec![])
    );
}

/// HGETALL in RESP3 is a map: `%2` on the wire after HELLO 3, and a Map through a RESP3
/// client; a missing key is the empty map `%0`.
#[test]
fn hgetall_resp3_map() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: i64 = redis::cmd("HSET")
        .arg("h")
        .arg("f1")
        .arg("v1")
        .arg("f2")
        .arg("v2")
        .query(&mut con)
        .expect("hset");

    let mut con3 = srv.conn3();
    let got = v(&mut con3, redis::cmd("HGETALL").arg("h"));
    let Value::Map(mut pairs) = got else {
        panic!("HGETALL in RESP3 must be a map, got {got:?}");
    };
    pairs.sort_by_key(|(k, _)| format!("{k:?}"));
    assert_eq!(
        pairs,
        vec![(bulk("f1"), bulk("v1")), (bulk("f2"), bulk("v2"))]
    );

    let mut s = srv.raw();
    s.write_all(b"HELLO 3\r\nPING\r\n").expect("write");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(b"+PONG\r\n") && Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    assert!(buf.ends_with(b"+PONG\r\n"), "HELLO 3 reply: {buf:?}");
    let reply = roundtrip(&mut s, b"HGETALL h\r\n", 36);
    let text = String::from_utf8_lossy(&reply).into_owned();
    assert!(text.starts_with("%2\r\n"), "raw RESP3 HGETALL: {text:?}");
    assert!(
        text == "%2\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n"
            || text == "%2\r\n$2\r\nf2\r\n$2\r\nv2\r\n$2\r\nf1\r\n$2\r\nv1\r\n",
        "raw RESP3 HGETALL: {text:?}"
    );
    assert_eq!(roundtrip(&mut s, b"HGETALL nokey\r\n", 4), b"%0\r\n");
}

/// HDEL replies the number of fields removed, and removing the last field deletes the key.
#[test]
fn hdel_removes_key_with_last_field() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: i64 = redis::cmd("HSET")
        .arg("h")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg("2")
        .arg("c")
        .arg("3")
        .query(&mut con)
        .expect("hset");
    assert_eq!(
        v(
            &mut con,
            redis::cmd("HDEL").arg("h").arg("a").arg("zz").arg("a")
        ),
        Value::Int(1)
    );
    assert_eq!(exists(&mut con, "h"), 1);
    assert_eq!(
        v(&mut con, redis::cmd("HDEL").arg("h").arg("b").arg("c")),
        Value::Int(2)
    );
    assert_eq!(exists(&mut con, "h"), 0);
    assert_eq!(
        v(&mut con, redis::cmd("TYPE").arg("h")),
        Value::SimpleString("none".into())
    );
    assert_eq!(
        v(&mut con, redis::cmd("HDEL").arg("h").arg("a")),
        Value::Int(0)
    );
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).expect("dbsize");
    assert_eq!(n, 0);
}

/// HEXISTS is 1/0, HLEN counts fields (0 for a missing key), HSTRLEN is the value length
/// (0 for a missing field or key).
#[test]
fn hexists_hlen_hstrlen() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: i64 = redis::cmd("HSET")
        .arg("h")
        .arg("a")
        .arg("hello")
        .arg("b")
        .arg("")
        .query(&mut con)
        .expect("hset");
    assert_eq!(
        v(&mut con, redis::cmd("HEXISTS").arg("h").arg("a")),
        Value::Int(1)
    );
    assert_eq!(
        v(&mut con, redis::cmd("HEXISTS").arg("h").arg("zz")),
        Value::Int(0)
    );
    assert_eq!(
        v(&mut con, redis::cmd("HEXISTS").arg("nokey").arg("a")),
        Value::Int(0)
    );
    assert_eq!(v(&mut con, redis::cmd("HLEN").arg("h")), Value::Int(2));
    assert_eq!(v(&mut con, redis::cmd("HLEN").arg("nokey")), Value::Int(0));
    assert_eq!(
        v(&mut con, redis::cmd("HSTRLEN").arg("h").arg("a")),
        Value::Int(5)
    );
    assert_eq!(
        v(&mut con, redis::cmd("HSTRLEN").arg("h").arg("b")),
        Value::Int(0)
    );
    assert_eq!(
        v(&mut con, redis::cmd("HSTRLEN").arg("h").arg("zz")),
        Value::Int(0)
    );
    assert_eq!(
        v(&mut con, redis::cmd("HSTRLEN").arg("nokey").arg("a")),
        Value::Int(0)
    );
}

/// HSETNX sets a field only if it is absent: 1 when set, 0 (value unchanged) otherwise.
#[test]
fn hsetnx() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(&mut con, redis::cmd("HSETNX").arg("h").arg("f").arg("one")),
        Value::Int(1)
    );
    assert_eq!(
        v(&mut con, redis::cmd("HSETNX").arg("h").arg("f").arg("two")),
        Value::Int(0)
    );
    assert_eq!(
        v(&mut con, redis::cmd("HGET").arg("h").arg("f")),
        bulk("one")
    );
    assert_eq!(
        v(&mut con, redis::cmd("HSETNX").arg("h").arg("g").arg("x")),
        Value::Int(1)
    );
    assert_eq!(v(&mut con, redis::cmd("HLEN").arg("h")), Value::Int(2));
}

/// HINCRBY creates missing fields at 0, adds (also negatives) and replies the new value.
#[test]
fn hincrby_counts() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(&mut con, redis::cmd("HINCRBY").arg("h").arg("n").arg(5)),
        Value::Int(5)
    );
    assert_eq!(
        v(&mut con, redis::cmd("HINCRBY").arg("h").arg("n").arg(-7)),
        Value::Int(-2)
    );
    assert_eq!(
        v(&mut con, redis::cmd("HGET").arg("h").arg("n")),
        bulk("-2")
    );
    let _: i64 = redis::cmd("HSET")
        .arg("h")
        .arg("m")
        .arg("100")
        .query(&mut con)
        .expect("hset");
    assert_eq!(
        v(&mut con, redis::cmd("HINCRBY").arg("h").arg("m").arg(1)),
        Value::Int(101)
    );
}

/// HINCRBY errors: a non-integer field value is `ERR hash value is not an integer`, a
/// non-integer increment is `ERR value is not an integer or out of range`, and overflow is
/// `ERR increment or decrement would overflow`; none changes the field.
#[test]
fn hincrby_errors() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: i64 = redis::cmd("HSET")
        .arg("h")
        .arg("s")
        .arg("abc")
        .arg("f")
        .arg("1.5")
        .arg("max")
        .arg(i64::MAX)
        .arg("min")
        .arg(i64::MIN)
        .query(&mut con)
        .expect("hset");
    for field in ["s", "f"] {
        assert_eq!(
            err_of(&mut con, redis::cmd("HINCRBY").arg("h").arg(field).arg(1)),
            "ERR hash value is not an integer",
            "field {field}"
        );
    }
    assert_eq!(
        err_of(&mut con, redis::cmd("HINCRBY").arg("h").arg("n").arg("x")),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        v(&mut con, redis::cmd("HEXISTS").arg("h").arg("n")),
        Value::Int(0)
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("HINCRBY").arg("h").arg("max").arg(1)),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("HINCRBY").arg("h").arg("min").arg(-1)),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        v(&mut con, redis::cmd("HGET").arg("h").arg("max")),
        bulk(&i64::MAX.to_string())
    );
    assert_eq!(
        v(&mut con, redis::cmd("HGET").arg("h").arg("s")),
        bulk("abc")
    );
}

/// HKEYS and HVALS return every field and every value (empty arrays for a missing key).
#[test]
fn hkeys_hvals() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: i64 = redis::cmd("HSET")
        .arg("h")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg("2")
        .arg("c")
        .arg("3")
        .query(&mut con)
        .expect("hset");
    let mut keys: Vec<String> = redis::cmd("HKEYS").arg("h").query(&mut con).expect("hkeys");
    keys.sort();
    assert_eq!(keys, vec!["a", "b", "c"]);
    let mut vals: Vec<String> = redis::cmd("HVALS").arg("h").query(&mut con).expect("hvals");
    vals.sort();
    assert_eq!(vals, vec!["1", "2", "3"]);
    assert_eq!(
        v(&mut con, redis::cmd("HKEYS").arg("nokey")),
        Value::Array(vec![])
    );
    assert_eq!(
        v(&mut con, redis::cmd("HVALS").arg("nokey")),
        Value::Array(vec![])
    );
}

/// Hash commands on a string key, and string commands on a hash key, are WRONGTYPE.
#[test]
fn wrongtype_both_ways() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("s")
        .arg("v")
        .query(&mut con)
        .expect("set");
    let _: i64 = redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .query(&mut con)
        .expect("hset");
    let hash_cmds: Vec<(&str, redis::Cmd)> = vec![
        (
            "HSET",
            redis::cmd("HSET").arg("s").arg("f").arg("v").clone(),
        ),
        ("HGET", redis::cmd("HGET").arg("s").arg("f").clone()),
        ("HGETALL", redis::cmd("HGETALL").arg("s").clone()),
        ("HDEL", redis::cmd("HDEL").arg("s").arg("f").clone()),
        ("HLEN", redis::cmd("HLEN").arg("s").clone()),
        (
            "HINCRBY",
            redis::cmd("HINCRBY").arg("s").arg("f").arg(1).clone(),
        ),
        ("HMGET", redis::cmd("HMGET").arg("s").arg("f").clone()),
        ("HKEYS", redis::cmd("HKEYS").arg("s").clone()),
        ("HVALS", redis::cmd("HVALS").arg("s").clone()),
        ("HEXISTS", redis::cmd("HEXISTS").arg("s").arg("f").clone()),
        ("HSTRLEN", redis::cmd("HSTRLEN").arg("s").arg("f").clone()),
        (
            "HSETNX",
            redis::cmd("HSETNX").arg("s").arg("f").arg("v").clone(),
        ),
        (
            "HMSET",
            redis::cmd("HMSET").arg("s").arg("f").arg("v").clone(),
        ),
    ];
    for (name, c) in &hash_cmds {
        assert_eq!(err_of(&mut con, c), WRONGTYPE, "{name} on a string key");
    }
    assert_eq!(err_of(&mut con, redis::cmd("GET").arg("h")), WRONGTYPE);
    assert_eq!(
        err_of(&mut con, redis::cmd("APPEND").arg("h").arg("x")),
        WRONGTYPE
    );
    assert_eq!(err_of(&mut con, redis::cmd("INCR").arg("h")), WRONGTYPE);
    // Nothing changed.
    assert_eq!(v(&mut con, redis::cmd("GET").arg("s")), bulk("v"));
    assert_eq!(v(&mut con, redis::cmd("HGET").arg("h").arg("f")), bulk("v"));
}

/// A hash with 1000 fields (past the small-representation limit) keeps every field and
/// value, through HLEN, HGET, HGETALL and field updates.
#[test]
fn thousand_field_hash() {
    let srv = Server::start();
    let mut con = srv.conn();
    // Add fields one call at a time so the hash grows through the conversion.
    for i in 0..1000 {
        let n: i64 = redis::cmd("HSET")
            .arg("big")
            .arg(format!("field:{i}"))
            .arg(format!("value:{i}"))
            .query(&mut con)
            .expect("hset");
        assert_eq!(n, 1, "field {i} is new");
    }
    assert_eq!(v(&mut con, redis::cmd("HLEN").arg("big")), Value::Int(1000));
    let all = hgetall(&mut con, "big");
    assert_eq!(all.len(), 1000);
    for i in 0..1000 {
        assert_eq!(
            all.get(&format!("field:{i}")).map(String::as_str),
            Some(format!("value:{i}").as_str())
        );
    }
    for i in (0..1000).step_by(37) {
        assert_eq!(
            v(
                &mut con,
                redis::cmd("HGET").arg("big").arg(format!("field:{i}"))
            ),
            bulk(&format!("value:{i}"))
        );
    }
    // A long value also forces the large representation; it coexists with the rest.
    let long = "x".repeat(1000);
    assert_eq!(
        v(
            &mut con,
            redis::cmd("HSET").arg("big").arg("field:0").arg(&long)
        ),
        Value::Int(0)
    );
    assert_eq!(
        v(&mut con, redis::cmd("HSTRLEN").arg("big").arg("field:0")),
        Value::Int(1000)
    );
    assert_eq!(v(&mut con, redis::cmd("HLEN").arg("big")), Value::Int(1000));
    let mut keys: Vec<String> = redis::cmd("HKEYS")
        .arg("big")
        .query(&mut con)
        .expect("hkeys");
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 1000);
}

/// EXPIRE on a hash key sets a TTL; the whole hash expires with it.
#[test]
fn expire_on_hash() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: i64 = redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .query(&mut con)
        .expect("hset");
    assert_eq!(
        v(&mut con, redis::cmd("EXPIRE").arg("h").arg(100)),
        Value::Int(1)
    );
    let t: i64 = redis::cmd("TTL").arg("h").query(&mut con).expect("ttl");
    assert_eq!(t, 100);
    // HSET on an existing hash keeps its TTL.
    let _: i64 = redis::cmd("HSET")
        .arg("h")
        .arg("g")
        .arg("w")
        .query(&mut con)
        .expect("hset");
    let t: i64 = redis::cmd("PTTL").arg("h").query(&mut con).expect("pttl");
    assert!((99_000..=100_000).contains(&t), "pttl {t}");
    assert_eq!(
        v(&mut con, redis::cmd("PEXPIRE").arg("h").arg(1)),
        Value::Int(1)
    );
    let gone = support::wait_until(Duration::from_secs(5), || exists(&mut con, "h") == 0);
    assert!(gone, "hash with PEXPIRE 1 never expired");
    assert_eq!(
        v(&mut con, redis::cmd("HGET").arg("h").arg("f")),
        Value::Nil
    );
}

/// A field named twice in one HSET counts once as new and keeps the last value.
#[test]
fn hset_duplicate_field_in_one_call() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(
            &mut con,
            redis::cmd("HSET")
                .arg("h")
                .arg("f")
                .arg("1")
                .arg("f")
                .arg("2")
        ),
        Value::Int(1)
    );
    assert_eq!(v(&mut con, redis::cmd("HGET").arg("h").arg("f")), bulk("2"));
    assert_eq!(v(&mut con, redis::cmd("HLEN").arg("h")), Value::Int(1));
}

/// Hash commands missing their field arguments are arity errors naming the command.
#[test]
fn hash_commands_arity() {
    let srv = Server::start();
    let mut con = srv.conn();
    for c in ["hdel", "hmget", "hget", "hexists", "hstrlen"] {
        assert_eq!(
            err_of(&mut con, redis::cmd(c).arg("h")),
            format!("ERR wrong number of arguments for '{c}' command")
        );
    }
    assert_eq!(
        err_of(&mut con, redis::cmd("HINCRBY").arg("h").arg("f")),
        "ERR wrong number of arguments for 'hincrby' command"
    );
}

/// HINCRBY only accepts canonical integers in the field: `007`, ` 1`, `+1` are not.
#[test]
fn hincrby_non_canonical_field_values() {
    let srv = Server::start();
    let mut con = srv.conn();
    for (i, bad) in ["007", " 1", "1 ", "+1", ""].iter().enumerate() {
        let f = format!("f{i}");
        let _: i64 = redis::cmd("HSET")
            .arg("h")
            .arg(&f)
            .arg(*bad)
            .query(&mut con)
            .expect("hset");
        assert_eq!(
            err_of(&mut con, redis::cmd("HINCRBY").arg("h").arg(&f).arg(1)),
            "ERR hash value is not an integer",
            "field value {bad:?}"
        );
    }
}
