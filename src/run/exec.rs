//! Executes one scenario's steps in an arena and observes what happened:
//! every send and its reply, and which ledger records each send caused.
//!
//! Attribution is by ledger position. A send that runs alone (no other send
//! in flight) owns the records that appeared between its send and its
//! reply; a concurrent step owns, as a whole, the records that appeared
//! while it ran. Enforcers may rewrite ids and re-serialise frames, so
//! neither ids nor bytes can be trusted to link a send to its arrival.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::mcp::{Client, ClientError, Exchange, Expect, SendOptions};
use crate::mock::catalogue::Catalogue;
use crate::mock::ledger::LedgerRecord;
use crate::policy::{Clock, Policy, SystemClock};
use crate::scenario::{ArgSpec, At, Generation, Scenario, SessionSpec, Spread, Step, StepKind};
use crate::target::{Arena, SessionKey, TargetError};

/// How long a send that expects no reply waits for a parse error anyway.
const QUIET: Duration = Duration::from_millis(150);

/// What one send was.
#[derive(Debug, Clone)]
pub enum Sent {
    Call { name: String, args: Value },
    Raw { bytes: Vec<u8> },
    List,
}

/// How one send ended.
#[derive(Debug, Clone)]
pub enum CallResult {
    Reply(Exchange),
    /// No reply within the timeout.
    Timeout,
    /// The peer closed or died; with its exit status and stderr tail.
    Closed(String),
    /// The harness could not send (a session would not open, say).
    Error(String),
}

/// One send and what the harness saw of it.
#[derive(Debug, Clone)]
pub struct CallObs {
    pub step: usize,
    pub index: u32,
    pub identity: String,
    pub session: String,
    /// The replica of the target the send went to.
    pub replica: usize,
    pub sent: Sent,
    /// Unix time of the send, in nanoseconds.
    pub sent_at_ns: u64,
    pub result: CallResult,
    /// Ledger records this send alone caused, when it ran alone.
    pub arrivals: Option<Range<usize>>,
    /// Whether the arguments are valid against the mock's schema for the
    /// tool (typed calls to a known tool only).
    pub schema_valid: Option<bool>,
}

/// One step's share of the sends and of the ledger.
#[derive(Debug, Clone)]
pub struct StepObs {
    pub index: usize,
    pub calls: Range<usize>,
    pub ledger: Range<usize>,
    /// More than one send was in flight at once.
    pub concurrent: bool,
}

/// Everything observed while a scenario ran.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub calls: Vec<CallObs>,
    pub steps: Vec<StepObs>,
    pub ledger: Vec<LedgerRecord>,
    /// Problems of the harness or the target's start-up, not verdicts.
    pub errors: Vec<String>,
}

impl Observation {
    /// Moves every time stamp into the time of an enforcer whose clock runs
    /// `scale` times faster (`policy::ScaledClock`), so that windows are
    /// judged as the enforcer saw them.
    pub fn in_enforcer_time(&mut self, scale: f64) {
        if scale == 1.0 {
            return;
        }
        let clock = crate::target::scaled_clock(scale);
        let map = |ns: u64| {
            let d = clock.at(Duration::from_nanos(ns));
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
        };
        for rec in &mut self.ledger {
            rec.at_unix_ns = map(rec.at_unix_ns);
        }
        for call in &mut self.calls {
            call.sent_at_ns = map(call.sent_at_ns);
        }
    }
}

/// Runs every step of `scenario` in `arena`.
pub async fn execute(
    scenario: &Scenario,
    policy: &Policy,
    catalogue: &Catalogue,
    arena: &mut Arena,
    seed: u64,
) -> Observation {
    let mut obs = Observation::default();
    // Delays and windows are in the enforcer's time; sleeps are in the wall's.
    let scale = arena.time_scale();
    for (index, step) in scenario.steps.iter().enumerate() {
        if step.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(step.delay_ms).div_f64(scale)).await;
        }
        let ledger_start = poll(arena, &mut obs);
        let calls_start = obs.calls.len();
        let sends = plan(index, step, catalogue, seed, arena.replicas());
        let concurrent = step.concurrency > 1 || step.pipeline;
        let edge = step
            .at
            .map(|At::WindowEdge| edge_split(policy, step, sends.len(), scale));
        if concurrent {
            run_concurrent(arena, step, sends, edge, &mut obs).await;
        } else {
            run_sequential(arena, step, sends, edge, &mut obs).await;
        }
        let ledger_end = poll(arena, &mut obs);
        obs.steps.push(StepObs {
            index,
            calls: calls_start..obs.calls.len(),
            ledger: ledger_start..ledger_end,
            concurrent,
        });
    }
    // Late arrivals (a proxy that forwards after answering) still count.
    tokio::time::sleep(Duration::from_millis(20)).await;
    poll(arena, &mut obs);
    obs.ledger = arena.take_records();
    if let Some(dead) = arena.dead_server() {
        obs.errors.push(dead);
    }
    obs
}

