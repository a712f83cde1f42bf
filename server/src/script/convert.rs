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

/// Write a script's result (or a Lua value inside it) as a reply.
pub fn lua_to_reply(out: &mut BytesMut, v: &Value, style: &ReplyStyle, depth: usize) {
    if depth > MAX_DEPTH {
        encode::error(out, b"ERR reached lua stack limit");
        return;
    }
    match v {
        Value::String(s) => encode::bulk(out, &s.as_bytes()),
        Value::Integer(i) => encode::integer(out, *i),
        Value::Number(n) => encode::integer(out, lua_number_to_i64(*n)),
        Value::Boolean(b) if style.script_resp3 => encode::boolean(out, *b, style.resp3),
        Value::Boolean(true) => encode::integer(out, 1),
        Value::Boolean(false) => encode::null(out, style.resp3),
        Value::Table(t) => table_to_reply(out, t, style, depth),
        _ => encode::null(out, style.resp3),
    }
}

fn field(t: &Table, key: &str) -> Value {
    t.raw_get(key).unwrap_or(Value::Nil)
}

fn table_to_reply(out: &mut BytesMut, t: &Table, style: &ReplyStyle, depth: usize) {
    if let Value::String(e) = field(t, "err") {
        encode::error(out, &e.as_bytes());
        return;
    }
    if let Value::String(s) = field(t, "ok") {
        // A status cannot hold CR or LF: Redis replaces them with spaces.
        let clean: Vec<u8> = s
            .as_bytes()
            .iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
            .collect();
        encode::simple(out, &clean);
        return;
    }
    match field(t, "double") {
        Value::Number(n) => return encode::double(out, n, style.resp3),
        Value::Integer(i) => return encode::double(out, i as f64, style.resp3),
        _ => {}
    }
    if let Value::String(s) = field(t, "big_number") {
        encode::big_number(out, &s.as_bytes(), style.resp3);
        return;
    }
    if let Value::Table(v) = field(t, "verbatim_string") {
        if let (Value::String(f), Value::String(s)) = (field(&v, "format"), field(&v, "string")) {
            let fb = f.as_bytes();
            if fb.len() == 3 {
                let format = [fb[0], fb[1], fb[2]];
                encode::verbatim(out, &format, &s.as_bytes(), style.resp3);
                return;
            }
        }
    }
    if let Value::Table(m) = field(t, "map") {
        let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(Result::ok).collect();
        encode::map_len(out, pairs.len(), style.resp3);
        for (k, v) in &pairs {
            lua_to_reply(out, k, style, depth + 1);
            lua_to_reply(out, v, style, depth + 1);
        }
        return;
    }
    if let Value::Table(s) = field(t, "set") {
        let members: Vec<Value> = s
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| k)
            .collect();
        encode::set_len(out, members.len(), style.resp3);
        for m in &members {
            lua_to_reply(out, m, style, depth + 1);
        }
        return;
    }
    // An array, up to the first nil.
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(v),
        }
    }
    encode::array_len(out, items.len());
    for v in &items {
        lua_to_reply(out, v, style, depth + 1);
    }
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
        lua_to_reply(&mut out, &v, &style, 0);
        assert_eq!(&out[..], b"*2\r\n:1\r\n$1\r\na\r\n");
        let v: Value = lua
            .load("local t = {} t[1] = t return t")
            .eval()
            .expect("eval");
        let mut out = BytesMut::new();
        lua_to_reply(&mut out, &v, &style, 0);
        assert!(out.ends_with(b"-ERR reached lua stack limit\r\n"));
    }
}
