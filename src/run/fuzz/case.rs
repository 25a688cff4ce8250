//! One fuzz case: a call sequence drawn against the policy model, written as
//! a scenario file in the catalogue's own format. The fuzzer runs exactly
//! what it would save, so a saved finding replays unchanged.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::generate::boundary::{self, Edge};
use crate::generate::frames::{self, Mutation};
use crate::generate::names::{self, Variant};
use crate::generate::strategy::RULES;
use crate::mock::catalogue::Catalogue;
use crate::policy::{Action, DefaultAction, Limit, Policy};
use crate::scenario::{Category, Rule};

/// The identities sequences draw from.
const IDENTITIES: [&str; 3] = ["alice", "bob", "carol"];

/// One step of a case, ready to be written as `[[step]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDraft {
    pub kind: DraftKind,
    pub repeat: u32,
    pub concurrency: u32,
    pub pipeline: bool,
    pub identity: Option<String>,
    pub identities: Vec<String>,
    pub session: Option<String>,
    pub sessions: u32,
    pub delay_ms: u64,
    /// What the step exercises, for the coverage summary.
    pub tags: BTreeSet<String>,
}

/// What a step sends.
#[derive(Debug, Clone, PartialEq)]
pub enum DraftKind {
    Call {
        name: String,
        args: Value,
    },
    Violate {
        name: String,
        rule: Rule,
    },
    Raw {
        text: String,
        headers: Vec<(String, String)>,
    },
    List,
}

/// A whole case: the policy file it runs under and its steps.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseDraft {
    /// The policy's file name under the catalogue's `policies/` folder.
    pub policy_file: String,
    pub http: bool,
    pub steps: Vec<StepDraft>,
}

/// One condition: its path relative to the arguments, its full path text,
/// its op, and the values at its edges.
pub(crate) type CondView = (String, String, &'static str, Vec<(Edge, Value)>);

/// What the generator knows of one tool under the policy.
#[derive(Debug, Clone)]
pub(crate) struct ToolView {
    pub(crate) name: String,
    pub(crate) schema: Value,
    pub(crate) forbidden: bool,
    pub(crate) limits: Vec<Limit>,
    pub(crate) conditions: Vec<CondView>,
    pub(crate) increments: Vec<(String, String)>,
    /// A tool of a user manifest: it only echoes, so the mock's special
    /// inputs are its only way to fail after running.
    pub(crate) echo: bool,
}

/// The policy model seen from the generator's side.
#[derive(Debug, Clone)]
pub struct Model {
    pub(crate) tools: Vec<ToolView>,
    pub(crate) allowed: String,
}

fn rel(path: &str) -> String {
    path.strip_prefix("args.").unwrap_or(path).to_owned()
}

impl Model {
    /// Builds the view of `policy` over the mock's tools.
    pub fn new(policy: &Policy, catalogue: &Catalogue) -> Model {
        let mut tools = Vec::new();
        for tool in catalogue.tools() {
            let name = tool.name().to_owned();
            let rule = policy.tool_rule(&name);
            let forbidden = policy.is_hidden(&name)
                || match rule {
                    Some(r) => r.action != Action::Allow,
                    None => policy.default == DefaultAction::Deny,
                };
            let rules: Vec<_> = rule.into_iter().chain(policy.wildcard_rule()).collect();
            let mut limits: Vec<Limit> = rules.iter().flat_map(|r| r.limits.clone()).collect();
            limits.extend(policy.all_tools.iter().cloned());
            let conditions = rules
                .iter()
                .flat_map(|r| r.require.iter().chain(r.deny_if.iter()))
                .map(|c| {
                    (
                        rel(c.path.as_str()),
                        c.path.as_str().to_owned(),
                        c.op.as_str(),
                        boundary::condition_values(c),
                    )
                })
                .collect();
            let increments = limits
                .iter()
                .filter_map(|l| l.increment_from.as_ref())
                .map(|p| (rel(p.as_str()), p.as_str().to_owned()))
                .collect();
            tools.push(ToolView {
                name,
                schema: tool.entry().input_schema.clone(),
                forbidden,
                limits,
                conditions,
                increments,
                echo: tool.effect() == crate::mock::catalogue::Effect::Echo,
            });
        }
        let allowed = tools
            .iter()
            .find(|t| !t.forbidden && t.conditions.is_empty())
            .or_else(|| tools.iter().find(|t| !t.forbidden))
            .map_or_else(String::new, |t| t.name.clone());
        Model { tools, allowed }
    }

    pub(crate) fn smallest_max(&self, tool: &ToolView) -> Option<u64> {
        tool.limits
            .iter()
            .filter(|l| l.increment_from.is_none())
            .map(|l| l.max)
            .min()
    }
}

/// Draws numbers from a step's genome, one after the other.
struct Genes<'a> {
    g: &'a [u32],
    at: usize,
}

impl Genes<'_> {
    fn next(&mut self, n: usize) -> usize {
        let v = self
            .g
            .get(self.at % self.g.len().max(1))
            .copied()
            .unwrap_or(0);
        self.at += 1;
        (v as usize) % n.max(1)
    }
}