fn poll(arena: &mut Arena, obs: &mut Observation) -> usize {
    match arena.poll_ledger() {
        Ok(n) => n,
        Err(e) => {
            obs.errors.push(e.to_string());
            arena.records().len()
        }
    }
}

/// One planned send.
struct Send {
    key: SessionKey,
    sent: Sent,
    schema_valid: Option<bool>,
    n: u32,
}

fn plan(
    step_index: usize,
    step: &Step,
    catalogue: &Catalogue,
    seed: u64,
    replicas: usize,
) -> Vec<Send> {
    // The tool, and literal arguments with their schema verdict, are the
    // same for every send of the step: worked out once, not per send (a
    // flood repeats a call hundreds of times).
    let tool = step
        .kind
        .tool()
        .and_then(|name| catalogue.resolve(name, crate::names::NameMatching::Lenient));
    let literal = match &step.kind {
        StepKind::Call {
            args: ArgSpec::Literal(v),
            set,
            ..
        } => {
            let mut value = v.clone();
            for (path, v) in set {
                crate::generate::set_path(&mut value, path, v.clone());
            }
            let valid = tool.map(|t| t.validate(&value).is_empty());
            Some((value, valid))
        }
        _ => None,
    };
    (0..step.repeat)
        .map(|n| {
            let label = match &step.session {
                SessionSpec::Named(l) => l.clone(),
                SessionSpec::Rotate(k) => format!("step{step_index}-rot{}", n % (*k).max(1)),
            };
            let key = SessionKey {
                identity: step.who.for_send(n).to_owned(),
                label,
                replica: match step.replicas {
                    Spread::First => 0,
                    Spread::RoundRobin => n as usize % replicas.max(1),
                },
            };
            let (sent, schema_valid) = match (&step.kind, &literal) {
                (StepKind::Call { name, .. }, Some((value, valid))) => (
                    Sent::Call {
                        name: name.clone(),
                        args: value.clone(),
                    },
                    *valid,
                ),
                (StepKind::Call { name, args, set }, None) => {
                    let schema = tool.map(|t| &t.entry().input_schema);
                    let seed = seed
                        .wrapping_mul(1_000_003)
                        .wrapping_add((step_index as u64) * 100_000 + u64::from(n));
                    let mut value = match (args, schema) {
                        (ArgSpec::Literal(v), _) => v.clone(),
                        (ArgSpec::Generate(Generation::Valid), Some(s)) => {
                            crate::generate::valid(s, seed)
                        }
                        (ArgSpec::Generate(Generation::Violate(rule)), Some(s)) => {
                            crate::generate::violating(s, *rule, seed)
                                .map(|(v, _)| v)
                                .unwrap_or_else(|| crate::generate::valid(s, seed))
                        }
                        (ArgSpec::Generate(_), None) => json!({}),
                    };
                    for (path, v) in set {
                        crate::generate::set_path(&mut value, path, v.clone());
                    }
                    let valid = tool.map(|t| t.validate(&value).is_empty());
                    (
                        Sent::Call {
                            name: name.clone(),
                            args: value,
                        },
                        valid,
                    )
                }
                (StepKind::Raw { bytes, .. }, _) => (
                    Sent::Raw {
                        bytes: bytes.clone(),
                    },
                    None,
                ),
                (StepKind::List, _) => (Sent::List, None),
            };
            Send {
                key,
                sent,
                schema_valid,
                n,
            }
        })
        .collect()
}

