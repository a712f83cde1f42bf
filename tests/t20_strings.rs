//! String commands against Redis 7 semantics: SET and its options, the GET* family,
//! binary safety and exact error texts (counters: `t21_counters`; MGET, MSET, MSETNX:
//! `t22_multikey`).

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use redis::Value;
use support::cmds::{bulk, get, hset, pttl, v};
use support::{err_of, Server};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INT: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

/// SET replies the status OK and GET returns the value; GET of a missing key is nil.
#[test]
fn set_and_get() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(&mut con, redis::cmd("SET").arg("k").arg("v1")),
        Value::Okay
    );
    assert_eq!(v(&mut con, redis::cmd("GET").arg("k")), bulk("v1"));
    assert_eq!(
        v(&mut con, redis::cmd("SET").arg("k").arg("v2")),
        Value::Okay
    );
    assert_eq!(v(&mut con, redis::cmd("GET").arg("k")), bulk("v2"));
    assert_eq!(v(&mut con, redis::cmd("GET").arg("missing")), Value::Nil);
    assert_eq!(v(&mut con, redis::cmd("SET").arg("e").arg("")), Value::Okay);
    assert_eq!(v(&mut con, redis::cmd("GET").arg("e")), bulk(""));
}

/// SET NX only sets a missing key and SET XX only an existing one; when they do not set,
/// the reply is nil. NX and XX together are a syntax error.
#[test]
fn set_nx_xx() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(&mut con, redis::cmd("SET").arg("k").arg("a").arg("XX")),
        Value::Nil
    );
    assert_eq!(get(&mut con, "k"), None);
    assert_eq!(
        v(&mut con, redis::cmd("SET").arg("k").arg("a").arg("NX")),
        Value::Okay
    );
    assert_eq!(
        v(&mut con, redis::cmd("SET").arg("k").arg("b").arg("nx")),
        Value::Nil
    );
    assert_eq!(get(&mut con, "k").as_deref(), Some("a"));
    assert_eq!(
        v(&mut con, redis::cmd("SET").arg("k").arg("c").arg("xx")),
        Value::Okay
    );
    assert_eq!(get(&mut con, "k").as_deref(), Some("c"));
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("SET").arg("k").arg("d").arg("NX").arg("XX")
        ),
        SYNTAX
    );
    assert_eq!(get(&mut con, "k").as_deref(), Some("c"));
}

/// SET ... GET returns the old value (nil when there was none) and still sets; on a hash
/// it is WRONGTYPE and the hash is left unchanged.
#[test]
fn set_get_option() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(&mut con, redis::cmd("SET").arg("k").arg("one").arg("GET")),
        Value::Nil
    );
    assert_eq!(get(&mut con, "k").as_deref(), Some("one"));
    assert_eq!(
        v(&mut con, redis::cmd("SET").arg("k").arg("two").arg("get")),
        bulk("one")
    );
    assert_eq!(get(&mut con, "k").as_deref(), Some("two"));
    hset(&mut con, "h");
    assert_eq!(
        err_of(&mut con, redis::cmd("SET").arg("h").arg("x").arg("GET")),
        WRONGTYPE
    );
    let t: String = redis::cmd("TYPE").arg("h").query(&mut con).expect("type");
    assert_eq!(t, "hash");
    let f: String = redis::cmd("HGET")
        .arg("h")
        .arg("f")
        .query(&mut con)
        .expect("hget");
    assert_eq!(f, "v");
}