/// Builds one step from its genome; the genome comes from a proptest
/// strategy, so the same seed gives the same steps.
pub fn step(model: &Model, genome: &[u32], index: usize, http: bool) -> StepDraft {
    let mut g = Genes { g: genome, at: 0 };
    let mut tags = BTreeSet::new();
    let tool = &model.tools[g.next(model.tools.len())];
    let n = g.next(10_000) as u64 + index as u64 * 10_000;
    let mut args = crate::generate::valid(&tool.schema, n);
    let roll = g.next(100);
    let kind = if roll < 25 {
        tags.insert(format!("tool:{}", tool.name));
        DraftKind::Call {
            name: tool.name.clone(),
            args,
        }
    } else if roll < 58 && !(tool.conditions.is_empty() && tool.increments.is_empty()) {
        let c = g.next(tool.conditions.len() + tool.increments.len());
        let (path, full, op, values) = match tool.conditions.get(c) {
            Some((p, f, op, v)) => (p.clone(), f.clone(), *op, v.clone()),
            None => {
                let (p, f) = &tool.increments[c - tool.conditions.len()];
                (
                    p.clone(),
                    f.clone(),
                    "increment_from",
                    boundary::increment_values(),
                )
            }
        };
        let (edge, value) = values[g.next(values.len())].clone();
        crate::generate::set_path(&mut args, &path, value);
        tags.insert(format!("op:{op}"));
        tags.insert(format!("path:{full}"));
        tags.insert(format!("edge:{}", edge.as_str()));
        DraftKind::Call {
            name: tool.name.clone(),
            args,
        }
    } else if roll < 72 {
        let v = Variant::ALL[g.next(Variant::ALL.len())];
        tags.insert(format!("variant:{}", v.as_str()));
        DraftKind::Call {
            name: names::variant(&tool.name, v, g.next(64)),
            args,
        }
    } else if roll < 93 {
        let kinds: Vec<Mutation> = Mutation::ALL
            .into_iter()
            .filter(|m| http || *m != Mutation::HeaderMismatch)
            .collect();
        let m = kinds[g.next(kinds.len())];
        // A forbidden target shows a smuggled call at once.
        let forbidden: Vec<&ToolView> = model.tools.iter().filter(|t| t.forbidden).collect();
        let target = if forbidden.is_empty() || g.next(4) == 0 {
            tool
        } else {
            forbidden[g.next(forbidden.len())]
        };
        let args = crate::generate::valid(&target.schema, n);
        let f = frames::frame(m, g.next(16), &target.name, &model.allowed, &args, n);
        tags.insert(format!("mutation:{}", m.as_str()));
        DraftKind::Raw {
            text: f.text,
            headers: f.headers,
        }
    } else if roll < 96 {
        let rule = RULES[g.next(RULES.len())];
        tags.insert(format!("violate:{}", rule.as_str()));
        DraftKind::Violate {
            name: tool.name.clone(),
            rule,
        }
    } else {
        tags.insert("list".into());
        DraftKind::List
    };

    // Bursts sized from the model: just under, at and past the limit.
    let calls_tool = matches!(kind, DraftKind::Call { .. } | DraftKind::Violate { .. });
    // A raw frame repeats its id; two in flight on one session could not be
    // told apart, so raw frames go once.
    let raw = matches!(kind, DraftKind::Raw { .. });
    let max = model.smallest_max(tool).filter(|m| *m <= 20);
    let repeat = match (calls_tool, max, g.next(3)) {
        (true, Some(m), 0 | 1) => {
            tags.insert("burst:limit".into());
            (m as u32 + g.next(3) as u32).max(1)
        }
        _ if raw => 1,
        _ => 1 + g.next(3) as u32,
    };
    let mut s = StepDraft {
        kind,
        repeat,
        concurrency: 1,
        pipeline: false,
        identity: None,
        identities: Vec::new(),
        session: None,
        sessions: 0,
        delay_ms: 0,
        tags,
    };
    if repeat > 1 {
        match g.next(6) {
            0 => {
                s.concurrency = repeat.min(2 + g.next(6) as u32);
                s.tags.insert("shape:concurrent".into());
            }
            1 if !http => {
                s.pipeline = true;
                s.tags.insert("shape:pipelined".into());
            }
            _ => {}
        }
    }
    // Every extra session is a process of the target to start: rotations
    // are kept rare so a slow target still gets many cases.
    match g.next(10) {
        0 => s.identity = Some(IDENTITIES[1 + g.next(2)].into()),
        1 => {
            s.identities = IDENTITIES.iter().map(|i| (*i).to_owned()).collect();
            s.tags.insert("who:rotate".into());
        }
        _ => {}
    }
    match g.next(10) {
        0 if !s.pipeline => {
            s.sessions = 2 + g.next(2) as u32;
            s.tags.insert("session:rotate".into());
        }
        1 | 2 => s.session = Some("second".into()),
        _ => {}
    }
    // A flood: hundreds of sends on one session, to load the target and
    // race its counters.
    if calls_tool && g.next(8) == 0 {
        s.repeat = 200 + g.next(800) as u32;
        s.concurrency = 1;
        s.pipeline = !http;
        if http {
            s.concurrency = 32;
        }
        s.sessions = 0;
        s.identities.clear();
        s.tags.insert("shape:flood".into());
    }
    if g.next(12) == 0 {
        s.delay_ms = 10 + g.next(40) as u64;
        s.tags.insert("delay".into());
    }
    s
}

