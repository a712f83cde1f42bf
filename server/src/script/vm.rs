//! The Lua 5.1 state each thread runs scripts in, set up as Redis 7.0 sets up its own:
//!
//! - libraries `base` (without `loadfile`, `dofile`, `load`, `getfenv`, `setfenv`,
//!   `print`; `loadstring` takes source only), `table`, `string`, `math` (with Redis's `rand48` generator, back at its
//!   initial state before each script, so `math.random` gives the same numbers on every
//!   replica),
//!   `cjson`, `bit`, `struct`, `cmsgpack` and `redis`; no `os`, `io`, `package` or
//!   `debug`;
//! - globals are read-only: a script runs in an environment whose reads of a missing
//!   global and whose writes raise Redis's errors, and the library tables are read-only
//!   proxies;
//! - `redis.call` and `redis.pcall` run commands through the admission path
//!   (`cmd::admit`), so ACLs and `-OOM` apply; errors carry Redis's `script: <sha>, on
//!   @user_script:<line>.` suffix;
//! - a hook every 100,000 instructions lets `SCRIPT KILL` stop a script that has not
//!   written.
//!
//! Compiled scripts are kept per thread by SHA-1; `SCRIPT FLUSH` bumps a generation that
//! makes every thread forget them.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use sessiond_protocol::{encode, Frame, FrameDecoder, Limits};

use super::convert::{fmt_g, frame_to_lua, lua_to_reply, ReplyStyle};
use super::Busy;
use crate::cmd::server::REDIS_VERSION;
use crate::cmd::{Ctx, Flags};
use crate::connection::Conn;

mod errors;
use errors::{error_table, error_text, error_value, script_error, CallError};

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Make every thread drop its compiled scripts (`SCRIPT FLUSH`).
pub fn forget_all() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Redis's `rand48`: a 48-bit linear congruential generator (`redisLrand48`).
struct Rand48(Cell<u64>);

/// `rand48`'s state before any seeding (Redis's `X2:X1:X0`).
const RAND48_START: u64 = 0x1234_ABCD_330E;

impl Rand48 {
    /// Back to the state Redis starts with.
    fn reset(&self) {
        self.0.set(RAND48_START);
    }

    fn seed(&self, s: i32) {
        self.0.set((u64::from(s as u32) << 16) | 0x330E);
    }
    fn next(&self) -> i32 {
        let x = self.0.get().wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB) & ((1 << 48) - 1);
        self.0.set(x);
        (x >> 17) as i32
    }
}

struct Vm {
    lua: Lua,
    generation: u64,
    /// Compiled scripts by SHA1, in a Lua table: a function held from Rust would take a
    /// slot of Lua's C stack (8,000 of them), and 8,000 scripts would exhaust it.
    funcs: Table,
    /// `function(f, handler) return xpcall(f, handler) end`.
    runner: Function,
    /// The message handler that turns any error into Redis's error table.
    handler: Function,
    /// The real globals, where `KEYS` and `ARGV` go.
    globals: Table,
    /// The metatable of each run's environment.
    env_meta: Table,
    /// The real `redis` table (scripts see a read-only proxy of it).
    redis: Table,
}

thread_local! {
    static VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
}

const SETUP: &str = r#"
local G, PROXY, ERRVALUE, error, tostring, setmetatable, getmetatable, rawget, rawset, pcall,
  loadstring, setfenv, getfenv, STOPPED = ...
local proxies = setmetatable({}, {__mode = 'k'})
local function readonly(t)
  local p = setmetatable({}, {
    __index = t,
    __newindex = function() error("Attempt to modify a readonly table", 2) end,
    __metatable = false,
  })
  proxies[p] = true
  return p
end
local redis = G.redis
redis.error_reply = function(e)
  if type(e) ~= 'string' then error("wrong number or type of arguments", 2) end
  if e:sub(1, 1) == '-' then e = e:sub(2) end
  if not e:find(' ', 1, true) then e = 'ERR ' .. e end
  return {err = e}
