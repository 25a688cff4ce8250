//! Attack plans derived from a policy: the catalogue's patterns instantiated
//! against one policy's own rules and tools.
//!
//! - every limit gets a bulk, a race, a rotation and a window-edge attack;
//! - every `increment_from` gets counter poisoning (negative, zero, float,
//!   huge and non-number amounts);
//! - every denied, hidden or (under default deny) unlisted tool gets name
//!   variants and smuggling frames;
//! - every condition gets boundary values, type confusions and path tricks;
//! - the tools the policy allows get one call each, an over-blocking probe.
//!
//! A derived scenario is the catalogue's TOML, loaded by the catalogue's own
//! loader; it names the rule it attacks (file, line, JSON pointer or YAML
//! path) in `[rule]`, so reports point at it. Expectations are not written
//! down: the oracle derives them from the policy, as for catalogue files.
//! Output is deterministic: ids are `plan-<rule>-<pattern>` and arguments
//! come from the schema generator with fixed seeds.
//!
//! A pattern that cannot run fast or cannot land on a bare mock (a limit on a
//! tool the manifest lacks, a window edge a day away) is left out with its
//! reason, never silently.

mod access;
mod args;
pub mod cli;
mod conditions;
mod draft;
mod limits;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::mock::catalogue::Catalogue;
use crate::policy::{Dialect, Policy, RuleLoc};
use crate::scenario::{Loader, PolicySource, RuleRef, Scenario, ScenarioError};
use args::World;
use draft::{PolicyRef, ScenarioDraft};

/// Which catalogue pattern a derived scenario instantiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// Calls past a limit, one after another.
    Bulk,
    /// Calls past a limit, all in flight at once.
    Race,
    /// Calls past a limit spread over sessions or grants.
    Rotation,
    /// A burst straddling the limit's window edge.
    WindowEdge,
    /// Negative `increment_from` amounts, then honest ones.
    PoisonNegative,
    /// Zero amounts, then honest ones.
    PoisonZero,
    /// Fractional amounts, then honest ones.
    PoisonFloat,
    /// Amounts past any counter's range, then honest ones.
    PoisonHuge,
    /// Strings, lists, booleans and nulls as amounts, then honest ones.
    PoisonString,
    /// Spellings of a denied tool's name that a lenient server folds back.
    Names,
    /// A denied call inside batches, notifications, duplicate keys, ...
    Framing,
    /// 2026-07-28 routing headers that name an allowed tool.
    Headers,
    /// A condition's value at its edge, one step either side, respelled.
    Boundary,
    /// A condition's value of another type, or missing.
    Types,
    /// The condition's key duplicated or escaped in the frame.
    Paths,
    /// Every allowed tool called once: nothing may be over-blocked.
    Allowed,
}

impl Pattern {
    /// The word in ids and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::Bulk => "bulk",
            Pattern::Race => "race",
            Pattern::Rotation => "rotation",
            Pattern::WindowEdge => "window-edge",
            Pattern::PoisonNegative => "poison-negative",
            Pattern::PoisonZero => "poison-zero",
            Pattern::PoisonFloat => "poison-float",
            Pattern::PoisonHuge => "poison-huge",
            Pattern::PoisonString => "poison-string",
            Pattern::Names => "names",
            Pattern::Framing => "framing",
            Pattern::Headers => "headers",
            Pattern::Boundary => "boundary",
            Pattern::Types => "types",
            Pattern::Paths => "paths",
            Pattern::Allowed => "allowed",
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bounds that keep a derived plan fast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// How much faster than the wall clock the enforcer's clock will run
    /// (`--time-scale`): windows read in its time.
    pub time_scale: f64,
    /// Most calls one limit pattern may send; a limit that needs more to be
    /// passed is left out.
    pub max_sends: u32,
    /// Longest wall-clock wait for a window edge, in seconds.
    pub max_edge_wait_s: f64,
    /// Most probes (values, tools) in one scenario.
    pub max_probes: usize,
    /// Whether the plan runs with control runs. They talk to the bare mock
    /// in wall-clock time, so a window edge must be near in wall time too.
    pub control: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            time_scale: 1.0,
            max_sends: 200,
            max_edge_wait_s: 3.0,
            max_probes: 24,
            control: true,
        }
    }
}

