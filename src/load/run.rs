//! A bench: its phases (target, then baseline and relay if asked), run one
//! after another or taking turns, and the report they add up to.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::log::IntervalLog;
use super::mix::Plan;
use super::phase::{Phase, Window};
use super::relay;
use super::schedule::Schedule;
use super::{BenchConfig, LoadError};
use crate::run::{Added, BenchReport, Event, EventSink, Shard};
use crate::target::TargetSpec;

/// A bench's report and the interval log of each phase.
pub struct BenchOutcome {
    pub report: BenchReport,
    /// `(file name, interval log)`: `target.hlog`, or with `--shard 1/4`
    /// `target.shard-1-of-4.hlog`; the same for `baseline`.
    pub logs: Vec<(String, IntervalLog)>,
}

/// The file name of a phase's interval log.
pub fn log_name(phase: &str, shard: Option<Shard>) -> String {
    match shard {
        Some(s) => format!("{phase}.shard-{}-of-{}.hlog", s.index, s.count),
        None => format!("{phase}.hlog"),
    }
}

/// How long a phase sends unmeasured calls before each slice after its
/// first (which gets the whole `--warmup`): its target sat idle while the
/// others ran, and its pipes and caches refill within a few hundred calls.
const SETTLE: Duration = Duration::from_millis(500);

/// Runs the load against the target and, if asked, against the bare mock
/// and through the null relay: one phase after another, or (`--rounds N`)
/// taking turns in N slices each, so that drift on the machine over the
/// run hits every phase alike.
pub async fn run_bench(
    cfg: &BenchConfig,
    sink: &mut dyn EventSink,
    stop: watch::Receiver<bool>,
) -> Result<BenchOutcome, LoadError> {
    if cfg.connections == 0 || cfg.lanes == 0 {
        return Err(LoadError::Config(
            "connections and calls in flight must be at least 1".into(),
        ));
    }
    if let Schedule::Open { rate } = cfg.schedule
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(LoadError::Config(format!(
            "the rate `{rate}` must be positive"
        )));
    }
    if let Some(s) = cfg.shard
        && s.index >= s.count
    {
        return Err(LoadError::Config(format!("`{s}` is not a shard")));
    }
    let rounds = cfg.rounds.max(1);
    if rounds > 1 && (cfg.shard.is_some() || cfg.max_calls.is_some()) {
        return Err(LoadError::Config(
            "--rounds does not combine with --shard or --max-calls".into(),
        ));
    }
    let catalogue = cfg.harness.catalogue()?;
    let plan = Arc::new(Plan::new(&cfg.policy, &catalogue, cfg.mix)?);

    let mut phases = vec![Phase::new("target", cfg.target.clone())];
    if cfg.baseline {
        phases.push(Phase::new("baseline", TargetSpec::None));
    }
    if cfg.null_relay {
        let relay = relay::template(cfg.harness.transport).to_owned();
        phases.push(Phase::new("relay", TargetSpec::Command(relay)));
    }
    // Round r runs the phases rotated by r (target, baseline, relay; then
    // baseline, relay, target; ...), so none always goes first. A phase
    // closes, and its target stops, after its last slice: in one round,
    // before the next phase starts, as if the phases were separate runs.
    let slice = cfg.duration / rounds;
    let count = phases.len();
    let mut slots: Vec<Option<Phase>> = phases.into_iter().map(Some).collect();
    // Each closed phase's report with its log, in the order they closed.
    let mut done = Vec::with_capacity(count);
    let mut message = None;
    'rounds: for round in 0..rounds {
        for k in 0..count {
            let i = (k + round as usize) % count;
            let Some(phase) = slots[i].as_mut() else {
                continue;
            };
            let first = !phase.started();
            let window = Window {
                length: slice,
                warmup: if first {
                    cfg.warmup
                } else {
                    cfg.warmup.min(SETTLE)
                },
                start_at: cfg.start_at.filter(|_| first && phase.name == "target"),
                round: round + 1,
                rounds,
            };
            phase.slice(cfg, &plan, &window, sink, stop.clone()).await?;
            let interrupted = *stop.borrow();
            if interrupted {
                message = Some("interrupted".to_owned());
            }
            if (round + 1 == rounds || phase.died())
                && let Some(phase) = slots[i].take()
            {
                done.push(phase.close(cfg, &plan, rounds, message.clone()).await?);
            }
            if interrupted {
                break 'rounds;
            }
        }
    }
    // A stop between slices still reports what every started phase
    // measured; a phase that never ran is left out.
    for phase in slots.into_iter().flatten().filter(Phase::started) {
        done.push(phase.close(cfg, &plan, rounds, message.clone()).await?);
    }
    // Reports and logs in phase order, whatever order the phases closed in.
    let mut logs = Vec::with_capacity(done.len());
    let mut take = |name: &str| {
        let i = done.iter().position(|(p, _)| p.name == name)?;
        let (report, log) = done.remove(i);
        logs.push((log_name(name, cfg.shard), log));
        Some(report)
    };
    let Some(target) = take("target") else {
        return Err(LoadError::Config("the target phase did not run".into()));
    };
    let (baseline, relay) = (take("baseline"), take("relay"));
    let added = baseline.as_ref().map(|b| Added::between(&target, b));
    let over_relay = relay.as_ref().map(|r| Added::between(&target, r));
    let [allowed_tools, denied_tools] = plan.tools.clone();
    let report = BenchReport {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        mix: cfg.mix,
        policy: cfg.policy_label.clone(),
        allowed_tools,
        denied_tools,
        warmup_s: cfg.warmup.as_secs_f64(),
        duration_s: cfg.duration.as_secs_f64(),
        rounds,
        generator_threads: cfg.threads,
        shard: cfg.shard,
        merged: None,
        target,
        baseline,
        added,
        relay,
        over_relay,
        message,
    };
    sink.event(&Event::Bench(Box::new(report.clone())));
    Ok(BenchOutcome { report, logs })
}