/// EX, PX, EXAT and PXAT are accepted in any letter case and set the TTL accordingly.
#[test]
fn set_expire_options_any_case() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(
            &mut con,
            redis::cmd("SET").arg("a").arg("v").arg("ex").arg(100)
        ),
        Value::Okay
    );
    let t = pttl(&mut con, "a");
    assert!((99_000..=100_000).contains(&t), "ex 100 -> pttl {t}");

    assert_eq!(
        v(
            &mut con,
            redis::cmd("SET").arg("b").arg("v").arg("Px").arg(50_000)
        ),
        Value::Okay
    );
    let t = pttl(&mut con, "b");
    assert!((49_000..=50_000).contains(&t), "Px 50000 -> pttl {t}");

    let at = now_secs() + 200;
    assert_eq!(
        v(
            &mut con,
            redis::cmd("SET").arg("c").arg("v").arg("exAT").arg(at)
        ),
        Value::Okay
    );
    let et: i64 = redis::cmd("EXPIRETIME")
        .arg("c")
        .query(&mut con)
        .expect("et");
    assert_eq!(et, at as i64);

    let at_ms = now_ms() + 300_000;
    assert_eq!(
        v(
            &mut con,
            redis::cmd("SET").arg("d").arg("v").arg("pxat").arg(at_ms)
        ),
        Value::Okay
    );
    let pet: i64 = redis::cmd("PEXPIRETIME")
        .arg("d")
        .query(&mut con)
        .expect("pet");
    assert_eq!(pet, at_ms as i64);
    assert_eq!(get(&mut con, "d").as_deref(), Some("v"));
}

/// SET KEEPTTL keeps the existing TTL; a plain SET clears it.
#[test]
fn set_keepttl_and_plain_set_clears_ttl() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v1")
        .arg("EX")
        .arg(100)
        .query(&mut con)
        .expect("set");
    assert_eq!(
        v(
            &mut con,
            redis::cmd("SET").arg("k").arg("v2").arg("KEEPTTL")
        ),
        Value::Okay
    );
    let t = pttl(&mut con, "k");
    assert!((99_000..=100_000).contains(&t), "KEEPTTL kept pttl: {t}");
    assert_eq!(get(&mut con, "k").as_deref(), Some("v2"));
    assert_eq!(
        v(&mut con, redis::cmd("SET").arg("k").arg("v3")),
        Value::Okay
    );
    assert_eq!(pttl(&mut con, "k"), -1, "plain SET clears the TTL");
}

/// Invalid expire times: EX 0 and EX -1 are `invalid expire time in 'set' command`, and
/// so is an EX that overflows when turned into milliseconds; EX abc is not an integer.
#[test]
fn set_invalid_expire_times() {
    let srv = Server::start();
    let mut con = srv.conn();
    for (opt, val) in [
        ("EX", "0"),
        ("EX", "-1"),
        ("PX", "0"),
        ("PX", "-5"),
        ("EXAT", "0"),
        ("PXAT", "-1"),
        ("EX", "9223372036854775807"),
    ] {
        assert_eq!(
            err_of(
                &mut con,
                redis::cmd("SET").arg("k").arg("v").arg(opt).arg(val)
            ),
            "ERR invalid expire time in 'set' command",
            "SET k v {opt} {val}"
        );
    }
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("SET").arg("k").arg("v").arg("EX").arg("abc")
        ),
        NOT_INT
    );
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("SET").arg("k").arg("v").arg("PX").arg("1.5")
        ),
        NOT_INT
    );
    assert_eq!(get(&mut con, "k"), None, "no failed SET stored anything");
}

/// Conflicting or incomplete SET options are `ERR syntax error`: EX with PX, KEEPTTL with
/// EX, a missing EX value, an unknown option.
#[test]
fn set_option_syntax_errors() {
    let srv = Server::start();
    let mut con = srv.conn();
    let cases: &[&[&str]] = &[
        &["EX", "10", "PX", "100"],
        &["PX", "100", "EX", "10"],
        &["KEEPTTL", "EX", "10"],
        &["EX", "10", "KEEPTTL"],
        &["EXAT", "9999999999", "PXAT", "9999999999000"],
        &["EX"],
        &["PX"],
        &["BOGUS"],
    ];
    for opts in cases {
        let mut c = redis::cmd("SET");
        c.arg("k").arg("v");
        for o in opts.iter() {
            c.arg(*o);
        }
        assert_eq!(err_of(&mut con, &c), SYNTAX, "SET k v {opts:?}");
    }
    assert_eq!(get(&mut con, "k"), None);
}

