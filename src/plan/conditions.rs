//! Conditions: boundary values, type confusions and path tricks.

use serde_json::Value;

use super::args::rel;
use super::draft::{ScenarioDraft, Send, StepDraft, short_slug};
use super::{Pattern, Planner, SLUG_MAX, tool_slug};
use crate::generate::boundary::{Edge, condition_values};
use crate::policy::{Condition, DenyKind, Judgement, ToolRule, WILDCARD};
use crate::scenario::{Category, RuleRef, Severity, TransportFilter};

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// JSON text of `s`, except that the key at the end of `segs` is written by
/// `leaf(key, value_in_s)`; `None` where the path leaves `s`'s objects, or
/// ends on an array index.
fn render(s: &Value, segs: &[&str], leaf: &dyn Fn(&str, &Value) -> String) -> Option<String> {
    let (first, rest) = segs.split_first()?;
    match s {
        Value::Object(map) => {
            map.get(*first)?;
            let parts: Option<Vec<String>> = map
                .iter()
                .map(|(k, v)| {
                    if k != first {
                        Some(format!("{}:{v}", q(k)))
                    } else if rest.is_empty() {
                        Some(leaf(k, v))
                    } else {
                        Some(format!("{}:{}", q(k), render(v, rest, leaf)?))
                    }
                })
                .collect();
            Some(format!("{{{}}}", parts?.join(",")))
        }
        Value::Array(items) if !rest.is_empty() => {
            let i: usize = first.parse().ok()?;
            items.get(i)?;
            let parts: Option<Vec<String>> = items
                .iter()
                .enumerate()
                .map(|(j, v)| {
                    if j == i {
                        render(v, rest, leaf)
                    } else {
                        Some(v.to_string())
                    }
                })
                .collect();
            Some(format!("[{}]", parts?.join(",")))
        }
        _ => None,
    }
}

fn frame(id: &str, tool: &str, args: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":"{id}","method":"tools/call","params":{{"name":{},"arguments":{args}}}}}"#,
        q(tool)
    )
}

/// One condition under attack, and the call that carries the probes.
struct Probe<'c> {
    c: &'c Condition,
    rule: RuleRef,
    slug: String,
    /// `args.x op value`, for titles.
    cond: String,
    /// The opening of every description.
    what: String,
    tool: String,
    /// Arguments the policy admits; each probe changes the condition's path.
    base: Value,
}

impl Planner<'_> {
    /// Every `require` and `deny_if` of every tool rule.
    pub(super) fn conditions(&mut self) {
        let policy = self.world.policy;
        for rule in &policy.tools {
            for c in &rule.require {
                self.condition(rule, c);
            }
            for c in &rule.deny_if {
                self.condition(rule, c);
            }
        }
    }

    fn condition(&mut self, owner: &ToolRule, c: &Condition) {
        let rule = self.rule_ref(&c.loc);
        let tool = if owner.name == WILDCARD {
            self.world
                .admitted_tools()
                .into_iter()
                .next()
                .map(|(t, _)| t)
        } else {
            Some(self.world.call_name(&owner.name))
        };
        let found = tool.and_then(|t| self.world.admitted_args(&t, 0).map(|a| (t, a)));
        let Some((tool, base)) = found else {
            let why = if owner.name == WILDCARD {
                "no tool of the manifest is admitted to carry the condition".to_owned()
            } else {
                format!(
                    "no call of `{}` is admitted however the condition goes (the tool is denied before its conditions are read, or its schema and the policy disagree)",
                    owner.name
                )
            };
            for p in [Pattern::Boundary, Pattern::Types, Pattern::Paths] {
                self.leave_out(&rule, p, why.clone());
            }
            return;
        };
        let owner_slug = if owner.name == WILDCARD {
            "all".to_owned()
        } else {
            tool_slug(&owner.name)
        };
        let cond = format!("{} {} {}", c.path, c.op, c.value);
        let probe = Probe {
            c,
            slug: short_slug(&format!("{owner_slug}-{}-{}", rel(c), c.op), SLUG_MAX),
            what: format!("Derived from {}: `{cond}` on `{tool}`.", Self::cite(&rule)),
            cond,
            rule,
            tool,
            base,
        };
        let mut edges: Vec<Value> = Vec::new();
        let mut types: Vec<Value> = Vec::new();
        for (e, v) in condition_values(c) {
            let into = if matches!(e, Edge::TypeConfusion | Edge::Missing) {
                &mut types
            } else {
                &mut edges
            };
            if !into.contains(&v) {
                into.push(v);
            }
        }
        edges.truncate(self.opts.max_probes);
        types.truncate(self.opts.max_probes);
        self.values(&probe, Pattern::Boundary, &edges);
        self.values(&probe, Pattern::Types, &types);
        let mut all = edges;
        all.extend(types);
        self.path_tricks(&probe, &all);
    }

    /// One call per value, in runs that stay within the tool's limits.
    fn values(&mut self, p: &Probe<'_>, pattern: Pattern, values: &[Value]) {
        if values.is_empty() {
            self.leave_out(
                &p.rule,
                pattern,
                "the operator has no values of this kind to try",
            );
            return;
        }
        let path = rel(p.c);
        let calls: Vec<(String, Value)> = values
            .iter()
            .map(|v| {
                let mut a = p.base.clone();
                crate::generate::set_path(&mut a, &path, v.clone());
                (p.tool.clone(), a)
            })
            .collect();
        for run in self.world.runs(&calls, self.opts.max_probes) {
            let id = self.id(&p.slug, pattern);
            let mut d = draft(p, id, pattern);
            for v in &values[run] {
                d.steps.push(StepDraft::once(self.world.send(
                    &p.tool,
                    &p.base,
                    Some((path.clone(), v.clone())),
                )));
            }
            self.push(pattern, d);
        }
    }

    /// Frames in which the condition's key is duplicated (the admitted value
    /// first, a refused one last, which a last-wins server reads) or spelled
    /// with `\u` escapes.
    fn path_tricks(&mut self, p: &Probe<'_>, values: &[Value]) {
        let path = rel(p.c);
        let segs: Vec<&str> = path.split('.').collect();
        let refused = values.iter().find_map(|v| {
            let mut a = p.base.clone();
            crate::generate::set_path(&mut a, &path, v.clone());
            match self.world.judge(&p.tool, &a) {
                Judgement::Deny(d)
                    if d.kind == DenyKind::Condition && d.rule == p.c.loc.pointer =>
                {
                    Some(a)
                }
                _ => None,
            }
        });
        let Some(bad) = refused else {
            self.leave_out(
                &p.rule,
                Pattern::Paths,
                "no edge value found that this condition refuses on its own",
            );
            return;
        };
        let mut frames = Vec::new();
        // The key itself twice, then the nearest enclosing object key twice.
        for depth in (0..segs.len()).rev() {
            let here = &segs[..=depth];
            let Some(bad_sub) = lookup(&bad, here) else {
                continue;
            };
            let leaf = |k: &str, v: &Value| format!("{}:{v},{}:{bad_sub}", q(k), q(k));
            if let Some(text) = render(&p.base, here, &leaf) {
                frames.push(text);
            }
            if frames.len() == 2 {
                break;
            }
        }
        let escaped = |k: &str, _: &Value| {
            let key: String = k
                .chars()
                .map(|ch| format!("\\u{:04x}", ch as u32))
                .collect();
            let v = lookup(&bad, &segs).cloned().unwrap_or(Value::Null);
            format!("\"{key}\":{v}")
        };
        if segs.last().is_some_and(|k| k.is_ascii())
            && let Some(text) = render(&p.base, &segs, &escaped)
        {
            frames.push(text);
        }
        if frames.is_empty() {
            self.leave_out(
                &p.rule,
                Pattern::Paths,
                "the admitted arguments hold no object key on the condition's path",
            );
            return;
        }
        let id = self.id(&p.slug, Pattern::Paths);
        let mut d = draft(p, id, Pattern::Paths);
        for (i, args) in frames.iter().enumerate() {
            d.steps.push(StepDraft::once(Send::Raw {
                text: frame(&format!("plan-path-{}", i + 1), &p.tool, args),
                headers: Vec::new(),
            }));
        }
        self.push(Pattern::Paths, d);
    }
}