end
redis.status_reply = function(s)
  if type(s) ~= 'string' then error("wrong number or type of arguments", 2) end
  return {ok = s}
end
-- Errors raised by redis.call (and the other Rust functions) reach Lua's pcall as
-- Redis gives them: their message. A script being stopped (SCRIPT KILL, or a replicated
-- script's instruction budget) cannot be caught.
local function caught(ok, ...)
  if ok then return ok, ... end
  if STOPPED() then error((...), 0) end
  return false, ERRVALUE((...))
end
G.pcall = function(f, ...) return caught(pcall(f, ...)) end
-- Metatables cannot open a way around the read-only tables: the proxies' and the
-- strings' come back read-only, and setting one on a proxy fails as Redis fails it.
local readonly_meta = readonly({})
local string_meta = readonly(getmetatable(''))
G.getmetatable = function(v)
  if proxies[v] then return readonly_meta end
  local t = type(v)
  if t == 'string' then return string_meta end
  if t ~= 'table' then return nil end
  return getmetatable(v)
end
G.setmetatable = function(t, m)
  if proxies[t] then error("Attempt to modify a readonly table", 2) end
  return setmetatable(t, m)
end
G.rawset = function(t, k, v)
  if proxies[t] then error("Attempt to modify a readonly table", 2) end
  return rawset(t, k, v)
end
-- Source only (Redis refuses binary chunks), run in the caller's environment.
G.loadstring = function(s, name)
  if type(s) == 'string' and s:byte(1) == 27 then
    return nil, "binary chunks are not allowed"
  end
  local f, e = loadstring(s, name)
  if f then setfenv(f, getfenv(2)) end
  return f, e
end
for _, name in ipairs({'redis', 'cjson', 'bit', 'struct', 'cmsgpack', 'string', 'math',
                       'table', 'coroutine'}) do
  G[name] = readonly(G[name])
end
G._G = readonly(G)
PROXY.__index = function(_, k)
  local v = rawget(G, k)
  if v == nil then
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end
  return v
end
PROXY.__newindex = function() error("Attempt to modify a readonly table", 2) end
PROXY.__metatable = false
"#;

impl Vm {
    fn new() -> mlua::Result<Vm> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        let g = lua.globals();
        let loadstring: Function = g.get("loadstring")?;
        let setfenv: Function = g.get("setfenv")?;
        let getfenv: Function = g.get("getfenv")?;
        for name in ["loadfile", "dofile", "load", "getfenv", "setfenv", "print"] {
            g.raw_set(name, Value::Nil)?;
        }
        lua.set_app_data(Rand48(Cell::new(RAND48_START)));
        let math: Table = g.get("math")?;
        math.set(
            "random",
            lua.create_function(|lua, args: MultiValue| {
                let r = lua
                    .app_data_ref::<Rand48>()
                    .map_or(0, |g| g.next())
                    .rem_euclid(i32::MAX);
                let r = f64::from(r) / f64::from(i32::MAX);
                let num = |v: &Value| match v {
                    Value::Integer(i) => Ok(*i as f64),
                    Value::Number(n) => Ok(n.floor()),
                    _ => Err(mlua::Error::RuntimeError(
                        "bad argument to 'random' (number expected)".into(),
                    )),
                };
                let interval = || {
                    mlua::Error::RuntimeError("bad argument to 'random' (interval is empty)".into())
                };
                match args.len() {
                    0 => Ok(r),
                    1 => {
                        let u = num(&args[0])?;
                        if u < 1.0 {
                            return Err(interval());
                        }
                        Ok((r * u).floor() + 1.0)
                    }
                    2 => {
                        let (l, u) = (num(&args[0])?, num(&args[1])?);
                        if l > u {
                            return Err(interval());
                        }
                        Ok((r * (u - l + 1.0)).floor() + l)
                    }
                    _ => Err(mlua::Error::RuntimeError(
                        "wrong number of arguments".into(),
                    )),
                }
            })?,
        )?;
        math.set(
            "randomseed",
            lua.create_function(|lua, s: f64| {
                if let Some(g) = lua.app_data_ref::<Rand48>() {
                    g.seed(s as i32);
                }
                Ok(())
            })?,
        )?;
        super::libs::install(&lua, &g)?;
        g.set("unpack", super::libs::lib_fn(&lua, unpack)?)?;
        let redis = redis_lib(&lua)?;
        g.set("redis", redis.clone())?;
        let env_meta = lua.create_table()?;
        let setup = lua.load(SETUP).set_name("=setup").into_function()?;
        let error: Function = g.get("error")?;
        let tostring: Function = g.get("tostring")?;
        let setmetatable: Function = g.get("setmetatable")?;
        let getmetatable: Function = g.get("getmetatable")?;
        let rawget: Function = g.get("rawget")?;
        let rawset: Function = g.get("rawset")?;
        let pcall: Function = g.get("pcall")?;
        let errvalue = lua.create_function(error_value)?;
        setup.call::<()>((
            g.clone(),
            env_meta.clone(),
            errvalue,
            error,
            tostring,
            setmetatable,
            getmetatable,
            rawget,
            rawset,
            pcall,
            loadstring,
            setfenv,
            getfenv,
            lua.create_function(|lua, ()| Ok(stopped(lua)))?,
        ))?;
        let runner = lua
            .load("local f, h = ... return xpcall(f, h)")
            .set_name("=runner")
            .into_function()?;
        let handler = lua.create_function(error_table)?;
        lua.set_app_data(Budget(Cell::new(u64::MAX)));
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            |lua, _| {
                if lua.app_data_ref::<Arc<Busy>>().is_some_and(|b| b.killed()) {
                    return Err(mlua::Error::RuntimeError(KILLED.into()));
                }
                if let Some(b) = lua.app_data_ref::<Budget>() {
                    let left = b.0.get().saturating_sub(1);
                    b.0.set(left);
                    if left == 0 {
                        return Err(mlua::Error::RuntimeError(OVER_BUDGET.into()));
                    }
                }
                Ok(VmState::Continue)
            },
        );
        let funcs = lua.create_table()?;
        Ok(Vm {
            lua,
            generation: GENERATION.load(Ordering::Relaxed),
            funcs,
            runner,
            handler,
            globals: g,
            env_meta,
            redis,
        })
    }
}

