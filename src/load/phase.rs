//! One phase of a bench (`target`, `baseline` or `relay`): its target, up
//! for as long as the phase has slices to run, the one load loop that each
//! slice runs, and what the slices recorded, added up.
//!
//! A sequential bench runs each phase as one slice. With `--rounds N` the
//! phases take turns in N slices each, and every phase's target stays up
//! (idle) while the others run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::log::{self, IntervalLog, PhaseMeta};
use super::mix::Plan;
use super::recorder::{Outcome, Recorder, Sample};
use super::schedule::Schedule;
use super::{BenchConfig, LoadError};
use crate::mcp::{Client, ClientError, Expect, Revision, SendOptions};
use crate::run::{Event, EventSink, PhaseReport, Shard};
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

/// What a phase's slice needs to know of when it runs.
pub(super) struct Window {
    /// How long the slice measures.
    pub length: Duration,
    /// How long it sends unmeasured calls first.
    pub warmup: Duration,
    /// The wall-clock time to start at (a shard's `--start-at`).
    pub start_at: Option<SystemTime>,
    /// Which slice this is (from 1), of how many, for the live view.
    pub round: u32,
    pub rounds: u32,
}

/// A phase's target, once started.
struct Up {
    arena: Arena,
    sessions: Vec<Arc<Client>>,
    transport: Transport,
    clients: usize,
    lanes: usize,
}

/// The counts a phase adds up over its slices.
#[derive(Default)]
struct Totals {
    /// The schedule's rate for this bench's share (open loop).
    offered_rate: Option<f64>,
    sent: u64,
    measured_s: f64,
    due_total: u64,
    due_in_window: f64,
}

pub(super) struct Phase {
    pub name: &'static str,
    spec: TargetSpec,
    up: Option<Up>,
    /// What the slices recorded, and when the first one started (the
    /// interval log's time origin); set by the first slice.
    recorder: Option<(Recorder, SystemTime)>,
    totals: Totals,
}

/// What every lane of a slice shares.
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

impl Phase {
    pub fn new(name: &'static str, spec: TargetSpec) -> Phase {
        Phase {
            name,
            spec,
            up: None,
            recorder: None,
            totals: Totals::default(),
        }
    }

    /// Whether the phase has run a slice (and so has figures to report).
    pub fn started(&self) -> bool {
        self.recorder.is_some()
    }

    /// Starts the target and opens the bench's sessions.
    async fn bring_up(&mut self, cfg: &BenchConfig) -> Result<(), LoadError> {
        let spec = ArenaSpec {
            policy: &cfg.policy,
            strict_mock: false,
            revision: Revision::LATEST_STATEFUL,
        };
        let mut arena =
            Arena::with_mock_args(&cfg.harness, &self.spec, &spec, &cfg.mock_args).await?;
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
        self.up = Some(Up {
            arena,
            sessions,
            transport,
            clients,
            lanes,
        });
        Ok(())
    }