/// One derived scenario.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The pattern it instantiates.
    pub pattern: Pattern,
    /// The scenario, loaded from `toml`.
    pub scenario: Scenario,
    /// The scenario file's text.
    pub toml: String,
}

/// A pattern the planner did not derive, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    pub rule: RuleRef,
    pub pattern: Pattern,
    pub reason: String,
}

/// A policy's derived attacks.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The policy file's name, as scenarios refer to it.
    pub policy_file: String,
    /// The derived scenarios, by category then id.
    pub items: Vec<Planned>,
    /// Patterns left out, in rule order.
    pub left_out: Vec<LeftOut>,
}

impl Plan {
    /// The derived scenarios.
    pub fn scenarios(&self) -> Vec<Scenario> {
        self.items.iter().map(|p| p.scenario.clone()).collect()
    }

    /// Messages sent over every scenario.
    pub fn sends(&self) -> u64 {
        self.items.iter().map(|p| p.scenario.total_sends()).sum()
    }

    /// Writes the plan as a catalogue: `<dir>/<category>/<id>.toml`, and
    /// the policy under `<dir>/policies/` when it came from a file.
    pub fn save(&self, dir: &Path, source: &PolicySource) -> Result<Vec<PathBuf>, PlanError> {
        let write = |path: &Path, bytes: &[u8]| {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| PlanError::write(parent, e))?;
            }
            std::fs::write(path, bytes).map_err(|e| PlanError::write(path, e))
        };
        let mut written = Vec::new();
        if let PolicySource::File(src) = source {
            let bytes = std::fs::read(src).map_err(|e| PlanError::read(src, e))?;
            let to = dir
                .join(crate::scenario::POLICIES_DIR)
                .join(&self.policy_file);
            write(&to, &bytes)?;
            written.push(to);
        }
        for p in &self.items {
            let to = dir
                .join(p.scenario.category.as_str())
                .join(format!("{}.toml", p.scenario.id));
            write(&to, p.toml.as_bytes())?;
            written.push(to);
        }
        Ok(written)
    }
}

/// Why a plan could not be derived or saved.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("reading `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("writing `{path}`: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("a derived scenario does not load (a planner bug): {0}")]
    Derived(Box<ScenarioError>),
    #[error("{0}")]
    Policy(String),
    #[error("tool manifest `{path}`: {message}")]
    Manifest { path: String, message: String },
}

impl PlanError {
    fn read(path: &Path, source: std::io::Error) -> PlanError {
        PlanError::Read {
            path: path.display().to_string(),
            source,
        }
    }