/// `unpack(t [, i [, j]])`, refusing ranges too large to return (Redis patched Lua 5.1's
/// for the integer overflow that let `unpack({}, -2, 2^31-1)` through).
fn unpack(_: &Lua, (t, i, j): (Table, Option<f64>, Option<f64>)) -> mlua::Result<MultiValue> {
    let i = i.map_or(1, |v| v as i64);
    let j = j.map_or_else(|| t.raw_len() as i64, |v| v as i64);
    if i > j {
        return Ok(MultiValue::new());
    }
    let n = j - i + 1;
    if n >= 8000 {
        return Err(mlua::Error::RuntimeError(
            "too many results to unpack".into(),
        ));
    }
    let mut out = Vec::with_capacity(n as usize);
    for k in i..=j {
        out.push(t.raw_get::<Value>(k)?);
    }
    Ok(MultiValue::from_iter(out))
}

/// Whether the running script is being stopped: killed, or out of budget.
fn stopped(lua: &Lua) -> bool {
    lua.app_data_ref::<Arc<Busy>>().is_some_and(|b| b.killed())
        || lua.app_data_ref::<Budget>().is_some_and(|b| b.0.get() == 0)
}

/// Lua instructions between two calls of the hook.
const HOOK_EVERY: u32 = 100_000;

