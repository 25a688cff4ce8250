//! Focused cases: most cases of a campaign aim at one part of the model at a
//! time (edges, frames, name variants, bursts at a limit, sessions, refunds),
//! packing many probes into one case. Starting a target's processes costs
//! far more than a call, so a case that tries twelve edges finds a flawed
//! edge twelve times sooner than twelve cases of one call each.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::case::{DraftKind, Model, StepDraft, ToolView};
use crate::generate::boundary::Edge;
use crate::generate::frames::{self, Mutation};
use crate::generate::names::{self, Variant};

/// How many kinds of case there are; the last draws freely from genomes.
pub const FAMILIES: u64 = 8;

fn step(kind: DraftKind, repeat: u32, tags: &[String]) -> StepDraft {
    StepDraft {
        kind,
        repeat,
        concurrency: 1,
        pipeline: false,
        identity: None,
        identities: Vec::new(),
        session: None,
        sessions: 0,
        delay_ms: 0,
        tags: tags.iter().cloned().collect::<BTreeSet<_>>(),
    }
}

fn call(t: &ToolView, args: Value) -> DraftKind {
    DraftKind::Call {
        name: t.name.clone(),
        args,
    }
}

fn priority(e: Edge) -> u8 {
    match e {
        Edge::Exact | Edge::Negative | Edge::Match => 0,
        Edge::Above | Edge::Below | Edge::Zero => 1,
        _ => 2,
    }
}

fn pick<T>(items: &[T], round: u64) -> Option<&T> {
    items.get((round % items.len().max(1) as u64) as usize)
}

