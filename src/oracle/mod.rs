//! The oracle: ledger + replies + policy model -> verdicts.
//!
//! It checks invariants, not a script of replies:
//! - nothing arrives that the policy denies whatever the counters say;
//! - within each window, arrivals per counter key stay within the limit;
//! - a call the policy allows, sent while under every limit, is not denied.
//!
//! The ledger decides whether a call arrived; the reply only says what the
//! client was told. Concurrency is nondeterministic, the invariants are not.

mod limits;
mod verdict;

use std::collections::HashMap;

use serde_json::Value;

use crate::mock::ledger::LedgerRecord;
use crate::policy::{Call, Judgement, Policy};
use crate::run::exec::{CallResult, Observation, Sent};

pub use limits::Tolerance;
pub use verdict::{CallVerdict, Check, Finding, ScenarioJudgement, Verdict};

/// Explicit expectations a scenario adds to the derived ones.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub max_arrivals: Option<u64>,
    pub no_success: bool,
}

/// Whether a ledger record is a tool call (any spelling a lenient server
/// would execute as one).
pub fn is_call(rec: &LedgerRecord) -> bool {
    rec.method
        .as_deref()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("tools/call"))
}

/// Who sent a ledger record, as far as the harness can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub identity: String,
    /// The session's label in the scenario.
    pub session: String,
    /// The instance of the target the session talked to.
    pub replica: usize,
    /// The send that alone caused it, if any.
    pub call: Option<usize>,
    pub step: Option<usize>,
}

impl Origin {
    /// The session as the policy's `session` scope sees it.
    pub(crate) fn session_key(&self) -> String {
        session_key(&self.identity, &self.session, self.replica)
    }
}

/// One session of a scenario, as the `session` scope counts it. The harness
/// opens a session per identity, label and replica: the same label under
/// two identities names two sessions, with counters of their own.
pub(crate) fn session_key(identity: &str, label: &str, replica: usize) -> String {
    if replica == 0 {
        format!("{identity}/{label}")
    } else {
        format!("{identity}/{label}@{replica}")
    }
}

fn origins(obs: &Observation) -> Vec<Origin> {
    let mut out: Vec<Origin> = obs
        .ledger
        .iter()
        .map(|rec| Origin {
            identity: rec.identity.clone().unwrap_or_else(|| "?".into()),
            session: rec.session.clone().unwrap_or_else(|| "?".into()),
            replica: 0,
            call: None,
            step: None,
        })
        .collect();
    for step in &obs.steps {
        let calls = &obs.calls[step.calls.clone()];
        let one = |f: fn(&crate::run::exec::CallObs) -> &String| {
            let first = calls.first().map(f)?;
            calls.iter().all(|c| f(c) == first).then(|| first.clone())
        };
        let identity = one(|c| &c.identity);
        let session = one(|c| &c.session);
        let replica = calls
            .first()
            .map(|c| c.replica)
            .filter(|first| calls.iter().all(|c| c.replica == *first));
        for i in step.ledger.clone() {
            if let Some(o) = out.get_mut(i) {
                o.step = Some(step.index);
                if let Some(id) = &identity {
                    o.identity = id.clone();
                }
                if let Some(s) = &session {
                    o.session = s.clone();
                }
                if let Some(r) = replica {
                    o.replica = r;
                }
            }
        }
    }
    for (ci, call) in obs.calls.iter().enumerate() {
        for i in call.arrivals.clone().unwrap_or_default() {
            if let Some(o) = out.get_mut(i) {
                o.identity = call.identity.clone();
                o.session = call.session.clone();
                o.replica = call.replica;
                o.call = Some(ci);
            }
        }
    }
    out
}