/// How many more times the hook may run before the script is stopped: unbounded for a
/// client's script (SCRIPT KILL stops those), and a fixed count of instructions for a
/// script every replica runs from the log, which stops at the same instruction on every
/// replica (so they stay alike, and a looping script cannot hang a cluster for good).
struct Budget(Cell<u64>);

/// 10^9 instructions: some seconds of Lua.
const REPLICATED_HOOKS: u64 = 10_000;

const OVER_BUDGET: &str =
    "ERR Script stopped: a replicated script may run at most 1000000000 Lua instructions";

const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";

/// The `redis` table's functions that need no command bridge.
fn redis_lib(lua: &Lua) -> mlua::Result<Table> {
    let r = lua.create_table()?;
    r.set(
        "sha1hex",
        lua.create_function(|_, args: MultiValue| match args.front() {
            Some(Value::String(s)) if args.len() == 1 => Ok(super::sha1_hex(&s.as_bytes())),
            Some(Value::Integer(i)) if args.len() == 1 => {
                Ok(super::sha1_hex(i.to_string().as_bytes()))
            }
            _ => Err(mlua::Error::RuntimeError(
                "wrong number of arguments".into(),
            )),
        })?,
    )?;
    r.set(
        "log",
        lua.create_function(|_, args: MultiValue| {
            let level = match args.front() {
                Some(Value::Integer(l)) => *l,
                Some(Value::Number(l)) => *l as i64,
                _ => {
                    return Err(mlua::Error::RuntimeError(
                        "First argument must be a number (log level).".into(),
                    ))
                }
            };
            let text: Vec<String> = args
                .iter()
                .skip(1)
                .map(|v| v.to_string().unwrap_or_default())
                .collect();
            let text = text.join(" ");
            match level {
                0 => tracing::debug!(target: "script", "{text}"),
                1 | 2 => tracing::info!(target: "script", "{text}"),
                _ => tracing::warn!(target: "script", "{text}"),
            }
            Ok(())
        })?,
    )?;
    for (name, v) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        r.set(name, v)?;
    }
    r.set("REDIS_VERSION", REDIS_VERSION)?;
    r.set("REDIS_VERSION_NUM", version_num(REDIS_VERSION))?;
    // Effects are what replicas apply here anyway: these change nothing.
    r.set("set_repl", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    r.set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    r.set("breakpoint", lua.create_function(|_, ()| Ok(false))?)?;
    r.set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    Ok(r)
}

fn version_num(v: &str) -> i64 {
    v.split('.')
        .take(3)
        .fold(0, |acc, p| acc * 256 + p.parse::<i64>().unwrap_or(0))
}

/// How a script is called.
pub struct Call<'a> {
    pub sha: &'a str,
    pub body: &'a Bytes,
    pub keys: &'a [Bytes],
    pub argv: &'a [Bytes],
    /// `EVAL_RO`/`EVALSHA_RO`, or `#!lua flags=no-writes`: write commands are refused.
    pub read_only: bool,
    /// `#!lua flags=allow-oom`: commands that need memory run over the limit too.
    pub allow_oom: bool,
}

const INTERPRETER_EXHAUSTED: &[u8] =
    b"ERR Error running script: it held more values at once than the Lua interpreter has room for";

