//! Replaying scenarios: each against the target, and again against the bare
//! mock as a control. Emits typed events; reporters never see anything else.

pub mod bench;
pub mod cli;
pub mod events;
pub mod exec;
pub mod fuzz;
pub mod latency;

use std::path::PathBuf;
use std::time::Instant;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::mock::catalogue::Catalogue;
use crate::oracle::{self, Overrides, Tolerance};
use crate::policy::Policy;
use crate::scenario::{PolicySource, Scenario};
use crate::target::{Arena, HarnessConfig, TargetSpec, Transport};
pub use bench::{
    Added, BenchReport, ClassStats, Errors, Merged, Percentiles, PhaseReport, Shard, Tick,
};
pub use events::{ControlReport, Event, RunInfo, RunSummary, ScenarioReport, Status};
pub use latency::{LatencySeries, SeriesKind};

/// Receives events as they happen.
pub trait EventSink {
    fn event(&mut self, event: &Event);
}

/// Keeps nothing; for callers that only want what a function returns.
pub struct NoSink;

impl EventSink for NoSink {
    fn event(&mut self, _: &Event) {}
}

/// What to run, against what.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub harness: HarnessConfig,
    pub target: TargetSpec,
    /// Also run each scenario against the bare mock.
    pub control: bool,
    pub seed: u64,
    /// How to replay a finding from the command line (without `--attacks`).
    pub replay_prefix: String,
    /// Scenarios run at once.
    pub jobs: usize,
}

/// Loads a scenario's policy.
pub fn load_policy(scenario: &Scenario) -> Result<(Policy, String), String> {
    match &scenario.policy {
        PolicySource::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("reading `{}`: {e}", path.display()))?;
            crate::policy::load_file(path)
                .map(|p| (p, text))
                .map_err(|e| e.to_string())
        }
        PolicySource::Inline(text) => {
            let file = format!("{}#policy_inline", scenario.path.display());
            let parsed = if text.trim_start().starts_with('{') {
                crate::policy::parse_json(text, &file)
            } else {
                crate::policy::parse_yaml(text, &file)
            };
            parsed.map(|p| (p, text.clone())).map_err(|e| e.to_string())
        }
    }
}

fn hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Runs `scenarios` in order, emitting events, until done or `stop` fires.
/// Returns the summary that was also emitted.
pub async fn run(
    cfg: &RunConfig,
    scenarios: &[Scenario],
    sink: &mut dyn EventSink,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> RunSummary {
    let started = Instant::now();
    let transport = effective_transport(cfg);
    sink.event(&Event::RunStarted(RunInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        target: cfg.target.label(),
        transport,
        seed: cfg.seed,
        scenarios: scenarios.len(),
        control: cfg.control && cfg.target != TargetSpec::None,
        started_at: Some(utc_now()),
    }));
    let mut summary = RunSummary::default();
    let catalogue = match cfg.harness.catalogue() {
        Ok(c) => c,
        Err(e) => {
            summary.errors = scenarios.len();
            summary.message = Some(format!("loading the mock's tool catalogue: {e}"));
            summary.duration_ms = started.elapsed().as_millis() as u64;
            sink.event(&Event::RunFinished(summary.clone()));
            return summary;
        }
    };
    // Scenarios are independent (each has its own folder, mock and enforcer
    // state), so several run at once; results are reported in catalogue
    // order.
    let mut results = futures_util::stream::iter(scenarios.iter().enumerate())
        .map(|(index, scenario)| {
            let catalogue = &catalogue;
            async move { (index, run_one(cfg, scenario, transport, catalogue).await) }
        })
        .buffered(cfg.jobs.max(1));
    loop {
        let next = tokio::select! {
            r = results.next() => r,
            _ = stop.changed() => {
                summary.interrupted = true;
                break;
            }
        };
        let Some((index, report)) = next else { break };
        sink.event(&Event::ScenarioStarted {
            index,
            id: report.id.clone(),
        });
        summary.count(report.status);
        sink.event(&Event::ScenarioFinished(Box::new(report)));
    }
    summary.duration_ms = started.elapsed().as_millis() as u64;
    sink.event(&Event::RunFinished(summary.clone()));
    summary
}

fn effective_transport(cfg: &RunConfig) -> Transport {
    match &cfg.target {
        TargetSpec::Command(t) if crate::target::uses(t, "port") => Transport::Http,
        TargetSpec::Command(_) => Transport::Stdio,
        TargetSpec::Url { .. } => Transport::Http,
        _ => cfg.harness.transport,
    }
}

