//! Raw file → typed scenario: every range, exclusivity and cross-field rule,
//! each failure tied to its line and field.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::error::{Diagnostic, ScenarioError};
use super::locate::{FieldPath, Locator};
use super::raw::{RawScenario, RawStep};
use super::types::{
    Category, DEFAULT_IDENTITY, DEFAULT_SESSION, Expect, Generation, Rule, RuleRef, SessionSpec,
    Severity, Step, TransportFilter, Who,
};
use crate::mcp::Revision;

/// Most sends one step may make.
pub const MAX_REPEAT: i64 = 10_000;
/// Calls in flight at once.
pub const MAX_CONCURRENCY: i64 = 256;
/// Fresh sessions one step may rotate over.
pub const MAX_SESSIONS: i64 = 64;
/// Grants one step may rotate over.
pub const MAX_IDENTITIES: usize = 64;
/// Longest wait a step may ask for.
pub const MAX_DELAY_MS: i64 = 60_000;
/// Steps in one scenario.
pub const MAX_STEPS: usize = 1_000;
/// Messages one scenario may send in all.
pub const MAX_TOTAL_SENDS: u64 = 100_000;

static ID_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]+(-[a-z0-9]+)*$").ok());
static LABEL_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$").ok());
static REFERENCE_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^(MCP(0[1-9]|10):2025|LLM(0[1-9]|10):2025|ASI(0[1-9]|10)|[a-z0-9]+(-[a-z0-9]+)*)$")
        .ok()
});

fn matches(re: &LazyLock<Option<Regex>>, s: &str) -> bool {
    re.as_ref().is_some_and(|r| r.is_match(s))
}

/// What the caller knows about the file beyond its text.
pub struct FileFacts<'a> {
    /// The name used in messages.
    pub display: &'a str,
    /// The file stem, which must equal the id.
    pub stem: Option<&'a str>,
    /// The parent folder's name, which must equal the category when set.
    pub folder: Option<&'a str>,
}

/// A scenario before its policy is resolved and loaded.
pub struct Draft {
    /// Everything but the policy, which `policy` names.
    pub fields: DraftFields,
    /// `policy` or `policy_inline` as written.
    pub policy: RawPolicy,
    /// Where the policy field sits, for policy errors.
    pub policy_field: FieldPath,
}

/// The policy reference as written.
pub enum RawPolicy {
    /// A name under `policies/`.
    File(String),
    /// Policy text.
    Inline(String),
}

/// The checked fields of a scenario.
pub struct DraftFields {
    pub id: String,
    pub title: String,
    pub category: Category,
    pub severity: Severity,
    pub description: String,
    pub references: Vec<String>,
    pub revision: Revision,
    pub transport: TransportFilter,
    pub strict_mock: bool,
    pub steps: Vec<Step>,
    pub expect: Expect,
    pub rule: Option<RuleRef>,
}

/// Collects diagnostics for one file.
pub struct Ctx<'a> {
    file: &'a str,
    loc: Locator<'a>,
    pub diags: Vec<Diagnostic>,
}

impl<'a> Ctx<'a> {
    /// A context for `src`, named `file` in messages.
    pub fn new(file: &'a str, src: &'a str) -> Ctx<'a> {
        Ctx {
            file,
            loc: Locator::new(src),
            diags: Vec::new(),
        }
    }

    /// A problem at a field; a missing field is placed at the table that
    /// should have held it.
    pub fn err(&mut self, path: &FieldPath, message: impl Into<String>) {
        let at = self.loc.find_nearest(path);
        self.diags.push(Diagnostic {
            file: self.file.to_owned(),
            line: at.line,
            column: at.column,
            field: path.to_string(),
            message: message.into(),
        });
    }

    /// The diagnostic for a serde error, located by its span.
    fn serde_error(&mut self, src: &str, e: &toml::de::Error) {
        let (at, field) = match e.span() {
            Some(span) => (
                super::locate::line_col(src, span.start),
                self.loc.path_at(span.start).to_string(),
            ),
            None => (super::locate::line_col(src, 0), String::new()),
        };
        self.diags.push(Diagnostic {
            file: self.file.to_owned(),
            line: at.line,
            column: at.column,
            field,
            message: e.message().trim_end().to_owned(),
        });
    }

    /// Ends the file: an error if any problem was seen.
    pub fn finish<T>(mut self, value: T) -> Result<T, ScenarioError> {
        self.diags.sort_by_key(|d| (d.line, d.column));
        if self.diags.is_empty() {
            Ok(value)
        } else {
            Err(ScenarioError::Invalid(self.diags))
        }
    }
}

