//! The differential test's set and sorted-set commands: a seeded stream over a few set
//! and sorted-set keys (and the string and hash keys, for WRONGTYPE), with their options
//! and error paths; and how their unordered replies are compared.
//!
//! Random picks are drawn only where the answer is still a function of the state: `SPOP`
//! and `SRANDMEMBER`/`ZRANDMEMBER` with a count of 0 or one past any set's size (all of
//! it, compared as a set).

use super::diff::{b, Reply, Rng};

const KEYS: &[&str] = &["s0", "s1", "s2", "z0", "z1", "z2", "k0", "h0", "nokey"];
const MEMBERS: &[&str] = &["a", "b", "c", "d", "1", "2", "10", "", "m\u{0}x", "-5"];
const SCORES: &[&str] = &[
    "0",
    "1",
    "2",
    "-1",
    "1.5",
    "-2.25",
    "10",
    "inf",
    "-inf",
    "+inf",
    "1e3",
    "abc",
    "nan",
    "",
    "0x10",
    "3.0000000000000001",
];
const BOUNDS: &[&str] = &[
    "0", "1", "(1", "2", "(2", "-inf", "+inf", "inf", "(-inf", "1.5", "x", "(", "10", "-1",
];
const LEX: &[&str] = &["-", "+", "[a", "(a", "[c", "(c", "[", "(", "a", "[10", "(m"];

fn key(r: &mut Rng) -> Vec<u8> {
    b(r.pick(KEYS))
}

fn member(r: &mut Rng) -> Vec<u8> {
    b(r.pick(MEMBERS))
}

fn index(r: &mut Rng) -> Vec<u8> {
    b(r.pick(&["0", "1", "-1", "2", "-2", "5", "-100", "100", "x"]))
}

