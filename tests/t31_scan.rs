//! KEYS patterns and SCAN against Redis 7 semantics: MATCH, COUNT and TYPE, a full
//! iteration that is stable while the table grows and shrinks, and exact errors.

mod support;

use std::collections::HashSet;

use redis::Value;
use support::cmds::{hset, set, v};
use support::{err_of, Server};

const NOT_INT: &str = "ERR value is not an integer or out of range";

/// One SCAN call: (next cursor as sent, keys).
fn scan_once(con: &mut redis::Connection, cmd: &redis::Cmd) -> (String, Vec<String>) {
    match v(con, cmd) {
        Value::Array(items) if items.len() == 2 => {
            let cursor = match &items[0] {
                Value::BulkString(b) => String::from_utf8(b.clone()).expect("utf8 cursor"),
                other => panic!("SCAN cursor must be a bulk string, got {other:?}"),
            };
            let keys = match &items[1] {
                Value::Array(ks) => ks
                    .iter()
                    .map(|k| match k {
                        Value::BulkString(b) => String::from_utf8(b.clone()).expect("utf8"),
                        other => panic!("SCAN key must be a bulk string, got {other:?}"),
                    })
                    .collect(),
                other => panic!("SCAN keys must be an array, got {other:?}"),
            };
            (cursor, keys)
        }
        other => panic!("SCAN must reply [cursor, keys], got {other:?}"),
    }
}

/// Iterate SCAN from cursor 0 to the end with extra `args`; returns every key seen.
fn scan_all(con: &mut redis::Connection, args: &[&str]) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut out = Vec::new();
    for _ in 0..1_000_000 {
        let mut c = redis::cmd("SCAN");
        c.arg(&cursor);
        for a in args {
            c.arg(*a);
        }
        let (next, keys) = scan_once(con, &c);
        out.extend(keys);
        cursor = next;
        if cursor == "0" {
            return out;
        }
    }
    panic!("SCAN did not finish");
}

fn mset_many(con: &mut redis::Connection, keys: impl Iterator<Item = String>) {
    let keys: Vec<String> = keys.collect();
    for chunk in keys.chunks(1000) {
        let mut c = redis::cmd("MSET");
        for k in chunk {
            c.arg(k).arg("v");
        }
        let _: () = c.query(con).expect("mset");
    }
}

/// KEYS matches glob patterns: `*`, `?` for exactly one byte, `[ab]` classes.
#[test]
fn keys_patterns() {
    let srv = Server::start();
    let mut con = srv.conn();
    for k in ["user:1", "user:2", "user:10", "apple", "banana", "cherry"] {
        set(&mut con, k, "v");
    }
    hset(&mut con, "hash");
    let keys = |con: &mut redis::Connection, pat: &str| -> HashSet<String> {
        let ks: Vec<String> = redis::cmd("KEYS").arg(pat).query(con).expect("keys");
        ks.into_iter().collect()
    };
    let set_of = |ks: &[&str]| -> HashSet<String> { ks.iter().map(|s| s.to_string()).collect() };
    assert_eq!(
        keys(&mut con, "*"),
        set_of(&["user:1", "user:2", "user:10", "apple", "banana", "cherry", "hash"])
    );
    assert_eq!(keys(&mut con, "user:?"), set_of(&["user:1", "user:2"]));
    assert_eq!(keys(&mut con, "[ab]*"), set_of(&["apple", "banana"]));
    assert_eq!(keys(&mut con, "*an*"), set_of(&["banana"]));
    assert_eq!(keys(&mut con, "nomatch*"), set_of(&[]));
    assert_eq!(
        v(&mut con, redis::cmd("KEYS").arg("nomatch*")),
        Value::Array(vec![])
    );
}

/// A full SCAN returns every key (as a set), ends with cursor "0", and MATCH, COUNT and
/// TYPE filter exactly.
#[test]
fn scan_full_iteration_with_filters() {
    let srv = Server::start();
    let mut con = srv.conn();
    let strings: HashSet<String> = (0..1000).map(|i| format!("s:{i}")).collect();
    mset_many(&mut con, strings.iter().cloned());
    let hashes: HashSet<String> = (0..100).map(|i| format!("h:{i}")).collect();
    for h in &hashes {
        hset(&mut con, h);
    }
    let all: HashSet<String> = strings.union(&hashes).cloned().collect();
    let got: HashSet<String> = scan_all(&mut con, &[]).into_iter().collect();
    assert_eq!(got, all);
    let got: HashSet<String> = scan_all(&mut con, &["COUNT", "7"]).into_iter().collect();
    assert_eq!(got, all);
    let got: HashSet<String> = scan_all(&mut con, &["COUNT", "5000"]).into_iter().collect();
    assert_eq!(got, all);
    let want: HashSet<String> = all
        .iter()
        .filter(|k| k.starts_with("s:1"))
        .cloned()
        .collect();
    let got: HashSet<String> = scan_all(&mut con, &["MATCH", "s:1*", "COUNT", "20"])
        .into_iter()
        .collect();
    assert_eq!(got, want);
    let got: HashSet<String> = scan_all(&mut con, &["TYPE", "hash"]).into_iter().collect();
    assert_eq!(got, hashes);
    let got: HashSet<String> = scan_all(&mut con, &["TYPE", "string", "COUNT", "50"])
        .into_iter()
        .collect();
    assert_eq!(got, strings);
    let want: HashSet<String> = ["h:1", "h:10", "h:11", "h:12", "h:13"]
        .iter()
        .chain(&["h:14", "h:15", "h:16", "h:17", "h:18", "h:19"])
        .map(|s| s.to_string())
        .collect();
    let got: HashSet<String> = scan_all(&mut con, &["MATCH", "h:1*", "TYPE", "hash"])
        .into_iter()
        .collect();
    assert_eq!(got, want);
    let got = scan_all(&mut con, &["MATCH", "nothing*"]);
    assert!(got.is_empty(), "{got:?}");
}