/// For a window-edge step: how long to wait before the first send, how many
/// sends go before the edge, and the pause between the halves.
fn edge_split(
    policy: &Policy,
    step: &Step,
    count: usize,
    scale: f64,
) -> (Duration, usize, Duration) {
    let window = step
        .kind
        .tool()
        .and_then(|t| policy.tool_rule(t))
        .into_iter()
        .flat_map(|r| r.limits.iter())
        .chain(policy.all_tools.iter())
        .map(|l| l.window.duration())
        .min()
        .unwrap_or(Duration::from_secs(1));
    // The edge is one of the enforcer's clock; the waits are wall time.
    let now = if scale == 1.0 {
        SystemClock.now()
    } else {
        crate::target::scaled_clock(scale).now()
    };
    let w = window.as_nanos().max(1);
    let into = now.as_nanos() % w;
    let lead = Duration::from_millis(150);
    let mut until_edge = Duration::from_nanos((w - into) as u64).div_f64(scale);
    // Too close to the edge to land the first half before it: take the next.
    if until_edge < lead + Duration::from_millis(50) {
        until_edge += window.div_f64(scale);
    }
    (
        until_edge.saturating_sub(lead),
        count / 2,
        lead + Duration::from_millis(step.after_ms).div_f64(scale),
    )
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

async fn run_sequential(
    arena: &mut Arena,
    step: &Step,
    sends: Vec<Send>,
    edge: Option<(Duration, usize, Duration)>,
    obs: &mut Observation,
) {
    if let Some((wait, _, _)) = edge {
        tokio::time::sleep(wait).await;
    }
    for (i, send) in sends.into_iter().enumerate() {
        if let Some((_, half, pause)) = edge
            && i == half
        {
            tokio::time::sleep(pause).await;
        }
        let before = poll(arena, obs);
        let sent_at_ns = now_ns();
        // A session that has hung twice is not waited on again: a hung
        // enforcer must not turn a 40-call step into minutes of timeouts.
        let hung_before = obs
            .calls
            .iter()
            .filter(|c| c.identity == send.key.identity && c.session == send.key.label)
            .filter(|c| c.replica == send.key.replica)
            .filter(|c| matches!(c.result, CallResult::Timeout))
            .count();
        let result = if hung_before >= 2 {
            CallResult::Timeout
        } else {
            match arena.session(&send.key, !step.skip_handshake).await {
                Ok(client) => perform(&client, step, &send.sent).await,
                Err(e) => session_error(e),
            }
        };
        let after = poll(arena, obs);
        obs.calls.push(CallObs {
            step: obs.steps.len(),
            index: send.n,
            replica: send.key.replica,
            identity: send.key.identity,
            session: send.key.label,
            sent: send.sent,
            sent_at_ns,
            result,
            arrivals: Some(before..after),
            schema_valid: send.schema_valid,
        });
    }
}

async fn run_concurrent(
    arena: &mut Arena,
    step: &Step,
    sends: Vec<Send>,
    edge: Option<(Duration, usize, Duration)>,
    obs: &mut Observation,
) {
    // Open every session first, so start-up time is not part of the race.
    let mut ready = Vec::with_capacity(sends.len());
    for send in sends {
        let client = arena
            .session(&send.key, !step.skip_handshake)
            .await
            .map_err(|e| match session_error(e) {
                CallResult::Error(m) | CallResult::Closed(m) => m,
                _ => String::new(),
            });
        ready.push((send, client));
    }
    let (wait, half, pause) = edge.unwrap_or((Duration::ZERO, usize::MAX, Duration::ZERO));
    tokio::time::sleep(wait).await;
    let width = if step.pipeline {
        ready.len().max(1)
    } else {
        step.concurrency as usize
    };
    let step_index = obs.steps.len();
    let mut halves = vec![Vec::new(), Vec::new()];
    for (i, item) in ready.into_iter().enumerate() {
        halves[usize::from(i >= half)].push(item);
    }
    for (h, items) in halves.into_iter().enumerate() {
        if h == 1 && !items.is_empty() {
            tokio::time::sleep(pause).await;
        }
        let results: Vec<CallObs> = futures_util::stream::iter(items)
            .map(
                |(send, client): (Send, Result<Arc<Client>, String>)| async move {
                    let sent_at_ns = now_ns();
                    let result = match client {
                        Ok(c) => perform(&c, step, &send.sent).await,
                        Err(m) => CallResult::Error(m),
                    };
                    CallObs {
                        step: step_index,
                        index: send.n,
                        replica: send.key.replica,
                        identity: send.key.identity,
                        session: send.key.label,
                        sent: send.sent,
                        sent_at_ns,
                        result,
                        arrivals: None,
                        schema_valid: send.schema_valid,
                    }
                },
            )
            .buffer_unordered(width)
            .collect()
            .await;
        obs.calls.extend(results);
    }
}

fn session_error(e: TargetError) -> CallResult {
    match e {
        TargetError::Client(ClientError::Timeout(_)) => CallResult::Timeout,
        TargetError::Client(ClientError::Closed(s)) => {
            CallResult::Closed(s.unwrap_or_else(|| "closed during the handshake".into()))
        }
        other => CallResult::Error(other.to_string()),
    }
}

async fn perform(client: &Client, step: &Step, sent: &Sent) -> CallResult {
    let res = match (sent, &step.kind) {
        (Sent::Call { name, args }, _) => client.call_tool(name, args.clone()).await,
        (Sent::Raw { bytes }, StepKind::Raw { headers, bare, .. }) => {
            let opts = SendOptions {
                headers: headers.clone(),
                bare: *bare,
                ..SendOptions::default()
            };
            let expect = Expect::for_bytes(bytes, QUIET);
            client.send_raw(bytes.clone(), expect, &opts).await
        }
        (Sent::Raw { bytes }, _) => {
            let expect = Expect::for_bytes(bytes, QUIET);
            client
                .send_raw(bytes.clone(), expect, &SendOptions::default())
                .await
        }
        (Sent::List, _) => client.request("tools/list", Some(json!({}))).await,
    };
    match res {
        Ok(ex) => CallResult::Reply(ex),
        Err(ClientError::Timeout(_)) => CallResult::Timeout,
        Err(ClientError::Closed(status)) => {
            let tail = client.stderr_tail();
            let tail = tail.trim();
            CallResult::Closed(match (status, tail.is_empty()) {
                (Some(s), true) => s,
                (Some(s), false) => format!("{s}: {tail}"),
                (None, true) => "connection closed".into(),
                (None, false) => format!("connection closed: {tail}"),
            })
        }
        Err(e) => CallResult::Error(e.to_string()),
    }
}