/// SETEX sets value and TTL; a zero or negative TTL is `invalid expire time in 'setex'
/// command`. PSETEX does the same in milliseconds.
#[test]
fn setex_and_psetex() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(&mut con, redis::cmd("SETEX").arg("k").arg(100).arg("v")),
        Value::Okay
    );
    assert_eq!(get(&mut con, "k").as_deref(), Some("v"));
    let t = pttl(&mut con, "k");
    assert!((99_000..=100_000).contains(&t), "pttl {t}");
    for bad in ["0", "-10"] {
        assert_eq!(
            err_of(&mut con, redis::cmd("SETEX").arg("k2").arg(bad).arg("v")),
            "ERR invalid expire time in 'setex' command"
        );
    }
    assert_eq!(
        err_of(&mut con, redis::cmd("SETEX").arg("k2").arg("x").arg("v")),
        NOT_INT
    );
    assert_eq!(
        v(&mut con, redis::cmd("PSETEX").arg("p").arg(5000).arg("pv")),
        Value::Okay
    );
    let t = pttl(&mut con, "p");
    assert!((4_000..=5_000).contains(&t), "pttl {t}");
    assert_eq!(
        err_of(&mut con, redis::cmd("PSETEX").arg("p2").arg(0).arg("v")),
        "ERR invalid expire time in 'psetex' command"
    );
    assert_eq!(get(&mut con, "k2"), None);
    assert_eq!(get(&mut con, "p2"), None);
}

/// SETNX returns 1 when it set the key and 0 when the key already existed (unchanged).
#[test]
fn setnx_returns_integer() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(&mut con, redis::cmd("SETNX").arg("k").arg("a")),
        Value::Int(1)
    );
    assert_eq!(
        v(&mut con, redis::cmd("SETNX").arg("k").arg("b")),
        Value::Int(0)
    );
    assert_eq!(get(&mut con, "k").as_deref(), Some("a"));
}

/// GETEX returns the value and changes the TTL with EX, PX, EXAT, PXAT or PERSIST (seen
/// through PTTL); without options it leaves the TTL alone.
#[test]
fn getex_options() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("set");
    assert_eq!(v(&mut con, redis::cmd("GETEX").arg("k")), bulk("v"));
    assert_eq!(pttl(&mut con, "k"), -1);

    assert_eq!(
        v(&mut con, redis::cmd("GETEX").arg("k").arg("EX").arg(100)),
        bulk("v")
    );
    let t = pttl(&mut con, "k");
    assert!((99_000..=100_000).contains(&t), "EX: {t}");

    assert_eq!(v(&mut con, redis::cmd("GETEX").arg("k")), bulk("v"));
    let t = pttl(&mut con, "k");
    assert!((99_000..=100_000).contains(&t), "no option keeps TTL: {t}");

    assert_eq!(
        v(&mut con, redis::cmd("GETEX").arg("k").arg("px").arg(20_000)),
        bulk("v")
    );
    let t = pttl(&mut con, "k");
    assert!((19_000..=20_000).contains(&t), "PX: {t}");

    let at = now_secs() + 500;
    assert_eq!(
        v(&mut con, redis::cmd("GETEX").arg("k").arg("EXAT").arg(at)),
        bulk("v")
    );
    let et: i64 = redis::cmd("EXPIRETIME")
        .arg("k")
        .query(&mut con)
        .expect("et");
    assert_eq!(et, at as i64);

    let at_ms = now_ms() + 700_000;
    assert_eq!(
        v(
            &mut con,
            redis::cmd("GETEX").arg("k").arg("PXAT").arg(at_ms)
        ),
        bulk("v")
    );
    let pet: i64 = redis::cmd("PEXPIRETIME")
        .arg("k")
        .query(&mut con)
        .expect("pet");
    assert_eq!(pet, at_ms as i64);

    assert_eq!(
        v(&mut con, redis::cmd("GETEX").arg("k").arg("PERSIST")),
        bulk("v")
    );
    assert_eq!(pttl(&mut con, "k"), -1);
}