/// The steps of a focused case, or `None` for a free case.
/// `round` counts the cases of this family under this policy so far.
pub fn steps(model: &Model, case: u64, round: u64, http: bool) -> Option<Vec<StepDraft>> {
    let family = case % FAMILIES;
    let n = case * 1000;
    let limited: Vec<&ToolView> = model
        .tools
        .iter()
        .filter(|t| !t.forbidden && model.smallest_max(t).is_some_and(|m| m <= 20))
        .collect();
    let forbidden: Vec<&ToolView> = model.tools.iter().filter(|t| t.forbidden).collect();
    let valid = |t: &ToolView| crate::generate::valid(&t.schema, n);
    let out = match family {
        0 => {
            // Edges: every tool's every condition and increment path, four
            // edge values each, rotating through the values round by round.
            let probed: Vec<&ToolView> = model
                .tools
                .iter()
                .filter(|t| !t.conditions.is_empty() || !t.increments.is_empty())
                .collect();
            let mut out = Vec::new();
            for t in probed {
                let incs = t.increments.iter().map(|(p, f)| {
                    (
                        p.clone(),
                        f.clone(),
                        "increment_from",
                        crate::generate::boundary::increment_values(),
                    )
                });
                for (path, full, op, mut values) in t.conditions.iter().cloned().chain(incs) {
                    // The likeliest mistakes first: the edge itself, then its
                    // neighbours, then spellings and types.
                    values.sort_by_key(|(e, _)| priority(*e));
                    for j in 0..4u64 {
                        let Some((edge, v)) = pick(&values, round * 4 + j) else {
                            continue;
                        };
                        let mut args = valid(t);
                        crate::generate::set_path(&mut args, &path, v.clone());
                        let tags = [
                            format!("op:{op}"),
                            format!("path:{full}"),
                            format!("edge:{}", edge.as_str()),
                            format!("tool:{}", t.name),
                        ];
                        out.push(step(call(t, args), 1, &tags));
                    }
                }
            }
            out
        }
        1 => {
            // Frames: every mutation once, smuggling a forbidden call.
            let target = pick(&forbidden, round).or_else(|| pick(&limited, round))?;
            Mutation::ALL
                .into_iter()
                .filter(|m| http || *m != Mutation::HeaderMismatch)
                .map(|m| {
                    let f = frames::frame(
                        m,
                        round as usize,
                        &target.name,
                        &model.allowed,
                        &valid(target),
                        n,
                    );
                    step(
                        DraftKind::Raw {
                            text: f.text,
                            headers: f.headers,
                        },
                        1,
                        &[format!("mutation:{}", m.as_str())],
                    )
                })
                .collect()
        }
        2 => {
            // Name variants of forbidden tools, every kind.
            let target = pick(&forbidden, round)?;
            Variant::ALL
                .into_iter()
                .map(|v| {
                    let name = names::variant(&target.name, v, round as usize);
                    let kind = DraftKind::Call {
                        name,
                        args: valid(target),
                    };
                    step(kind, 1, &[format!("variant:{}", v.as_str())])
                })
                .collect()
        }
        3..=6 => {
            let t = pick(&limited, round)?;
            let max = model.smallest_max(t).unwrap_or(1) as u32;
            let burst = |repeat: u32, tag: &str| {
                step(
                    call(t, valid(t)),
                    repeat,
                    &["burst:limit".into(), tag.into()],
                )
            };
            match family {
                // Past the limit, one call at a time.
                3 => vec![burst(max + 1 + (round % 2) as u32, "shape:sequential")],
                // Past the limit, all in flight at once.
                4 => {
                    let mut s = burst(max + 3, "shape:concurrent");
                    if http || round.is_multiple_of(2) {
                        s.concurrency = max + 3;
                    } else {
                        s.pipeline = true;
                    }
                    vec![s]
                }
                // The limit spent in one session, more asked in another.
                5 => {
                    let first = burst(max, "shape:sequential");
                    let mut second = burst(2, "session:second");
                    second.session = Some("second".into());
                    vec![first, second]
                }
                // Calls that run and then fail, then ordinary ones.
                _ => {
                    let mut failing = valid(t);
                    let marker = crate::mock::effects::WRITE_THEN_ERROR;
                    let free = t.echo.then(|| free_string(&t.schema, marker)).flatten();
                    if let Some(obj) = failing.as_object_mut() {
                        if obj.contains_key("reference_id") {
                            obj.insert("reference_id".into(), json!(marker));
                        } else if obj.contains_key("customer_id") {
                            obj.insert("customer_id".into(), json!("WC_999999"));
                        } else if let Some(key) = free {
                            // A manifest's tool fails after running when
                            // any argument carries the marker.
                            obj.insert(key, json!(marker));
                        }
                    }
                    let mut first = burst(max, "refund:error");
                    first.kind = call(t, failing);
                    vec![first, burst(2, "shape:sequential")]
                }
            }
        }
        _ => return None,
    };
    (!out.is_empty()).then_some(out)
}

/// A top-level string property of `schema` that takes `value` as it is (no
/// format, pattern, enum or length bound in the way), so a call carrying it
/// stays valid and runs.
fn free_string(schema: &Value, value: &str) -> Option<String> {
    let props = schema.get("properties")?.as_object()?;
    props
        .iter()
        .find(|(_, p)| {
            p.get("type").and_then(Value::as_str) == Some("string")
                && ["format", "pattern", "enum", "const"]
                    .iter()
                    .all(|k| p.get(*k).is_none())
                && p.get("maxLength")
                    .and_then(Value::as_u64)
                    .is_none_or(|m| m >= value.chars().count() as u64)
        })
        .map(|(k, _)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_goes_only_where_it_keeps_the_call_valid() {
        let schema = json!({"type": "object", "properties": {
            "a_date": {"type": "string", "format": "date"},
            "b_code": {"type": "string", "enum": ["x"]},
            "c_short": {"type": "string", "maxLength": 5},
            "d_amount": {"type": "integer"},
            "e_note": {"type": "string"}}});
        assert_eq!(
            free_string(&schema, "gauntlet:write-then-error").as_deref(),
            Some("e_note")
        );
        let none = json!({"type": "object", "properties": {"n": {"type": "number"}}});
        assert_eq!(free_string(&none, "m"), None);
    }
}
