//! From counts and histograms to figures. One machine's phase (`gauntlet
//! bench`) and several shards' logs (`gauntlet merge`) go through the same
//! [`phase_report`] on summed parts, so a merge reads exactly as one machine
//! running the whole load would have: histograms are added, never their
//! percentiles averaged; counts and rates are summed; the generator-bound
//! flag is recomputed from the sums.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use super::log::{self, Hists, MergeError, PhaseLog, PhaseMeta};
use crate::run::{
    Added, BenchReport, ClassStats, Errors, LatencySeries, Merged, Percentiles, PhaseReport,
    SeriesKind,
};

/// The figures of a phase whose parts (one, or one per shard) are `parts`,
/// with `hists` their histograms added up.
pub fn phase_report(parts: &[&PhaseMeta], hists: &Hists) -> PhaseReport {
    let sum = |f: fn(&PhaseMeta) -> u64| parts.iter().map(|m| f(m)).sum::<u64>();
    let answered_in = |m: &PhaseMeta| m.allowed.calls() + m.denied.calls();
    let answered: u64 = parts.iter().map(|m| answered_in(m)).sum();
    // Each part's rate over its own window: the shards ran side by side.
    let achieved_rate = parts
        .iter()
        .map(|m| answered_in(m) as f64 / m.measured_s.max(1e-6))
        .sum();
    let offered_rate = parts
        .iter()
        .map(|m| m.offered_rate)
        .sum::<Option<f64>>()
        .filter(|_| !parts.is_empty());
    let due: f64 = parts.iter().map(|m| m.due_in_window).sum();
    let generator_bound = offered_rate.is_some() && due > 0.0 && (answered as f64) < 0.99 * due;
    let tally = |allowed: bool| {
        parts.iter().fold(log::Tally::default(), |mut t, m| {
            t.add(if allowed { m.allowed } else { m.denied });
            t
        })
    };
    let (allowed, denied) = (tally(true), tally(false));
    let first = parts.first();
    let name = first.map(|m| m.phase.clone()).unwrap_or_default();
    let baseline = name == "baseline";
    let class = |t: log::Tally, i: usize| ClassStats {
        calls: t.calls(),
        passed: t.passed,
        refused: t.refused,
        corrected: Percentiles::of(&hists.corrected[i]),
        uncorrected: Percentiles::of(&hists.uncorrected[i]),
    };
    let mut all = hists.corrected[0].clone();
    let _ = all.add(&hists.corrected[1]);
    let series = [(SeriesKind::Allowed, 0), (SeriesKind::Denied, 1)]
        .into_iter()
        .filter(|(_, i)| !hists.corrected[*i].is_empty())
        .map(|(kind, i)| {
            let class = if i == 0 { "allowed" } else { "denied" };
            let label = if baseline {
                format!("baseline {class}")
            } else {
                class.to_owned()
            };
            LatencySeries::of(&label, kind, baseline, &hists.corrected[i])
        })
        .collect();
    PhaseReport {
        name,
        target: first.map(|m| m.target.clone()).unwrap_or_default(),
        transport: first.map_or(crate::target::Transport::Stdio, |m| m.transport),
        schedule: super::schedule::label(offered_rate),
        connections: parts.iter().map(|m| m.connections).sum(),
        lanes: parts.iter().map(|m| m.lanes).sum(),
        offered_rate,
        achieved_rate,
        measured_s: parts.iter().map(|m| m.measured_s).fold(0.0, f64::max),
        sent: sum(|m| m.sent),
        completed: sum(|m| m.completed),
        measured: sum(|m| m.measured),
        unsent: sum(|m| m.unsent),
        all: Percentiles::of(&all),
        allowed: class(allowed, 0),
        denied: class(denied, 1),
        errors: Errors {
            denied: allowed.refused,
            admitted: denied.passed,
            transport: sum(|m| m.transport_errors),
            timeout: sum(|m| m.timeouts),
        },
        generator_bound,
        series,
    }
}

const PHASES: [&str; 2] = ["target", "baseline"];

