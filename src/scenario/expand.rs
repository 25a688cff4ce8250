//! `expand`: marks in a step's frame or arguments replaced by a repeated
//! piece. Resource-exhaustion attacks need frames of megabytes or nesting
//! ten thousand deep; writing those out would bloat the catalogue, so the
//! loader builds them. Entries apply in file order.

use serde_json::Value;

use super::convert::Ctx;
use super::locate::{FieldPath, Seg};
use super::raw::RawExpand;
use super::step::decode_hex;

/// Most times a piece may repeat.
pub const MAX_TIMES: i64 = 16 * 1024 * 1024;
/// Most bytes one step's expansions may add.
pub const MAX_EXPANDED: usize = 16 * 1024 * 1024;

/// A checked entry: the mark and what replaces it.
pub struct Expansion {
    mark: String,
    with: Vec<u8>,
    path: FieldPath,
}

/// Checks the entries; `text_only` refuses `hex` (call arguments are JSON
/// text and must stay UTF-8).
pub fn check(
    cx: &mut Ctx<'_>,
    at: &FieldPath,
    entries: Vec<RawExpand>,
    text_only: bool,
) -> Vec<Expansion> {
    let mut out = Vec::new();
    let mut total = 0usize;
    for (i, e) in entries.into_iter().enumerate() {
        let mut p = at.then("expand");
        p.0.push(Seg::Index(i));
        if e.mark.is_empty() {
            cx.err(&p.then("mark"), "must not be empty");
            continue;
        }
        let piece = match (e.text, e.hex) {
            (Some(t), None) => t.into_bytes(),
            (None, Some(_)) if text_only => {
                cx.err(
                    &p.then("hex"),
                    "call arguments are JSON text: use `text`, or a raw step for bytes",
                );
                continue;
            }
            (None, Some(h)) => match decode_hex(&h) {
                Ok(b) => b,
                Err(m) => {
                    cx.err(&p.then("hex"), m);
                    continue;
                }
            },
            (Some(_), Some(_)) => {
                cx.err(&p.then("hex"), "give `text` or `hex`, not both");
                continue;
            }
            (None, None) => {
                cx.err(&p, "needs `text` or `hex`");
                continue;
            }
        };
        let times = super::convert::int_in(cx, &p.then("times"), e.times, 1, 1, MAX_TIMES);
        let times = usize::try_from(times).unwrap_or(1);
        let size = piece.len().saturating_mul(times);
        total = total.saturating_add(size);
        if total > MAX_EXPANDED {
            cx.err(
                &p,
                format!("the expansions add {total} bytes; at most {MAX_EXPANDED}"),
            );
            continue;
        }
        out.push(Expansion {
            mark: e.mark,
            with: piece.repeat(times),
            path: p,
        });
    }
    out
}

/// Applies the expansions to frame bytes.
pub fn apply_bytes(cx: &mut Ctx<'_>, bytes: Vec<u8>, exps: &[Expansion]) -> Vec<u8> {
    let mut bytes = bytes;
    for e in exps {
        let (next, n) = replace_bytes(&bytes, e.mark.as_bytes(), &e.with);
        if n == 0 {
            cx.err(
                &e.path.then("mark"),
                format!("`{}` does not occur in the frame", e.mark),
            );
        }
        bytes = next;
    }
    bytes
}

/// Applies the expansions inside every string of call arguments and `set`
/// values.
pub fn apply_json(cx: &mut Ctx<'_>, values: &mut [&mut Value], exps: &[Expansion]) {
    for e in exps {
        let with = String::from_utf8_lossy(&e.with);
        let mut n = 0;
        for v in values.iter_mut() {
            n += replace_in_strings(v, &e.mark, &with);
        }
        if n == 0 {
            cx.err(
                &e.path.then("mark"),
                format!("`{}` does not occur in any argument string", e.mark),
            );
        }
    }
}

fn replace_in_strings(v: &mut Value, mark: &str, with: &str) -> usize {
    match v {
        Value::String(s) if s.contains(mark) => {
            let n = s.matches(mark).count();
            *s = s.replace(mark, with);
            n
        }
        Value::Array(items) => items
            .iter_mut()
            .map(|i| replace_in_strings(i, mark, with))
            .sum(),
        Value::Object(map) => map
            .values_mut()
            .map(|i| replace_in_strings(i, mark, with))
            .sum(),
        _ => 0,
    }
}

/// Replaces every occurrence of `needle`; returns the count.
fn replace_bytes(hay: &[u8], needle: &[u8], with: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(hay.len());
    let mut n = 0;
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
            n += 1;
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    (out, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_replaced_everywhere() {
        let (out, n) = replace_bytes(b"a@X@b@X@", b"@X@", b"[[");
        assert_eq!((out.as_slice(), n), (&b"a[[b[["[..], 2));
        let (out, n) = replace_bytes(b"abc", b"@X@", b"z");
        assert_eq!((out.as_slice(), n), (&b"abc"[..], 0));
    }

    #[test]
    fn strings_nested_in_json_are_replaced() {
        let mut v = serde_json::json!({"a": ["x@P@", {"b": "@P@@P@"}], "c": 1});
        assert_eq!(replace_in_strings(&mut v, "@P@", "--"), 3);
        assert_eq!(v, serde_json::json!({"a": ["x--", {"b": "----"}], "c": 1}));
    }
}