/// Parses and checks one file's text.
pub fn draft(src: &str, facts: &FileFacts<'_>) -> Result<Draft, ScenarioError> {
    let mut cx = Ctx::new(facts.display, src);
    let raw: RawScenario = match toml::from_str(src) {
        Ok(r) => r,
        Err(e) => {
            cx.serde_error(src, &e);
            return Err(ScenarioError::Invalid(cx.diags));
        }
    };
    let d = check(&mut cx, raw, facts);
    cx.finish(d)
}

fn check(cx: &mut Ctx<'_>, raw: RawScenario, facts: &FileFacts<'_>) -> Draft {
    let key = FieldPath::key;
    if !matches(&ID_RE, &raw.id) || raw.id.len() > 64 {
        cx.err(
            &key("id"),
            format!(
                "`{}` is not a kebab-case id (a-z, 0-9 and single dashes, at most 64 characters)",
                raw.id
            ),
        );
    }
    if let Some(stem) = facts.stem
        && stem != raw.id
    {
        cx.err(
            &key("id"),
            format!("`{}` must equal the file name `{stem}`", raw.id),
        );
    }
    if let Some(folder) = facts.folder
        && folder != raw.category.as_str()
    {
        cx.err(
            &key("category"),
            format!(
                "`{}` must equal the folder name `{folder}`",
                raw.category.as_str()
            ),
        );
    }
    if raw.title.trim().is_empty() || raw.title.contains('\n') || raw.title.chars().count() > 120 {
        cx.err(
            &key("title"),
            "must be one non-empty line of at most 120 characters",
        );
    }
    if raw.description.trim().is_empty() {
        cx.err(&key("description"), "must not be empty");
    }
    if raw.references.is_empty() {
        cx.err(&key("references"), "name at least one reference");
    }
    for (i, r) in raw.references.iter().enumerate() {
        let mut p = key("references");
        p.0.push(super::locate::Seg::Index(i));
        if !matches(&REFERENCE_RE, r) {
            cx.err(
                &p,
                format!("`{r}` is not a reference: expected `MCP01:2025`..`MCP10:2025`, `LLM01:2025`..`LLM10:2025`, `ASI01`..`ASI10`, or a kebab-case slug"),
            );
        } else if raw.references[..i].contains(r) {
            cx.err(&p, format!("`{r}` is listed twice"));
        }
    }
    let policy = match (raw.policy, raw.policy_inline) {
        (Some(f), None) => RawPolicy::File(f),
        (None, Some(t)) => RawPolicy::Inline(t),
        (Some(f), Some(_)) => {
            cx.err(
                &key("policy_inline"),
                "give `policy` or `policy_inline`, not both",
            );
            RawPolicy::File(f)
        }
        (None, None) => {
            cx.err(
                &FieldPath::default(),
                "missing field `policy` (or `policy_inline`)",
            );
            RawPolicy::Inline(String::new())
        }
    };
    let policy_field = match policy {
        RawPolicy::File(_) => key("policy"),
        RawPolicy::Inline(_) => key("policy_inline"),
    };
    let revision = match raw.revision.as_deref() {
        None => Revision::LATEST_STATEFUL,
        Some(s) => s.parse().unwrap_or_else(|e: String| {
            cx.err(&key("revision"), e);
            Revision::LATEST_STATEFUL
        }),
    };
    let transport = raw.transport.unwrap_or_default();
    if raw.step.is_empty() {
        cx.err(
            &FieldPath::default(),
            "a scenario needs at least one `[[step]]`",
        );
    }
    if raw.step.len() > MAX_STEPS {
        cx.err(
            &FieldPath::step(MAX_STEPS),
            format!("at most {MAX_STEPS} steps, got {}", raw.step.len()),
        );
    }
    let mut sessions_seen: HashMap<String, usize> = HashMap::new();
    let steps: Vec<Step> = raw
        .step
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            super::step::check_step(
                cx,
                i,
                s,
                &super::step::StepEnv {
                    transport,
                    revision,
                },
                &mut sessions_seen,
            )
        })
        .collect();
    let total: u64 = steps.iter().map(|s| u64::from(s.repeat)).sum();
    if total > MAX_TOTAL_SENDS {
        cx.err(
            &FieldPath::default(),
            format!("the steps send {total} messages in all; at most {MAX_TOTAL_SENDS}"),
        );
    }
    let mut expect = Expect::default();
    if let Some(e) = raw.expect {
        let p = key("expect");
        if let Some(n) = e.max_arrivals {
            match u64::try_from(n) {
                Ok(n) => expect.max_arrivals = Some(n),
                Err(_) => cx.err(
                    &p.then("max_arrivals"),
                    format!("must not be negative, got {n}"),
                ),
            }
        }
        expect.no_success = e.no_success.unwrap_or(false);
    }
    let rule = raw.rule.map(|r| {
        let p = key("rule");
        if r.file.trim().is_empty() {
            cx.err(&p.then("file"), "must not be empty");
        }
        let line = r.line.and_then(|n| match u32::try_from(n) {
            Ok(l) if l >= 1 => Some(l),
            _ => {
                cx.err(
                    &p.then("line"),
                    format!("must be a line number from 1, got {n}"),
                );
                None
            }
        });
        RuleRef {
            file: r.file,
            line,
            pointer: r.pointer,
        }
    });
    Draft {
        fields: DraftFields {
            id: raw.id,
            title: raw.title,
            category: raw.category,
            severity: raw.severity,
            description: raw.description,
            references: raw.references,
            revision,
            transport,
            strict_mock: raw.strict_mock.unwrap_or(false),
            steps,
            expect,
            rule,
        },
        policy,
        policy_field,
    }
}

