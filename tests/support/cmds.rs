//! One-line command helpers the command-family tests share.

use redis::{ConnectionLike, Value};

/// The raw reply to `cmd` (errors as well as values).
pub fn v(con: &mut redis::Connection, cmd: &redis::Cmd) -> Value {
    con.req_command(cmd).expect("reply")
}

pub fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

pub fn set(con: &mut redis::Connection, key: &str, val: &str) {
    let _: () = redis::cmd("SET").arg(key).arg(val).query(con).expect("set");
}

pub fn get(con: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(con).expect("get")
}

pub fn pttl(con: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(con).expect("pttl")
}

/// A hash at `key` (for WRONGTYPE checks).
pub fn hset(con: &mut redis::Connection, key: &str) {
    let _: i64 = redis::cmd("HSET")
        .arg(key)
        .arg("f")
        .arg("v")
        .query(con)
        .expect("hset");
}
