//! Tool access: name variants and smuggling frames for every denied, hidden
//! or unlisted tool, and an over-blocking probe of the allowed ones.

use serde_json::{Value, json};

use super::draft::{ScenarioDraft, Send, StepDraft, short_slug};
use super::{Pattern, Planner, SLUG_MAX, tool_slug};
use crate::generate::frames::{self, Mutation};
use crate::generate::names::{self, Variant};
use crate::names::lenient_key;
use crate::policy::{Action, DefaultAction, WILDCARD};
use crate::scenario::{Category, RuleRef, Severity, TransportFilter};

/// Spellings tried on a denied name: each folds back to it under the
/// lenient matching a forgiving server applies.
const FOLDING: [(Variant, usize); 11] = [
    (Variant::Case, 0),
    (Variant::Case, 2),
    (Variant::Whitespace, 0),
    (Variant::Whitespace, 1),
    (Variant::Whitespace, 2),
    (Variant::Whitespace, 3),
    (Variant::Nfkc, 0),
    (Variant::Nfkc, 5),
    (Variant::ZeroWidth, 0),
    (Variant::ZeroWidth, 7),
    (Variant::ZeroWidth, 17),
];

/// Smuggling frames: every mutation that hides one call, with the picks
/// that differ in kind. (Id reuse needs two frames, header mismatch HTTP.)
const FRAMES: [(Mutation, usize); 14] = [
    (Mutation::Batch, 0),
    (Mutation::Batch, 1),
    (Mutation::Notification, 0),
    (Mutation::DuplicateKey, 0),
    (Mutation::CaseKey, 0),
    (Mutation::CaseKey, 1),
    (Mutation::IdType, 1),
    (Mutation::IdType, 2),
    (Mutation::ParamsShape, 0),
    (Mutation::ParamsShape, 1),
    (Mutation::ParamsShape, 2),
    (Mutation::ParamsShape, 3),
    (Mutation::Encoding, 0),
    (Mutation::Encoding, 2),
];

/// Why a tool is denied.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Denied {
    Hidden,
    Action,
    Unlisted,
}