/// Run a script against `ctx.ks` (which must hold every shard) and write its reply.
pub fn run(ctx: &mut Ctx<'_>, call: &Call<'_>) {
    VM.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            match Vm::new() {
                Ok(vm) => *slot = Some(vm),
                Err(e) => {
                    let msg = format!(
                        "ERR could not start the Lua interpreter: {}",
                        error_text(&e)
                    );
                    encode::error(ctx.out, msg.as_bytes());
                    return;
                }
            }
        }
        let Some(vm) = slot.as_mut() else { return };
        let start = ctx.out.len();
        // mlua panics where Lua 5.1 has no room left (a Rust function handed more
        // values than Lua's C stack holds): the script fails, not the thread, and the
        // interpreter, whose state is then unknown, is replaced.
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_in(vm, ctx, call)));
        match run {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let msg = format!("ERR {}", error_text(&e));
                encode::error(ctx.out, msg.as_bytes());
            }
            Err(panic) => {
                *slot = None;
                ctx.shared.scripts.end();
                // Any other panic is a bug. A replica applying the log stops on it, as it
                // would without the catch, rather than answer and maybe differ from the
                // others; the script thread of a single node lives on.
                let exhausted = exhausted(panic.as_ref());
                if ctx.conn.replica && !exhausted {
                    std::panic::resume_unwind(panic);
                }
                ctx.out.truncate(start);
                encode::error(
                    ctx.out,
                    if exhausted {
                        INTERPRETER_EXHAUSTED
                    } else {
                        b"ERR Error running script: internal error (see the server's log)"
                    },
                );
            }
        }
    });
}

/// Whether a panic is mlua's for a Lua state out of room for references.
fn exhausted(panic: &(dyn std::any::Any + Send)) -> bool {
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("");
    text.contains("auxiliary stack space")
}

fn compiled(vm: &mut Vm, call: &Call<'_>) -> Result<Function, String> {
    let generation = GENERATION.load(Ordering::Relaxed);
    if vm.generation != generation {
        vm.funcs = vm
            .lua
            .create_table()
            .map_err(|e| format!("ERR {}", error_text(&e)))?;
        vm.generation = generation;
    }
    if let Ok(Value::Function(f)) = vm.funcs.raw_get::<Value>(call.sha) {
        return Ok(f);
    }
    // A shebang line becomes a comment: Lua does not read it, and lines keep their numbers.
    let mut text = call.body.to_vec();
    if text.starts_with(b"#!") {
        text[..2].copy_from_slice(b"--");
    }
    let f = vm
        .lua
        .load(&text[..])
        .set_name("@user_script")
        .into_function()
        .map_err(|e| {
            format!(
                "ERR Error compiling script (new function): {}",
                error_text(&e)
            )
        })?;
    vm.funcs
        .raw_set(call.sha, f.clone())
        .map_err(|e| format!("ERR {}", error_text(&e)))?;
    Ok(f)
}

fn string_table(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, s) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(s)?)?;
    }
    Ok(t)
}