/// GETEX on a missing key is nil (and creates nothing); bad options and expire times get
/// Redis's errors; on a hash it is WRONGTYPE.
#[test]
fn getex_missing_and_errors() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(v(&mut con, redis::cmd("GETEX").arg("nokey")), Value::Nil);
    assert_eq!(
        v(&mut con, redis::cmd("GETEX").arg("nokey").arg("EX").arg(10)),
        Value::Nil
    );
    let n: i64 = redis::cmd("EXISTS")
        .arg("nokey")
        .query(&mut con)
        .expect("exists");
    assert_eq!(n, 0);
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("set");
    assert_eq!(
        err_of(&mut con, redis::cmd("GETEX").arg("k").arg("EX").arg(0)),
        "ERR invalid expire time in 'getex' command"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("GETEX").arg("k").arg("EX").arg("abc")),
        NOT_INT
    );
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("GETEX")
                .arg("k")
                .arg("EX")
                .arg(10)
                .arg("PERSIST")
        ),
        SYNTAX
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("GETEX").arg("k").arg("BOGUS")),
        SYNTAX
    );
    assert_eq!(pttl(&mut con, "k"), -1, "failed GETEX changed nothing");
    hset(&mut con, "h");
    assert_eq!(err_of(&mut con, redis::cmd("GETEX").arg("h")), WRONGTYPE);
}

/// GETDEL returns the value and deletes the key; nil for a missing key; WRONGTYPE on a
/// hash (which stays).
#[test]
fn getdel() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("set");
    assert_eq!(v(&mut con, redis::cmd("GETDEL").arg("k")), bulk("v"));
    assert_eq!(v(&mut con, redis::cmd("GETDEL").arg("k")), Value::Nil);
    let n: i64 = redis::cmd("EXISTS")
        .arg("k")
        .query(&mut con)
        .expect("exists");
    assert_eq!(n, 0);
    hset(&mut con, "h");
    assert_eq!(err_of(&mut con, redis::cmd("GETDEL").arg("h")), WRONGTYPE);
    let n: i64 = redis::cmd("EXISTS")
        .arg("h")
        .query(&mut con)
        .expect("exists");
    assert_eq!(n, 1);
}

/// GETSET returns the old value (nil if none), stores the new one and clears the TTL.
#[test]
fn getset_clears_ttl() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(&mut con, redis::cmd("GETSET").arg("k").arg("a")),
        Value::Nil
    );
    let _: () = redis::cmd("EXPIRE")
        .arg("k")
        .arg(100)
        .query(&mut con)
        .expect("expire");
    assert!(pttl(&mut con, "k") > 0);
    assert_eq!(
        v(&mut con, redis::cmd("GETSET").arg("k").arg("b")),
        bulk("a")
    );
    assert_eq!(get(&mut con, "k").as_deref(), Some("b"));
    assert_eq!(pttl(&mut con, "k"), -1);
    hset(&mut con, "h");
    assert_eq!(
        err_of(&mut con, redis::cmd("GETSET").arg("h").arg("x")),
        WRONGTYPE
    );
}

/// STRLEN is the value's byte length, 0 for a missing key, WRONGTYPE on a hash.
#[test]
fn strlen() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(v(&mut con, redis::cmd("STRLEN").arg("k")), Value::Int(0));
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("héllo")
        .query(&mut con)
        .expect("set");
    assert_eq!(v(&mut con, redis::cmd("STRLEN").arg("k")), Value::Int(6));
    let _: () = redis::cmd("SET")
        .arg("n")
        .arg(12345)
        .query(&mut con)
        .expect("set");
    assert_eq!(v(&mut con, redis::cmd("STRLEN").arg("n")), Value::Int(5));
    hset(&mut con, "h");
    assert_eq!(err_of(&mut con, redis::cmd("STRLEN").arg("h")), WRONGTYPE);
}