impl Planner<'_> {
    /// Every hidden tool, every tool whose action is not allow, and under
    /// default deny an unlisted one.
    pub(super) fn access(&mut self) {
        let policy = self.world.policy;
        let first_tool = self
            .world
            .tools
            .tools()
            .first()
            .map(|t| t.name().to_owned());
        if !policy.hide.is_empty() {
            let rule = self.top_level("hide");
            for name in &policy.hide {
                let target = if name == WILDCARD {
                    first_tool.clone()
                } else {
                    Some(name.clone())
                };
                if let Some(t) = target {
                    self.denied(&t, &rule, Denied::Hidden);
                }
            }
        }
        for r in &policy.tools {
            if r.action == Action::Allow {
                continue;
            }
            let target = if r.name == WILDCARD {
                first_tool.clone()
            } else {
                Some(r.name.clone())
            };
            if let Some(t) = target {
                let rule = self.rule_ref(&r.loc);
                self.denied(&t, &rule, Denied::Action);
            }
        }
        if policy.default == DefaultAction::Deny {
            // A tool the manifest serves but the policy does not name, else a
            // made-up one; none when `hide: ["*"]` hides every name already.
            let free = |n: &String| policy.tool_rule(n).is_none() && !policy.is_hidden(n);
            let unlisted = self
                .world
                .tools
                .tools()
                .iter()
                .map(|t| t.name().to_owned())
                .find(free)
                .or_else(|| {
                    (1..100)
                        .map(|i| match i {
                            1 => crate::manifest::UNLISTED_TOOL.to_owned(),
                            n => format!("{}_{n}", crate::manifest::UNLISTED_TOOL),
                        })
                        .find(free)
                });
            if let Some(target) = unlisted {
                let rule = self.top_level("default");
                self.denied(&target, &rule, Denied::Unlisted);
            }
        }
    }

    fn denied(&mut self, target: &str, rule: &RuleRef, why: Denied) {
        let w = &self.world;
        let target = w.call_name(target);
        let args = w.tool(&target).map_or_else(
            || json!({}),
            |t| crate::generate::valid(&t.entry().input_schema, 0),
        );
        let innocent = w
            .admitted_tools()
            .into_iter()
            .map(|(n, _)| n)
            .find(|n| lenient_key(n) != lenient_key(&target))
            .unwrap_or_else(|| target.clone());
        let prefix = match why {
            Denied::Hidden => "hidden-",
            Denied::Action => "deny-",
            Denied::Unlisted => "unlisted-",
        };
        let slug = short_slug(&format!("{prefix}{}", tool_slug(&target)), SLUG_MAX);
        let cause = match why {
            Denied::Hidden => "hides",
            Denied::Action => "denies",
            Denied::Unlisted => "leaves unlisted under default deny",
        };
        let what = format!(
            "Derived from {}, which {cause} `{target}`.",
            Self::cite(rule)
        );
        let base = |id: String, title: String, category: Category, text: String| ScenarioDraft {
            id,
            title,
            category,
            severity: Severity::Critical,
            description: format!("{what} {text}"),
            references: vec!["MCP02:2025", "ASI02", "derived-plan"],
            rule: rule.clone(),
            transport: TransportFilter::Any,
            revision: None,
            steps: Vec::new(),
        };

        // Name variants.
        let mut spellings: Vec<String> = Vec::new();
        for (v, pick) in FOLDING {
            let s = names::variant(&target, v, pick);
            if s != target && lenient_key(&s) == lenient_key(&target) && !spellings.contains(&s) {
                spellings.push(s);
            }
        }
        let lookalikes = self.world.policy.default == DefaultAction::Deny;
        if lookalikes {
            // Look-alikes name no listed tool, so default deny refuses them too.
            for v in [Variant::Homoglyph, Variant::Separator] {
                let s = names::variant(&target, v, 0);
                if s != target && !self.world.reachable(&s) && !spellings.contains(&s) {
                    spellings.push(s);
                }
            }
        }
        let id = self.id(&slug, Pattern::Names);
        let mut d = base(
            id,
            format!("Name variants of `{target}`"),
            Category::NameConfusion,
            format!(
                "{} spellings a lenient server folds back to it (case, whitespace, full-width and invisible characters{}) must be refused like the name itself{}.",
                spellings.len(),
                if lookalikes {
                    "; under default deny, look-alikes too"
                } else {
                    ""
                },
                if why == Denied::Hidden {
                    ", after a tools/list that must not show it"
                } else {
                    ""
                },
            ),
        );
        d.references.push("tool-name-confusion");
        if why == Denied::Hidden {
            d.steps.push(StepDraft::once(Send::List));
        }
        for s in spellings {
            d.steps
                .push(StepDraft::once(self.world.send(&s, &args, None)));
        }
        self.push(Pattern::Names, d);

        // Smuggling frames.
        let id = self.id(&slug, Pattern::Framing);
        let mut d = base(
            id,
            format!("Smuggling frames around `{target}`"),
            Category::Framing,
            format!(
                "The call rides in {} frames a parser may misread: behind `{innocent}` in batches, as a notification, under duplicate or case-variant keys, with odd ids, params of other shapes, a byte-order mark and a method in odd case. None may reach the server.",
                FRAMES.len()
            ),
        );
        d.references.push("parser-differential");
        for (i, (m, pick)) in FRAMES.iter().enumerate() {
            let f = frames::frame(*m, *pick, &target, &innocent, &args, i as u64 + 1);
            d.steps.push(StepDraft::once(Send::Raw {
                text: f.text,
                headers: f.headers,
            }));
        }
        self.push(Pattern::Framing, d);

        // Routing headers (2026-07-28, HTTP only).
        let id = self.id(&slug, Pattern::Headers);
        let mut d = base(
            id,
            format!("Mcp-Name names `{innocent}`, the body calls `{target}`"),
            Category::HeaderMismatch,
            "An enforcer that routes on the 2026-07-28 Mcp-Name header judges the allowed tool while the server runs the body.".into(),
        );
        d.references.push("header-body-mismatch");
        d.transport = TransportFilter::Http;
        d.revision = Some("2026-07-28");
        let f = frames::frame(Mutation::HeaderMismatch, 0, &target, &innocent, &args, 1);
        d.steps.push(StepDraft::once(Send::Raw {
            text: f.text,
            headers: f.headers,
        }));
        self.push(Pattern::Headers, d);
    }

    /// Every tool the policy admits, called once with admitted arguments:
    /// the over-blocking probe, in runs that stay within every limit.
    pub(super) fn allowed(&mut self) {
        let calls: Vec<(String, Value)> = self.world.admitted_tools();
        if calls.is_empty() {
            let rule = self.top_level("tools");
            self.leave_out(
                &rule,
                Pattern::Allowed,
                "no tool of the manifest is admitted with arguments its schema accepts",
            );
            return;
        }
        let runs = self.world.runs(&calls, self.opts.max_probes);
        let count = runs.len();
        for (n, run) in runs.into_iter().enumerate() {
            let first = &calls[run.start].0;
            let rule = match self.world.policy.tool_rule(first) {
                Some(r) => self.rule_ref(&r.loc),
                None => self.top_level("default"),
            };
            let id = self.id("tools", Pattern::Allowed);
            let part = if count > 1 {
                format!(" ({} of {count})", n + 1)
            } else {
                String::new()
            };
            let mut d = ScenarioDraft {
                id,
                title: format!("Every allowed tool runs{part}"),
                category: Category::ToolAccess,
                severity: Severity::Low,
                description: format!(
                    "Derived from the tools {} admits, starting with {}. Each of {} tools is called once with arguments the policy and the schema accept, within every limit: a refusal is over-blocking, which pushes teams to loosen or bypass the policy.",
                    self.file,
                    Self::cite(&rule),
                    run.len()
                ),
                references: vec!["MCP07:2025", "over-blocking", "derived-plan"],
                rule,
                transport: TransportFilter::Any,
                revision: None,
                steps: Vec::new(),
            };
            for (tool, args) in &calls[run] {
                d.steps
                    .push(StepDraft::once(self.world.send(tool, args, None)));
            }
            self.push(Pattern::Allowed, d);
        }
    }
}