fn run_in(vm: &mut Vm, ctx: &mut Ctx<'_>, call: &Call<'_>) -> mlua::Result<()> {
    let f = match compiled(vm, call) {
        Ok(f) => f,
        Err(msg) => {
            encode::error(ctx.out, msg.as_bytes());
            return Ok(());
        }
    };
    let lua = vm.lua.clone();
    vm.globals.raw_set("KEYS", string_table(&lua, call.keys)?)?;
    vm.globals.raw_set("ARGV", string_table(&lua, call.argv)?)?;
    // Every run starts from Redis's initial state, so a script draws the same numbers on
    // every replica whatever ran before it (Redis keeps one sequence across scripts).
    if let Some(g) = lua.app_data_ref::<Rand48>() {
        g.reset();
    }
    super::libs::reset_cjson();
    // Commands that pick at random draw from a sequence fixed by the script and the
    // record's clock: the same on every replica.
    let seed = call
        .sha
        .bytes()
        .fold(ctx.now, |a, b| a.rotate_left(5) ^ u64::from(b));
    crate::cmd::reseed_random(seed);
    // A fresh environment per run: nothing a script does to it outlives the run.
    let env = lua.create_table()?;
    env.set_metatable(Some(vm.env_meta.clone()));
    f.set_environment(env)?;
    let scripts = &ctx.shared.scripts;
    // A replica applying the log cannot stop a script alone: every replica runs it.
    let busy = scripts.begin(!ctx.conn.replica);
    lua.set_app_data(busy.clone());
    if let Some(b) = lua.app_data_ref::<Budget>() {
        b.0.set(if ctx.conn.replica {
            REPLICATED_HOOKS
        } else {
            u64::MAX
        });
    }
    let mut sconn = script_client(ctx.conn);
    let script_resp3 = Cell::new(false);
    let caller_resp3 = ctx.conn.resp3;
    let read_only = call.read_only;
    let allow_oom = call.allow_oom;
    let keys = call.keys;
    let bridge = RefCell::new((&mut *ctx, &mut sconn));
    let run = |lua: &Lua, args: MultiValue| -> mlua::Result<Result<Value, String>> {
        let mut b = bridge.borrow_mut();
        let (ctx, sconn) = &mut *b;
        sconn.resp3 = script_resp3.get();
        let res = command_args(&args)
            .and_then(|argv| command(ctx, sconn, argv, keys, read_only, allow_oom, &busy));
        Ok(match res {
            Ok(frame) => Ok(frame_to_lua(lua, frame, script_resp3.get())?),
            Err(msg) => Err(msg),
        })
    };
    let result = lua.scope(|scope| {
        // Both are Rust functions, as Redis's are C functions: `return redis.call(..)`
        // is then no tail call, and an error knows the script's line.
        let call = scope.create_function(|lua, args: MultiValue| match run(lua, args)? {
            Ok(v) => Ok(v),
            Err(msg) => Err(mlua::Error::external(CallError(msg))),
        })?;
        let pcall = scope.create_function(|lua, args: MultiValue| match run(lua, args)? {
            Ok(v) => Ok(v),
            Err(msg) => {
                let t = lua.create_table()?;
                t.raw_set("err", msg)?;
                Ok(Value::Table(t))
            }
        })?;
        let setresp = scope.create_function(|_, v: Value| {
            match v {
                Value::Integer(2) => script_resp3.set(false),
                Value::Integer(3) => script_resp3.set(true),
                Value::Number(2.0) => script_resp3.set(false),
                Value::Number(3.0) => script_resp3.set(true),
                _ => {
                    return Err(mlua::Error::RuntimeError(
                        "RESP version must be 2 or 3.".into(),
                    ))
                }
            }
            Ok(())
        })?;
        let acl_check_cmd = scope.create_function(|_, args: MultiValue| {
            let argv = command_args(&args).map_err(mlua::Error::RuntimeError)?;
            let Some(spec) = crate::cmd::lookup(&argv[0]) else {
                return Err(mlua::Error::RuntimeError(
                    "ERR Invalid command passed to redis.acl_check_cmd()".into(),
                ));
            };
            let b = bridge.borrow();
            Ok(match &b.1.user {
                Some(u) => crate::cmd::admit::acl_check(u, spec, &argv).is_none(),
                None => true,
            })
        })?;
        vm.redis.raw_set("call", call)?;
        vm.redis.raw_set("pcall", pcall)?;
        vm.redis.raw_set("setresp", setresp)?;
        vm.redis.raw_set("acl_check_cmd", acl_check_cmd)?;
        let out = vm
            .runner
            .call::<MultiValue>((f.clone(), vm.handler.clone()));
        for name in ["call", "pcall", "setresp", "acl_check_cmd"] {
            vm.redis.raw_set(name, Value::Nil)?;
        }
        out
    });
    lua.remove_app_data::<Arc<Busy>>();
    scripts.end();
    let values = result?;
    let mut it = values.into_iter();
    let ok = matches!(it.next(), Some(Value::Boolean(true)));
    let value = it.next().unwrap_or(Value::Nil);
    if ok {
        let style = ReplyStyle {
            resp3: caller_resp3,
            script_resp3: script_resp3.get(),
        };
        lua_to_reply(ctx.out, &value, &style);
    } else {
        script_error(ctx.out, &value, call.sha);
    }
    Ok(())
}

