//! Checking one `[[step]]`: its kind, the fields each kind admits, and the
//! rules that tie fields together.

use std::collections::HashMap;

use serde_json::Value;

use super::convert::{self, Ctx, MAX_DELAY_MS};
use super::expand;
use super::locate::FieldPath;
use super::raw::RawStep;
use super::types::{ArgSpec, SessionSpec, Step, StepKind, TransportFilter};
use crate::mcp::Revision;

/// Scenario-wide facts a step is checked against.
pub struct StepEnv {
    /// Where the scenario applies.
    pub transport: TransportFilter,
    /// The negotiated revision.
    pub revision: Revision,
}

/// Checks step `i`; `sessions_seen` maps each named session to the first
/// step that used it.
pub fn check_step(
    cx: &mut Ctx<'_>,
    i: usize,
    mut s: RawStep,
    env: &StepEnv,
    sessions_seen: &mut HashMap<String, usize>,
) -> Step {
    let at = FieldPath::step(i);
    let common = convert::common(cx, &at, &mut s);
    let kind = kind(cx, &at, &mut s, env);

    let pipeline = s.pipeline.unwrap_or(false);
    if pipeline {
        let p = at.then("pipeline");
        if common.repeat < 2 {
            cx.err(&p, "pipelining needs `repeat` of 2 or more");
        }
        if common.concurrency != 1 {
            cx.err(
                &p,
                "pipelining writes on one session in order: leave `concurrency` at 1",
            );
        }
        if matches!(common.session, SessionSpec::Rotate(_)) {
            cx.err(&p, "pipelining needs one session, not `sessions`");
        }
    }
    let delay_ms = convert::int_in(cx, &at.then("delay_ms"), s.delay_ms, 0, 0, MAX_DELAY_MS);
    let after_ms = convert::int_in(cx, &at.then("after_ms"), s.after_ms, 0, 0, MAX_DELAY_MS);
    if s.after_ms.is_some() && s.at.is_none() {
        cx.err(&at.then("after_ms"), "only applies with `at`");
    }
    if s.at.is_some() && !matches!(kind, StepKind::Call { .. }) {
        cx.err(
            &at.then("at"),
            "needs a call step: the edge is that of the called tool's limit",
        );
    }
    let skip_handshake = s.skip_handshake.unwrap_or(false);
    if skip_handshake && env.revision.is_stateless() {
        cx.err(
            &at.then("skip_handshake"),
            format!("revision {} has no handshake to skip", env.revision),
        );
    }
    if let SessionSpec::Named(label) = &common.session {
        match sessions_seen.get(label) {
            Some(first) if skip_handshake => cx.err(
                &at.then("skip_handshake"),
                format!("session `{label}` was opened by step[{first}]; only a session's first step can skip the handshake"),
            ),
            Some(_) => {}
            None => {
                sessions_seen.insert(label.clone(), i);
            }
        }
    }
    Step {
        kind,
        repeat: common.repeat,
        concurrency: common.concurrency,
        pipeline,
        who: common.who,
        session: common.session,
        delay_ms: u64::try_from(delay_ms).unwrap_or(0),
        at: s.at,
        after_ms: u64::try_from(after_ms).unwrap_or(0),
        skip_handshake,
        replicas: s.replicas.unwrap_or_default(),
    }
}

fn kind(cx: &mut Ctx<'_>, at: &FieldPath, s: &mut RawStep, env: &StepEnv) -> StepKind {
    let present: Vec<&str> = [
        ("call", s.call.is_some()),
        ("raw", s.raw.is_some()),
        ("raw_hex", s.raw_hex.is_some()),
        ("list", s.list.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, p)| p.then_some(k))
    .collect();
    match present.as_slice() {
        [] => {
            cx.err(at, "a step needs one of `call`, `raw`, `raw_hex` or `list`");
            return StepKind::List;
        }
        [_] => {}
        [first, second, ..] => {
            cx.err(
                &at.then(second),
                format!("`{second}` cannot be combined with `{first}`: a step is exactly one of call, raw, raw_hex, list"),
            );
        }
    }
    let is_call = s.call.is_some();
    let is_raw = s.raw.is_some() || s.raw_hex.is_some();
    for (field, present) in [
        ("args", s.args.is_some()),
        ("args_json", s.args_json.is_some()),
        ("generate", s.generate.is_some()),
        ("set", s.set.is_some()),
    ] {
        if present && !is_call {
            cx.err(&at.then(field), "applies to call steps only");
        }
    }
    for (field, present) in [("headers", s.headers.is_some()), ("bare", s.bare.is_some())] {
        if !present {
            continue;
        }
        if !is_raw {
            cx.err(&at.then(field), "applies to raw steps only");
        } else if env.transport != TransportFilter::Http {
            cx.err(
                &at.then(field),
                "is HTTP only: set `transport = \"http\"` on the scenario",
            );
        }
    }
    let expand = s.expand.take();
    if let Some(name) = s.call.take() {
        let exps = expand::check(cx, at, expand.unwrap_or_default(), true);
        let mut kind = call(cx, at, name, s);
        if let StepKind::Call { args, set, .. } = &mut kind
            && !exps.is_empty()
        {
            let mut values: Vec<&mut Value> = set.iter_mut().map(|(_, v)| v).collect();
            if let ArgSpec::Literal(v) = args {
                values.push(v);
            }
            expand::apply_json(cx, &mut values, &exps);
        }
        return kind;
    }
    let bytes = if let Some(text) = s.raw.take() {
        Some(text.into_bytes())
    } else {
        s.raw_hex.take().map(|hex| {
            decode_hex(&hex).unwrap_or_else(|e| {
                cx.err(&at.then("raw_hex"), e);
                Vec::new()
            })
        })
    };
    if let Some(bytes) = bytes {
        let exps = expand::check(cx, at, expand.unwrap_or_default(), false);
        let bytes = expand::apply_bytes(cx, bytes, &exps);
        return raw(cx, at, bytes, s);
    }
    if expand.is_some() {
        cx.err(&at.then("expand"), "applies to call and raw steps only");
    }
    if s.list == Some(false) {
        cx.err(
            &at.then("list"),
            "must be `true` (leave it out on other steps)",
        );
    }
    StepKind::List
}