/// Judges one observed scenario run.
pub fn judge(
    policy: &Policy,
    obs: &Observation,
    overrides: &Overrides,
    tol: Tolerance,
) -> ScenarioJudgement {
    let origins = origins(obs);
    let mut findings = Vec::new();

    // 1. Forbidden arrivals, and what each admitted arrival counts against.
    let mut forbidden: HashMap<usize, String> = HashMap::new();
    let mut counted = Vec::new();
    for (i, rec) in obs.ledger.iter().enumerate().filter(|(_, r)| is_call(r)) {
        let origin = &origins[i];
        let judgement = match rec.raw_name.as_deref() {
            Some(name) => policy.judge(
                &Call {
                    tool: name,
                    args: rec.arguments.as_ref(),
                    grant: &origin.identity,
                    session: &origin.session_key(),
                },
                None,
            ),
            None => Judgement::Deny(crate::policy::Denial {
                kind: crate::policy::DenyKind::Malformed,
                rule: String::new(),
                reason: "the call has no tool name the policy could judge".into(),
            }),
        };
        match judgement {
            Judgement::Deny(d) => {
                let why = format!("{} ({})", d.reason, d.kind.as_str());
                findings.push(
                    Finding::new(
                        Verdict::Leaked,
                        Check::ForbiddenArrival,
                        format!(
                            "`{}` reached the mock{} although the policy denies it: {why}",
                            rec.raw_name.as_deref().unwrap_or("?"),
                            if rec.executed { " and executed" } else { "" },
                        ),
                    )
                    .at_rule(&d.rule)
                    .with_records(&obs.ledger, &[i])
                    .with_origin(origin),
                );
                forbidden.insert(i, why);
            }
            Judgement::Admit(reqs) if rec.executed => counted.push((i, reqs)),
            Judgement::Admit(_) => {}
        }
    }

    // 1b. Frames the mock could not even parse, yet which carry a call: an
    // enforcer that forwards what it cannot judge fails open, whatever the
    // bytes would have done to a more forgiving server.
    for (i, rec) in obs.ledger.iter().enumerate() {
        let unparsed = rec.method.is_none() && rec.error.is_some();
        let carries_call = rec
            .raw
            .as_deref()
            .is_some_and(|r| r.to_ascii_lowercase().contains("tools/call"))
            || rec.raw_base64.is_some();
        if unparsed && carries_call {
            findings.push(
                Finding::new(
                    Verdict::Leaked,
                    Check::ForbiddenArrival,
                    format!(
                        "a frame no parser could judge was forwarded to the mock ({})",
                        rec.error.as_deref().unwrap_or("unparseable")
                    ),
                )
                .with_records(&obs.ledger, &[i])
                .with_origin(&origins[i]),
            );
            forbidden.insert(i, "unjudgeable frame forwarded".into());
        }
    }

    // 2. Arrivals per counter key and window.
    let over = limits::check_arrivals(policy.window_mode, &obs.ledger, &counted, tol);
    for o in &over {
        findings.push(
            Finding::new(Verdict::Leaked, Check::OverLimit, o.message.clone())
                .at_rule(&o.rule)
                .with_records(&obs.ledger, &o.records),
        );
        for r in &o.records {
            forbidden.entry(*r).or_insert_with(|| o.message.clone());
        }
    }

    // The mock's crash input ends its process on purpose: sends that then
    // find the session closed are the expected end, not an enforcer crash.
    let crash_seq = obs.ledger.iter().position(|r| {
        is_call(r)
            && crate::mock::effects::value_carries(
                r.arguments.as_ref(),
                crate::mock::effects::CRASH,
            )
    });

    // 3. Over-blocking, from the model simulated over what was sent.
    let gone = crash_seq
        .and_then(|i| obs.ledger.get(i))
        .map(|r| r.at_unix_ns);
    let over_blocked = limits::over_blocking(policy, obs, &origins, tol, gone);
    for ob in &over_blocked.findings {
        findings.push(ob.clone());
    }

    // 4. Per-send verdicts.
    let mut calls = Vec::with_capacity(obs.calls.len());
    for (ci, call) in obs.calls.iter().enumerate() {
        let arrived: Vec<usize> = call
            .arrivals
            .clone()
            .map(|r| {
                r.filter(|i| obs.ledger.get(*i).is_some_and(is_call))
                    .collect()
            })
            .unwrap_or_default();
        let (mut verdict, reply) = verdict::for_call(
            call,
            &arrived,
            &forbidden,
            over_blocked.calls.contains(&ci),
            policy,
        );
        if crash_seq.is_some()
            && matches!(call.result, CallResult::Closed(_) | CallResult::Error(_))
        {
            verdict = Verdict::Blocked;
        }
        if verdict == Verdict::Spoofed {
            findings.push(
                Finding::new(
                    Verdict::Spoofed,
                    Check::Spoofed,
                    "the client was told the call succeeded, but it never reached the mock".into(),
                )
                .for_call(ci, call),
            );
        }
        if matches!(verdict, Verdict::Hung | Verdict::Crashed) {
            let check = if verdict == Verdict::Hung {
                Check::Hung
            } else {
                Check::Crashed
            };
            findings.push(Finding::new(verdict, check, reply.clone()).for_call(ci, call));
        }
        if let Sent::List = call.sent
            && let CallResult::Reply(ex) = &call.result
        {
            for name in listed_hidden(policy, ex.reply()) {
                findings.push(
                    Finding::new(
                        Verdict::Leaked,
                        Check::HiddenListed,
                        format!("hidden tool `{name}` appears in tools/list"),
                    )
                    .at_rule("/hide")
                    .for_call(ci, call),
                );
            }
        }
        if overrides.no_success
            && verdict::succeeded(&call.result)
            && !matches!(call.sent, Sent::List)
        {
            findings.push(
                Finding::new(
                    if arrived.is_empty() {
                        Verdict::Spoofed
                    } else {
                        Verdict::Leaked
                    },
                    Check::SuccessOnProbe,
                    "a malformed call was answered with a success".into(),
                )
                .for_call(ci, call),
            );
        }
        calls.push(CallVerdict::new(ci, call, verdict, reply, arrived.len()));
    }

    // 5. Headers that must never cross the enforcer.
    let leaked_tokens: Vec<usize> = obs
        .ledger
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        })
        .map(|(i, _)| i)
        .collect();
    if !leaked_tokens.is_empty() {
        findings.push(
            Finding::new(
                Verdict::Leaked,
                Check::TokenPassthrough,
                format!(
                    "{} upstream request(s) carried the client's Authorization header",
                    leaked_tokens.len()
                ),
            )
            .with_records(&obs.ledger, &leaked_tokens),
        );
    }

    // 6. Explicit overrides and harness-level deaths.
    let arrivals = obs.ledger.iter().filter(|r| is_call(r)).count() as u64;
    if let Some(max) = overrides.max_arrivals
        && arrivals > max
    {
        findings.push(Finding::new(
            Verdict::Leaked,
            Check::MaxArrivals,
            format!("{arrivals} tool calls reached the mock; the scenario allows at most {max}"),
        ));
    }
    if crash_seq.is_none() {
        for e in &obs.errors {
            findings.push(Finding::new(Verdict::Crashed, Check::Crashed, e.clone()));
        }
    }

    // Did the attack land? A token reaching a bare mock proves nothing (the
    // client sent it there itself), so it does not count.
    let leaked = findings
        .iter()
        .any(|f| f.verdict == Verdict::Leaked && f.check != Check::TokenPassthrough);
    let all_allowed = !calls.is_empty() && calls.iter().all(|c| c.verdict == Verdict::Allowed);
    ScenarioJudgement {
        landed: leaked || all_allowed || crash_seq.is_some(),
        arrivals,
        calls,
        findings,
    }
}

fn listed_hidden(policy: &Policy, reply: Option<&Value>) -> Vec<String> {
    reply
        .and_then(|r| r.pointer("/result/tools"))
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str))
                .filter(|n| policy.is_hidden(n))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