/// Merges phase logs (every shard's `target` log, and their `baseline`
/// logs if any) into one report.
pub fn merge(logs: &[PhaseLog]) -> Result<BenchReport, MergeError> {
    let mut by_phase: BTreeMap<&str, Vec<&PhaseLog>> = BTreeMap::new();
    for l in logs {
        let phase = PHASES
            .into_iter()
            .find(|p| *p == l.meta.phase)
            .ok_or_else(|| MergeError::Invalid {
                file: l.file.clone(),
                message: format!("unknown phase `{}`", l.meta.phase),
            })?;
        by_phase.entry(phase).or_default().push(l);
    }
    let target = by_phase
        .get("target")
        .and_then(|g| g.first().map(|l| (g, l)));
    let Some((target, lead)) = target else {
        return Err(MergeError::Mismatch(
            "no `target` phase among the logs".into(),
        ));
    };
    let lead = &lead.meta;
    let mut shards = None;
    let (mut target_report, mut baseline_report) = (None, None);
    for (phase, group) in &by_phase {
        let count = check_shards(phase, group)?;
        if let Some(n) = shards
            && n != count
        {
            return Err(MergeError::Mismatch(format!(
                "the phases were split into different numbers of shards ({n} and {count})"
            )));
        }
        shards = Some(count);
        let mut hists = Hists::new().map_err(|e| MergeError::Mismatch(e.to_string()))?;
        for l in group {
            agree(lead, l, &group[0].meta)?;
            hists.add(&l.hists).map_err(|e| MergeError::Invalid {
                file: l.file.clone(),
                message: format!("its histograms do not add: {e}"),
            })?;
        }
        let metas: Vec<&PhaseMeta> = group.iter().map(|l| &l.meta).collect();
        let report = phase_report(&metas, &hists);
        if *phase == "target" {
            target_report = Some(report);
        } else {
            baseline_report = Some(report);
        }
    }
    let starts: Vec<f64> = target
        .iter()
        .filter_map(|l| l.started.map(|d| d.as_secs_f64()))
        .collect();
    let spread = match (
        starts.iter().copied().reduce(f64::max),
        starts.iter().copied().reduce(f64::min),
    ) {
        (Some(hi), Some(lo)) => hi - lo,
        _ => 0.0,
    };
    let notes: BTreeSet<String> = logs
        .iter()
        .filter_map(|l| {
            let m = &l.meta;
            m.message.as_ref().map(|msg| match m.shard {
                Some(s) => format!("shard {s}, {}: {msg}", m.phase),
                None => format!("{}: {msg}", m.phase),
            })
        })
        .collect();
    let Some(target) = target_report else {
        return Err(MergeError::Mismatch(
            "no `target` phase among the logs".into(),
        ));
    };
    let baseline = baseline_report;
    Ok(BenchReport {
        version: lead.version.clone(),
        mix: lead.mix,
        policy: lead.policy.clone(),
        allowed_tools: lead.allowed_tools.clone(),
        denied_tools: lead.denied_tools.clone(),
        warmup_s: lead.warmup_s,
        duration_s: lead.duration_s,
        shard: None,
        merged: Some(Merged {
            shards: shards.unwrap_or(1),
            start_spread_s: spread,
        }),
        added: baseline.as_ref().map(|b| Added::between(&target, b)),
        target,
        baseline,
        message: (!notes.is_empty()).then(|| notes.into_iter().collect::<Vec<_>>().join("; ")),
    })
}

/// The number of shards a phase's logs make up: one unsharded log, or
/// every index of `0..n` exactly once.
fn check_shards(phase: &str, group: &[&PhaseLog]) -> Result<u32, MergeError> {
    let unsharded: Vec<&str> = group
        .iter()
        .filter(|l| l.meta.shard.is_none())
        .map(|l| l.file.as_str())
        .collect();
    if !unsharded.is_empty() {
        if group.len() > 1 {
            return Err(MergeError::Mismatch(format!(
                "phase `{phase}`: `{}` is a whole run, not a shard, and cannot be merged with \
                 other logs (run each part with `--shard i/n`)",
                unsharded.join("`, `")
            )));
        }
        return Ok(1);
    }
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    let mut count = None;
    for l in group {
        let Some(s) = l.meta.shard else { continue };
        if count.is_some_and(|n| n != s.count) {
            return Err(MergeError::Mismatch(format!(
                "phase `{phase}`: `{}` is shard {s}, but other logs split the load {} ways",
                l.file,
                count.unwrap_or(s.count)
            )));
        }
        count = Some(s.count);
        if let Some(other) = seen.insert(s.index, &l.file) {
            return Err(MergeError::Mismatch(format!(
                "phase `{phase}`: `{other}` and `{}` are both shard {s}",
                l.file
            )));
        }
    }
    let n = count.unwrap_or(1);
    let missing: Vec<String> = (0..n)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Mismatch(format!(
            "phase `{phase}`: shard(s) {} missing; a merge of part of the load would not read \
             as the whole",
            missing.join(", ")
        )));
    }
    Ok(n)
}

/// Logs that merge must describe the same bench: settings across every
/// log, and the target within a phase.
fn agree(lead: &PhaseMeta, l: &PhaseLog, phase_lead: &PhaseMeta) -> Result<(), MergeError> {
    let m = &l.meta;
    let differ = |what: &str| {
        Err(MergeError::Mismatch(format!(
            "`{}` differs from the other logs in its {what}: shards must run the same bench",
            l.file
        )))
    };
    if m.mix != lead.mix {
        return differ("mix");
    }
    if m.policy != lead.policy
        || m.allowed_tools != lead.allowed_tools
        || m.denied_tools != lead.denied_tools
    {
        return differ("policy");
    }
    if m.warmup_s != lead.warmup_s || m.duration_s != lead.duration_s {
        return differ("warm-up or duration");
    }
    if m.target != phase_lead.target || m.transport != phase_lead.transport {
        return differ("target or transport");
    }
    if m.offered_rate.is_some() != phase_lead.offered_rate.is_some() {
        return differ("schedule (open or closed loop)");
    }
    Ok(())
}

/// `gauntlet merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// Interval logs that `gauntlet bench --shard i/n --out DIR` wrote
    /// (`target.shard-I-of-N.hlog`, and the `baseline` ones if any).
    #[arg(required = true, value_name = "LOG")]
    pub logs: Vec<PathBuf>,
    #[command(flatten)]
    pub output: super::cli::OutputArgs,
}

/// Runs `gauntlet merge`: the exit code follows the merged report as
/// `gauntlet bench`'s does; 2 for a log that cannot be merged.
pub fn main(args: &MergeArgs) -> ExitCode {
    let result = args
        .logs
        .iter()
        .map(|p| log::read(p))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|logs| merge(&logs))
        .map_err(|e| e.to_string())
        .and_then(|report| args.output.emit(&report, &[]));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
