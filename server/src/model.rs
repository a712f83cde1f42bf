//! Command execution against a model, the way sled's `fuzz_model` checks its tree:
//! sequences of session commands run through `cmd::dispatch` on a real store, and every
//! reply is compared with what a plain `HashMap` model says Redis would reply. Time is an
//! explicit input (`ctx.now`), advanced by the sequence itself, so expiry is
//! deterministic. A proptest drives it in `cargo test` (`cmd/model_tests.rs`); the
//! cargo-fuzz target `server/fuzz` (`execute`) drives it from raw bytes ([`ops_from_bytes`]).
//! Not part of the server proper: it exists for those two.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sessiond_protocol::{Frame, FrameDecoder, Limits};

use crate::config::Config;
use crate::connection::{ClientInfo, Conn};
use crate::server::Shared;
use crate::store::Direct;

#[derive(Clone, Debug)]
enum Val {
    Str(Vec<u8>),
    Hash(HashMap<Vec<u8>, Vec<u8>>),
    Set(std::collections::BTreeSet<Vec<u8>>),
    /// member → score (small integers, so replies are exact).
    ZSet(HashMap<Vec<u8>, i64>),
}

#[derive(Default)]
pub struct Model {
    keys: HashMap<Vec<u8>, (Val, Option<u64>)>,
}

#[derive(Clone, Debug)]
pub enum Op {
    Set(u8, u8, Option<u64>),
    Get(u8),
    Del(u8),
    Exists(u8),
    Incr(u8),
    Append(u8, u8),
    Strlen(u8),
    Hset(u8, u8, u8),
    Hget(u8, u8),
    Hdel(u8, u8),
    Hlen(u8),
    Type(u8),
    Pexpire(u8, u64),
    Persist(u8),
    Pttl(u8),
    Getdel(u8),
    Setnx(u8, u8),
    Sadd(u8, u8),
    Srem(u8, u8),
    Scard(u8),
    Sismember(u8, u8),
    Zadd(u8, u8, u8),
    Zscore(u8, u8),
    Zrem(u8, u8),
    Zcard(u8),
    Advance(u64),
}

fn key(k: u8) -> Vec<u8> {
    format!("k{}", k % 4).into_bytes()
}

fn val(v: u8) -> Vec<u8> {
    // Some values are integers, so INCR meets both outcomes.
    if v.is_multiple_of(3) {
        (v / 3).to_string().into_bytes()
    } else {
        format!("v{v}").into_bytes()
    }
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn err(s: &str) -> Frame {
    Frame::Error(Bytes::copy_from_slice(s.as_bytes()))
}

fn bulk(b: &[u8]) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(b))
}

impl Model {
    fn live(&mut self, k: &[u8], now: u64) -> Option<&mut (Val, Option<u64>)> {
        if self
            .keys
            .get(k)
            .is_some_and(|(_, d)| d.is_some_and(|d| d <= now))
        {
            self.keys.remove(k);
        }
        self.keys.get_mut(k)
    }

