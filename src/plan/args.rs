//! The policy seen from one tool: arguments it admits, the amount a limit
//! charges, how much room the limits leave, and values that satisfy or
//! break one condition. Every choice is checked against `Policy::judge` and
//! the tool's schema, so a derived call the planner calls admitted is one
//! the model admits.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::draft::Send;
use crate::mock::catalogue::{Catalogue, Tool};
use crate::names::NameMatching;
use crate::policy::{
    Call, Condition, CounterKey, CounterRequest, DefaultAction, Judgement, Limit, Op, Policy,
    Truth, WILDCARD,
};

/// The grant and session derived calls go out under by default.
pub(crate) const GRANT: &str = crate::scenario::DEFAULT_IDENTITY;
const SESSION: &str = crate::scenario::DEFAULT_SESSION;

/// A policy and the tools the mock serves.
pub(crate) struct World<'a> {
    pub policy: &'a Policy,
    pub tools: &'a Catalogue,
}

/// A condition's path relative to the arguments (`args.a.b` → `a.b`).
pub(crate) fn rel(c: &Condition) -> String {
    rel_path(c.path.as_str())
}

pub(crate) fn rel_path(path: &str) -> String {
    path.strip_prefix("args.").unwrap_or(path).to_owned()
}

impl World<'_> {
    /// The manifest's tool a name resolves to, as a lenient server would.
    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.resolve(name, NameMatching::Lenient)
    }

    /// The name to call: the manifest's own spelling when it has the tool.
    pub fn call_name(&self, name: &str) -> String {
        self.tool(name)
            .map_or_else(|| name.to_owned(), |t| t.name().to_owned())
    }

    /// Whether the tool's schema accepts `args` (true when the manifest
    /// lacks the tool: nothing to check against).
    pub fn schema_ok(&self, tool: &str, args: &Value) -> bool {
        self.tool(tool).is_none_or(|t| t.validate(args).is_empty())
    }

    /// The static judgement of one call on the default grant and session.
    pub fn judge(&self, tool: &str, args: &Value) -> Judgement {
        self.policy.judge(
            &Call {
                tool,
                args: Some(args),
                grant: GRANT,
                session: SESSION,
            },
            None,
        )
    }

    /// The counter requests of a call the policy and the schema admit.
    pub fn admits(&self, tool: &str, args: &Value) -> Option<Vec<CounterRequest>> {
        match self.judge(tool, args) {
            Judgement::Admit(reqs) if self.schema_ok(tool, args) => Some(reqs),
            _ => None,
        }
    }

    /// Whether calls to `tool` get past hide, default and action at all.
    pub fn reachable(&self, tool: &str) -> bool {
        if self.policy.is_hidden(tool) {
            return false;
        }
        let rule = self.policy.tool_rule(tool);
        if rule.is_none() && self.policy.default == DefaultAction::Deny {
            return false;
        }
        rule.into_iter()
            .chain(self.policy.wildcard_rule())
            .all(|r| r.action == crate::policy::Action::Allow)
    }

    /// The conditions that apply to `tool`, each with the truth it needs
    /// to admit (`require` must hold, `deny_if` must not).
    pub fn conditions(&self, tool: &str) -> Vec<(&Condition, Truth)> {
        let rules = self
            .policy
            .tool_rule(tool)
            .into_iter()
            .chain(self.policy.wildcard_rule());
        let mut out = Vec::new();
        for rule in rules {
            out.extend(rule.require.iter().map(|c| (c, Truth::True)));
            out.extend(rule.deny_if.iter().map(|c| (c, Truth::False)));
        }
        out
    }

    /// The limits that apply to `tool`: its own, `"*"`'s and `all_tools`.
    pub fn limits(&self, tool: &str) -> Vec<&Limit> {
        let rules = self
            .policy
            .tool_rule(tool)
            .into_iter()
            .chain(self.policy.wildcard_rule());
        rules
            .flat_map(|r| r.limits.iter())
            .chain(self.policy.all_tools.iter())
            .collect()
    }

    /// Arguments for `tool` that the policy and the schema admit: valid ones
    /// from the schema, with every condition and `increment_from` amount
    /// set to pass; `n` varies the generated values.
    pub fn admitted_args(&self, tool: &str, n: u64) -> Option<Value> {
        let mut args = self
            .tool(tool)
            .map(|t| crate::generate::valid(&t.entry().input_schema, n))
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        for (c, want) in self.conditions(tool) {
            if c.eval(&args) == want {
                continue;
            }
            let path = rel(c);
            let mut fallback = None;
            let mut chosen = None;
            for cand in candidates(c) {
                let mut trial = args.clone();
                crate::generate::set_path(&mut trial, &path, cand);
                if c.eval(&trial) != want {
                    continue;
                }
                if self.schema_ok(tool, &trial) {
                    chosen = Some(trial);
                    break;
                }
                fallback.get_or_insert(trial);
            }
            if let Some(a) = chosen.or(fallback) {
                args = a;
            }
        }
        for limit in self.limits(tool) {
            let Some(path) = &limit.increment_from else {
                continue;
            };
            if amount(path.get(&args)).is_some() {
                continue;
            }
            crate::generate::set_path(&mut args, &rel_path(path.as_str()), json!(1));
        }
        self.admits(tool, &args).map(|_| args)
    }

    /// `args` with the amount `limit` charges raised as far as the policy and
    /// the schema admit, and that amount (`limit.increment` without
    /// `increment_from`). `None` when no positive amount is admitted.
    pub fn charge(&self, tool: &str, args: &Value, limit: &Limit) -> Option<(Value, u64)> {
        let Some(path) = &limit.increment_from else {
            return (limit.increment > 0).then(|| (args.clone(), limit.increment));
        };
        let mut ub = limit.max.max(1);
        for (c, want) in self.conditions(tool) {
            if c.path != *path {
                continue;
            }
            let Some(v) = c.value.as_f64() else { continue };
            let bound = match (c.op, want) {
                (Op::Lte, Truth::True) | (Op::Gt, Truth::False) => v.floor(),
                (Op::Lt, Truth::True) | (Op::Gte, Truth::False) => v.ceil() - 1.0,
                _ => continue,
            };
            if bound < 1.0 {
                return None;
            }
            ub = ub.min(bound as u64);
        }
        let mut tries = vec![ub, ub / 2, ub / 4, ub / 10, 1000, 100, 10, 1];
        tries.retain(|t| (1..=ub).contains(t));
        tries.dedup();
        let rel = rel_path(path.as_str());
        tries.into_iter().find_map(|amount| {
            let mut trial = args.clone();
            crate::generate::set_path(&mut trial, &rel, json!(amount));
            self.admits(tool, &trial).map(|_| (trial, amount))
        })
    }

    /// How many calls like this one the limits admit in one window, leaving
    /// out the counter `except`; `u64::MAX` when none binds.
    pub fn room(&self, tool: &str, args: &Value, except: Option<&str>) -> u64 {
        let Some(reqs) = self.admits(tool, args) else {
            return 0;
        };
        reqs.iter()
            .filter(|r| except.is_none_or(|e| r.key.counter.as_ref() != e))
            .map(|r| r.max.checked_div(r.amount).unwrap_or(u64::MAX))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The paths the policy reads for `tool` (its conditions and
    /// `increment_from` amounts) with their values in `args`.
    pub fn pins(&self, tool: &str, args: &Value) -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = Vec::new();
        let conds = self.conditions(tool);
        let paths = conds.iter().map(|(c, _)| &c.path).chain(
            self.limits(tool)
                .into_iter()
                .filter_map(|l| l.increment_from.as_ref()),
        );
        for path in paths {
            let rel = rel_path(path.as_str());
            if let Some(v) = path.get(args)
                && !out.iter().any(|(p, _)| *p == rel)
            {
                out.push((rel, v.clone()));
            }
        }
        out
    }

    /// A call of `tool` with `args`, `set` changed. When the manifest has the
    /// tool, the file asks for generated arguments and pins only the paths
    /// the policy reads, so the step stays short and every value the policy
    /// sees is fixed.
    pub fn send(&self, tool: &str, args: &Value, set: Option<(String, Value)>) -> Send {
        Send::Call {
            name: tool.to_owned(),
            args: args.clone(),
            pins: self.tool(tool).map(|_| self.pins(tool, args)),
            set,
        }
    }

    /// Tools of the manifest that admitted arguments exist for, in listing
    /// order, each with those arguments.
    pub fn admitted_tools(&self) -> Vec<(String, Value)> {
        self.tools
            .tools()
            .iter()
            .filter(|t| t.name() != WILDCARD)
            .filter_map(|t| {
                self.admitted_args(t.name(), 0)
                    .map(|a| (t.name().to_owned(), a))
            })
            .collect()
    }

    /// Splits calls into runs that stay within every limit when sent in
    /// order on one grant and session, at most `cap` a run; a call that
    /// exceeds a limit on its own gets a run to itself.
    pub fn runs(&self, calls: &[(String, Value)], cap: usize) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut used: HashMap<CounterKey, u64> = HashMap::new();
        for (i, (tool, args)) in calls.iter().enumerate() {
            let reqs = self.admits(tool, args).unwrap_or_default();
            let over = reqs.iter().any(|r| {
                used.get(&r.key)
                    .copied()
                    .unwrap_or(0)
                    .saturating_add(r.amount)
                    > r.max
            });
            if i > start && (over || i - start >= cap.max(1)) {
                out.push(start..i);
                start = i;
                used.clear();
            }
            for r in reqs {
                *used.entry(r.key).or_default() += r.amount;
            }
        }
        if start < calls.len() {
            out.push(start..calls.len());
        }
        out
    }
}

