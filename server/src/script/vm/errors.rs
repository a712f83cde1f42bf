//! Errors on their way out of a script: a command's error raised by `redis.call`
//! (verbatim), what `pcall` gives for an error, the message handler that turns whatever
//! was raised into Redis's `{err=, source=, line=}`, and the reply made of it.

use super::*;

/// A command's error, raised by `redis.call`: its text is the reply, verbatim.
#[derive(Debug)]
pub(super) struct CallError(pub(super) String);

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CallError {}

/// The command error inside an error a Rust function raised, if it is one.
fn call_error(e: &mlua::Error) -> Option<&str> {
    match e {
        mlua::Error::CallbackError { cause, .. } => call_error(cause),
        other => other.downcast_ref::<CallError>().map(|c| c.0.as_str()),
    }
}

/// What Lua's `pcall` gives for an error a Rust function raised: its text.
pub(super) fn error_value(lua: &Lua, v: Value) -> mlua::Result<Value> {
    let Value::Error(e) = &v else {
        return Ok(v);
    };
    // Redis 7.0's pcall gives a command's error as its text, like any other.
    let text = call_error(e).map_or_else(|| error_text(e), str::to_string);
    Ok(Value::String(lua.create_string(text)?))
}

/// The text of an error a Rust function raised, without mlua's decorations.
pub(super) fn error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// The message handler: whatever was raised becomes `{err=, source=, line=}`, the
/// position being the innermost frame of the script itself.
pub(super) fn error_table(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let killed = lua.app_data_ref::<Arc<Busy>>().is_some_and(|b| b.killed());
    let t = match err {
        _ if killed => {
            let t = lua.create_table()?;
            t.raw_set("err", KILLED)?;
            t
        }
        Value::Table(t) if matches!(t.raw_get::<Value>("err"), Ok(Value::String(_))) => t,
        Value::Error(e) if call_error(&e).is_some() => {
            let t = lua.create_table()?;
            t.raw_set("err", call_error(&e).unwrap_or_default())?;
            t
        }
        other => {
            let text = match &other {
                Value::Error(e) => {
                    let text = error_text(e);
                    if text.starts_with("ERR ") {
                        text
                    } else {
                        format!("ERR {text}")
                    }
                }
                Value::String(s) => format!("ERR {}", s.to_string_lossy()),
                Value::Nil => "ERR nil".to_string(),
                v => format!("ERR {}", v.to_string().unwrap_or_default()),
            };
            let t = lua.create_table()?;
            t.raw_set("err", text)?;
            t
        }
    };
    for level in 0..64 {
        let Some(d) = lua.inspect_stack(level) else {
            break;
        };
        if d.source().source.as_deref() == Some("@user_script") {
            t.raw_set("source", "@user_script")?;
            t.raw_set("line", d.curr_line())?;
            break;
        }
    }
    Ok(t)
}

/// A failed script's reply: the error, with where in the script it was raised.
pub(super) fn script_error(out: &mut BytesMut, v: &Value, sha: &str) {
    let Value::Table(t) = v else {
        encode::error(out, b"ERR Error running script");
        return;
    };
    let msg = t
        .raw_get::<mlua::String>("err")
        .map(|s| s.to_string_lossy())
        .unwrap_or_else(|_| "ERR Error running script".into());
    let msg = msg.replace(['\r', '\n'], " ");
    let text = match (
        t.raw_get::<mlua::String>("source"),
        t.raw_get::<i64>("line"),
    ) {
        (Ok(src), Ok(line)) => format!("{msg} script: {sha}, on {}:{line}.", src.to_string_lossy()),
        _ => msg,
    };
    encode::error(out, text.as_bytes());
}