/// APPEND creates a missing key, extends an existing one, returns the new length and keeps
/// the TTL.
#[test]
fn append_creates_and_extends() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(&mut con, redis::cmd("APPEND").arg("k").arg("Hello")),
        Value::Int(5)
    );
    assert_eq!(
        v(&mut con, redis::cmd("APPEND").arg("k").arg(" World")),
        Value::Int(11)
    );
    assert_eq!(get(&mut con, "k").as_deref(), Some("Hello World"));
    let _: () = redis::cmd("EXPIRE")
        .arg("k")
        .arg(100)
        .query(&mut con)
        .expect("expire");
    assert_eq!(
        v(&mut con, redis::cmd("APPEND").arg("k").arg("!")),
        Value::Int(12)
    );
    assert!(pttl(&mut con, "k") > 0, "APPEND keeps the TTL");
    let _: () = redis::cmd("SET")
        .arg("n")
        .arg(10)
        .query(&mut con)
        .expect("set");
    assert_eq!(
        v(&mut con, redis::cmd("APPEND").arg("n").arg(5)),
        Value::Int(3)
    );
    assert_eq!(get(&mut con, "n").as_deref(), Some("105"));
    hset(&mut con, "h");
    assert_eq!(
        err_of(&mut con, redis::cmd("APPEND").arg("h").arg("x")),
        WRONGTYPE
    );
}

/// Keys and values are binary safe: every byte 0..=255, embedded CR LF and NUL.
#[test]
fn binary_safe_keys_and_values() {
    let srv = Server::start();
    let mut con = srv.conn();
    let all: Vec<u8> = (0..=255u8).collect();
    let key: Vec<u8> = [b"k\r\n\0".as_slice(), &all].concat();
    let value: Vec<u8> = [all.as_slice(), b"\r\n$5\r\n*1\r\n", &all].concat();
    assert_eq!(
        v(&mut con, redis::cmd("SET").arg(&key).arg(&value)),
        Value::Okay
    );
    assert_eq!(
        v(&mut con, redis::cmd("GET").arg(&key)),
        Value::BulkString(value.clone())
    );
    assert_eq!(
        v(&mut con, redis::cmd("STRLEN").arg(&key)),
        Value::Int(value.len() as i64)
    );
    // A key differing only in the last byte is a different key.
    let mut other = key.clone();
    *other.last_mut().expect("non-empty") = 0;
    assert_eq!(v(&mut con, redis::cmd("GET").arg(&other)), Value::Nil);
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut con).expect("keys");
    assert_eq!(keys, vec![key]);
}

/// A 1 MB value round-trips intact.
#[test]
fn one_megabyte_value() {
    let srv = Server::start();
    let mut con = srv.conn();
    let value: Vec<u8> = (0..1024 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    assert_eq!(
        v(&mut con, redis::cmd("SET").arg("big").arg(&value)),
        Value::Okay
    );
    assert_eq!(
        v(&mut con, redis::cmd("STRLEN").arg("big")),
        Value::Int(1024 * 1024)
    );
    let got: Vec<u8> = redis::cmd("GET").arg("big").query(&mut con).expect("get");
    assert!(got == value, "1 MB value differs after round trip");
}

/// GET on a hash key is WRONGTYPE with Redis's exact text.
#[test]
fn get_on_hash_is_wrongtype() {
    let srv = Server::start();
    let mut con = srv.conn();
    hset(&mut con, "h");
    assert_eq!(
        err_of(&mut con, redis::cmd("GET").arg("h")),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
}

/// A plain SET overwrites a key of another type (a hash becomes a string).
#[test]
fn set_overwrites_other_type() {
    let srv = Server::start();
    let mut con = srv.conn();
    hset(&mut con, "h");
    assert_eq!(
        v(&mut con, redis::cmd("SET").arg("h").arg("s")),
        Value::Okay
    );
    assert_eq!(get(&mut con, "h").as_deref(), Some("s"));
    assert_eq!(
        v(&mut con, redis::cmd("TYPE").arg("h")),
        Value::SimpleString("string".into())
    );
}

/// SET with EXAT/PXAT already in the past replies OK and leaves no key behind.
#[test]
fn set_with_past_deadline() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(
            &mut con,
            redis::cmd("SET").arg("k").arg("v").arg("PXAT").arg(1)
        ),
        Value::Okay
    );
    assert_eq!(v(&mut con, redis::cmd("GET").arg("k")), Value::Nil);
    let n: i64 = redis::cmd("EXISTS")
        .arg("k")
        .query(&mut con)
        .expect("exists");
    assert_eq!(n, 0);
    let _: () = redis::cmd("SET")
        .arg("j")
        .arg("old")
        .query(&mut con)
        .expect("set");
    assert_eq!(
        v(
            &mut con,
            redis::cmd("SET")
                .arg("j")
                .arg("new")
                .arg("EXAT")
                .arg(1)
                .arg("GET")
        ),
        bulk("old")
    );
    assert_eq!(v(&mut con, redis::cmd("GET").arg("j")), Value::Nil);
}