/// SCAN on an empty database replies ["0", []].
#[test]
fn scan_empty_database() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        v(&mut con, redis::cmd("SCAN").arg(0)),
        Value::Array(vec![Value::BulkString(b"0".to_vec()), Value::Array(vec![])])
    );
}

/// A cursor that is not a number is `ERR invalid cursor`; COUNT 0 is `ERR syntax error`.
#[test]
fn scan_errors() {
    let srv = Server::start();
    let mut con = srv.conn();
    set(&mut con, "k", "v");
    assert_eq!(
        err_of(&mut con, redis::cmd("SCAN").arg("abc")),
        "ERR invalid cursor"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("SCAN").arg("0").arg("COUNT").arg(0)),
        "ERR syntax error"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("SCAN").arg("0").arg("COUNT").arg("x")),
        NOT_INT
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("SCAN").arg("0").arg("BOGUS").arg("1")),
        "ERR syntax error"
    );
}

/// SCAN guarantee under churn: with 20k keys present for the whole scan, and other keys
/// added then deleted between SCAN calls (so tables grow and shrink), every original key
/// is returned.
#[test]
fn scan_stable_under_growth_and_shrink() {
    let srv = Server::start();
    let mut con = srv.conn();
    let originals: Vec<String> = (0..20_000).map(|i| format!("orig:{i}")).collect();
    mset_many(&mut con, originals.iter().cloned());
    let mut seen: HashSet<String> = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0usize;
    let mut added = 0usize;
    let mut deleted = 0usize;
    loop {
        let (next, keys) = scan_once(
            &mut con,
            redis::cmd("SCAN").arg(&cursor).arg("COUNT").arg(100),
        );
        seen.extend(keys);
        cursor = next;
        calls += 1;
        if cursor == "0" {
            break;
        }
        assert!(calls < 1_000_000, "SCAN did not finish");
        if calls % 60 < 30 {
            // Grow: 1000 new keys per call, 30k more by the end of this phase.
            mset_many(&mut con, (added..added + 1000).map(|i| format!("tmp:{i}")));
            added += 1000;
        } else if deleted < added {
            // Shrink: delete the temporary keys again, 1000 per call.
            let end = (deleted + 1000).min(added);
            let mut c = redis::cmd("DEL");
            for i in deleted..end {
                c.arg(format!("tmp:{i}"));
            }
            let _: i64 = c.query(&mut con).expect("del");
            deleted = end;
        }
    }
    let missing: Vec<&String> = originals.iter().filter(|k| !seen.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} original keys never returned by SCAN (e.g. {:?}); {calls} calls, {added} added, {deleted} deleted",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        calls > 30,
        "the scan should have spanned the churn: {calls} calls"
    );
}

/// KEYS glob classes as documented: `h?llo`, `h*llo`, `h[ae]llo`, `h[^e]llo`, `h[a-b]llo`,
/// and a backslash escapes a special character.
#[test]
fn keys_glob_classes() {
    let srv = Server::start();
    let mut con = srv.conn();
    for k in [
        "hello", "hallo", "hxllo", "hllo", "heeeello", "hbllo", "h*llo",
    ] {
        set(&mut con, k, "v");
    }
    let keys = |con: &mut redis::Connection, pat: &str| -> Vec<String> {
        let mut ks: Vec<String> = redis::cmd("KEYS").arg(pat).query(con).expect("keys");
        ks.sort();
        ks
    };
    assert_eq!(
        keys(&mut con, "h?llo"),
        vec!["h*llo", "hallo", "hbllo", "hello", "hxllo"]
    );
    assert_eq!(
        keys(&mut con, "h*llo"),
        vec!["h*llo", "hallo", "hbllo", "heeeello", "hello", "hllo", "hxllo"]
    );
    assert_eq!(keys(&mut con, "h[ae]llo"), vec!["hallo", "hello"]);
    assert_eq!(
        keys(&mut con, "h[^e]llo"),
        vec!["h*llo", "hallo", "hbllo", "hxllo"]
    );
    assert_eq!(keys(&mut con, "h[a-b]llo"), vec!["hallo", "hbllo"]);
    assert_eq!(keys(&mut con, "h\\*llo"), vec!["h*llo"]);
}

/// More SCAN argument errors: a negative COUNT is a syntax error; a cursor with a leading
/// space or beyond 64 bits is an invalid cursor.
#[test]
fn scan_more_errors() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        err_of(&mut con, redis::cmd("SCAN").arg("0").arg("COUNT").arg(-1)),
        "ERR syntax error"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("SCAN").arg(" 1")),
        "ERR invalid cursor"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("SCAN").arg("18446744073709551616")),
        "ERR invalid cursor"
    );
    assert_eq!(
        err_of(&mut con, redis::cmd("SCAN").arg("1x")),
        "ERR invalid cursor"
    );
}

/// SCAN options without their value are syntax errors.
#[test]
fn scan_option_missing_value() {
    let srv = Server::start();
    let mut con = srv.conn();
    for opt in ["COUNT", "MATCH", "TYPE"] {
        assert_eq!(
            err_of(&mut con, redis::cmd("SCAN").arg(0).arg(opt)),
            "ERR syntax error",
            "SCAN 0 {opt}"
        );
    }
}
