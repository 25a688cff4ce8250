//! Arenas kept from case to case.
//!
//! A case is short (a few to a few hundred calls), and opening a stdio
//! session costs far more than a call, so where the target can be reset
//! (`Arena::reset`: every counter emptied, the ledger read from its end)
//! one arena serves case after case, its sessions open. Cases stay
//! independent: each starts from empty counters and is judged on its own
//! ledger records, exactly as in a fresh arena.
//!
//! What a reused session could carry over is kept out:
//! - a session whose send hung, failed or found it closed is closed, and so
//!   is a whole arena with a harness error or a dead server;
//! - a session serves [`SESSION_USES`] cases and then makes way for a fresh
//!   one, so that start-up paths (the handshake, the enforcer's first
//!   schema fetch) stay under test;
//! - at most [`KEEP_SESSIONS`] sessions stay open per arena.
//!
//! Targets that cannot be reset get a fresh arena per case, as before.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Outcome;
use crate::mcp::Revision;
use crate::mock::catalogue::Catalogue;
use crate::oracle::{self, Overrides, Tolerance};
use crate::policy::Policy;
use crate::run::exec::{self, CallResult, Observation};
use crate::scenario::{PolicySource, Scenario};
use crate::target::{Arena, ArenaSpec, HarnessConfig, SessionKey, TargetSpec};

/// Cases one session serves before it is replaced.
pub(crate) const SESSION_USES: u32 = 64;

/// Sessions kept open per arena, the most recently used.
pub(crate) const KEEP_SESSIONS: usize = 6;

/// What an arena was built for: cases under another policy, mock mode or
/// revision need another one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fit {
    policy: Option<PathBuf>,
    strict_mock: bool,
    revision: Revision,
}

struct Slot {
    fit: Fit,
    arena: Arena,
    /// Per open session: cases served, and the tick of the last one.
    used: HashMap<SessionKey, (u32, u64)>,
}

/// Idle arenas, waiting for their next case.
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<Vec<Slot>>,
    tick: AtomicU64,
}

fn outcome_error(e: impl ToString) -> Outcome {
    Outcome {
        calls: 0,
        findings: Vec::new(),
        error: Some(e.to_string()),
    }
}

impl Pool {
    fn take(&self, fit: &Fit) -> Option<Slot> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let i = idle.iter().rposition(|s| s.fit == *fit)?;
        Some(idle.swap_remove(i))
    }

    fn give_back(&self, slot: Slot) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot);
    }

    /// Runs one scenario in a kept arena if one fits, else in a new one,
    /// and judges it.
    pub(crate) async fn run(
        &self,
        harness: &HarnessConfig,
        target: &TargetSpec,
        scenario: &Scenario,
        catalogue: &Catalogue,
    ) -> Outcome {
        // Loaded with the scenario, as `load_policy` would load it again.
        let policy = &scenario.model;
        let fit = Fit {
            policy: match &scenario.policy {
                PolicySource::File(p) => Some(p.clone()),
                PolicySource::Inline(_) => None,
            },
            strict_mock: scenario.strict_mock,
            revision: scenario.revision,
        };
        let kept = fit.policy.as_ref().and_then(|_| self.take(&fit));
        let mut slot = match kept {
            Some(s) => s,
            None => {
                let spec = ArenaSpec {
                    policy,
                    strict_mock: scenario.strict_mock,
                    revision: scenario.revision,
                };
                match Arena::new(harness, target, &spec).await {
                    Ok(arena) => Slot {
                        fit: fit.clone(),
                        arena,
                        used: HashMap::new(),
                    },
                    Err(e) => return outcome_error(e),
                }
            }
        };
        let reusable = slot.arena.resettable() && fit.policy.is_some();
        if reusable && let Err(e) = slot.arena.reset() {
            return outcome_error(e);
        }
        // Seed 0, as `gauntlet run` uses by default: the saved file replays
        // the very same sends.
        let obs = exec::execute(scenario, policy, catalogue, &mut slot.arena, 0).await;
        let outcome = judge(policy, scenario, &obs);
        if reusable && obs.errors.is_empty() {
            self.keep(slot, &obs).await;
            return outcome;
        }
        let finished = slot.arena.finish(None).await;
        Outcome {
            error: outcome
                .error
                .or_else(|| finished.err().map(|e| e.to_string())),
            ..outcome
        }
    }

    /// Closes the sessions that may carry something over, and keeps the
    /// arena for the next case.
    async fn keep(&self, mut slot: Slot, obs: &Observation) {
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        let mut retire: Vec<SessionKey> = slot.arena.exited_sessions();
        for call in &obs.calls {
            let key = SessionKey {
                identity: call.identity.clone(),
                label: call.session.clone(),
                replica: call.replica,
            };
            let entry = slot.used.entry(key.clone()).or_insert((0, 0));
            if entry.1 != tick || entry.0 == 0 {
                entry.0 += 1;
                entry.1 = tick;
            }
            let broken = !matches!(call.result, CallResult::Reply(_));
            if (broken || entry.0 >= SESSION_USES) && !retire.contains(&key) {
                retire.push(key);
            }
        }
        let open = slot.arena.session_keys();
        slot.used.retain(|k, _| open.contains(k));
        let mut by_age: Vec<(u64, SessionKey)> = slot
            .used
            .iter()
            .filter(|(k, _)| !retire.contains(k))
            .map(|(k, (_, last))| (*last, k.clone()))
            .collect();
        by_age.sort_by_key(|a| std::cmp::Reverse(a.0));
        retire.extend(by_age.into_iter().skip(KEEP_SESSIONS).map(|(_, k)| k));
        for key in &retire {
            slot.used.remove(key);
            slot.arena.close_session(key).await;
        }
        if slot.arena.dead_server().is_some() {
            let _ = slot.arena.finish(None).await;
            return;
        }
        self.give_back(slot);
    }

    /// Stops every kept arena.
    pub(crate) async fn close(&self) {
        let slots = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        futures_util::future::join_all(slots.into_iter().map(|s| s.arena.finish(None))).await;
    }
}

fn judge(policy: &Policy, scenario: &Scenario, obs: &Observation) -> Outcome {
    let overrides = Overrides {
        max_arrivals: scenario.expect.max_arrivals,
        no_success: scenario.expect.no_success,
    };
    let judgement = oracle::judge(policy, obs, &overrides, Tolerance::default());
    Outcome {
        calls: obs.calls.len() as u64,
        findings: judgement.findings,
        error: obs.errors.first().cloned(),
    }
}
