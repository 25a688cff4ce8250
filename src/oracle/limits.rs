//! Limit invariants: arrivals per counter key within each window, and the
//! model simulated over what was sent, to catch over-blocking.
//!
//! The mock stamps arrivals with its own clock, a little after the enforcer
//! decided; a tolerance keeps that skew from turning a correct enforcer's
//! arrivals on either side of a window edge into a false finding.

use std::collections::{HashMap, HashSet};

use super::verdict::{Check, Finding, Verdict};
use super::{Origin, is_call, session_key};
use crate::mock::ledger::LedgerRecord;
use crate::policy::{Call, CounterKey, CounterRequest, Judgement, Policy, WindowMode};
use crate::run::exec::{CallResult, Observation, Sent};

/// How much clock skew between a decision and its arrival is forgiven.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    pub ns: u64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance { ns: 100_000_000 }
    }
}

/// A counter key whose arrivals exceeded its limit in some window.
pub(crate) struct OverLimit {
    pub message: String,
    pub rule: String,
    pub records: Vec<usize>,
}

struct Series {
    max: u64,
    window_ns: u64,
    rule: String,
    /// (time, amount, record index), in arrival order.
    points: Vec<(u64, u64, usize)>,
}

/// Checks arrivals (records that executed, with what they count against).
pub(crate) fn check_arrivals(
    mode: WindowMode,
    ledger: &[LedgerRecord],
    counted: &[(usize, Vec<CounterRequest>)],
    tol: Tolerance,
) -> Vec<OverLimit> {
    let mut series: HashMap<CounterKey, Series> = HashMap::new();
    for (i, reqs) in counted {
        let at = ledger.get(*i).map_or(0, |r| r.at_unix_ns);
        for req in reqs {
            series
                .entry(req.key.clone())
                .or_insert_with(|| Series {
                    max: req.max,
                    window_ns: req.window.duration().as_nanos() as u64,
                    rule: req.loc.pointer.clone(),
                    points: Vec::new(),
                })
                .points
                .push((at, req.amount, *i));
        }
    }
    let mut out = Vec::new();
    let mut keys: Vec<_> = series.keys().cloned().collect();
    keys.sort_by_key(|k| k.to_string());
    for key in keys {
        let Some(s) = series.get_mut(&key) else {
            continue;
        };
        s.points.sort_by_key(|p| p.0);
        let excess = match mode {
            WindowMode::Sliding => sliding_excess(s, tol),
            WindowMode::Fixed => fixed_excess(s, tol),
        };
        if !excess.is_empty() {
            out.push(OverLimit {
                message: format!(
                    "{} arrival(s) beyond the limit of {} per {}s window on `{key}`",
                    excess.len(),
                    s.max,
                    s.window_ns / 1_000_000_000,
                ),
                rule: s.rule.clone(),
                records: excess,
            });
        }
    }
    out
}

/// Arrivals beyond the max within a span shorter than the window (less the
/// tolerance). An excess arrival is not counted against later ones, so
/// exactly the calls beyond the quota are named.
fn sliding_excess(s: &Series, tol: Tolerance) -> Vec<usize> {
    let span = s.window_ns.saturating_sub(tol.ns).max(1);
    let mut kept: std::collections::VecDeque<(u64, u64)> = std::collections::VecDeque::new();
    let mut sum = 0u64;
    let mut excess = Vec::new();
    for &(t, amount, idx) in &s.points {
        while kept
            .front()
            .is_some_and(|(t0, _)| t.saturating_sub(*t0) >= span)
        {
            if let Some((_, a)) = kept.pop_front() {
                sum -= a;
            }
        }
        if sum.saturating_add(amount) > s.max {
            excess.push(idx);
        } else {
            sum += amount;
            kept.push_back((t, amount));
        }
    }
    excess
}

/// Calendar buckets; an arrival just after an edge may have been decided
/// just before it, so it goes to the earlier bucket while that has room.
fn fixed_excess(s: &Series, tol: Tolerance) -> Vec<usize> {
    let w = s.window_ns.max(1);
    let mut buckets: HashMap<u64, u64> = HashMap::new();
    let mut excess = Vec::new();
    for &(t, amount, idx) in &s.points {
        let mut b = t / w;
        if t % w < tol.ns && b > 0 {
            let prev = buckets.get(&(b - 1)).copied().unwrap_or(0);
            if prev.saturating_add(amount) <= s.max {
                b -= 1;
            }
        }
        let used = buckets.entry(b).or_default();
        if used.saturating_add(amount) > s.max {
            excess.push(idx);
        } else {
            *used += amount;
        }
    }
    excess
}