/// What an `increment_from` amount charges, when the model accepts it.
fn amount(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Values to try for a condition's path, likeliest to be realistic first;
/// the caller keeps those that give the truth it wants.
fn candidates(c: &Condition) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    match (&c.value, c.op) {
        (Value::Number(n), _) => {
            if let Some(i) = n.as_i64() {
                for v in [
                    1,
                    10,
                    100,
                    1000,
                    i,
                    i - 1,
                    i + 1,
                    0,
                    -1,
                    i.saturating_mul(2),
                ] {
                    out.push(json!(v));
                }
            } else if let Some(f) = n.as_f64() {
                for v in [1.0, f, f - 0.5, f + 0.5, 0.0, f * 2.0] {
                    out.push(json!(v));
                }
            }
        }
        (Value::Array(items), _) => {
            out.extend(items.iter().cloned());
            out.extend([json!("gauntlet-ok"), json!(0)]);
        }
        (Value::String(p), Op::Regex) => {
            out.extend(
                crate::generate::boundary::regex_samples(p)
                    .into_iter()
                    .map(Value::String),
            );
            out.extend([json!("plain text"), json!("gauntlet")]);
        }
        (Value::String(s), Op::Contains) => {
            out.extend([json!(format!("x{s}y")), json!(s), json!("plain text")]);
        }
        (_, Op::Exists) => out.extend([json!("gauntlet"), json!(1), Value::Null]),
        (v, _) => out.extend([v.clone(), json!("gauntlet-ok"), json!(0), json!(true)]),
    }
    out
}
