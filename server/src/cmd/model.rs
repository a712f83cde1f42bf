//! Command execution against a model, the way sled's `fuzz_model` checks its tree:
//! random sequences of session commands run through [`super::dispatch`] on a real store,
//! and every reply is compared with what a plain `HashMap` model says Redis would reply.
//! Time is an explicit input (`ctx.now`), advanced by the sequence itself, so expiry is
//! deterministic. A short proptest runs in `cargo test`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use proptest::prelude::*;
use sessiond_protocol::{Frame, FrameDecoder, Limits};

use crate::config::Config;
use crate::connection::{ClientInfo, Conn};
use crate::server::Shared;
use crate::store::Direct;

#[derive(Clone, Debug)]
enum Val {
    Str(Vec<u8>),
    Hash(HashMap<Vec<u8>, Vec<u8>>),
}

#[derive(Default)]
struct Model {
    keys: HashMap<Vec<u8>, (Val, Option<u64>)>,
}

#[derive(Clone, Debug)]
enum Op {
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
    fn apply(&mut self, op: &Op, now: &mut u64) -> (Vec<Vec<u8>>, Option<Frame>) {
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
                    Some(Val::Hash(_)) => err(WRONGTYPE),
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
                    Some((Val::Hash(_), _)) => err(WRONGTYPE),
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
                    Some((Val::Hash(_), _)) => err(WRONGTYPE),
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
                    Some((Val::Hash(_), _)) => err(WRONGTYPE),
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
                    Some((Val::Str(_), _)) => err(WRONGTYPE),
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
                    Some((Val::Str(_), _)) => err(WRONGTYPE),
                    Some((Val::Hash(h), _)) => h.get(&ff).map_or(Frame::Null, |v| bulk(v)),
                };
                (c(&[b"HGET", &kk, &ff]), Some(r))
            }
            Op::Hdel(k, f) => {
                let (kk, ff) = (key(k), val(f));
                let mut emptied = false;
                let r = match self.live(&kk, t) {
                    None => Frame::Integer(0),
                    Some((Val::Str(_), _)) => err(WRONGTYPE),
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
                    Some((Val::Str(_), _)) => err(WRONGTYPE),
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
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0u8..4;
    let v = 0u8..12;
    prop_oneof![
        (k.clone(), v.clone(), proptest::option::of(1u64..50))
            .prop_map(|(k, v, p)| Op::Set(k, v, p)),
        k.clone().prop_map(Op::Get),
        k.clone().prop_map(Op::Del),
        k.clone().prop_map(Op::Exists),
        k.clone().prop_map(Op::Incr),
        (k.clone(), v.clone()).prop_map(|(k, v)| Op::Append(k, v)),
        k.clone().prop_map(Op::Strlen),
        (k.clone(), v.clone(), v.clone()).prop_map(|(k, f, v)| Op::Hset(k, f, v)),
        (k.clone(), v.clone()).prop_map(|(k, f)| Op::Hget(k, f)),
        (k.clone(), v.clone()).prop_map(|(k, f)| Op::Hdel(k, f)),
        k.clone().prop_map(Op::Hlen),
        k.clone().prop_map(Op::Type),
        (k.clone(), 1u64..50).prop_map(|(k, ms)| Op::Pexpire(k, ms)),
        k.clone().prop_map(Op::Persist),
        k.clone().prop_map(Op::Pttl),
        k.clone().prop_map(Op::Getdel),
        (k, v).prop_map(|(k, v)| Op::Setnx(k, v)),
        (0u64..40).prop_map(Op::Advance),
    ]
}

fn shared() -> Arc<Shared> {
    let config = Config::default();
    let users = config.users().expect("default users");
    Shared::new(config, users, SocketAddr::from(([127, 0, 0, 1], 0)))
}

fn conn() -> Conn {
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    Conn::new(Arc::new(ClientInfo {
        id: 1,
        addr,
        laddr: addr,
        created: Instant::now(),
        name: Mutex::new(None),
        lib_name: Mutex::new(None),
        lib_ver: Mutex::new(None),
        last_cmd: Mutex::new("NULL"),
        last_active_ms: AtomicU64::new(0),
        resp: AtomicU8::new(2),
        in_multi: AtomicBool::new(false),
    }))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn commands_match_the_model(ops in proptest::collection::vec(op(), 1..120)) {
        let sh = shared();
        let mut c = conn();
        let mut model = Model::default();
        let mut now = 1_700_000_000_000u64;
        let mut dec = FrameDecoder::new(Limits::default());
        for op in &ops {
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
            crate::cmd::dispatch(&mut ctx, cmd.iter().map(|a| Bytes::copy_from_slice(a)).collect());
            let got = dec.decode(&mut out);
            prop_assert_eq!(got, Ok(Some(want)), "after {:?}", op);
            prop_assert!(out.is_empty(), "more than one reply to {:?}", op);
        }
    }
}