    fn write(path: &Path, source: std::io::Error) -> PlanError {
        PlanError::Write {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Derives the plan of `policy` (read from `source`) over `tools`, within
/// the default bounds.
pub fn derive(
    policy: &Policy,
    source: &PolicySource,
    tools: &Catalogue,
) -> Result<Plan, PlanError> {
    derive_with(policy, source, tools, &Options::default())
}

/// Derives the plan of `policy` within `opts`.
pub fn derive_with(
    policy: &Policy,
    source: &PolicySource,
    tools: &Catalogue,
    opts: &Options,
) -> Result<Plan, PlanError> {
    let (text, file) = match source {
        PolicySource::File(path) => (
            std::fs::read_to_string(path).map_err(|e| PlanError::read(path, e))?,
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        ),
        PolicySource::Inline(text) => (text.clone(), "policy_inline".to_owned()),
    };
    let mut planner = Planner {
        world: World { policy, tools },
        file: file.clone(),
        text: &text,
        opts,
        drafts: Vec::new(),
        left_out: Vec::new(),
        ids: BTreeSet::new(),
    };
    planner.limits();
    planner.access();
    planner.conditions();
    planner.allowed();

    let (loader, policy_ref) = match source {
        PolicySource::File(path) => (
            Loader::new(path.parent().unwrap_or_else(|| Path::new("."))),
            PolicyRef::File(&file),
        ),
        PolicySource::Inline(text) => (Loader::new("."), PolicyRef::Inline(text)),
    };
    let mut items = Vec::with_capacity(planner.drafts.len());
    for (pattern, d) in planner.drafts {
        let toml = d.to_toml(&policy_ref);
        let path = Path::new("plan")
            .join(d.category.as_str())
            .join(format!("{}.toml", d.id));
        let scenario = loader
            .load_str(&toml, &path)
            .map_err(|e| PlanError::Derived(Box::new(e)))?;
        items.push(Planned {
            pattern,
            scenario,
            toml,
        });
    }
    items.sort_by(|a, b| {
        (a.scenario.category, &a.scenario.id).cmp(&(b.scenario.category, &b.scenario.id))
    });
    Ok(Plan {
        policy_file: file,
        items,
        left_out: planner.left_out,
    })
}

/// Longest rule slug in an id: `plan-` + slug + `-poison-negative` + a
/// run suffix (`-12`) stays within the loader's 64 characters.
const SLUG_MAX: usize = 64 - "plan-".len() - "-poison-negative".len() - 3;

/// A short slug for a tool: whole when it fits 20 characters, else its last
/// word (`WizCommerce Open API_PostCustomers` → `postcustomers`).
fn tool_slug(name: &str) -> String {
    let full = draft::slug(name);
    if full.len() <= 20 {
        return if full.is_empty() { "tool".into() } else { full };
    }
    let mut words = full.rsplit('-');
    let last = words.next().unwrap_or_default();
    let out = match words.next() {
        Some(prev) if last.len() < 6 => format!("{prev}-{last}"),
        _ => last.to_owned(),
    };
    out.chars().take(24).collect()
}

/// A slug for a counter: Intercept names counters `tool.counter`, so the
/// tool part is shortened as tools are.
fn counter_slug(counter: &str) -> String {
    match counter.rsplit_once('.') {
        Some((tool, rest)) if !draft::slug(rest).is_empty() => draft::short_slug(
            &format!("{}-{}", tool_slug(tool), draft::slug(rest)),
            SLUG_MAX,
        ),
        _ => draft::short_slug(counter, SLUG_MAX),
    }
}

/// Collects drafts for one policy.
struct Planner<'a> {
    world: World<'a>,
    file: String,
    text: &'a str,
    opts: &'a Options,
    drafts: Vec<(Pattern, ScenarioDraft)>,
    left_out: Vec<LeftOut>,
    ids: BTreeSet<String>,
}

impl Planner<'_> {
    fn rule_ref(&self, loc: &RuleLoc) -> RuleRef {
        RuleRef {
            file: self.file.clone(),
            line: loc.line,
            pointer: loc.pointer.clone(),
        }
    }

    /// A top-level key (`hide`, `default`, `tools`) as a rule.
    fn top_level(&self, key: &str) -> RuleRef {
        let dialect = self.world.policy.source.dialect;
        RuleRef {
            file: self.file.clone(),
            line: crate::policy::top_level_line(self.text, dialect, key),
            pointer: match dialect {
                Dialect::Json => format!("/{key}"),
                Dialect::Yaml => key.to_owned(),
            },
        }
    }

    /// A fresh id `plan-<slug>-<pattern>`, numbered when taken.
    fn id(&mut self, slug: &str, pattern: Pattern) -> String {
        let base = format!("plan-{slug}-{}", pattern.as_str());
        let mut id = base.clone();
        let mut n = 2;
        while self.ids.contains(&id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        self.ids.insert(id.clone());
        id
    }

    fn leave_out(&mut self, rule: &RuleRef, pattern: Pattern, reason: impl Into<String>) {
        self.left_out.push(LeftOut {
            rule: rule.clone(),
            pattern,
            reason: reason.into(),
        });
    }

    fn push(&mut self, pattern: Pattern, mut draft: ScenarioDraft) {
        // Names come from the policy: keep the title one line of at most
        // 120 characters, as the loader wants.
        let flat: String = draft
            .title
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        draft.title = if flat.chars().count() > 120 {
            let cut: String = flat.chars().take(119).collect();
            format!("{cut}…")
        } else {
            flat
        };
        self.drafts.push((pattern, draft));
    }

    /// "rule `…` at file:line" for descriptions.
    fn cite(rule: &RuleRef) -> String {
        match rule.line {
            Some(l) => format!("rule `{}` at {}:{l}", rule.pointer, rule.file),
            None => format!("rule `{}` in {}", rule.pointer, rule.file),
        }
    }
}