fn call(cx: &mut Ctx<'_>, at: &FieldPath, name: String, s: &mut RawStep) -> StepKind {
    let given: Vec<&str> = [
        ("args", s.args.is_some()),
        ("args_json", s.args_json.is_some()),
        ("generate", s.generate.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, p)| p.then_some(k))
    .collect();
    if given.len() > 1 {
        cx.err(
            &at.then(given[1]),
            format!(
                "`{}` cannot be combined with `{}`: give one of args, args_json, generate",
                given[1], given[0]
            ),
        );
    }
    let args = if let Some(v) = s.args.take() {
        let p = at.then("args");
        if !v.is_table() {
            cx.err(
                &p,
                format!(
                    "must be a table, got {}; use `args_json` for other JSON",
                    v.type_str()
                ),
            );
        }
        ArgSpec::Literal(convert::toml_to_json(cx, &p, v).unwrap_or(Value::Null))
    } else if let Some(text) = s.args_json.take() {
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => ArgSpec::Literal(v),
            Err(e) => {
                cx.err(&at.then("args_json"), format!("not valid JSON: {e}"));
                ArgSpec::Literal(Value::Null)
            }
        }
    } else if let Some(g) = s.generate.take() {
        ArgSpec::Generate(convert::generation(cx, &at.then("generate"), g))
    } else {
        cx.err(
            at,
            "a call step needs one of `args`, `args_json` or `generate`",
        );
        ArgSpec::Literal(Value::Null)
    };
    let mut set = Vec::new();
    if let Some(table) = s.set.take() {
        let p = at.then("set");
        if let ArgSpec::Literal(v) = &args
            && !v.is_object()
            && given.len() == 1
        {
            cx.err(&p, "needs object arguments to apply to");
        }
        flatten_set(cx, &p, String::new(), table, &mut set);
    }
    StepKind::Call { name, args, set }
}

/// A table value under `set` is merged leaf by leaf, so an unquoted dotted
/// key (`addresses.0.city = "x"`, which TOML reads as nested tables) means
/// the same as the quoted one.
fn flatten_set(
    cx: &mut Ctx<'_>,
    at: &FieldPath,
    prefix: String,
    table: toml::Table,
    out: &mut Vec<(String, Value)>,
) {
    for (k, v) in table {
        let p = at.then(&k);
        if k.is_empty() || k.split('.').any(str::is_empty) {
            cx.err(&p, format!("`{k}` is not a dot path: no empty segments"));
            continue;
        }
        let path = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) if !t.is_empty() => flatten_set(cx, &p, path, t, out),
            v => {
                if let Some(json) = convert::toml_to_json(cx, &p, v) {
                    out.push((path, json));
                }
            }
        }
    }
}

fn raw(cx: &mut Ctx<'_>, at: &FieldPath, bytes: Vec<u8>, s: &mut RawStep) -> StepKind {
    let mut headers = Vec::new();
    if let Some(table) = s.headers.take() {
        for (name, value) in table {
            let p = at.then("headers").then(&name);
            if name.is_empty() || !name.bytes().all(is_tchar) {
                cx.err(&p, format!("`{name}` is not an HTTP header name"));
            }
            match value {
                toml::Value::String(v)
                    if v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f)) =>
                {
                    headers.push((name, v));
                }
                toml::Value::String(_) => {
                    cx.err(
                        &p,
                        "control characters (CR, LF, NUL...) cannot go in a header value",
                    );
                }
                other => cx.err(&p, format!("must be a string, got {}", other.type_str())),
            }
        }
    }
    StepKind::Raw {
        bytes,
        headers,
        bare: s.bare.unwrap_or(false),
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Decodes hex; spaces and underscores may group digits.
pub fn decode_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !matches!(b, b' ' | b'_' | b'\n' | b'\t'))
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = hex_val(pair[0]);
            let lo = hex_val(pair[1]);
            match (hi, lo) {
                (Some(h), Some(l)) => Ok(h << 4 | l),
                _ => Err(format!(
                    "`{}` is not a hex byte",
                    String::from_utf8_lossy(pair)
                )),
            }
        })
        .collect()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decodes_with_grouping() {
        assert_eq!(
            decode_hex("ef bb_bf 7B7d").unwrap(),
            vec![0xef, 0xbb, 0xbf, b'{', b'}']
        );
        assert!(decode_hex("abc").unwrap_err().contains("odd"));
        assert!(decode_hex("zz").unwrap_err().contains("`zz`"));
        assert_eq!(decode_hex("").unwrap(), Vec::<u8>::new());
    }
}
