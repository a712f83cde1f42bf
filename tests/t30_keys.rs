//! Keyspace commands against Redis 7 semantics: DEL/UNLINK/EXISTS/TOUCH/TYPE, RENAME,
//! the EXPIRE family with NX/XX/GT/LT and TTL reporting (KEYS and SCAN: `t31_scan`).

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::Value;
use support::cmds::{hset, set, v};
use support::{err_of, wait_until, Server};

const NOT_INT: &str = "ERR value is not an integer or out of range";

fn int(con: &mut redis::Connection, cmd: &redis::Cmd) -> i64 {
    match v(con, cmd) {
        Value::Int(n) => n,
        other => panic!("expected an integer reply, got {other:?}"),
    }
}

fn set_ex(con: &mut redis::Connection, key: &str, secs: i64) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("v")
        .arg("EX")
        .arg(secs)
        .query(con)
        .expect("set ex");
}

fn ttl(con: &mut redis::Connection, key: &str) -> i64 {
    int(con, redis::cmd("TTL").arg(key))
}

fn pttl(con: &mut redis::Connection, key: &str) -> i64 {
    int(con, redis::cmd("PTTL").arg(key))
}

fn exists(con: &mut redis::Connection, key: &str) -> i64 {
    int(con, redis::cmd("EXISTS").arg(key))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// DEL and UNLINK reply the number of keys that existed and were removed.
#[test]
fn del_and_unlink_count() {
    let srv = Server::start();
    let mut con = srv.conn();
    set(&mut con, "a", "1");
    set(&mut con, "b", "2");
    hset(&mut con, "h");
    assert_eq!(
        int(&mut con, redis::cmd("DEL").arg("a").arg("h").arg("missing")),
        2
    );
    assert_eq!(exists(&mut con, "a"), 0);
    assert_eq!(exists(&mut con, "h"), 0);
    assert_eq!(int(&mut con, redis::cmd("DEL").arg("a")), 0);
    set(&mut con, "c", "3");
    assert_eq!(
        int(&mut con, redis::cmd("UNLINK").arg("b").arg("c").arg("b")),
        2,
        "a key named twice is removed once"
    );
    assert_eq!(exists(&mut con, "b"), 0);
    assert_eq!(int(&mut con, redis::cmd("UNLINK").arg("zzz")), 0);
}

/// EXISTS counts every argument that exists, duplicates included (`EXISTS k k` is 2).
#[test]
fn exists_counts_duplicates() {
    let srv = Server::start();
    let mut con = srv.conn();
    set(&mut con, "k", "v");
    hset(&mut con, "h");
    assert_eq!(int(&mut con, redis::cmd("EXISTS").arg("k").arg("k")), 2);
    assert_eq!(
        int(
            &mut con,
            redis::cmd("EXISTS").arg("k").arg("nope").arg("h").arg("k")
        ),
        3
    );
    assert_eq!(int(&mut con, redis::cmd("EXISTS").arg("nope")), 0);
}

/// TOUCH replies how many of the given keys exist.
#[test]
fn touch_counts_existing() {
    let srv = Server::start();
    let mut con = srv.conn();
    set(&mut con, "a", "1");
    hset(&mut con, "h");
    assert_eq!(
        int(
            &mut con,
            redis::cmd("TOUCH").arg("a").arg("h").arg("missing")
        ),
        2
    );
    assert_eq!(int(&mut con, redis::cmd("TOUCH").arg("missing")), 0);
}

/// TYPE is a status reply: string, hash, or none for a missing key.
#[test]
fn type_is_status() {
    let srv = Server::start();
    let mut con = srv.conn();
    set(&mut con, "s", "v");
    hset(&mut con, "h");
    assert_eq!(
        v(&mut con, redis::cmd("TYPE").arg("s")),
        Value::SimpleString("string".into())
    );
    assert_eq!(
        v(&mut con, redis::cmd("TYPE").arg("h")),
        Value::SimpleString("hash".into())
    );
    assert_eq!(
        v(&mut con, redis::cmd("TYPE").arg("missing")),
        Value::SimpleString("none".into())
    );
}

/// RENAME moves the value and its TTL; the source is gone afterwards.
#[test]
fn rename_moves_value_and_ttl() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("src")
        .arg("val")
        .arg("EX")
        .arg(100)
        .query(&mut con)
        .expect("set");
    assert_eq!(
        v(&mut con, redis::cmd("RENAME").arg("src").arg("dst")),
        Value::Okay
    );
    assert_eq!(exists(&mut con, "src"), 0);
    let got: String = redis::cmd("GET").arg("dst").query(&mut con).expect("get");
    assert_eq!(got, "val");
    let t = pttl(&mut con, "dst");
    assert!(
        (99_000..=100_000).contains(&t),
        "TTL moved with the key: {t}"
    );
    // A hash moves too.
    hset(&mut con, "h1");
    assert_eq!(
        v(&mut con, redis::cmd("RENAME").arg("h1").arg("h2")),
        Value::Okay
    );
    let f: String = redis::cmd("HGET")
        .arg("h2")
        .arg("f")
        .query(&mut con)
        .expect("hget");
    assert_eq!(f, "v");
    // Renaming a key onto itself is OK and changes nothing.
    assert_eq!(
        v(&mut con, redis::cmd("RENAME").arg("dst").arg("dst")),
        Value::Okay
    );
    assert_eq!(exists(&mut con, "dst"), 1);
}