    /// The command for `op`, and the reply Redis gives.
    pub fn apply(&mut self, op: &Op, now: &mut u64) -> (Vec<Vec<u8>>, Option<Frame>) {
        let t = *now;
        let c = |parts: &[&[u8]]| parts.iter().map(|p| p.to_vec()).collect::<Vec<_>>();
        match *op {
            Op::Advance(ms) => {
                *now += ms;
                (Vec::new(), None)
            }
            Op::Set(k, v, px) => {
                let (kk, vv) = (key(k), val(v));
                self.keys
                    .insert(kk.clone(), (Val::Str(vv.clone()), px.map(|p| t + p)));
                let cmd = match px {
                    Some(p) => c(&[b"SET", &kk, &vv, b"PX", p.to_string().as_bytes()]),
                    None => c(&[b"SET", &kk, &vv]),
                };
                (cmd, Some(Frame::Simple(Bytes::from_static(b"OK"))))
            }
            Op::Get(k) | Op::Getdel(k) => {
                let kk = key(k);
                let del = matches!(op, Op::Getdel(_));
                let name: &[u8] = if del { b"GETDEL" } else { b"GET" };
                let r = match self.live(&kk, t).map(|e| e.0.clone()) {
                    None => Frame::Null,
                    Some(Val::Hash(_) | Val::Set(_) | Val::ZSet(_)) => err(WRONGTYPE),
                    Some(Val::Str(s)) => {
                        if del {
                            self.keys.remove(&kk);
                        }
                        bulk(&s)
                    }
                };
                (c(&[name, &kk]), Some(r))
            }
            Op::Del(k) => {
                let kk = key(k);
                let n = i64::from(self.live(&kk, t).is_some());
                self.keys.remove(&kk);
                (c(&[b"DEL", &kk]), Some(Frame::Integer(n)))
            }
            Op::Exists(k) => {
                let kk = key(k);
                let n = i64::from(self.live(&kk, t).is_some());
                (c(&[b"EXISTS", &kk]), Some(Frame::Integer(n)))
            }
            Op::Incr(k) => {
                let kk = key(k);
                let r = match self.live(&kk, t) {
                    None => {
                        self.keys
                            .insert(kk.clone(), (Val::Str(b"1".to_vec()), None));
                        Frame::Integer(1)
                    }
                    Some((Val::Hash(_) | Val::Set(_) | Val::ZSet(_), _)) => err(WRONGTYPE),
                    Some((Val::Str(s), _)) => match crate::cmd::parse_i64(s) {
                        Some(n) if n < i64::MAX => {
                            *s = (n + 1).to_string().into_bytes();
                            Frame::Integer(n + 1)
                        }
                        Some(_) => err("ERR increment or decrement would overflow"),
                        None => err("ERR value is not an integer or out of range"),
                    },
                };
                (c(&[b"INCR", &kk]), Some(r))
            }
            Op::Append(k, v) => {
                let (kk, vv) = (key(k), val(v));
                let r = match self.live(&kk, t) {
                    None => {
                        self.keys.insert(kk.clone(), (Val::Str(vv.clone()), None));
                        Frame::Integer(vv.len() as i64)
                    }
                    Some((Val::Hash(_) | Val::Set(_) | Val::ZSet(_), _)) => err(WRONGTYPE),
                    Some((Val::Str(s), _)) => {
                        s.extend_from_slice(&vv);
                        Frame::Integer(s.len() as i64)
                    }
                };
                (c(&[b"APPEND", &kk, &vv]), Some(r))
            }
            Op::Strlen(k) => {
                let kk = key(k);
                let r = match self.live(&kk, t) {
                    None => Frame::Integer(0),
                    Some((Val::Hash(_) | Val::Set(_) | Val::ZSet(_), _)) => err(WRONGTYPE),
                    Some((Val::Str(s), _)) => Frame::Integer(s.len() as i64),
                };
                (c(&[b"STRLEN", &kk]), Some(r))
            }
            Op::Hset(k, f, v) => {
                let (kk, ff, vv) = (key(k), val(f), val(v));
                let r = match self.live(&kk, t) {
                    None => {
                        let h = HashMap::from([(ff.clone(), vv.clone())]);
                        self.keys.insert(kk.clone(), (Val::Hash(h), None));
                        Frame::Integer(1)
                    }
                    Some((Val::Str(_) | Val::Set(_) | Val::ZSet(_), _)) => err(WRONGTYPE),
                    Some((Val::Hash(h), _)) => {
                        Frame::Integer(i64::from(h.insert(ff.clone(), vv.clone()).is_none()))
                    }
                };
                (c(&[b"HSET", &kk, &ff, &vv]), Some(r))
            }
            Op::Hget(k, f) => {
                let (kk, ff) = (key(k), val(f));
                let r = match self.live(&kk, t) {
                    None => Frame::Null,
                    Some((Val::Str(_) | Val::Set(_) | Val::ZSet(_), _)) => err(WRONGTYPE),
                    Some((Val::Hash(h), _)) => h.get(&ff).map_or(Frame::Null, |v| bulk(v)),
                };
                (c(&[b"HGET", &kk, &ff]), Some(r))
            }
            Op::Hdel(k, f) => {
                let (kk, ff) = (key(k), val(f));
                let mut emptied = false;
                let r = match self.live(&kk, t) {
                    None => Frame::Integer(0),
                    Some((Val::Str(_) | Val::Set(_) | Val::ZSet(_), _)) => err(WRONGTYPE),
                    Some((Val::Hash(h), _)) => {
                        let n = i64::from(h.remove(&ff).is_some());
                        emptied = h.is_empty();
                        Frame::Integer(n)
                    }
                };
                if emptied {
                    self.keys.remove(&kk);
                }
                (c(&[b"HDEL", &kk, &ff]), Some(r))
            }
            Op::Hlen(k) => {
                let kk = key(k);
                let r = match self.live(&kk, t) {
                    None => Frame::Integer(0),
                    Some((Val::Str(_) | Val::Set(_) | Val::ZSet(_), _)) => err(WRONGTYPE),
                    Some((Val::Hash(h), _)) => Frame::Integer(h.len() as i64),
                };
                (c(&[b"HLEN", &kk]), Some(r))
            }
            Op::Type(k) => {
                let kk = key(k);
                let name: &'static [u8] = match self.live(&kk, t) {
                    None => b"none",
                    Some((Val::Str(_), _)) => b"string",
                    Some((Val::Hash(_), _)) => b"hash",
                    Some((Val::Set(_), _)) => b"set",
                    Some((Val::ZSet(_), _)) => b"zset",
                };
                (
                    c(&[b"TYPE", &kk]),
                    Some(Frame::Simple(Bytes::from_static(name))),
                )
            }
            Op::Pexpire(k, ms) => {
                let kk = key(k);
                let n = match self.live(&kk, t) {
                    None => 0,
                    Some(e) => {
                        e.1 = Some(t + ms);
                        1
                    }
                };
                let cmd = c(&[b"PEXPIRE", &kk, ms.to_string().as_bytes()]);
                (cmd, Some(Frame::Integer(n)))
            }
            Op::Persist(k) => {
                let kk = key(k);
                let n = match self.live(&kk, t) {
                    Some(e) if e.1.is_some() => {
                        e.1 = None;
                        1
                    }
                    _ => 0,
                };
                (c(&[b"PERSIST", &kk]), Some(Frame::Integer(n)))
            }
            Op::Pttl(k) => {
                let kk = key(k);
                let n = match self.live(&kk, t) {
                    None => -2,
                    Some((_, None)) => -1,
                    Some((_, Some(d))) => (*d - t) as i64,
                };
                (c(&[b"PTTL", &kk]), Some(Frame::Integer(n)))
            }
            Op::Setnx(k, v) => {
                let (kk, vv) = (key(k), val(v));
                let n = if self.live(&kk, t).is_some() {
                    0
                } else {
                    self.keys.insert(kk.clone(), (Val::Str(vv.clone()), None));
                    1
                };
                (c(&[b"SETNX", &kk, &vv]), Some(Frame::Integer(n)))
            }
            _ => self.apply_collection(op, t),
        }
    }

    /// The set and sorted-set operations.
    fn apply_collection(&mut self, op: &Op, t: u64) -> (Vec<Vec<u8>>, Option<Frame>) {
        let c = |parts: &[&[u8]]| parts.iter().map(|p| p.to_vec()).collect::<Vec<_>>();
        let int = |n: usize| Some(Frame::Integer(n as i64));
        match *op {
            Op::Sadd(k, m) | Op::Srem(k, m) | Op::Sismember(k, m) => {
                let (kk, mm) = (key(k), val(m));
                let name: &[u8] = match op {
                    Op::Sadd(..) => b"SADD",
                    Op::Srem(..) => b"SREM",
                    _ => b"SISMEMBER",
                };
                if self.live(&kk, t).is_none() && name == b"SADD" {
                    self.keys
                        .insert(kk.clone(), (Val::Set(Default::default()), None));
                }
                let r = match self.live(&kk, t) {
                    None => int(0),
                    Some((Val::Set(s), _)) => match name {
                        b"SADD" => int(usize::from(s.insert(mm.clone()))),
                        b"SREM" => int(usize::from(s.remove(&mm))),
                        _ => int(usize::from(s.contains(&mm))),
                    },
                    Some(_) => Some(err(WRONGTYPE)),
                };
                if matches!(self.live(&kk, t), Some((Val::Set(s), _)) if s.is_empty()) {
                    self.keys.remove(&kk);
                }
                (c(&[name, &kk, &mm]), r)
            }
            Op::Scard(k) | Op::Zcard(k) => {
                let kk = key(k);
                let set = matches!(op, Op::Scard(_));
                let r = match self.live(&kk, t) {
                    None => int(0),
                    Some((Val::Set(s), _)) if set => int(s.len()),
                    Some((Val::ZSet(z), _)) if !set => int(z.len()),
                    Some(_) => Some(err(WRONGTYPE)),
                };
                let name: &[u8] = if set { b"SCARD" } else { b"ZCARD" };
                (c(&[name, &kk]), r)
            }
            Op::Zadd(k, score, m) => {
                let (kk, mm) = (key(k), val(m));
                let sc = i64::from(score) - 3;
                if self.live(&kk, t).is_none() {
                    self.keys
                        .insert(kk.clone(), (Val::ZSet(Default::default()), None));
                }
                let r = match self.live(&kk, t) {
                    Some((Val::ZSet(z), _)) => int(usize::from(z.insert(mm.clone(), sc).is_none())),
                    _ => Some(err(WRONGTYPE)),
                };
                (c(&[b"ZADD", &kk, sc.to_string().as_bytes(), &mm]), r)
            }
            Op::Zscore(k, m) | Op::Zrem(k, m) => {
                let (kk, mm) = (key(k), val(m));
                let rem = matches!(op, Op::Zrem(..));
                let r = match self.live(&kk, t) {
                    None if rem => int(0),
                    None => Some(Frame::Null),
                    Some((Val::ZSet(z), _)) if rem => int(usize::from(z.remove(&mm).is_some())),
                    Some((Val::ZSet(z), _)) => Some(
                        z.get(&mm)
                            .map_or(Frame::Null, |s| bulk(s.to_string().as_bytes())),
                    ),
                    Some(_) => Some(err(WRONGTYPE)),
                };
                if matches!(self.live(&kk, t), Some((Val::ZSet(z), _)) if z.is_empty()) {
                    self.keys.remove(&kk);
                }
                let name: &[u8] = if rem { b"ZREM" } else { b"ZSCORE" };
                (c(&[name, &kk, &mm]), r)
            }
            _ => (Vec::new(), None),
        }
    }
}