    /// Runs one slice of the load: `window.warmup` unmeasured, then
    /// `window.length` measured, the lanes drained, the counts added.
    pub async fn slice(
        &mut self,
        cfg: &BenchConfig,
        plan: &Arc<Plan>,
        window: &Window,
        sink: &mut dyn EventSink,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), LoadError> {
        sink.event(&Event::BenchPhase {
            name: self.name.to_owned(),
            target: self.spec.label(),
            round: window.round,
            rounds: window.rounds,
        });
        if self.up.is_none() {
            self.bring_up(cfg).await?;
        }
        let Some(up) = self.up.as_mut() else {
            return Err(LoadError::Config("the phase's target is not up".into()));
        };
        // A short lead so the first due times are not already behind; or the
        // agreed start, so that shards begin together.
        let lead = window
            .start_at
            .map_or(Duration::ZERO, |at| {
                at.duration_since(SystemTime::now()).unwrap_or_default()
            })
            .max(Duration::from_millis(20));
        let (start, wall_start) = (Instant::now() + lead, SystemTime::now() + lead);
        let shard = cfg.shard.unwrap_or(Shard::WHOLE);
        let measure_from = start + window.warmup;
        let end = measure_from + window.length;
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
        let workers: Vec<_> = (0..up.lanes)
            .map(|lane| {
                let client = up.sessions[lane % up.sessions.len()].clone();
                tokio::spawn(lane_loop(client, shared.clone(), tx.clone()))
            })
            .collect();
        drop(tx);

        let recorder = match &mut self.recorder {
            Some((r, _)) => {
                r.resume(start, measure_from);
                r
            }
            None => {
                &mut self
                    .recorder
                    .insert((Recorder::new(start, measure_from)?, wall_start))
                    .0
            }
        };
        loop {
            tokio::select! {
                batch = rx.recv() => match batch {
                    Some(batch) => {
                        for s in &batch {
                            if let Some(tick) = recorder.record(s) {
                                sink.event(&Event::BenchTick { name: self.name.to_owned(), tick });
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
        let last_done = recorder.pause(Instant::now());

        let sent = shared.sent.load(Ordering::Relaxed);
        // A slice cut short (--max-calls, Ctrl-C) measured only until its
        // last answer.
        let measured_s = last_done
            .map_or(window.length, |t| {
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
        // A slice cut short by --max-calls offers only what it was allowed to.
        let due_in_window = offered_rate.map_or(0.0, |rate| {
            (rate * measured_s).min(shard.share(shared.max_calls) as f64)
        });
        let t = &mut self.totals;
        t.offered_rate = offered_rate;
        t.sent += sent;
        t.measured_s += measured_s;
        t.due_total += due_total;
        t.due_in_window += due_in_window;
        Ok(())
    }

    /// Whether a server of the phase's target has exited; [`Phase::close`]
    /// then says which, after keeping its work folder.
    pub fn died(&mut self) -> bool {
        self.up
            .as_mut()
            .is_some_and(|up| up.arena.dead_server().is_some())
    }

    /// Stops the target and turns the slices' counts into the phase's
    /// report and interval log.
    pub async fn close(
        mut self,
        cfg: &BenchConfig,
        plan: &Plan,
        rounds: u32,
        message: Option<String>,
    ) -> Result<(PhaseReport, IntervalLog), LoadError> {
        let (Some(up), Some((recorder, wall_start))) = (self.up.take(), self.recorder.take())
        else {
            return Err(LoadError::Config(format!(
                "the {} phase did not run",
                self.name
            )));
        };
        let recorded = recorder.finish(Instant::now());
        let Up {
            mut arena,
            sessions,
            transport,
            clients,
            lanes,
        } = up;
        drop(sessions);
        let dead = arena.dead_server();
        // Kept (under the harness's keep folder, if any) so the ledger can be
        // checked against what the bench says it sent.
        arena.finish_unread(Some(self.name)).await?;
        if let Some(dead) = dead {
            return Err(LoadError::Config(format!(
                "a server died during the bench: {dead}"
            )));
        }
        let t = &self.totals;
        let [allowed_tools, denied_tools] = plan.tools.clone();
        let meta = PhaseMeta {
            format: log::FORMAT,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            phase: self.name.to_owned(),
            target: self.spec.label(),
            transport,
            shard: cfg.shard,
            mix: cfg.mix,
            policy: cfg.policy_label.clone(),
            allowed_tools,
            denied_tools,
            warmup_s: cfg.warmup.as_secs_f64(),
            duration_s: cfg.duration.as_secs_f64(),
            rounds,
            connections: clients,
            lanes,
            offered_rate: t.offered_rate,
            measured_s: t.measured_s.max(1e-6),
            due_in_window: t.due_in_window,
            sent: t.sent,
            completed: recorded.completed,
            measured: recorded.measured,
            unsent: t.due_total.saturating_sub(t.sent),
            allowed: recorded.allowed,
            denied: recorded.denied,
            transport_errors: recorded.transport,
            timeouts: recorded.timeout,
            message,
        };
        let report = super::merge::phase_report(&[&meta], &recorded.hists);
        let log = log::write(&meta, wall_start, recorded.intervals).map_err(LoadError::Config)?;
        Ok((report, log))
    }
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