/// Checks a label (an identity or a session name).
pub fn check_label(cx: &mut Ctx<'_>, path: &FieldPath, s: &str) {
    if !matches(&LABEL_RE, s) {
        cx.err(
            path,
            format!(
                "`{s}` is not a label: 1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit"
            ),
        );
    }
}

/// Converts a TOML value to JSON; `None` (with a diagnostic) when it has no
/// JSON form.
pub fn toml_to_json(cx: &mut Ctx<'_>, path: &FieldPath, v: toml::Value) -> Option<Value> {
    Some(match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => match serde_json::Number::from_f64(f) {
            Some(n) => Value::Number(n),
            None => {
                cx.err(
                    path,
                    format!("`{f}` has no JSON form; use a raw step to send it"),
                );
                return None;
            }
        },
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => {
            cx.err(
                path,
                format!("the datetime `{d}` has no JSON form; quote it"),
            );
            return None;
        }
        toml::Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for (i, item) in a.into_iter().enumerate() {
                let mut p = path.clone();
                p.0.push(super::locate::Seg::Index(i));
                out.push(toml_to_json(cx, &p, item)?);
            }
            Value::Array(out)
        }
        toml::Value::Table(t) => {
            let mut out = serde_json::Map::with_capacity(t.len());
            for (k, item) in t {
                let p = path.then(&k);
                out.insert(k, toml_to_json(cx, &p, item)?);
            }
            Value::Object(out)
        }
    })
}

/// Reads an optional integer within `lo..=hi`.
pub fn int_in(
    cx: &mut Ctx<'_>,
    path: &FieldPath,
    v: Option<i64>,
    default: i64,
    lo: i64,
    hi: i64,
) -> i64 {
    match v {
        None => default,
        Some(n) if (lo..=hi).contains(&n) => n,
        Some(n) => {
            cx.err(path, format!("must be between {lo} and {hi}, got {n}"));
            default
        }
    }
}

