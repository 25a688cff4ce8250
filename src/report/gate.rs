//! The CI gate: which findings fail a run. `--fail-on` drops findings whose
//! scenario is less severe than a threshold; `--known-gaps` accepts listed
//! findings for now. A listed finding that no longer occurs is a stale entry
//! and fails too, so the list shrinks as gaps close.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use super::RunReport;
use crate::oracle::Check;
use crate::run::Status;
use crate::scenario::Severity;

/// The least severity that fails a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum FailOn {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl FailOn {
    fn admits(self, severity: Severity) -> bool {
        let rank = match severity {
            Severity::Info => FailOn::Info,
            Severity::Low => FailOn::Low,
            Severity::Medium => FailOn::Medium,
            Severity::High => FailOn::High,
            Severity::Critical => FailOn::Critical,
        };
        rank >= self
    }
}

/// One accepted finding.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownGap {
    /// The scenario id.
    pub scenario: String,
    /// The invariant it breaks, as in reports (`over-limit`, `forbidden-arrival`, ...).
    pub check: Check,
    /// Why it is accepted for now.
    pub reason: String,
}

/// A known-gaps file: `[[gap]]` tables in TOML, or a `gap:` list in YAML.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownGaps {
    #[serde(default)]
    pub gap: Vec<KnownGap>,
}

/// A known-gaps file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GapsError {
    #[error("reading `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("`{path}`: {message}")]
    Invalid { path: String, message: String },
}

impl KnownGaps {
    /// Reads a TOML (`.toml`) or YAML (anything else) known-gaps file.
    pub fn load(path: &Path) -> Result<KnownGaps, GapsError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GapsError::Read {
            path: shown.clone(),
            source,
        })?;
        let toml = path.extension().is_some_and(|e| e == "toml");
        KnownGaps::parse(&text, toml).map_err(|message| GapsError::Invalid {
            path: shown,
            message,
        })
    }

    /// Parses the text of a known-gaps file.
    pub fn parse(text: &str, toml: bool) -> Result<KnownGaps, String> {
        let gaps: KnownGaps = if toml {
            toml::from_str(text).map_err(|e| e.to_string())?
        } else {
            serde_norway::from_str(text).map_err(|e| e.to_string())?
        };
        let mut seen = BTreeSet::new();
        for g in &gaps.gap {
            if g.reason.trim().is_empty() {
                return Err(format!(
                    "the gap for `{}` ({}) needs a reason",
                    g.scenario,
                    check_name(g.check)
                ));
            }
            if !seen.insert((g.scenario.clone(), check_name(g.check))) {
                return Err(format!(
                    "`{}` ({}) is listed twice",
                    g.scenario,
                    check_name(g.check)
                ));
            }
        }
        Ok(gaps)
    }
}

fn check_name(check: Check) -> String {
    check.as_str().to_owned()
}

/// What the gate made of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateOutcome {
    /// `(scenario, check)` of findings that fail the run.
    pub failing: Vec<(String, String)>,
    /// Findings accepted by the known-gaps file.
    pub accepted: Vec<(String, String)>,
    /// Findings below the `--fail-on` threshold.
    pub below_threshold: usize,
    /// Known-gap entries whose finding no longer occurs.
    pub stale: Vec<(String, String)>,
    /// Scenarios that broke or could not run, and other harness trouble.
    pub harness_trouble: bool,
}

impl GateOutcome {
    /// The exit code: 2 harness trouble, 1 failing findings or stale gaps, 0 clean.
    pub fn exit_code(&self) -> u8 {
        if self.harness_trouble {
            2
        } else if !self.failing.is_empty() || !self.stale.is_empty() {
            1
        } else {
            0
        }
    }

    /// A few lines for stderr explaining the exit code.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        for (s, c) in &self.failing {
            out.push_str(&format!("gate: finding `{s}` ({c}) fails the run\n"));
        }
        for (s, c) in &self.stale {
            out.push_str(&format!(
                "gate: known gap `{s}` ({c}) no longer occurs: remove it from the known-gaps file\n"
            ));
        }
        if !self.accepted.is_empty() {
            out.push_str(&format!(
                "gate: {} finding(s) accepted as known gaps\n",
                self.accepted.len()
            ));
        }
        if self.below_threshold > 0 {
            out.push_str(&format!(
                "gate: {} finding(s) below the --fail-on threshold\n",
                self.below_threshold
            ));
        }
        out
    }
}