/// A set or sorted-set command.
pub fn command(r: &mut Rng) -> Vec<Vec<u8>> {
    let name = r.pick(&[
        "SADD",
        "SADD",
        "SREM",
        "SMEMBERS",
        "SISMEMBER",
        "SMISMEMBER",
        "SCARD",
        "SMOVE",
        "SINTER",
        "SUNION",
        "SDIFF",
        "SINTERSTORE",
        "SUNIONSTORE",
        "SDIFFSTORE",
        "SINTERCARD",
        "SSCAN",
        "SPOP",
        "SRANDMEMBER",
        "ZADD",
        "ZADD",
        "ZADD",
        "ZINCRBY",
        "ZREM",
        "ZSCORE",
        "ZMSCORE",
        "ZCARD",
        "ZCOUNT",
        "ZLEXCOUNT",
        "ZRANGE",
        "ZRANGE",
        "ZREVRANGE",
        "ZRANGEBYSCORE",
        "ZREVRANGEBYSCORE",
        "ZRANGEBYLEX",
        "ZREVRANGEBYLEX",
        "ZRANGESTORE",
        "ZRANK",
        "ZREVRANK",
        "ZREMRANGEBYSCORE",
        "ZREMRANGEBYRANK",
        "ZREMRANGEBYLEX",
        "ZPOPMIN",
        "ZPOPMAX",
        "ZRANDMEMBER",
        "ZSCAN",
    ]);
    let mut c = vec![b(name)];
    match name {
        "SADD" | "SREM" | "SMISMEMBER" | "ZREM" | "ZMSCORE" => {
            c.push(key(r));
            for _ in 0..1 + r.below(4) {
                c.push(member(r));
            }
        }
        "SISMEMBER" | "ZSCORE" => c.extend([key(r), member(r)]),
        "ZRANK" | "ZREVRANK" => c.extend([key(r), member(r)]),
        "SMEMBERS" | "SCARD" | "ZCARD" => c.push(key(r)),
        "SMOVE" => c.extend([key(r), key(r), member(r)]),
        "SINTER" | "SUNION" | "SDIFF" | "SINTERSTORE" | "SUNIONSTORE" | "SDIFFSTORE" => {
            for _ in 0..1 + r.below(3) {
                c.push(key(r));
            }
            if name.ends_with("STORE") {
                c.push(key(r));
            }
        }
        "SINTERCARD" => {
            let n = r.below(4);
            c.push(b(&if r.chance(10) {
                "x".to_string()
            } else {
                n.to_string()
            }));
            for _ in 0..1 + r.below(3) {
                c.push(key(r));
            }
            if r.chance(40) {
                c.extend([b("LIMIT"), b(r.pick(&["0", "1", "2", "-1", "x"]))]);
            }
        }
        "SSCAN" | "ZSCAN" => {
            c.extend([key(r), b(r.pick(&["0", "0", "x"]))]);
            if r.chance(40) {
                c.extend([b("MATCH"), b(r.pick(&["*", "a*", "?", "[ab]"]))]);
            }
            // One page holds everything in both servers.
            c.extend([b("COUNT"), b("1000")]);
        }
        "SPOP" => {
            c.push(key(r));
            c.push(b(r.pick(&["0", "100", "-1", "x"])));
        }
        "SRANDMEMBER" | "ZRANDMEMBER" => {
            c.push(key(r));
            c.push(b(r.pick(&["0", "100", "x"])));
            if name == "ZRANDMEMBER" && r.chance(50) {
                c.push(b("WITHSCORES"));
            }
        }
        "ZADD" => {
            c.push(key(r));
            for f in ["NX", "XX", "GT", "LT", "CH", "INCR"] {
                if r.chance(12) {
                    c.push(b(f));
                }
            }
            for _ in 0..1 + r.below(3) {
                c.extend([b(r.pick(SCORES)), member(r)]);
            }
            if r.chance(5) {
                c.pop();
            }
        }
        "ZINCRBY" => c.extend([key(r), b(r.pick(SCORES)), member(r)]),
        "ZCOUNT" | "ZREMRANGEBYSCORE" => c.extend([key(r), b(r.pick(BOUNDS)), b(r.pick(BOUNDS))]),
        "ZLEXCOUNT" | "ZREMRANGEBYLEX" => c.extend([key(r), b(r.pick(LEX)), b(r.pick(LEX))]),
        "ZREMRANGEBYRANK" => c.extend([key(r), index(r), index(r)]),
        "ZRANGE" | "ZRANGESTORE" => {
            if name == "ZRANGESTORE" {
                c.push(key(r));
            }
            c.push(key(r));
            let by = r.pick(&["", "BYSCORE", "BYLEX"]);
            let (lo, hi) = match by {
                "BYSCORE" => (b(r.pick(BOUNDS)), b(r.pick(BOUNDS))),
                "BYLEX" => (b(r.pick(LEX)), b(r.pick(LEX))),
                _ => (index(r), index(r)),
            };
            c.extend([lo, hi]);
            if !by.is_empty() {
                c.push(b(by));
            }
            if r.chance(40) {
                c.push(b("REV"));
            }
            if r.chance(30) {
                c.extend([b("LIMIT"), index(r), index(r)]);
            }
            if name == "ZRANGE" && r.chance(40) {
                c.push(b("WITHSCORES"));
            }
        }
        "ZREVRANGE" => {
            c.extend([key(r), index(r), index(r)]);
            if r.chance(50) {
                c.push(b("WITHSCORES"));
            }
        }
        "ZRANGEBYSCORE" | "ZREVRANGEBYSCORE" => {
            c.extend([key(r), b(r.pick(BOUNDS)), b(r.pick(BOUNDS))]);
            if r.chance(40) {
                c.push(b("WITHSCORES"));
            }
            if r.chance(30) {
                c.extend([b("LIMIT"), index(r), index(r)]);
            }
        }
        "ZRANGEBYLEX" | "ZREVRANGEBYLEX" => {
            c.extend([key(r), b(r.pick(LEX)), b(r.pick(LEX))]);
            if r.chance(30) {
                c.extend([b("LIMIT"), index(r), index(r)]);
            }
        }
        "ZPOPMIN" | "ZPOPMAX" => {
            c.push(key(r));
            if r.chance(50) {
                c.push(b(r.pick(&["0", "1", "2", "100", "-1", "x"])));
            }
        }
        "ZUNION" | "ZINTER" | "ZDIFF" | "ZUNIONSTORE" | "ZINTERSTORE" | "ZDIFFSTORE"
        | "ZINTERCARD" | "ZMPOP" => {
            if name.ends_with("STORE") {
                c.push(key(r));
            }
            let n = r.below(4);
            c.push(b(&if r.chance(5) {
                "x".to_string()
            } else {
                n.to_string()
            }));
            for _ in 0..n.max(1) {
                c.push(key(r));
            }
            match name {
                "ZMPOP" => {
                    c.push(b(r.pick(&["MIN", "MAX", "MID"])));
                    if r.chance(50) {
                        c.extend([b("COUNT"), b(r.pick(&["1", "2", "0", "100"]))]);
                    }
                }
                "ZINTERCARD" if r.chance(40) => {
                    c.extend([b("LIMIT"), b(r.pick(&["0", "1", "-1"]))]);
                }
                "ZINTERCARD" => {}
                _ => {
                    if r.chance(30) && !name.starts_with("ZDIFF") {
                        c.push(b("WEIGHTS"));
                        for _ in 0..n.max(1) {
                            c.push(b(r.pick(&["1", "2", "-1", "0", "inf", "x"])));
                        }
                    }
                    if r.chance(30) {
                        c.extend([b("AGGREGATE"), b(r.pick(&["SUM", "MIN", "MAX", "AVG"]))]);
                    }
                    if r.chance(30) {
                        c.push(b("WITHSCORES"));
                    }
                }
            }
        }
        _ => {}
    }
    c
}

/// Sort the items of a reply whose order is unspecified (sets, random picks, scans).
pub fn normalise(cmd: &str, reply: Reply) -> Reply {
    let sort = |r: Reply| match r {
        Reply::Array(Some(mut items)) => {
            items.sort();
            Reply::Array(Some(items))
        }
        Reply::Set(mut items) => {
            items.sort();
            Reply::Set(items)
        }
        r => r,
    };
    match cmd {
        "SMEMBERS" | "SINTER" | "SUNION" | "SDIFF" | "SPOP" | "SRANDMEMBER" | "ZRANDMEMBER" => {
            sort(reply)
        }
        "SSCAN" => match reply {
            Reply::Array(Some(mut page)) if page.len() == 2 => {
                page[1] = sort(std::mem::replace(&mut page[1], Reply::Null));
                Reply::Array(Some(page))
            }
            r => r,
        },
        _ => reply,
    }
}

/// A set's or sorted set's content, for the final comparison of the keyspaces.
pub fn content(kind: &str) -> Option<Vec<Vec<u8>>> {
    match kind {
        "set" => Some(vec![b("SMEMBERS")]),
        "zset" => Some(vec![b("ZRANGE"), b("0"), b("-1"), b("WITHSCORES")]),
        _ => None,
    }
}
