//! Multi-key string commands against Redis 7 semantics: MGET, MSET and MSETNX.

mod support;

use redis::Value;
use support::cmds::{bulk, get, hset, pttl, v};
use support::{err_of, Server};

/// MGET returns one element per key, nil for missing keys and for keys of another type.
#[test]
fn mget_with_missing_and_hash() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("a")
        .arg("1")
        .query(&mut con)
        .expect("set");
    let _: () = redis::cmd("SET")
        .arg("c")
        .arg("3")
        .query(&mut con)
        .expect("set");
    hset(&mut con, "h");
    assert_eq!(
        v(
            &mut con,
            redis::cmd("MGET")
                .arg("a")
                .arg("b")
                .arg("h")
                .arg("c")
                .arg("a")
        ),
        Value::Array(vec![
            bulk("1"),
            Value::Nil,
            Value::Nil,
            bulk("3"),
            bulk("1")
        ])
    );
}

/// MSET sets all pairs and replies OK; an odd number of arguments is an arity error and
/// sets nothing.
#[test]
fn mset_and_odd_args() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(
            &mut con,
            redis::cmd("MSET").arg("a").arg("1").arg("b").arg("2")
        ),
        Value::Okay
    );
    assert_eq!(get(&mut con, "a").as_deref(), Some("1"));
    assert_eq!(get(&mut con, "b").as_deref(), Some("2"));
    assert_eq!(
        err_of(&mut con, redis::cmd("MSET").arg("x").arg("1").arg("y")),
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("MSET").arg("x")),
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(get(&mut con, "x"), None);
    // MSET overwrites and clears the TTL.
    let _: () = redis::cmd("EXPIRE")
        .arg("a")
        .arg(100)
        .query(&mut con)
        .expect("expire");
    let _: () = redis::cmd("MSET")
        .arg("a")
        .arg("9")
        .query(&mut con)
        .expect("mset");
    assert_eq!(get(&mut con, "a").as_deref(), Some("9"));
    assert_eq!(pttl(&mut con, "a"), -1);
}

/// MSETNX sets all keys (reply 1) only when none exists; if any exists it sets none
/// (reply 0).
#[test]
fn msetnx_all_or_nothing() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(
            &mut con,
            redis::cmd("MSETNX").arg("a").arg("1").arg("b").arg("2")
        ),
        Value::Int(1)
    );
    assert_eq!(
        v(
            &mut con,
            redis::cmd("MSETNX").arg("c").arg("3").arg("a").arg("x")
        ),
        Value::Int(0)
    );
    assert_eq!(get(&mut con, "c"), None, "nothing set when one key exists");
    assert_eq!(get(&mut con, "a").as_deref(), Some("1"));
    assert_eq!(
        err_of(&mut con, redis::cmd("MSETNX").arg("a").arg("1").arg("b")),
        "ERR wrong number of arguments for 'msetnx' command"
    );
}

/// MSET with a key named twice stores the last value.
#[test]
fn mset_duplicate_key_last_wins() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("MSET")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg("x")
        .arg("a")
        .arg("2")
        .query(&mut con)
        .expect("mset");
    assert_eq!(get(&mut con, "a").as_deref(), Some("2"));
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).expect("dbsize");
    assert_eq!(n, 2);
}

/// MSETNX naming one new key twice sets it (reply 1) to the last value.
#[test]
fn msetnx_duplicate_key() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(
            &mut con,
            redis::cmd("MSETNX").arg("d").arg("1").arg("d").arg("2")
        ),
        Value::Int(1)
    );
    assert_eq!(get(&mut con, "d").as_deref(), Some("2"));
}