impl CaseDraft {
    /// The catalogue folder a finding from this case is saved under.
    pub fn category(&self) -> Category {
        let has = |p: &str| {
            self.steps
                .iter()
                .any(|s| s.tags.iter().any(|t| t.starts_with(p)))
        };
        if self
            .steps
            .iter()
            .any(|s| matches!(s.kind, DraftKind::Raw { .. }))
        {
            Category::Framing
        } else if has("variant:") {
            Category::NameConfusion
        } else if has("op:increment_from") {
            Category::CounterPoisoning
        } else if has("op:") || has("violate:") {
            Category::ArgumentChecks
        } else if has("burst:") || self.steps.iter().map(|s| s.repeat).sum::<u32>() > 1 {
            Category::RateLimit
        } else {
            Category::ToolAccess
        }
    }

    /// Every tag of every step.
    pub fn tags(&self) -> BTreeSet<String> {
        self.steps
            .iter()
            .flat_map(|s| s.tags.iter().cloned())
            .collect()
    }

    /// Sends across every step.
    pub fn sends(&self) -> u64 {
        self.steps.iter().map(|s| u64::from(s.repeat)).sum()
    }

    /// The scenario file, in the catalogue's format.
    pub fn to_toml(&self, id: &str, title: &str, description: &str) -> String {
        let mut doc = toml::Table::new();
        let s = |v: &str| toml::Value::String(v.to_owned());
        doc.insert("id".into(), s(id));
        doc.insert("title".into(), s(title));
        doc.insert("category".into(), s(self.category().as_str()));
        doc.insert("severity".into(), s("high"));
        doc.insert("description".into(), s(description));
        doc.insert(
            "references".into(),
            toml::Value::Array(vec![s("fuzz-finding")]),
        );
        doc.insert("policy".into(), s(&self.policy_file));
        if self.http {
            doc.insert("transport".into(), s("http"));
            if self
                .steps
                .iter()
                .any(|st| st.tags.contains("mutation:header-mismatch"))
            {
                doc.insert("revision".into(), s("2026-07-28"));
            }
        }
        let steps = self
            .steps
            .iter()
            .map(|st| toml::Value::Table(step_table(st)));
        doc.insert("step".into(), toml::Value::Array(steps.collect()));
        toml::to_string(&doc).unwrap_or_default()
    }
}

fn step_table(st: &StepDraft) -> toml::Table {
    let mut t = toml::Table::new();
    let s = |v: &str| toml::Value::String(v.to_owned());
    let int = |v: u64| toml::Value::Integer(v as i64);
    match &st.kind {
        DraftKind::Call { name, args } => {
            t.insert("call".into(), s(name));
            // JSON text, not a TOML table: TOML has no null, and edge values
            // include nulls.
            t.insert("args_json".into(), s(&args.to_string()));
        }
        DraftKind::Violate { name, rule } => {
            t.insert("call".into(), s(name));
            let mut g = toml::Table::new();
            g.insert("violate".into(), s(rule.as_str()));
            t.insert("generate".into(), toml::Value::Table(g));
        }
        DraftKind::Raw { text, headers } => {
            t.insert("raw".into(), s(text));
            if !headers.is_empty() {
                let h = headers.iter().map(|(k, v)| (k.clone(), s(v))).collect();
                t.insert("headers".into(), toml::Value::Table(h));
            }
        }
        DraftKind::List => {
            t.insert("list".into(), toml::Value::Boolean(true));
        }
    }
    if st.repeat != 1 {
        t.insert("repeat".into(), int(u64::from(st.repeat)));
    }
    if st.concurrency > 1 {
        t.insert("concurrency".into(), int(u64::from(st.concurrency)));
    }
    if st.pipeline {
        t.insert("pipeline".into(), toml::Value::Boolean(true));
    }
    if let Some(i) = &st.identity {
        t.insert("identity".into(), s(i));
    }
    if !st.identities.is_empty() {
        let ids = st.identities.iter().map(|i| s(i)).collect();
        t.insert("identities".into(), toml::Value::Array(ids));
    }
    if let Some(l) = &st.session {
        t.insert("session".into(), s(l));
    }
    if st.sessions > 0 {
        t.insert("sessions".into(), int(u64::from(st.sessions)));
    }
    if st.delay_ms > 0 {
        t.insert("delay_ms".into(), int(st.delay_ms));
    }
    t
}
