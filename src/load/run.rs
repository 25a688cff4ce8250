//! The one load loop, and the phases (target, then baseline) it runs in.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::log::{self, IntervalLog, PhaseMeta};
use super::mix::Plan;
use super::recorder::{Outcome, Recorder, Sample};
use super::relay;
use super::schedule::Schedule;
use super::{BenchConfig, LoadError};
use crate::mcp::{Client, ClientError, Expect, Revision, SendOptions};
use crate::run::{Added, BenchReport, Event, EventSink, PhaseReport, Shard};
use crate::target::{Arena, ArenaSpec, SessionKey, TargetSpec, Transport};

/// Batches of samples waiting for the recorder; bounded so a slow recorder
/// slows the lanes instead of growing memory.
const CHANNEL: usize = 1024;

/// A lane hands its samples over in batches: one channel send (and one
/// wake-up of the recorder's thread) per call cost the generator as much
/// CPU as the call itself. A batch goes when it is full, when its oldest
/// sample is [`BATCH_AGE`] old, and before the lane waits that long or
/// longer for a due time, so the live view never lags by much more.
const BATCH: usize = 64;
const BATCH_AGE: Duration = Duration::from_millis(5);

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

/// Runs the load against the target and, if asked, against the bare mock
/// and through the null relay.
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
    let catalogue = cfg.harness.catalogue()?;
    let plan = Arc::new(Plan::new(&cfg.policy, &catalogue, cfg.mix)?);
    let mut logs = Vec::new();
    let mut message = None;

    if let Some(s) = cfg.shard
        && s.index >= s.count
    {
        return Err(LoadError::Config(format!("`{s}` is not a shard")));
    }
    // The target first; then, if asked, the same load straight at the mock
    // and through the null relay. A stop ends the run after its phase.
    let mut phases = vec![("target", cfg.target.clone())];
    if cfg.baseline {
        phases.push(("baseline", TargetSpec::None));
    }
    if cfg.null_relay {
        let relay = relay::template(cfg.harness.transport).to_owned();
        phases.push(("relay", TargetSpec::Command(relay)));
    }
    let mut done = Vec::with_capacity(phases.len());
    for (name, spec) in &phases {
        let (report, log) = phase(cfg, name, spec, &plan, sink, stop.clone()).await?;
        logs.push((log_name(name, cfg.shard), log));
        done.push(report);
        if *stop.borrow() {
            message = Some("interrupted".to_owned());
            break;
        }
    }
    let mut done = done.into_iter();
    let Some(target) = done.next() else {
        return Err(LoadError::Config("the target phase did not run".into()));
    };
    let mut rest: Vec<PhaseReport> = done.collect();
    let mut take = |name: &str| {
        rest.iter()
            .position(|p| p.name == name)
            .map(|i| rest.remove(i))
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

/// What every lane of a phase shares.
struct Shared {
    plan: Arc<Plan>,
    schedule: Schedule,
    /// A shard sends the calls whose index (across every shard) is its own
    /// modulo the count, so the shards' due times interleave into one
    /// machine's schedule. Each picks its calls' classes by its own count,
    /// so every shard keeps the asked mix (the mix's pattern repeats, and
    /// every other call of it would not).
    shard: Shard,
    next: AtomicU64,
    sent: AtomicU64,
    stop: AtomicBool,
    start: Instant,
    end: Instant,
    /// Overdue calls are not sent after this: a generator that fell behind
    /// must not stretch the run without bound.
    hard_stop: Instant,
    /// Calls (by index across every shard) are sent only below this.
    max_calls: u64,
}

async fn phase(
    cfg: &BenchConfig,
    name: &str,
    target: &TargetSpec,
    plan: &Arc<Plan>,
    sink: &mut dyn EventSink,
    mut stop: watch::Receiver<bool>,
) -> Result<(PhaseReport, IntervalLog), LoadError> {
    sink.event(&Event::BenchPhase {
        name: name.to_owned(),
        target: target.label(),
    });
    let spec = ArenaSpec {
        policy: &cfg.policy,
        strict_mock: false,
        revision: Revision::LATEST_STATEFUL,
    };
    let mut arena = Arena::with_mock_args(&cfg.harness, target, &spec, &cfg.mock_args).await?;
    let transport = arena.transport();
    // HTTP/1.1 carries one call at a time per connection, so over HTTP a
    // lane is a connection; a stdio session pipelines, so lanes share it.
    let (clients, lanes) = match transport {
        Transport::Http => (
            cfg.connections.max(cfg.lanes),
            cfg.connections.max(cfg.lanes),
        ),
        Transport::Stdio => (cfg.connections, cfg.lanes),
    };
    let mut sessions = Vec::with_capacity(clients);
    for k in 0..clients {
        let key = SessionKey {
            identity: "bench".into(),
            label: format!("bench-{k}"),
            replica: 0,
        };
        sessions.push(arena.session(&key, true).await?);
    }

    // A short lead so the first due times are not already behind; or the
    // agreed start, so that shards begin together.
    let lead = match cfg.start_at {
        Some(at) if name == "target" => at
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .max(Duration::from_millis(20)),
        _ => Duration::from_millis(20),
    };
    let (start, wall_start) = (Instant::now() + lead, SystemTime::now() + lead);
    let shard = cfg.shard.unwrap_or(Shard::WHOLE);
    let measure_from = start + cfg.warmup;
    let end = measure_from + cfg.duration;
    let grace = cfg.harness.timeout.min(Duration::from_secs(2));
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        schedule: cfg.schedule,
        shard,
        next: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        start,
        end,
        hard_stop: end + grace,
        max_calls: cfg.max_calls.unwrap_or(u64::MAX),
    });
    let (tx, mut rx) = mpsc::channel(CHANNEL);
    let workers: Vec<_> = (0..lanes)
        .map(|lane| {
            let client = sessions[lane % sessions.len()].clone();
            tokio::spawn(lane_loop(client, shared.clone(), tx.clone()))
        })
        .collect();
    drop(tx);

    let mut recorder = Recorder::new(start, measure_from)?;
    loop {
        tokio::select! {
            batch = rx.recv() => match batch {
                Some(batch) => {
                    for s in &batch {
                        if let Some(tick) = recorder.record(s) {
                            sink.event(&Event::BenchTick { name: name.to_owned(), tick });
                        }
                    }
                }
                None => break,
            },
            changed = stop.changed(), if !shared.stop.load(Ordering::Relaxed) => {
                if changed.is_err() || *stop.borrow() {
                    shared.stop.store(true, Ordering::Relaxed);
                }
            }
        }
    }
    for w in workers {
        let _ = w.await;
    }
    let finished = Instant::now();
    let recorded = recorder.finish(finished);
    drop(sessions);
    let dead = arena.dead_server();
    // Kept (under the harness's keep folder, if any) so the ledger can be
    // checked against what the bench says it sent.
    arena.finish_unread(Some(name)).await?;
    if let Some(dead) = dead {
        return Err(LoadError::Config(format!(
            "a server died during the bench: {dead}"
        )));
    }

    let sent = shared.sent.load(Ordering::Relaxed);
    // A run cut short (--max-calls, Ctrl-C) measured only until its last
    // answer.
    let measured_s = recorded
        .last_done
        .map_or(cfg.duration, |t| {
            t.min(end).saturating_duration_since(measure_from)
        })
        .as_secs_f64()
        .max(1e-6);
    let total_rate = cfg.schedule.offered();
    let offered_rate = total_rate.map(|r| r / f64::from(shard.count));
    let due_total = total_rate.map_or(sent, |rate| {
        let due = ((end - start).as_secs_f64() * rate).ceil() as u64;
        shard.share(due.min(shared.max_calls))
    });
    // A run cut short by --max-calls offers only what it was allowed to.
    let due_in_window = offered_rate.map_or(0.0, |rate| {
        (rate * measured_s).min(shard.share(shared.max_calls) as f64)
    });
    let [allowed_tools, denied_tools] = plan.tools.clone();
    let meta = PhaseMeta {
        format: log::FORMAT,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        phase: name.to_owned(),
        target: target.label(),
        transport,
        shard: cfg.shard,
        mix: cfg.mix,
        policy: cfg.policy_label.clone(),
        allowed_tools,
        denied_tools,
        warmup_s: cfg.warmup.as_secs_f64(),
        duration_s: cfg.duration.as_secs_f64(),
        connections: clients,
        lanes,
        offered_rate,
        measured_s,
        due_in_window,
        sent,
        completed: recorded.completed,
        measured: recorded.measured,
        unsent: due_total.saturating_sub(sent),
        allowed: recorded.allowed,
        denied: recorded.denied,
        transport_errors: recorded.transport,
        timeouts: recorded.timeout,
        message: stop.borrow().then(|| "interrupted".to_owned()),
    };
    let report = super::merge::phase_report(&[&meta], &recorded.hists);
    let log = log::write(&meta, wall_start, recorded.intervals).map_err(LoadError::Config)?;
    Ok((report, log))
}