/// GETEX with an EXAT/PXAT in the past returns the value and deletes the key.
#[test]
fn getex_past_deadline_deletes() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("set");
    assert_eq!(
        v(&mut con, redis::cmd("GETEX").arg("k").arg("PXAT").arg(1)),
        bulk("v")
    );
    let n: i64 = redis::cmd("EXISTS")
        .arg("k")
        .query(&mut con)
        .expect("exists");
    assert_eq!(n, 0);
}

/// SET ... KEEPTTL GET returns the old value and keeps the TTL; SET ... GET without
/// KEEPTTL clears it.
#[test]
fn set_get_keepttl_combination() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("a")
        .arg("EX")
        .arg(100)
        .query(&mut con)
        .expect("set");
    assert_eq!(
        v(
            &mut con,
            redis::cmd("SET")
                .arg("k")
                .arg("b")
                .arg("KEEPTTL")
                .arg("GET")
        ),
        bulk("a")
    );
    assert!(pttl(&mut con, "k") > 90_000);
    assert_eq!(
        v(&mut con, redis::cmd("SET").arg("k").arg("c").arg("GET")),
        bulk("b")
    );
    assert_eq!(pttl(&mut con, "k"), -1);
}

/// Expire times that overflow for SETEX/GETEX are `invalid expire time`, and an increment
/// beyond i64 is not an integer.
#[test]
fn overflowing_arguments() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("SETEX")
                .arg("k")
                .arg("9223372036854775807")
                .arg("v")
        ),
        "ERR invalid expire time in 'setex' command"
    );
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("1")
        .query(&mut con)
        .expect("set");
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("GETEX")
                .arg("k")
                .arg("EX")
                .arg("9223372036854775807")
        ),
        "ERR invalid expire time in 'getex' command"
    );
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("INCRBY").arg("k").arg("9223372036854775808")
        ),
        NOT_INT
    );
    assert_eq!(get(&mut con, "k").as_deref(), Some("1"));
    assert_eq!(pttl(&mut con, "k"), -1);
}

/// Repeating the same expire option is allowed and the last one wins
/// (`SET k v EX 10 EX 20` sets a 20 s TTL).
#[test]
fn set_repeated_expire_option_last_wins() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(
            &mut con,
            redis::cmd("SET")
                .arg("k")
                .arg("v")
                .arg("EX")
                .arg(10)
                .arg("EX")
                .arg(20)
        ),
        Value::Okay
    );
    assert_eq!(ttl_of(&mut con, "k"), 20);
    assert_eq!(
        v(
            &mut con,
            redis::cmd("SET")
                .arg("p")
                .arg("v")
                .arg("PX")
                .arg(100)
                .arg("px")
                .arg(20_000)
        ),
        Value::Okay
    );
    let t = pttl(&mut con, "p");
    assert!((19_000..=20_000).contains(&t), "pttl {t}");
}

fn ttl_of(con: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("TTL").arg(key).query(con).expect("ttl")
}