/// Over-blocking found by replaying the model over the sends.
#[derive(Default)]
pub(crate) struct OverBlocking {
    /// Sends that were denied though they had room.
    pub calls: HashSet<usize>,
    pub findings: Vec<Finding>,
}

/// The model's own admission log: what an ideal enforcer counted.
#[derive(Default)]
struct Sim {
    log: HashMap<CounterKey, Vec<(u64, u64)>>,
}

impl Sim {
    /// Whether every request fits at `t` even counting arrivals up to the
    /// tolerance older than a window: then a correct enforcer must admit.
    fn surely_fits(
        &self,
        mode: WindowMode,
        reqs: &[CounterRequest],
        t: u64,
        tol: Tolerance,
    ) -> bool {
        reqs.iter().all(|r| {
            let w = r.window.duration().as_nanos() as u64;
            let used: u64 = self
                .log
                .get(&r.key)
                .map(|points| {
                    points
                        .iter()
                        .filter(|(pt, _)| match mode {
                            WindowMode::Sliding => t.saturating_sub(*pt) < w.saturating_add(tol.ns),
                            // Either side of a nearby edge could be the bucket.
                            WindowMode::Fixed => {
                                let lo = t.saturating_sub(tol.ns) / w.max(1);
                                let hi = t.saturating_add(tol.ns) / w.max(1);
                                let b = *pt / w.max(1);
                                b >= lo.saturating_sub(u64::from(lo != hi)) && b <= hi
                            }
                        })
                        .map(|(_, a)| *a)
                        .sum()
                })
                .unwrap_or(0);
            used.saturating_add(r.amount) <= r.max
        })
    }

    fn add(&mut self, reqs: &[CounterRequest], t: u64) {
        for r in reqs {
            self.log
                .entry(r.key.clone())
                .or_default()
                .push((t, r.amount));
        }
    }
}

fn admits(
    policy: &Policy,
    name: &str,
    args: &serde_json::Value,
    identity: &str,
    session: &str,
) -> Option<Vec<CounterRequest>> {
    match policy.judge(
        &Call {
            tool: name,
            args: Some(args),
            grant: identity,
            session,
        },
        None,
    ) {
        Judgement::Admit(reqs) => Some(reqs),
        Judgement::Deny(_) => None,
    }
}

/// What an arrival counts against, if the model admits it.
fn judged(policy: &Policy, rec: &LedgerRecord, origin: &Origin) -> Option<Vec<CounterRequest>> {
    let (name, args) = (rec.raw_name.as_deref()?, rec.arguments.as_ref()?);
    admits(policy, name, args, &origin.identity, &origin.session_key())
}

/// What an arrival the model admits kept charged: all of it, unless the
/// policy refunds calls that upstream answered with a JSON-RPC error.
fn charged(policy: &Policy, rec: &LedgerRecord, origin: &Origin) -> Option<Vec<CounterRequest>> {
    let refunded =
        policy.refund_on_error && rec.outcome.as_ref().is_some_and(|o| o.rpc_code().is_some());
    if refunded {
        return None;
    }
    judged(policy, rec, origin)
}