async fn run_one(
    cfg: &RunConfig,
    scenario: &Scenario,
    transport: Transport,
    catalogue: &Catalogue,
) -> ScenarioReport {
    let started = Instant::now();
    let mut report = ScenarioReport::new(scenario, &cfg.replay_prefix);
    let scen_transport = match transport {
        Transport::Stdio => crate::scenario::Transport::Stdio,
        Transport::Http => crate::scenario::Transport::Http,
    };
    if !scenario.runs_on(scen_transport) {
        report.status = Status::Skipped;
        report.errors.push(format!(
            "applies to {} targets only",
            scenario.transport.as_str()
        ));
        return report;
    }
    let (policy, text) = match load_policy(scenario) {
        Ok(p) => p,
        Err(e) => {
            report.status = Status::Error;
            report.errors.push(e);
            return report;
        }
    };
    report.policy_hash = hash(&text);
    report.policy_text = text;
    let overrides = Overrides {
        max_arrivals: scenario.expect.max_arrivals,
        no_success: scenario.expect.no_success,
    };
    let keep_target = format!("{}-target", scenario.id);
    let keep_control = format!("{}-control", scenario.id);
    let with_control = cfg.control && cfg.target != TargetSpec::None;
    let target_run = once(
        cfg,
        &cfg.target,
        scenario,
        &policy,
        catalogue,
        &overrides,
        &keep_target,
    );
    let control_run = async {
        if with_control {
            Some(
                once(
                    cfg,
                    &TargetSpec::None,
                    scenario,
                    &policy,
                    catalogue,
                    &overrides,
                    &keep_control,
                )
                .await,
            )
        } else {
            None
        }
    };
    let (target, control) = tokio::join!(target_run, control_run);
    match target {
        Ok(mut j) => {
            if matches!(scenario.policy, PolicySource::File(_)) {
                for f in &mut j.findings {
                    f.line = f
                        .rule
                        .as_deref()
                        .and_then(|r| rule_line(&policy, &report.policy_text, r));
                }
            }
            report.target = Some(j);
        }
        Err(e) => {
            report.status = Status::Error;
            report.errors.push(format!("target: {e}"));
        }
    }
    match control {
        Some(Ok(j)) => {
            report.control = Some(ControlReport {
                landed: j.landed,
                arrivals: j.arrivals,
                leaks: j
                    .findings
                    .iter()
                    .filter(|f| f.verdict == oracle::Verdict::Leaked)
                    .count(),
            });
        }
        Some(Err(e)) => report.errors.push(format!("control: {e}")),
        None => {}
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    if report.target.is_some() {
        report.status = report.derive_status();
    }
    report
}

async fn once(
    cfg: &RunConfig,
    target: &TargetSpec,
    scenario: &Scenario,
    policy: &Policy,
    catalogue: &Catalogue,
    overrides: &Overrides,
    keep_as: &str,
) -> Result<oracle::ScenarioJudgement, crate::target::TargetError> {
    let spec = crate::target::ArenaSpec {
        policy,
        strict_mock: scenario.strict_mock,
        revision: scenario.revision,
    };
    let mut arena = Arena::new(&cfg.harness, target, &spec).await?;
    let mut obs = exec::execute(scenario, policy, catalogue, &mut arena, cfg.seed).await;
    let scale = arena.time_scale();
    arena.finish(Some(keep_as)).await?;
    obs.in_enforcer_time(scale);
    let tol = Tolerance {
        ns: (Tolerance::default().ns as f64 * scale) as u64,
    };
    Ok(oracle::judge(policy, &obs, overrides, tol))
}

/// The source line of the rule at `pointer` (as findings name it): the rule
/// itself, else the closest enclosing one; `hide` and `default`, which are
/// no rule of the model, are found in the text.
fn rule_line(policy: &Policy, text: &str, pointer: &str) -> Option<u32> {
    let top = pointer.strip_prefix('/').unwrap_or(pointer);
    if matches!(top, "hide" | "default") {
        return crate::policy::top_level_line(text, policy.source.dialect, top);
    }
    let mut locs = Vec::new();
    for limit in &policy.all_tools {
        locs.push(&limit.loc);
    }
    for rule in &policy.tools {
        locs.push(&rule.loc);
        locs.extend(rule.limits.iter().map(|l| &l.loc));
        locs.extend(rule.require.iter().map(|c| &c.loc));
        locs.extend(rule.deny_if.iter().map(|c| &c.loc));
    }
    let encloses = |outer: &str| {
        pointer == outer
            || pointer
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with(['/', '.', '[']))
    };
    locs.into_iter()
        .filter(|l| l.line.is_some() && !l.pointer.is_empty() && encloses(&l.pointer))
        .max_by_key(|l| l.pointer.len())
        .and_then(|l| l.line)
}

/// Now as RFC 3339 in UTC, to the second.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Where the scenario files are, by default.
pub fn default_catalogue() -> PathBuf {
    PathBuf::from("attacks")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_790_000_000), "2026-09-21T14:13:20Z");
    }

    #[test]
    fn finding_lines_come_from_the_deciding_rule() {
        let src = "{\n  \"version\": \"1\",\n  \"default\": \"deny\",\n  \"tools\": {\n    \"a\": {},\n    \"b\": {\n      \"limits\": [{\"counter\": \"c\", \"window\": \"minute\", \"max\": 3, \"scope\": \"grant\"}]\n    }\n  }\n}\n";
        let policy = crate::policy::parse_json(src, "p.json").unwrap();
        let line = |p: &str| rule_line(&policy, src, p);
        assert_eq!(line("/tools/b/limits/0"), Some(7));
        assert_eq!(line("/tools/a"), Some(5));
        assert_eq!(line("/tools/b/limits/0/max"), Some(7));
        assert_eq!(line("/default"), Some(3));
        assert_eq!(line("/hide"), None, "not written out");
        assert_eq!(line("/tools/bb"), None);
        let yaml = "version: \"1\"\ndescription: x\nhide:\n  - a\ndefault: deny\n";
        let dialect = crate::policy::Dialect::Yaml;
        assert_eq!(
            crate::policy::top_level_line(yaml, dialect, "hide"),
            Some(3)
        );
        assert_eq!(
            crate::policy::top_level_line(yaml, dialect, "default"),
            Some(5)
        );
    }
}
