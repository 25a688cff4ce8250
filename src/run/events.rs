//! The typed events a run emits. Reporters read these and nothing else, so
//! a saved stream of them re-renders into any format later.

use serde::{Deserialize, Serialize};

pub use super::bench::{BenchReport, Tick};
pub use super::latency::{LatencySeries, SeriesKind};
use crate::oracle::{ScenarioJudgement, Verdict};
use crate::scenario::{Category, Scenario, Severity};
use crate::target::Transport;

/// Something that happened during a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted(RunInfo),
    ScenarioStarted {
        index: usize,
        id: String,
    },
    ScenarioFinished(Box<ScenarioReport>),
    RunFinished(RunSummary),
    /// A load phase (`target`, `baseline` or `relay`) starts a slice
    /// against `target`: slice `round` (from 1) of `rounds`.
    BenchPhase {
        name: String,
        target: String,
        round: u32,
        rounds: u32,
    },
    /// A load phase closed an interval: what the live view shows.
    BenchTick {
        name: String,
        tick: Tick,
    },
    /// A load run's figures (`gauntlet bench`, `gauntlet merge`).
    Bench(Box<BenchReport>),
}

/// What a run is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    pub version: String,
    pub target: String,
    pub transport: Transport,
    pub seed: u64,
    pub scenarios: usize,
    pub control: bool,
    /// When the run started, RFC 3339 in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
}

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Every invariant held (and the control landed).
    Passed,
    /// At least one finding.
    Failed,
    /// The control run did not land: the scenario proves nothing.
    Broken,
    /// Not applicable to this target's transport.
    Skipped,
    /// The harness could not run it.
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Broken => "broken",
            Status::Skipped => "skipped",
            Status::Error => "error",
        }
    }
}

/// The control run, in brief.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlReport {
    pub landed: bool,
    pub arrivals: u64,
    pub leaks: usize,
}

/// One scenario's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioReport {
    pub id: String,
    pub title: String,
    pub category: Category,
    pub severity: Severity,
    pub description: String,
    pub references: Vec<String>,
    pub file: String,
    /// The MCP protocol revision the client spoke.
    #[serde(default)]
    pub revision: String,
    /// The policy file the scenario ran under (the scenario file itself for
    /// an inline policy), so reports can point into it.
    #[serde(default)]
    pub policy_file: String,
    /// The policy's text, so a published page shows what was enforced.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy_text: String,
    pub policy_hash: String,
    /// The rule a scenario derived from the policy attacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<crate::scenario::RuleRef>,
    pub status: Status,
    pub target: Option<ScenarioJudgement>,
    pub control: Option<ControlReport>,
    pub duration_ms: u64,
    pub errors: Vec<String>,
    /// A command line that replays this scenario alone.
    pub replay: String,
}

impl ScenarioReport {
    pub(crate) fn new(s: &Scenario, replay_prefix: &str) -> ScenarioReport {
        ScenarioReport {
            id: s.id.clone(),
            title: s.title.clone(),
            category: s.category,
            severity: s.severity,
            description: s.description.clone(),
            references: s.references.clone(),
            file: s.path.display().to_string(),
            revision: s.revision.as_str().to_owned(),
            policy_file: match &s.policy {
                crate::scenario::PolicySource::File(p) => p.display().to_string(),
                crate::scenario::PolicySource::Inline(_) => s.path.display().to_string(),
            },
            policy_text: String::new(),
            policy_hash: String::new(),
            rule: s.rule.clone(),
            status: Status::Error,
            target: None,
            control: None,
            duration_ms: 0,
            errors: Vec::new(),
            replay: format!("{replay_prefix} --attacks {}", s.id),
        }
    }

    pub(crate) fn derive_status(&self) -> Status {
        let failed = self.target.as_ref().is_some_and(|t| !t.findings.is_empty());
        if failed {
            return Status::Failed;
        }
        if self.control.as_ref().is_some_and(|c| !c.landed) {
            return Status::Broken;
        }
        if self.target.is_none() {
            return Status::Error;
        }
        Status::Passed
    }

    /// The verdicts of the target run, counted.
    pub fn verdict_counts(&self) -> Vec<(Verdict, usize)> {
        let mut counts: Vec<(Verdict, usize)> = Vec::new();
        for c in self.target.iter().flat_map(|t| &t.calls) {
            match counts.iter_mut().find(|(v, _)| *v == c.verdict) {
                Some(e) => e.1 += 1,
                None => counts.push((c.verdict, 1)),
            }
        }
        counts
    }
}

/// The run, counted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunSummary {
    pub passed: usize,
    pub failed: usize,
    pub broken: usize,
    pub skipped: usize,
    pub errors: usize,
    pub interrupted: bool,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl RunSummary {
    pub(crate) fn count(&mut self, status: Status) {
        match status {
            Status::Passed => self.passed += 1,
            Status::Failed => self.failed += 1,
            Status::Broken => self.broken += 1,
            Status::Skipped => self.skipped += 1,
            Status::Error => self.errors += 1,
        }
    }

    /// The process exit code: 0 clean, 1 findings, 2 harness trouble.
    pub fn exit_code(&self) -> u8 {
        if self.errors > 0 || self.broken > 0 || self.interrupted || self.message.is_some() {
            2
        } else if self.failed > 0 {
            1
        } else {
            0
        }
    }
}