/// RENAME of a missing key is `ERR no such key` (RENAMENX too).
#[test]
fn rename_missing_source() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        err_of(&mut con, redis::cmd("RENAME").arg("nope").arg("x")),
        "ERR no such key"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("RENAMENX").arg("nope").arg("x")),
        "ERR no such key"
    );
    assert_eq!(exists(&mut con, "x"), 0);
}

/// RENAME onto an existing key overwrites it, whatever its type, and the destination takes
/// the source's (absent) TTL.
#[test]
fn rename_overwrites_destination() {
    let srv = Server::start();
    let mut con = srv.conn();
    set(&mut con, "a", "new");
    set_ex(&mut con, "b", 100);
    assert_eq!(
        v(&mut con, redis::cmd("RENAME").arg("a").arg("b")),
        Value::Okay
    );
    let got: String = redis::cmd("GET").arg("b").query(&mut con).expect("get");
    assert_eq!(got, "new");
    assert_eq!(pttl(&mut con, "b"), -1, "destination's old TTL is gone");
    hset(&mut con, "h");
    assert_eq!(
        v(&mut con, redis::cmd("RENAME").arg("b").arg("h")),
        Value::Okay
    );
    assert_eq!(
        v(&mut con, redis::cmd("TYPE").arg("h")),
        Value::SimpleString("string".into())
    );
}

/// RENAMENX renames only when the destination does not exist: 1 if renamed, 0 otherwise
/// (both keys unchanged); onto itself it is 0.
#[test]
fn renamenx() {
    let srv = Server::start();
    let mut con = srv.conn();
    set(&mut con, "a", "1");
    set(&mut con, "b", "2");
    assert_eq!(int(&mut con, redis::cmd("RENAMENX").arg("a").arg("b")), 0);
    let a: String = redis::cmd("GET").arg("a").query(&mut con).expect("get");
    let b: String = redis::cmd("GET").arg("b").query(&mut con).expect("get");
    assert_eq!((a.as_str(), b.as_str()), ("1", "2"));
    assert_eq!(int(&mut con, redis::cmd("RENAMENX").arg("a").arg("c")), 1);
    assert_eq!(exists(&mut con, "a"), 0);
    let c: String = redis::cmd("GET").arg("c").query(&mut con).expect("get");
    assert_eq!(c, "1");
    assert_eq!(int(&mut con, redis::cmd("RENAMENX").arg("c").arg("c")), 0);
}

/// EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT set the TTL (reply 1), reply 0 on a missing key.
#[test]
fn expire_family_sets_ttl() {
    let srv = Server::start();
    let mut con = srv.conn();
    set(&mut con, "k", "v");
    assert_eq!(int(&mut con, redis::cmd("EXPIRE").arg("k").arg(100)), 1);
    let t = pttl(&mut con, "k");
    assert!((99_000..=100_000).contains(&t), "EXPIRE: {t}");
    assert_eq!(int(&mut con, redis::cmd("PEXPIRE").arg("k").arg(50_000)), 1);
    let t = pttl(&mut con, "k");
    assert!((49_000..=50_000).contains(&t), "PEXPIRE: {t}");
    let at = now_secs() + 1000;
    assert_eq!(int(&mut con, redis::cmd("EXPIREAT").arg("k").arg(at)), 1);
    assert_eq!(int(&mut con, redis::cmd("EXPIRETIME").arg("k")), at);
    let at_ms = now_ms() + 2_000_000;
    assert_eq!(
        int(&mut con, redis::cmd("PEXPIREAT").arg("k").arg(at_ms)),
        1
    );
    assert_eq!(int(&mut con, redis::cmd("PEXPIRETIME").arg("k")), at_ms);
    for c in ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"] {
        assert_eq!(
            int(&mut con, redis::cmd(c).arg("missing").arg(100)),
            0,
            "{c} on a missing key"
        );
    }
    assert_eq!(exists(&mut con, "missing"), 0);
    assert_eq!(
        err_of(&mut con, redis::cmd("EXPIRE").arg("k").arg("abc")),
        NOT_INT
    );
    // EXPIRE works on a hash as well.
    hset(&mut con, "h");
    assert_eq!(int(&mut con, redis::cmd("EXPIRE").arg("h").arg(100)), 1);
    assert!(ttl(&mut con, "h") > 0);
}

