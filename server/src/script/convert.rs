//! Values between RESP and Lua, as Redis 7.0 converts them (`script_lua.c`).
//!
//! RESP → Lua (what `redis.call` returns), under `redis.setresp(2)` (the default):
//! integers are numbers, bulk strings strings, nil `false`, arrays tables, a status
//! `{ok=...}` and an error `{err=...}`. Under `setresp(3)` also: null is `nil`, maps are
//! `{map={...}}`, sets `{set={member=true}}`, doubles `{double=n}`, booleans booleans,
//! big numbers `{big_number=s}` and verbatim strings `{verbatim_string={format=,string=}}`.
//!
//! Lua → RESP (a script's result): strings are bulk strings, numbers integers (truncated,
//! as C casts them), `true` is 1 and `false` nil (booleans under `setresp(3)`), `{err=}` an
//! error, `{ok=}` a status, the RESP3 tables above their types, and any other table an
//! array that stops at the first nil.

pub use crate::float::fmt_g;
use bytes::BytesMut;
use mlua::{Lua, Table, Value};
use sessiond_protocol::{encode, Frame};

/// Tables nested deeper than this are refused (a table can contain itself).
const MAX_DEPTH: usize = 1000;

/// A command's reply, for the script.
pub fn frame_to_lua(lua: &Lua, f: Frame, resp3: bool) -> mlua::Result<Value> {
    Ok(match f {
        Frame::Integer(i) => Value::Integer(i),
        Frame::Bulk(b) => Value::String(lua.create_string(&b)?),
        Frame::Null if resp3 => Value::Nil,
        Frame::Null => Value::Boolean(false),
        Frame::Simple(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(&s)?)?;
            Value::Table(t)
        }
        Frame::Error(e) | Frame::BlobError(e) => {
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(&e)?)?;
            Value::Table(t)
        }
        Frame::Array(items) | Frame::Push(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, frame_to_lua(lua, item, resp3)?)?;
            }
            Value::Table(t)
        }
        Frame::Map(pairs) => {
            let m = lua.create_table()?;
            for (k, v) in pairs {
                m.raw_set(frame_to_lua(lua, k, resp3)?, frame_to_lua(lua, v, resp3)?)?;
            }
            wrap(lua, "map", Value::Table(m))?
        }
        Frame::Set(items) => {
            let s = lua.create_table()?;
            for item in items {
                s.raw_set(frame_to_lua(lua, item, resp3)?, true)?;
            }
            wrap(lua, "set", Value::Table(s))?
        }
        Frame::Double(d) => wrap(lua, "double", Value::Number(d))?,
        Frame::Boolean(b) => Value::Boolean(b),
        Frame::BigNumber(n) => wrap(lua, "big_number", Value::String(lua.create_string(&n)?))?,
        Frame::Verbatim { format, text } => {
            let v = lua.create_table()?;
            v.raw_set("format", lua.create_string(format)?)?;
            v.raw_set("string", lua.create_string(&text)?)?;
            wrap(lua, "verbatim_string", Value::Table(v))?
        }
    })
}

fn wrap(lua: &Lua, key: &str, v: Value) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(key, v)?;
    Ok(Value::Table(t))
}