/// The parts of a step that are kept whatever its kind.
pub struct Common {
    pub repeat: u32,
    pub concurrency: u32,
    pub who: Who,
    pub session: SessionSpec,
}

/// Reads repeat, concurrency, grants and sessions of one step.
pub fn common(cx: &mut Ctx<'_>, at: &FieldPath, s: &mut RawStep) -> Common {
    let repeat = int_in(cx, &at.then("repeat"), s.repeat, 1, 1, MAX_REPEAT);
    let concurrency = int_in(
        cx,
        &at.then("concurrency"),
        s.concurrency,
        1,
        1,
        MAX_CONCURRENCY,
    );
    if concurrency > repeat {
        cx.err(
            &at.then("concurrency"),
            format!(
                "{concurrency} calls in flight but only {repeat} sent: must not exceed `repeat`"
            ),
        );
    }
    let who = match (s.identity.take(), s.identities.take()) {
        (Some(id), None) => {
            check_label(cx, &at.then("identity"), &id);
            Who::Identity(id)
        }
        (None, Some(ids)) => {
            let p = at.then("identities");
            if ids.is_empty() || ids.len() > MAX_IDENTITIES {
                cx.err(
                    &p,
                    format!("list 1 to {MAX_IDENTITIES} identities, got {}", ids.len()),
                );
            }
            for (i, id) in ids.iter().enumerate() {
                let mut q = p.clone();
                q.0.push(super::locate::Seg::Index(i));
                check_label(cx, &q, id);
                if ids[..i].contains(id) {
                    cx.err(&q, format!("`{id}` is listed twice"));
                }
            }
            Who::Rotate(ids)
        }
        (None, None) => Who::Identity(DEFAULT_IDENTITY.to_owned()),
        (Some(id), Some(_)) => {
            cx.err(
                &at.then("identities"),
                "give `identity` or `identities`, not both",
            );
            Who::Identity(id)
        }
    };
    let session = match (s.session.take(), s.sessions) {
        (Some(label), None) => {
            check_label(cx, &at.then("session"), &label);
            SessionSpec::Named(label)
        }
        (None, Some(n)) => {
            let n = int_in(cx, &at.then("sessions"), Some(n), 1, 1, MAX_SESSIONS);
            SessionSpec::Rotate(u32::try_from(n).unwrap_or(1))
        }
        (None, None) => SessionSpec::Named(DEFAULT_SESSION.to_owned()),
        (Some(label), Some(_)) => {
            cx.err(
                &at.then("sessions"),
                "give `session` or `sessions`, not both",
            );
            SessionSpec::Named(label)
        }
    };
    Common {
        repeat: u32::try_from(repeat).unwrap_or(1),
        concurrency: u32::try_from(concurrency).unwrap_or(1),
        who,
        session,
    }
}

/// Reads `generate`: `"valid"` or `{ violate = "<rule>" }`.
pub fn generation(cx: &mut Ctx<'_>, path: &FieldPath, v: toml::Value) -> Generation {
    const HELP: &str = "expected `\"valid\"` or `{ violate = \"<rule>\" }` with a rule of required, type, enum, format, max_length, min_length, additional, minimum";
    match v {
        toml::Value::String(s) if s == "valid" => Generation::Valid,
        toml::Value::Table(t) if t.len() == 1 => match t.get("violate") {
            Some(toml::Value::String(r)) => match rule(r) {
                Some(rule) => Generation::Violate(rule),
                None => {
                    cx.err(&path.then("violate"), format!("unknown rule `{r}`; {HELP}"));
                    Generation::Valid
                }
            },
            _ => {
                cx.err(path, HELP);
                Generation::Valid
            }
        },
        _ => {
            cx.err(path, HELP);
            Generation::Valid
        }
    }
}

fn rule(s: &str) -> Option<Rule> {
    [
        Rule::Required,
        Rule::Type,
        Rule::Enum,
        Rule::Format,
        Rule::MaxLength,
        Rule::MinLength,
        Rule::Additional,
        Rule::Minimum,
    ]
    .into_iter()
    .find(|r| r.as_str() == s)
}