/// A condition scenario without its steps.
fn draft(p: &Probe<'_>, id: String, pattern: Pattern) -> ScenarioDraft {
    let (title, severity, reference, text) = match pattern {
        Pattern::Boundary => (
            "Boundary values",
            Severity::High,
            "boundary-values",
            "Each call sets the path to one value at the condition's edge: the value itself, one step either side, the same number respelled or made fractional, every element of a list. Each must be judged as the policy judges it.",
        ),
        Pattern::Types => (
            "Type confusion",
            Severity::High,
            "type-confusion",
            "Each call sets the path to a value of another type (a list, an object, a boolean, a number for a string) or to null: a condition that cannot be judged must not admit.",
        ),
        _ => (
            "Path tricks",
            Severity::Critical,
            "parser-differential",
            "The refused value rides where parsers disagree: after an admitted one under a duplicated key (the server keeps the last), or under a key spelled with \\u escapes. An enforcer that reads the first key, or matches raw bytes, forwards it.",
        ),
    };
    ScenarioDraft {
        id,
        title: format!("{title}: `{}` on `{}`", p.cond, p.tool),
        category: if pattern == Pattern::Paths {
            Category::Framing
        } else {
            Category::ArgumentChecks
        },
        severity,
        description: format!("{} {text}", p.what),
        references: vec!["MCP02:2025", "ASI02", reference, "derived-plan"],
        rule: p.rule.clone(),
        transport: TransportFilter::Any,
        revision: None,
        steps: Vec::new(),
    }
}

fn lookup<'a>(v: &'a Value, segs: &[&str]) -> Option<&'a Value> {
    segs.iter().try_fold(v, |cur, seg| match cur {
        Value::Object(m) => m.get(*seg),
        Value::Array(a) => a.get(seg.parse::<usize>().ok()?),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rendering_duplicates_or_escapes_one_key() {
        let args = json!({"a": 1, "b": {"c": [{"d": 2}]}});
        let dup = |k: &str, v: &Value| format!("{}:{v},{}:9", q(k), q(k));
        assert_eq!(
            render(&args, &["b", "c", "0", "d"], &dup).unwrap(),
            r#"{"a":1,"b":{"c":[{"d":2,"d":9}]}}"#
        );
        assert_eq!(render(&args, &["b", "c", "0"], &dup), None);
        assert_eq!(render(&args, &["x"], &dup), None);
        let esc = |_: &str, _: &Value| r#""\u0061":5"#.to_owned();
        let text = render(&args, &["a"], &esc).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["a"], 5);
    }
}
