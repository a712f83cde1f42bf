//! Counters against Redis 7 semantics: INCR, INCRBY, DECR and DECRBY on missing,
//! non-integer and overflowing values, exact error texts, and TTLs kept.

mod support;

use redis::Value;
use support::cmds::{get, hset, pttl, v};
use support::{err_of, Server};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INT: &str = "ERR value is not an integer or out of range";

/// INCR, INCRBY, DECR and DECRBY: missing keys start at 0, replies are integers, and the
/// value is stored as its decimal text.
#[test]
fn incr_decr_family() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(v(&mut con, redis::cmd("INCR").arg("c")), Value::Int(1));
    assert_eq!(v(&mut con, redis::cmd("INCR").arg("c")), Value::Int(2));
    assert_eq!(
        v(&mut con, redis::cmd("INCRBY").arg("c").arg(10)),
        Value::Int(12)
    );
    assert_eq!(
        v(&mut con, redis::cmd("INCRBY").arg("c").arg(-20)),
        Value::Int(-8)
    );
    assert_eq!(v(&mut con, redis::cmd("DECR").arg("c")), Value::Int(-9));
    assert_eq!(
        v(&mut con, redis::cmd("DECRBY").arg("c").arg(1)),
        Value::Int(-10)
    );
    assert_eq!(
        v(&mut con, redis::cmd("DECRBY").arg("c").arg(-15)),
        Value::Int(5)
    );
    assert_eq!(get(&mut con, "c").as_deref(), Some("5"));
    assert_eq!(v(&mut con, redis::cmd("DECR").arg("d")), Value::Int(-1));
    assert_eq!(
        v(&mut con, redis::cmd("DECRBY").arg("e").arg(7)),
        Value::Int(-7)
    );
    let _: () = redis::cmd("SET")
        .arg("s")
        .arg("-41")
        .query(&mut con)
        .expect("set");
    assert_eq!(v(&mut con, redis::cmd("INCR").arg("s")), Value::Int(-40));
}

/// Counters on values that are not canonical 64-bit integers, or with a non-integer
/// increment, fail with `ERR value is not an integer or out of range` and change nothing.
#[test]
fn incr_non_integer() {
    let srv = Server::start();
    let mut con = srv.conn();
    for bad in [
        "abc",
        "1.5",
        " 1",
        "1 ",
        "",
        "9223372036854775808",
        "0x10",
        "01",
        "-0",
        "+1",
    ] {
        let _: () = redis::cmd("SET")
            .arg("k")
            .arg(bad)
            .query(&mut con)
            .expect("set");
        assert_eq!(
            err_of(&mut con, redis::cmd("INCR").arg("k")),
            NOT_INT,
            "INCR on {bad:?}"
        );
        assert_eq!(get(&mut con, "k").as_deref(), Some(bad));
    }
    let _: () = redis::cmd("SET")
        .arg("n")
        .arg("1")
        .query(&mut con)
        .expect("set");
    for bad in ["abc", "1.5", ""] {
        assert_eq!(
            err_of(&mut con, redis::cmd("INCRBY").arg("n").arg(bad)),
            NOT_INT,
            "INCRBY by {bad:?}"
        );
        assert_eq!(
            err_of(&mut con, redis::cmd("DECRBY").arg("n").arg(bad)),
            NOT_INT,
            "DECRBY by {bad:?}"
        );
    }
    assert_eq!(get(&mut con, "n").as_deref(), Some("1"));
    hset(&mut con, "h");
    assert_eq!(err_of(&mut con, redis::cmd("INCR").arg("h")), WRONGTYPE);
}

/// Overflowing i64 either way is `ERR increment or decrement would overflow` and leaves
/// the value unchanged.
#[test]
fn incr_overflow() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("max")
        .arg(i64::MAX)
        .query(&mut con)
        .expect("set");
    assert_eq!(
        err_of(&mut con, redis::cmd("INCR").arg("max")),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("INCRBY").arg("max").arg(1)),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(get(&mut con, "max"), Some(i64::MAX.to_string()));
    let _: () = redis::cmd("SET")
        .arg("min")
        .arg(i64::MIN)
        .query(&mut con)
        .expect("set");
    assert_eq!(
        err_of(&mut con, redis::cmd("DECR").arg("min")),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("DECRBY").arg("min").arg(1)),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(get(&mut con, "min"), Some(i64::MIN.to_string()));
    // Right up to the limit is fine.
    let _: () = redis::cmd("SET")
        .arg("x")
        .arg(i64::MAX - 1)
        .query(&mut con)
        .expect("set");
    assert_eq!(
        v(&mut con, redis::cmd("INCR").arg("x")),
        Value::Int(i64::MAX)
    );
}

/// INCR on a key with a TTL keeps the TTL.
#[test]
fn incr_keeps_ttl() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("c")
        .arg(1)
        .arg("EX")
        .arg(100)
        .query(&mut con)
        .expect("set");
    assert_eq!(v(&mut con, redis::cmd("INCR").arg("c")), Value::Int(2));
    assert_eq!(
        v(&mut con, redis::cmd("DECRBY").arg("c").arg(5)),
        Value::Int(-3)
    );
    let t = pttl(&mut con, "c");
    assert!((99_000..=100_000).contains(&t), "pttl {t}");
}

/// DECRBY with i64::MIN cannot be negated: `ERR decrement would overflow`, value unchanged.
#[test]
fn decrby_i64_min() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("z")
        .arg(0)
        .query(&mut con)
        .expect("set");
    assert_eq!(
        err_of(
            &mut con,
            redis::cmd("DECRBY").arg("z").arg("-9223372036854775808")
        ),
        "ERR decrement would overflow"
    );
    assert_eq!(get(&mut con, "z").as_deref(), Some("0"));
}