fn shared() -> Arc<Shared> {
    let config = Config::default();
    let users = config.users().expect("default users");
    Shared::new(config, users, SocketAddr::from(([127, 0, 0, 1], 0)))
}

fn conn(sh: &Shared) -> Conn {
    let mut c = Conn::new(Arc::new(ClientInfo::internal(1)));
    c.set_user(sh.users.initial());
    c
}

/// Run `ops` against a fresh server state and the model; the first difference, if any.
pub fn run(ops: &[Op]) -> Result<(), String> {
    let sh = shared();
    let mut c = conn(&sh);
    let mut model = Model::default();
    let mut now = 1_700_000_000_000u64;
    let mut dec = FrameDecoder::new(Limits::default());
    for op in ops {
        let (cmd, want) = model.apply(op, &mut now);
        let Some(want) = want else { continue };
        let mut out = BytesMut::new();
        let mut ks = Direct(&sh.store);
        let mut ctx = crate::cmd::Ctx {
            ks: &mut ks,
            out: &mut out,
            conn: &mut c,
            shared: &sh,
            now,
        };
        crate::cmd::dispatch(
            &mut ctx,
            cmd.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
        );
        let got = dec.decode(&mut out);
        if got != Ok(Some(want.clone())) {
            return Err(format!("{op:?}: expected {want:?}, got {got:?}"));
        }
        if !out.is_empty() {
            return Err(format!("{op:?}: more than one reply"));
        }
    }
    Ok(())
}