/// One EXPIRE truth-table row: (TTL before, None = persistent; options; new seconds;
/// expected reply; TTL after, None = persistent).
type ExpireCase = (Option<i64>, &'static [&'static str], i64, i64, Option<i64>);

/// NX sets only without a TTL; XX only with one; GT only to a later time and LT only to an
/// earlier one, a persistent key counting as an infinite TTL (so GT never applies to it
/// and LT always does).
#[test]
fn expire_nx_xx_gt_lt_truth_table() {
    let srv = Server::start();
    let mut con = srv.conn();
    // (setup TTL: None = persistent, options, new seconds, expected reply, TTL after)
    let cases: &[ExpireCase] = &[
        (None, &["NX"], 100, 1, Some(100)),
        (Some(50), &["NX"], 100, 0, Some(50)),
        (None, &["XX"], 100, 0, None),
        (Some(50), &["XX"], 100, 1, Some(100)),
        (None, &["GT"], 100, 0, None),
        (Some(50), &["GT"], 100, 1, Some(100)),
        (Some(500), &["GT"], 100, 0, Some(500)),
        (None, &["LT"], 100, 1, Some(100)),
        (Some(50), &["LT"], 100, 0, Some(50)),
        (Some(500), &["LT"], 100, 1, Some(100)),
        (None, &["XX", "GT"], 100, 0, None),
        (Some(50), &["XX", "GT"], 100, 1, Some(100)),
        (None, &["XX", "LT"], 100, 0, None),
        (Some(500), &["xx", "lt"], 100, 1, Some(100)),
        (Some(500), &["nx"], 100, 0, Some(500)),
    ];
    for (i, (setup, opts, secs, want, after)) in cases.iter().enumerate() {
        let key = format!("k{i}");
        match setup {
            None => set(&mut con, &key, "v"),
            Some(s) => set_ex(&mut con, &key, *s),
        }
        let mut c = redis::cmd("EXPIRE");
        c.arg(&key).arg(*secs);
        for o in opts.iter() {
            c.arg(*o);
        }
        let got = int(&mut con, &c);
        assert_eq!(
            got, *want,
            "EXPIRE {key} {secs} {opts:?} with TTL {setup:?}"
        );
        let t = ttl(&mut con, &key);
        assert_eq!(t, after.unwrap_or(-1), "TTL after {opts:?} with {setup:?}");
    }
    // The same options work for PEXPIRE.
    set_ex(&mut con, "p", 100);
    assert_eq!(
        int(
            &mut con,
            redis::cmd("PEXPIRE").arg("p").arg(200_000).arg("GT")
        ),
        1
    );
    assert_eq!(
        int(
            &mut con,
            redis::cmd("PEXPIRE").arg("p").arg(300_000).arg("LT")
        ),
        0
    );
    assert_eq!(ttl(&mut con, "p"), 200);
}

/// Incompatible or unknown EXPIRE options get Redis's exact messages.
#[test]
fn expire_option_errors() {
    let srv = Server::start();
    let mut con = srv.conn();
    set(&mut con, "k", "v");
    let nx_xx = "ERR NX and XX, GT or LT options at the same time are not compatible";
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("EXPIRE").arg("k").arg(10).arg("NX").arg("XX")
        ),
        nx_xx
    );
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("EXPIRE").arg("k").arg(10).arg("NX").arg("GT")
        ),
        nx_xx
    );
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("PEXPIRE").arg("k").arg(10).arg("LT").arg("NX")
        ),
        nx_xx
    );
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("EXPIRE").arg("k").arg(10).arg("GT").arg("LT")
        ),
        "ERR GT and LT options at the same time are not compatible"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("EXPIRE").arg("k").arg(10).arg("foo")),
        "ERR Unsupported option foo"
    );
    assert_eq!(ttl(&mut con, "k"), -1, "no failed EXPIRE set a TTL");
}