/// The client a script's commands run as: the caller's user and rights, RESP2.
fn script_client(caller: &Conn) -> Conn {
    let mut c = Conn::new(caller.info.clone());
    c.user = caller.user.clone();
    c.acl_version = caller.acl_version;
    c.trusted = caller.trusted;
    c.replica = caller.replica;
    c
}

/// `redis.call`'s arguments: strings, or numbers written as Redis writes them.
fn command_args(args: &MultiValue) -> Result<Vec<Bytes>, String> {
    if args.is_empty() {
        return Err("ERR Please specify at least one argument for this redis lib call".into());
    }
    args.iter()
        .map(|v| match v {
            Value::String(s) => Ok(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Integer(i) => Ok(Bytes::from(i.to_string())),
            Value::Number(n) => Ok(Bytes::from(fmt_g(*n, 17))),
            _ => Err("ERR Lua redis lib command arguments must be strings or integers".into()),
        })
        .collect()
}

/// Run one command for a script: Redis's checks in Redis's order, then admission.
fn command(
    ctx: &mut Ctx<'_>,
    sconn: &mut Conn,
    args: Vec<Bytes>,
    keys: &[Bytes],
    read_only: bool,
    allow_oom: bool,
    busy: &Busy,
) -> Result<Frame, String> {
    let Some(spec) = crate::cmd::lookup(&args[0]) else {
        return Err("ERR Unknown Redis command called from script".into());
    };
    if !spec.arity_ok(args.len()) {
        return Err("ERR Wrong number of args calling Redis command from script".into());
    }
    if spec.is(Flags::NOSCRIPT) {
        return Err("ERR This Redis command is not allowed from script".into());
    }
    // A script runs against the database it started in (its shards are all it holds).
    if spec.name == "select" {
        return Err("ERR SELECT inside a script is not supported by sessiond".into());
    }
    let writes = spec.kind_of(&args) == crate::cmd::Kind::Write;
    if read_only && writes {
        return Err("ERR Write commands are not allowed from read-only scripts.".into());
    }
    // `admit_replicated` checks the ACL but not memory: replicas, and allow-oom scripts.
    let admitted = if sconn.replica || allow_oom {
        crate::cmd::admit::admit_replicated(sconn, &args)
    } else {
        crate::cmd::admit::admit(sconn, ctx.shared, &args)
    };
    let cmd = match admitted {
        Ok(cmd) => cmd,
        Err(refusal) => {
            let mut out = BytesMut::new();
            refusal.reply(&mut out, &args);
            let text =
                String::from_utf8_lossy(out.get(1..out.len().saturating_sub(2)).unwrap_or(&[]))
                    .into_owned();
            if text.starts_with("NOPERM") {
                return Err(
                    "ERR The user executing the script can't run this command or subcommand".into(),
                );
            }
            return Err(text);
        }
    };
    if writes {
        busy.wrote();
    }
    // A tracking caller's script that reads: its declared keys may be cached.
    if spec.is(Flags::READONLY) {
        crate::cmd::tracking::script_read(ctx.shared, ctx.conn, keys);
    }
    let mut out = BytesMut::new();
    {
        let mut inner = Ctx {
            ks: &mut *ctx.ks,
            out: &mut out,
            conn: sconn,
            shared: ctx.shared,
            now: ctx.now,
        };
        cmd.run(&mut inner, &args);
    }
    if !spec.is(Flags::ADMIN) {
        ctx.shared.monitors.feed_from("lua", &args);
    }
    let limits = Limits {
        max_bulk_len: u64::MAX,
        max_multibulk_len: u64::MAX,
        max_inline_len: usize::MAX,
        max_depth: 1024,
    };
    match FrameDecoder::new(limits).decode(&mut out) {
        Ok(Some(Frame::Error(e) | Frame::BlobError(e))) => {
            Err(String::from_utf8_lossy(&e).into_owned())
        }
        Ok(Some(f)) => Ok(f),
        _ => Err("ERR the command's reply could not be read".into()),
    }
}

#[cfg(test)]
mod tests;