/// Applies the threshold and the known gaps to a run.
pub fn evaluate(report: &RunReport, fail_on: FailOn, gaps: &KnownGaps) -> GateOutcome {
    let sum = &report.summary;
    let mut out = GateOutcome {
        harness_trouble: sum.errors > 0
            || sum.broken > 0
            || sum.interrupted
            || sum.message.is_some(),
        ..GateOutcome::default()
    };
    let mut matched = BTreeSet::new();
    for s in &report.scenarios {
        // Each (scenario, check) counts once, however many findings share it.
        let checks: BTreeSet<String> = s
            .target
            .iter()
            .flat_map(|t| &t.findings)
            .map(|f| check_name(f.check))
            .collect();
        for check in checks {
            let key = (s.id.clone(), check);
            if gaps
                .gap
                .iter()
                .any(|g| g.scenario == key.0 && check_name(g.check) == key.1)
            {
                matched.insert(key.clone());
                out.accepted.push(key);
            } else if fail_on.admits(s.severity) {
                out.failing.push(key);
            } else {
                out.below_threshold += 1;
            }
        }
    }
    for g in &gaps.gap {
        let key = (g.scenario.clone(), check_name(g.check));
        if matched.contains(&key) {
            continue;
        }
        // Only a scenario that ran to a verdict can show that a gap closed;
        // one left out of this run, skipped or broken says nothing.
        let ran = report
            .scenarios
            .iter()
            .any(|s| s.id == g.scenario && matches!(s.status, Status::Passed | Status::Failed));
        if ran {
            out.stale.push(key);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_parse_and_unknown_fields_are_refused() {
        let toml =
            "[[gap]]\nscenario = \"fx-bulk\"\ncheck = \"over-limit\"\nreason = \"fixed in 0.2\"\n";
        let yaml = "gap:\n  - scenario: fx-bulk\n    check: over-limit\n    reason: fixed in 0.2\n";
        let a = KnownGaps::parse(toml, true).unwrap();
        let b = KnownGaps::parse(yaml, false).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.gap[0].check, Check::OverLimit);
        let extra =
            "gap:\n  - scenario: a\n    check: over-limit\n    reason: r\n    until: soon\n";
        assert!(
            KnownGaps::parse(extra, false)
                .unwrap_err()
                .contains("until")
        );
        let bad_check = "[[gap]]\nscenario = \"a\"\ncheck = \"overlimit\"\nreason = \"r\"\n";
        assert!(KnownGaps::parse(bad_check, true).is_err());
    }

    #[test]
    fn a_gap_needs_a_reason_and_is_listed_once() {
        let empty = "[[gap]]\nscenario = \"a\"\ncheck = \"hung\"\nreason = \" \"\n";
        assert!(
            KnownGaps::parse(empty, true)
                .unwrap_err()
                .contains("needs a reason")
        );
        let twice = "[[gap]]\nscenario = \"a\"\ncheck = \"hung\"\nreason = \"r\"\n[[gap]]\nscenario = \"a\"\ncheck = \"hung\"\nreason = \"s\"\n";
        assert!(
            KnownGaps::parse(twice, true)
                .unwrap_err()
                .contains("listed twice")
        );
    }

    #[test]
    fn check_names_match_their_serialised_form() {
        for check in [
            Check::ForbiddenArrival,
            Check::OverLimit,
            Check::OverBlocked,
            Check::Spoofed,
            Check::Hung,
            Check::Crashed,
            Check::HiddenListed,
            Check::TokenPassthrough,
            Check::SuccessOnProbe,
            Check::MaxArrivals,
        ] {
            assert_eq!(serde_json::to_value(check).unwrap(), check.as_str());
        }
    }

    #[test]
    fn thresholds_order_severities() {
        assert!(FailOn::Medium.admits(Severity::High));
        assert!(FailOn::Medium.admits(Severity::Medium));
        assert!(!FailOn::Medium.admits(Severity::Low));
        assert!(!FailOn::Critical.admits(Severity::High));
        assert!(FailOn::Info.admits(Severity::Info));
    }
}