/// A Lua number as Redis makes it an integer: C's `(long long)` cast, which gives
/// `i64::MIN` for what does not fit (and for NaN) on the machines Redis runs on.
pub fn lua_number_to_i64(n: f64) -> i64 {
    if n.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// How the script's result is written.
pub struct ReplyStyle {
    /// The caller's protocol.
    pub resp3: bool,
    /// The script's `redis.setresp`: booleans are RESP3 booleans under 3.
    pub script_resp3: bool,
}

/// Write a script's result as a reply. One that would write the same tables over and
/// over (a table holding another twice at each of many levels, which Redis runs out of
/// memory on) past [`Repeats`]'s bound, or pass [`MAX_REPLY`] bytes, is an error instead.
pub fn lua_to_reply(out: &mut BytesMut, v: &Value, style: &ReplyStyle) {
    reply_within(out, v, style, MAX_REPLY);
}

fn reply_within(out: &mut BytesMut, v: &Value, style: &ReplyStyle, limit: usize) {
    let start = out.len();
    let mut walk = Walk {
        start,
        limit,
        repeats: Repeats::default(),
    };
    if write_value(out, v, style, 0, &mut walk).is_err() {
        out.truncate(start);
        encode::error(out, b"ERR the script's reply is too large");
    }
}

/// The bound of one script's reply: Redis's largest bulk string (`proto-max-bulk-len`).
const MAX_REPLY: usize = 512 << 20;

/// The tables one walk over a Lua value (a reply, `cjson.encode`) has met, and how many
/// values it wrote again by meeting one again. Writing the same table twice is
/// legitimate, but a table that holds another twice, at each of 40 levels, would take
/// 2^40 values: the walk stops at [`Repeats::MAX`] values written again, long before
/// its bytes would reach a bound (a bound of 512 MiB took `cjson.encode` 78 s to reach).
#[derive(Default)]
pub struct Repeats {
    seen: std::collections::HashSet<usize>,
    values: usize,
}

impl Repeats {
    /// A quarter of a second of writing, or so.
    const MAX: usize = 1 << 20;

    /// `t`, of `n` values, is about to be written: whether the walk may go on.
    pub fn visit(&mut self, t: &Table, n: usize) -> bool {
        if !self.seen.insert(t.to_pointer() as usize) {
            self.values = self.values.saturating_add(n.max(1));
        }
        self.values <= Self::MAX
    }
}

struct TooLarge;

/// One reply's walk: where it started in the output, its bound, and the tables it met.
struct Walk {
    start: usize,
    limit: usize,
    repeats: Repeats,
}

fn write_value(
    out: &mut BytesMut,
    v: &Value,
    style: &ReplyStyle,
    depth: usize,
    w: &mut Walk,
) -> Result<(), TooLarge> {
    if out.len() - w.start > w.limit {
        return Err(TooLarge);
    }
    if depth > MAX_DEPTH {
        encode::error(out, b"ERR reached lua stack limit");
        return Ok(());
    }
    match v {
        Value::String(s) => encode::bulk(out, &s.as_bytes()),
        Value::Integer(i) => encode::integer(out, *i),
        Value::Number(n) => encode::integer(out, lua_number_to_i64(*n)),
        Value::Boolean(b) if style.script_resp3 => encode::boolean(out, *b, style.resp3),
        Value::Boolean(true) => encode::integer(out, 1),
        Value::Boolean(false) => encode::null(out, style.resp3),
        Value::Table(t) => return write_table(out, t, style, depth, w),
        _ => encode::null(out, style.resp3),
    }
    Ok(())
}

fn field(t: &Table, key: &str) -> Value {
    t.raw_get(key).unwrap_or(Value::Nil)
}

/// A table: an error, a status, one of RESP3's types, or an array. The recursion keeps
/// its frames small (what is not recursive is in functions of its own), as it may go
/// `MAX_DEPTH` deep on the script thread's stack.
fn write_table(
    out: &mut BytesMut,
    t: &Table,
    style: &ReplyStyle,
    depth: usize,
    w: &mut Walk,
) -> Result<(), TooLarge> {
    if write_special(out, t, style) {
        return Ok(());
    }
    let next = depth + 1;
    // Each table is walked twice, once to count and once to write, so that at most
    // one of its values is held from Rust at a time: every Lua string or table held
    // takes a slot of a stack of 8,000, and a reply of more would panic.
    if let Value::Table(m) = field(t, "map") {
        return write_pairs(out, &m, style, next, w, true);
    }
    if let Value::Table(s) = field(t, "set") {
        return write_pairs(out, &s, style, next, w, false);
    }
    // An array, up to the first nil.
    let n = array_len(t);
    if !w.repeats.visit(t, n) {
        return Err(TooLarge);
    }
    encode::array_len(out, n);
    for i in 1..=n {
        let v = t.raw_get::<Value>(i).unwrap_or(Value::Nil);
        write_value(out, &v, style, next, w)?;
    }
    Ok(())
}

#[inline(never)]
fn array_len(t: &Table) -> usize {
    (1..)
        .take_while(|&i| !matches!(t.raw_get::<Value>(i), Ok(Value::Nil) | Err(_)))
        .count()
}

/// A map's keys and values, or a set's members (its keys).
#[inline(never)]
fn write_pairs(
    out: &mut BytesMut,
    t: &Table,
    style: &ReplyStyle,
    depth: usize,
    w: &mut Walk,
    map: bool,
) -> Result<(), TooLarge> {
    let n = t.pairs::<Value, Value>().filter(Result::is_ok).count();
    if !w.repeats.visit(t, n) {
        return Err(TooLarge);
    }
    if map {
        encode::map_len(out, n, style.resp3);
    } else {
        encode::set_len(out, n, style.resp3);
    }
    for (k, v) in t.pairs::<Value, Value>().filter_map(Result::ok).take(n) {
        write_value(out, &k, style, depth, w)?;
        if map {
            write_value(out, &v, style, depth, w)?;
        }
    }
    Ok(())
}

/// `{err=}`, `{ok=}`, `{double=}`, `{big_number=}` and `{verbatim_string=}`: whether
/// `t` was one (and is written).
#[inline(never)]
fn write_special(out: &mut BytesMut, t: &Table, style: &ReplyStyle) -> bool {
    if let Value::String(e) = field(t, "err") {
        encode::error(out, &e.as_bytes());
        return true;
    }
    if let Value::String(s) = field(t, "ok") {
        // A status cannot hold CR or LF: Redis replaces them with spaces.
        let clean: Vec<u8> = s
            .as_bytes()
            .iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
            .collect();
        encode::simple(out, &clean);
        return true;
    }
    match field(t, "double") {
        Value::Number(n) => {
            encode::double(out, n, style.resp3);
            return true;
        }
        Value::Integer(i) => {
            encode::double(out, i as f64, style.resp3);
            return true;
        }
        _ => {}
    }
    if let Value::String(s) = field(t, "big_number") {
        encode::big_number(out, &s.as_bytes(), style.resp3);
        return true;
    }
    if let Value::Table(v) = field(t, "verbatim_string") {
        if let (Value::String(f), Value::String(s)) = (field(&v, "format"), field(&v, "string")) {
            let fb = f.as_bytes();
            if fb.len() == 3 {
                let format = [fb[0], fb[1], fb[2]];
                encode::verbatim(out, &format, &s.as_bytes(), style.resp3);
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format_is_cs() {
        assert_eq!(fmt_g(0.1, 17), "0.10000000000000001");
        assert_eq!(fmt_g(1e20, 17), "1e+20");
        assert_eq!(fmt_g(1.0 / 3.0, 17), "0.33333333333333331");
        assert_eq!(fmt_g(1.0 / 3.0, 14), "0.33333333333333");
        assert_eq!(fmt_g(123_456_789_012_345.0, 14), "1.2345678901234e+14");
        assert_eq!(fmt_g(3.0, 17), "3");
        assert_eq!(fmt_g(0.0001, 14), "0.0001");
        assert_eq!(fmt_g(0.00001, 14), "1e-05");
    }

    #[test]
    fn numbers_truncate_as_c_casts() {
        assert_eq!(lua_number_to_i64(3.99), 3);
        assert_eq!(lua_number_to_i64(-3.7), -3);
        assert_eq!(lua_number_to_i64(1e100), i64::MIN);
        assert_eq!(lua_number_to_i64(f64::NAN), i64::MIN);
    }

    #[test]
    fn arrays_stop_at_the_first_nil_and_tables_are_bounded() {
        let lua = Lua::new();
        let style = ReplyStyle {
            resp3: false,
            script_resp3: false,
        };
        let v: Value = lua.load("return {1, 'a', nil, 4}").eval().expect("eval");
        let mut out = BytesMut::new();
        lua_to_reply(&mut out, &v, &style);
        assert_eq!(&out[..], b"*2\r\n:1\r\n$1\r\na\r\n");
        let v: Value = lua
            .load("local t = {} t[1] = t return t")
            .eval()
            .expect("eval");
        let mut out = BytesMut::new();
        lua_to_reply(&mut out, &v, &style);
        assert!(out.ends_with(b"-ERR reached lua stack limit\r\n"));
        // The same through maps and sets.
        for code in [
            "local t = {} t.map = {x = t} return t",
            "local t = {} t.set = {} t.set[t] = true return t",
        ] {
            let v: Value = lua.load(code).eval().expect("eval");
            let mut out = BytesMut::new();
            lua_to_reply(&mut out, &v, &style);
            assert!(out.ends_with(b"-ERR reached lua stack limit\r\n"), "{code}");
        }
    }

    #[test]
    fn big_replies_are_written_and_exploding_ones_refused() {
        let lua = Lua::new();
        let style = ReplyStyle {
            resp3: true,
            script_resp3: false,
        };
        // More strings than Lua's C stack has slots, as an array, a map and a set.
        let v: Value = lua
            .load(
                "local a, m, s = {}, {}, {} \
                 for i = 1, 100000 do a[i] = 'v' .. i m['k' .. i] = 'v' .. i s['m' .. i] = true end \
                 return {a, {map = m}, {set = s}}",
            )
            .eval()
            .expect("eval");
        let mut out = BytesMut::new();
        lua_to_reply(&mut out, &v, &style);
        assert!(out.starts_with(b"*3\r\n*100000\r\n$2\r\nv1\r\n"));
        let mut dec = sessiond_protocol::FrameDecoder::new(sessiond_protocol::Limits::default());
        let frame = dec.decode(&mut out).expect("parses").expect("whole");
        assert!(out.is_empty());
        match frame {
            Frame::Array(items) => {
                assert!(matches!(&items[1], Frame::Map(p) if p.len() == 100_000));
                assert!(matches!(&items[2], Frame::Set(p) if p.len() == 100_000));
            }
            other => panic!("{other:?}"),
        }
        // A table holding itself twice doubles at each level, 2^1000 in all: refused,
        // and nothing of it is left in the output.
        let v: Value = lua
            .load("local t = {} t[1] = t t[2] = t return t")
            .eval()
            .expect("eval");
        let mut out = BytesMut::from(&b"+before\r\n"[..]);
        lua_to_reply(&mut out, &v, &style);
        assert_eq!(
            &out[..],
            b"+before\r\n-ERR the script's reply is too large\r\n"
        );
        // And a reply past the byte bound.
        let v: Value = lua
            .load("local a = {} for i = 1, 100000 do a[i] = 'v' .. i end return a")
            .eval()
            .expect("eval");
        let mut out = BytesMut::new();
        reply_within(&mut out, &v, &style, 100_000);
        assert_eq!(&out[..], b"-ERR the script's reply is too large\r\n");
    }
}
