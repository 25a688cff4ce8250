//! Limits: bulk, race, rotation and window-edge attacks, and counter
//! poisoning for `increment_from`.

use serde_json::Value;

use super::args::rel_path;
use super::draft::{ScenarioDraft, StepDraft};
use super::{Pattern, Planner, counter_slug};
use crate::generate::boundary::{Edge, increment_values};
use crate::policy::{Limit, Scope, WILDCARD};
use crate::scenario::{Category, Severity, TransportFilter};

/// Calls in flight at once in a race.
const RACE_WIDTH: u32 = 32;
/// Grants a rotation spreads over.
const GRANTS: [&str; 3] = ["alice", "bob", "carol"];

/// The tool and arguments a limit is attacked through.
struct Aim {
    tool: String,
    args: Value,
    /// What each call charges.
    amount: u64,
    /// Calls until the first one the limit must refuse.
    k: u64,
}

fn scope_word(s: Scope) -> &'static str {
    match s {
        Scope::Grant => "per grant",
        Scope::Session => "per session",
        Scope::Global => "shared by everyone",
    }
}

impl Planner<'_> {
    /// Every limit: `all_tools` first, then each tool's in file order.
    pub(super) fn limits(&mut self) {
        let policy = self.world.policy;
        for limit in &policy.all_tools {
            self.limit(limit, None);
        }
        for rule in &policy.tools {
            let owner = (rule.name != WILDCARD).then_some(rule.name.as_str());
            for limit in &rule.limits {
                self.limit(limit, owner);
            }
        }
    }

    fn limit(&mut self, limit: &Limit, owner: Option<&str>) {
        let rule = self.rule_ref(&limit.loc);
        let mut patterns = vec![
            Pattern::Bulk,
            Pattern::Race,
            Pattern::Rotation,
            Pattern::WindowEdge,
        ];
        if limit.increment_from.is_some() {
            patterns.extend(POISONS.iter().map(|(p, _)| *p));
        }
        let aim = match self.aim(limit, owner) {
            Ok(aim) => aim,
            Err(why) => {
                for p in patterns {
                    self.leave_out(&rule, p, why.clone());
                }
                return;
            }
        };
        if aim.k + 1 > u64::from(self.opts.max_sends) {
            for p in patterns {
                self.leave_out(
                    &rule,
                    p,
                    format!(
                        "passing the limit takes {} calls of `{}`, more than the plan's bound of {}",
                        aim.k, aim.tool, self.opts.max_sends
                    ),
                );
            }
            return;
        }
        let slug = counter_slug(&limit.counter);
        let what = format!(
            "{}, which allows {} per {} ({}) on counter `{}`; each call of `{}` charges {}",
            Self::cite(&rule),
            limit.max,
            limit.window,
            scope_word(limit.scope),
            limit.counter,
            aim.tool,
            aim.amount
        );
        let k = u32::try_from(aim.k).unwrap_or(u32::MAX);
        let base = |this: &mut Self, pattern: Pattern, title: String, text: String| ScenarioDraft {
            id: this.id(&slug, pattern),
            title,
            category: Category::RateLimit,
            severity: Severity::High,
            description: format!("Derived from {what}. {text}"),
            references: vec!["LLM10:2025", "ASI02", "derived-plan"],
            rule: rule.clone(),
            transport: TransportFilter::Any,
            revision: None,
            steps: Vec::new(),
        };

        let mut d = base(
            self,
            Pattern::Bulk,
            format!("Bulk past `{}`", limit.counter),
            format!(
                "{} calls go one after another on one session: the limit must refuse the last ones.",
                k + 1
            ),
        );
        d.references.push("runaway-tool-loops");
        d.steps.push(StepDraft::times(
            self.world.send(&aim.tool, &aim.args, None),
            k + 1,
        ));
        self.push(Pattern::Bulk, d);

        let mut d = base(
            self,
            Pattern::Race,
            format!("Parallel burst past `{}`", limit.counter),
            format!(
                "{} calls are in flight at once: a check-then-increment race lets more through than the limit allows.",
                k + 1
            ),
        );
        d.references.push("counter-race");
        let mut step = StepDraft::times(self.world.send(&aim.tool, &aim.args, None), k + 1);
        step.concurrency = (k + 1).min(RACE_WIDTH);
        d.steps.push(step);
        self.push(Pattern::Race, d);

        let d = self.rotation(limit, &aim, &base);
        self.push(Pattern::Rotation, d);

        match self.edge_gap(limit, &aim.tool) {
            Some(why) => self.leave_out(&rule, Pattern::WindowEdge, why),
            None => {
                let mut d = base(
                    self,
                    Pattern::WindowEdge,
                    format!("Burst across a window edge of `{}`", limit.counter),
                    format!(
                        "{} calls straddle the next window edge, half just before it and half just after: a fixed window admits the limit twice in a moment, a sliding one only once.",
                        2 * k
                    ),
                );
                d.severity = Severity::Medium;
                d.references.push("window-boundary-burst");
                let mut step = StepDraft::times(self.world.send(&aim.tool, &aim.args, None), 2 * k);
                step.at_edge = true;
                step.after_ms = 300;
                d.steps.push(step);
                self.push(Pattern::WindowEdge, d);
            }
        }

        if let Some(path) = &limit.increment_from {
            for (pattern, edges) in POISONS {
                let values: Vec<Value> = increment_values()
                    .into_iter()
                    .filter(|(e, _)| edges.contains(e))
                    .map(|(_, v)| v)
                    .collect();
                let mut d = base(
                    self,
                    *pattern,
                    format!(
                        "Counter poisoning: {} `{path}` for `{}`",
                        &pattern.as_str()["poison-".len()..],
                        limit.counter
                    ),
                    format!(
                        "First {} call(s) with `{path}` set to {}; then {k} honest calls, the last of which passes the limit. An enforcer that adds the odd amounts blindly rewinds or breaks its counter and lets it through.",
                        values.len(),
                        values
                            .iter()
                            .map(Value::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                d.category = Category::CounterPoisoning;
                d.severity = Severity::Critical;
                d.references = vec![
                    "MCP02:2025",
                    "LLM10:2025",
                    "ASI02",
                    "counter-poisoning",
                    "derived-plan",
                ];
                let rel = rel_path(path.as_str());
                for v in values {
                    d.steps.push(StepDraft::once(self.world.send(
                        &aim.tool,
                        &aim.args,
                        Some((rel.clone(), v)),
                    )));
                }
                d.steps.push(StepDraft::times(
                    self.world.send(&aim.tool, &aim.args, None),
                    k,
                ));
                self.push(*pattern, d);
            }
        }
    }

    /// The rotation that matters for the limit's scope.
    fn rotation(
        &mut self,
        limit: &Limit,
        aim: &Aim,
        base: &impl Fn(&mut Self, Pattern, String, String) -> ScenarioDraft,
    ) -> ScenarioDraft {
        let k = u32::try_from(aim.k).unwrap_or(u32::MAX);
        let (text, steps) = match limit.scope {
            Scope::Grant => {
                let mut spread =
                    StepDraft::times(self.world.send(&aim.tool, &aim.args, None), k + 1);
                spread.sessions = 3;
                let mut other = StepDraft::times(
                    self.world.send(&aim.tool, &aim.args, None),
                    k.saturating_sub(1).max(1),
                );
                other.identity = Some(GRANTS[1].into());
                (
                    format!(
                        "{} calls of one grant rotate over three fresh sessions, which must not reset its count; then another grant gets its own full quota ({} calls), which must not be refused.",
                        k + 1,
                        k.saturating_sub(1).max(1)
                    ),
                    vec![spread, other],
                )
            }
            Scope::Session => {
                let mut spread =
                    StepDraft::times(self.world.send(&aim.tool, &aim.args, None), 2 * k);
                spread.sessions = 2;
                (
                    format!(
                        "{} calls alternate over two sessions: each session has its own count, so each may run its quota and no more.",
                        2 * k
                    ),
                    vec![spread],
                )
            }
            Scope::Global => {
                let mut spread =
                    StepDraft::times(self.world.send(&aim.tool, &aim.args, None), k + 1);
                spread.identities = GRANTS.iter().map(|g| (*g).to_owned()).collect();
                (
                    format!(
                        "{} calls rotate over three grants: the count is shared, so switching identity must not buy more.",
                        k + 1
                    ),
                    vec![spread],
                )
            }
        };
        let mut d = base(
            self,
            Pattern::Rotation,
            format!("Rotation around `{}`", limit.counter),
            text,
        );
        d.severity = Severity::Medium;
        d.references.push("identity-rotation");
        d.steps = steps;
        d
    }

    /// The tool a limit is attacked through: the owner's, or for limits on
    /// every tool the admitted tool with the most room under its other limits.
    fn aim(&self, limit: &Limit, owner: Option<&str>) -> Result<Aim, String> {
        let w = &self.world;
        let candidates: Vec<(String, Value)> = match owner {
            Some(name) => {
                if w.tool(name).is_none() {
                    return Err(format!(
                        "the tool manifest has no `{name}`: its calls would not run, so no count could pass the limit on a bare mock"
                    ));
                }
                let tool = w.call_name(name);
                match w.admitted_args(&tool, 0) {
                    Some(args) => vec![(tool, args)],
                    None => {
                        return Err(format!(
                            "no arguments for `{tool}` found that the policy and its schema admit"
                        ));
                    }
                }
            }
            None => w.admitted_tools(),
        };
        let mut best: Option<(u64, Aim)> = None;
        for (tool, args) in candidates {
            let Some((args, amount)) = w.charge(&tool, &args, limit) else {
                continue;
            };
            let k = limit.max / amount + 1;
            let room = w.room(&tool, &args, Some(&limit.counter));
            if best.as_ref().is_none_or(|(r, _)| room > *r) {
                best = Some((
                    room,
                    Aim {
                        tool,
                        args,
                        amount,
                        k,
                    },
                ));
            }
        }
        best.map(|(_, aim)| aim).ok_or_else(|| match owner {
            Some(name) => format!("no positive amount of the limit is admitted for `{name}`"),
            None => "no tool of the manifest is admitted with a positive amount".to_owned(),
        })
    }

    /// Why a window-edge attack cannot run here, or `None` when it can: the
    /// edge must be near in wall time and belong to this limit's window.
    fn edge_gap(&self, limit: &Limit, tool: &str) -> Option<String> {
        let shortest = self
            .world
            .limits(tool)
            .iter()
            .map(|l| l.window)
            .min_by_key(|w| w.0)
            .unwrap_or(limit.window);
        if shortest != limit.window {
            return Some(format!(
                "the edge a step waits for is that of the shortest window on `{tool}` ({shortest}), not this limit's {}",
                limit.window
            ));
        }
        let secs = limit.window.0 as f64;
        let wall = secs / self.opts.time_scale;
        if wall > self.opts.max_edge_wait_s {
            let scale = (secs / self.opts.max_edge_wait_s).ceil();
            let control = if self.opts.control {
                " --no-control"
            } else {
                ""
            };
            return Some(format!(
                "its window ({}) may put the next edge {} away; run with `--time-scale {scale}{control}` or more to include it",
                limit.window,
                wall_text(secs / self.opts.time_scale)
            ));
        }
        if self.opts.control && secs > self.opts.max_edge_wait_s {
            return Some(format!(
                "the control run waits for the edge on the wall clock, up to {} away; run with `--no-control` to include it",
                wall_text(secs)
            ));
        }
        None
    }
}

fn wall_text(s: f64) -> String {
    if s >= 3600.0 {
        format!("{:.0} h", s / 3600.0)
    } else if s >= 60.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{s:.1} s")
    }
}

/// The poisoning patterns and the amounts each sends.
const POISONS: &[(Pattern, &[Edge])] = &[
    (Pattern::PoisonNegative, &[Edge::Negative]),
    (Pattern::PoisonZero, &[Edge::Zero]),
    (Pattern::PoisonFloat, &[Edge::Float]),
    (Pattern::PoisonHuge, &[Edge::Huge]),
    (
        Pattern::PoisonString,
        &[Edge::Spelling, Edge::TypeConfusion, Edge::Missing],
    ),
];