/// Replays the model over the sends in order and reports calls (or, for
/// concurrent steps, shortfalls) that a correct enforcer would have admitted.
/// Sends after `upstream_gone_ns` (the mock was made to crash) are not
/// judged: nothing can be forwarded to a dead upstream.
pub(crate) fn over_blocking(
    policy: &Policy,
    obs: &Observation,
    origins: &[Origin],
    tol: Tolerance,
    upstream_gone_ns: Option<u64>,
) -> OverBlocking {
    let mode = policy.window_mode;
    let mut sim = Sim::default();
    let mut out = OverBlocking::default();
    for step in &obs.steps {
        if !step.concurrent {
            for ci in step.calls.clone() {
                let call = &obs.calls[ci];
                // Whatever this send put through counts first, judged on
                // the ledger's own reading of it: a raw frame, a name only
                // the enforcer knew, a call the mock could not run. The
                // enforcer admitted it and may have charged it.
                let mut arrived = false;
                for i in call.arrivals.clone().unwrap_or_default() {
                    let Some(rec) = obs.ledger.get(i).filter(|r| is_call(r)) else {
                        continue;
                    };
                    arrived = true;
                    // Counted from its arrival: after the enforcer decided,
                    // so the model never sees room the enforcer could not
                    // have.
                    if let Some(reqs) = charged(policy, rec, &origins[i]) {
                        sim.add(&reqs, rec.at_unix_ns.max(call.sent_at_ns));
                    }
                }
                let (Sent::Call { name, args }, Some(true), CallResult::Reply(_)) =
                    (&call.sent, call.schema_valid, &call.result)
                else {
                    continue;
                };
                if arrived || upstream_gone_ns.is_some_and(|gone| call.sent_at_ns >= gone) {
                    continue;
                }
                let session = session_key(&call.identity, &call.session, call.replica);
                let Some(reqs) = admits(policy, name, args, &call.identity, &session) else {
                    continue;
                };
                if sim.surely_fits(mode, &reqs, call.sent_at_ns, tol) {
                    out.calls.insert(ci);
                    out.findings.push(
                        Finding::new(
                            Verdict::OverBlocked,
                            Check::OverBlocked,
                            format!("`{name}` was denied although the policy allows it and every limit had room"),
                        )
                        .for_call(ci, call),
                    );
                }
            }
            continue;
        }
        // A burst: compare how many arrived with how many had room.
        let mut trial = Sim {
            log: sim.log.clone(),
        };
        let mut expected = 0usize;
        let mut offered = 0usize;
        for ci in step.calls.clone() {
            let call = &obs.calls[ci];
            let (Sent::Call { name, args }, Some(true)) = (&call.sent, call.schema_valid) else {
                continue;
            };
            if matches!(
                call.result,
                CallResult::Timeout | CallResult::Closed(_) | CallResult::Error(_)
            ) {
                continue;
            }
            let session = session_key(&call.identity, &call.session, call.replica);
            let Some(reqs) = admits(policy, name, args, &call.identity, &session) else {
                continue;
            };
            offered += 1;
            if trial.surely_fits(mode, &reqs, call.sent_at_ns, tol) {
                trial.add(&reqs, call.sent_at_ns);
                expected += 1;
            }
        }
        // Admitted is arrived, whether or not the mock could then run it.
        let mut actual = 0usize;
        for i in step.ledger.clone() {
            let Some(rec) = obs.ledger.get(i).filter(|r| is_call(r)) else {
                continue;
            };
            if let Some(reqs) = judged(policy, rec, &origins[i]) {
                actual += 1;
                if charged(policy, rec, &origins[i]).is_some() {
                    sim.add(&reqs, rec.at_unix_ns);
                }
            }
        }
        if actual < expected {
            out.findings.push(Finding {
                step: Some(step.index),
                ..Finding::new(
                    Verdict::OverBlocked,
                    Check::OverBlocked,
                    format!(
                        "only {actual} of {offered} concurrent calls were admitted; the policy had room for {expected}"
                    ),
                )
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(max: u64, window_s: u64, times_ms: &[u64]) -> Series {
        Series {
            max,
            window_ns: window_s * 1_000_000_000,
            rule: String::new(),
            points: times_ms
                .iter()
                .enumerate()
                .map(|(i, t)| (t * 1_000_000, 1, i))
                .collect(),
        }
    }

    #[test]
    fn sliding_allows_max_per_span_and_catches_one_more() {
        let tol = Tolerance::default();
        assert!(sliding_excess(&series(3, 1, &[0, 10, 20, 1100, 1110, 1120]), tol).is_empty());
        assert_eq!(
            sliding_excess(&series(3, 1, &[0, 10, 20, 30, 40]), tol),
            vec![3, 4]
        );
        // An excess arrival does not use up quota: the 3 after the window are fine.
        assert_eq!(
            sliding_excess(&series(3, 1, &[0, 10, 20, 30, 1010, 1020, 1030]), tol),
            vec![3]
        );
        // Skew: the 4th arrived 950ms after the first, within tolerance of a
        // window that a correct enforcer saw expire.
        assert!(sliding_excess(&series(3, 1, &[0, 10, 20, 950]), tol).is_empty());
    }

    #[test]
    fn fixed_buckets_allow_a_burst_on_each_side_of_an_edge() {
        let tol = Tolerance::default();
        // 3 just before the 1s edge, 3 just after: legal for fixed windows.
        assert!(fixed_excess(&series(3, 1, &[900, 950, 990, 1010, 1020, 1030]), tol).is_empty());
        assert_eq!(
            fixed_excess(&series(3, 1, &[1200, 1300, 1400, 1500]), tol),
            vec![3]
        );
    }
}