/// EXPIRE with a negative time, or EXPIREAT/PEXPIREAT in the past, deletes the key and
/// replies 1.
#[test]
fn expire_in_past_deletes() {
    let srv = Server::start();
    let mut con = srv.conn();
    set(&mut con, "a", "v");
    assert_eq!(int(&mut con, redis::cmd("EXPIRE").arg("a").arg(-1)), 1);
    assert_eq!(exists(&mut con, "a"), 0);
    set(&mut con, "b", "v");
    assert_eq!(int(&mut con, redis::cmd("PEXPIRE").arg("b").arg(-100)), 1);
    assert_eq!(exists(&mut con, "b"), 0);
    set(&mut con, "c", "v");
    assert_eq!(
        int(
            &mut con,
            redis::cmd("EXPIREAT").arg("c").arg(now_secs() - 10)
        ),
        1
    );
    assert_eq!(exists(&mut con, "c"), 0);
    hset(&mut con, "d");
    assert_eq!(int(&mut con, redis::cmd("PEXPIREAT").arg("d").arg(1)), 1);
    assert_eq!(exists(&mut con, "d"), 0);
    set(&mut con, "e", "v");
    assert_eq!(int(&mut con, redis::cmd("EXPIRE").arg("e").arg(0)), 1);
    assert_eq!(exists(&mut con, "e"), 0);
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).expect("dbsize");
    assert_eq!(n, 0);
}

/// An EXPIRE whose time overflows when converted to milliseconds (or added to now) is
/// `ERR invalid expire time in '<cmd>' command` and the key keeps no TTL.
#[test]
fn expire_overflow() {
    let srv = Server::start();
    let mut con = srv.conn();
    set(&mut con, "k", "v");
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("EXPIRE").arg("k").arg("9223372036854775807")
        ),
        "ERR invalid expire time in 'expire' command"
    );
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("PEXPIRE").arg("k").arg("9223372036854775807")
        ),
        "ERR invalid expire time in 'pexpire' command"
    );
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("EXPIREAT").arg("k").arg("9223372036854775807")
        ),
        "ERR invalid expire time in 'expireat' command"
    );
    assert_eq!(ttl(&mut con, "k"), -1);
    assert_eq!(exists(&mut con, "k"), 1);
}

/// TTL and PTTL: -2 for a missing key, -1 for a key without TTL; TTL rounds the remaining
/// milliseconds to the nearest second.
#[test]
fn ttl_pttl_values_and_rounding() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(ttl(&mut con, "missing"), -2);
    assert_eq!(pttl(&mut con, "missing"), -2);
    set(&mut con, "p", "v");
    assert_eq!(ttl(&mut con, "p"), -1);
    assert_eq!(pttl(&mut con, "p"), -1);
    // 2.9 s left rounds up to 3, 2.3 s left rounds down to 2.
    let _: () = redis::cmd("SET")
        .arg("up")
        .arg("v")
        .arg("PX")
        .arg(2900)
        .query(&mut con)
        .expect("set");
    let _: () = redis::cmd("SET")
        .arg("down")
        .arg("v")
        .arg("PX")
        .arg(2300)
        .query(&mut con)
        .expect("set");
    assert_eq!(ttl(&mut con, "up"), 3);
    assert_eq!(ttl(&mut con, "down"), 2);
    let t = pttl(&mut con, "up");
    assert!((2000..=2900).contains(&t), "pttl {t}");
}

/// EXPIRETIME/PEXPIRETIME give the absolute deadline (seconds rounded), -1 without TTL and
/// -2 for a missing key.
#[test]
fn expiretime_and_pexpiretime() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(int(&mut con, redis::cmd("EXPIRETIME").arg("missing")), -2);
    assert_eq!(int(&mut con, redis::cmd("PEXPIRETIME").arg("missing")), -2);
    set(&mut con, "p", "v");
    assert_eq!(int(&mut con, redis::cmd("EXPIRETIME").arg("p")), -1);
    assert_eq!(int(&mut con, redis::cmd("PEXPIRETIME").arg("p")), -1);
    let _: () = redis::cmd("SET")
        .arg("a")
        .arg("v")
        .arg("PXAT")
        .arg(4_000_000_000_600i64)
        .query(&mut con)
        .expect("set");
    assert_eq!(
        int(&mut con, redis::cmd("PEXPIRETIME").arg("a")),
        4_000_000_000_600
    );
    assert_eq!(
        int(&mut con, redis::cmd("EXPIRETIME").arg("a")),
        4_000_000_001
    );
    let _: () = redis::cmd("SET")
        .arg("b")
        .arg("v")
        .arg("PXAT")
        .arg(4_000_000_000_400i64)
        .query(&mut con)
        .expect("set");
    assert_eq!(
        int(&mut con, redis::cmd("EXPIRETIME").arg("b")),
        4_000_000_000
    );
}