/// The load loop. Every mode runs this: the schedule alone decides when a
/// call is due.
async fn lane_loop(client: Arc<Client>, shared: Arc<Shared>, tx: mpsc::Sender<Vec<Sample>>) {
    // The lane sorts a reply by its id, error and isError; nothing else of
    // it is read, so nothing else is built.
    let opts = SendOptions {
        skeleton: true,
        ..SendOptions::default()
    };
    let mut batch: Vec<Sample> = Vec::with_capacity(BATCH);
    // Hands the batch over; false once the recorder is gone.
    async fn flush(batch: &mut Vec<Sample>, tx: &mpsc::Sender<Vec<Sample>>) -> bool {
        if batch.is_empty() {
            return true;
        }
        let full = std::mem::replace(batch, Vec::with_capacity(BATCH));
        tx.send(full).await.is_ok()
    }
    let (first, step) = (u64::from(shared.shard.index), u64::from(shared.shard.count));
    // A closed loop has no due times to wait for, and `--start-at` may lie
    // minutes ahead: wait for the start, but not past a stop.
    while Instant::now() < shared.start && !shared.stop.load(Ordering::Relaxed) {
        let step = shared
            .start
            .min(Instant::now() + Duration::from_millis(100));
        tokio::time::sleep_until(step.into()).await;
    }
    while !shared.stop.load(Ordering::Relaxed) {
        let own = shared.next.fetch_add(1, Ordering::Relaxed);
        let i = first + own * step;
        if i >= shared.max_calls {
            break;
        }
        let due = match shared.schedule.due(shared.start, i) {
            Some(due) => {
                let now = Instant::now();
                if due >= shared.end || now >= shared.hard_stop {
                    break;
                }
                if due > now {
                    // The lane was idle when the call fell due; the timer
                    // wakes it up to a millisecond late, and that lateness
                    // is the generator's, not the target's. Lateness from
                    // a lane held up by earlier calls is the target's and
                    // is charged from the due time below. A long wait
                    // hands the batch over first, so the live view does
                    // not lag; a short one keeps it (one hand-over per
                    // call costs as much as the call).
                    let stale = batch
                        .first()
                        .is_some_and(|s| now.saturating_duration_since(s.done) >= BATCH_AGE);
                    if (stale || due - now >= BATCH_AGE) && !flush(&mut batch, &tx).await {
                        return;
                    }
                    tokio::time::sleep_until(due.into()).await;
                    Instant::now()
                } else {
                    due
                }
            }
            None => {
                let now = Instant::now();
                if now >= shared.end {
                    break;
                }
                now
            }
        };
        let id = client.next_id();
        let (class, bytes) = shared.plan.frame(own, id);
        let sent = Instant::now();
        shared.sent.fetch_add(1, Ordering::Relaxed);
        let result = client
            .send_raw(bytes, Expect::Ids(vec![Value::from(id)]), &opts)
            .await;
        let done = Instant::now();
        let outcome = match result {
            Ok(ex) if ex.replies.is_empty() && ex.status.is_none_or(|s| s < 400) => {
                Outcome::Transport
            }
            Ok(ex) if ex.denied() => Outcome::Refused,
            Ok(_) => Outcome::Passed,
            Err(ClientError::Timeout(_)) => Outcome::Timeout,
            Err(_) => Outcome::Transport,
        };
        let sample = Sample {
            class,
            due,
            sent,
            done,
            outcome,
        };
        let oldest = batch.first().map_or(done, |s| s.done);
        batch.push(sample);
        if (batch.len() >= BATCH || done.saturating_duration_since(oldest) >= BATCH_AGE)
            && !flush(&mut batch, &tx).await
        {
            return;
        }
    }
    flush(&mut batch, &tx).await;
}