/// Operations from raw fuzzer bytes: two bytes each (what, then arguments).
pub fn ops_from_bytes(data: &[u8]) -> Vec<Op> {
    data.chunks_exact(3)
        .map(|c| {
            let (a, b, x) = (c[1] % 4, c[2] % 12, u64::from(c[2]));
            match c[0] % 26 {
                0 => Op::Set(a, b, (c[0] & 0x80 != 0).then_some(1 + x % 49)),
                1 => Op::Get(a),
                2 => Op::Del(a),
                3 => Op::Exists(a),
                4 => Op::Incr(a),
                5 => Op::Append(a, b),
                6 => Op::Strlen(a),
                7 => Op::Hset(a, b, c[1] >> 4),
                8 => Op::Hget(a, b),
                9 => Op::Hdel(a, b),
                10 => Op::Hlen(a),
                11 => Op::Type(a),
                12 => Op::Pexpire(a, 1 + x % 49),
                13 => Op::Persist(a),
                14 => Op::Pttl(a),
                15 => Op::Getdel(a),
                16 => Op::Setnx(a, b),
                17 => Op::Sadd(a, b),
                18 => Op::Srem(a, b),
                19 => Op::Scard(a),
                20 => Op::Sismember(a, b),
                21 => Op::Zadd(a, c[1] >> 4, b),
                22 => Op::Zscore(a, b),
                23 => Op::Zrem(a, b),
                24 => Op::Zcard(a),
                _ => Op::Advance(x % 40),
            }
        })
        .collect()
}