/// PERSIST removes a TTL (1) and replies 0 when there was none or the key is missing.
#[test]
fn persist() {
    let srv = Server::start();
    let mut con = srv.conn();
    set_ex(&mut con, "k", 100);
    assert_eq!(int(&mut con, redis::cmd("PERSIST").arg("k")), 1);
    assert_eq!(ttl(&mut con, "k"), -1);
    assert_eq!(int(&mut con, redis::cmd("PERSIST").arg("k")), 0);
    assert_eq!(int(&mut con, redis::cmd("PERSIST").arg("missing")), 0);
}

/// A key set with PX 50 is visible at first and gone (GET nil, EXISTS 0, TTL -2) once
/// 50 ms have passed, without anything deleting it.
#[test]
fn px_key_disappears() {
    let srv = Server::start();
    let mut con = srv.conn();
    let start = Instant::now();
    let (get, ex): (Option<String>, i64) = redis::pipe()
        .cmd("SET")
        .arg("k")
        .arg("v")
        .arg("PX")
        .arg(50)
        .ignore()
        .cmd("GET")
        .arg("k")
        .cmd("EXISTS")
        .arg("k")
        .query(&mut con)
        .expect("pipeline");
    assert_eq!(get.as_deref(), Some("v"), "visible right after SET");
    assert_eq!(ex, 1);
    let gone = wait_until(Duration::from_secs(5), || {
        let g: Option<String> = redis::cmd("GET").arg("k").query(&mut con).expect("get");
        g.is_none()
    });
    assert!(gone, "key with PX 50 still visible after 5 s");
    assert!(
        start.elapsed() >= Duration::from_millis(49),
        "gone too early: {:?}",
        start.elapsed()
    );
    assert_eq!(exists(&mut con, "k"), 0);
    assert_eq!(pttl(&mut con, "k"), -2);
}

/// EXPIRE options are checked before a past time deletes the key: NX on a key with a TTL,
/// or GT on a persistent key, reply 0 and keep the key; LT on a persistent key deletes it.
#[test]
fn expire_options_checked_before_delete() {
    let srv = Server::start();
    let mut con = srv.conn();
    set_ex(&mut con, "a", 100);
    assert_eq!(
        int(&mut con, redis::cmd("EXPIRE").arg("a").arg(-1).arg("NX")),
        0
    );
    assert_eq!(exists(&mut con, "a"), 1);
    set(&mut con, "b", "v");
    assert_eq!(
        int(&mut con, redis::cmd("EXPIRE").arg("b").arg(-1).arg("GT")),
        0
    );
    assert_eq!(exists(&mut con, "b"), 1);
    assert_eq!(
        int(&mut con, redis::cmd("EXPIRE").arg("b").arg(-1).arg("XX")),
        0
    );
    assert_eq!(exists(&mut con, "b"), 1);
    assert_eq!(
        int(&mut con, redis::cmd("EXPIRE").arg("b").arg(-1).arg("LT")),
        1
    );
    assert_eq!(exists(&mut con, "b"), 0);
}

/// DEL, EXISTS and TOUCH without keys are arity errors.
#[test]
fn key_commands_arity() {
    let srv = Server::start();
    let mut con = srv.conn();
    for c in ["del", "unlink", "exists", "touch"] {
        assert_eq!(
            err_of(&mut con, &redis::cmd(c)),
            format!("ERR wrong number of arguments for '{c}' command")
        );
    }
}

/// EXPIRE times must be plain integers: `+10`, `10.0`, ` 10` and the empty string are not.
#[test]
fn expire_time_must_be_plain_integer() {
    let srv = Server::start();
    let mut con = srv.conn();
    set(&mut con, "k", "v");
    for bad in ["+10", "10.0", " 10", ""] {
        assert_eq!(
            err_of(&mut con, redis::cmd("EXPIRE").arg("k").arg(bad)),
            NOT_INT,
            "EXPIRE k {bad:?}"
        );
    }
    assert_eq!(ttl(&mut con, "k"), -1);
}
