//! Shrinking a failing case: drop steps, then cut repeats and shapes, for as
//! long as the case still fails with one of the same checks. Each try is a
//! full run, so the number of tries and their time are bounded.

use crate::oracle::{Check, Finding};

use super::{Bench, CaseDraft, FuzzError, StepDraft};

/// Runs at most this many candidates per finding.
const MAX_TRIES: usize = 60;

/// Simpler forms of one step, simplest first.
fn simpler(s: &StepDraft) -> Vec<StepDraft> {
    let mut out = Vec::new();
    let with = |f: &dyn Fn(&mut StepDraft)| {
        let mut c = s.clone();
        f(&mut c);
        c
    };
    if s.repeat > 1 {
        out.push(with(&|c| {
            c.repeat = 1;
            c.concurrency = 1;
            c.pipeline = false;
        }));
        if s.repeat > 2 {
            out.push(with(&|c| {
                c.repeat -= 1;
                c.concurrency = c.concurrency.min(c.repeat);
            }));
        }
    }
    if s.concurrency > 1 || s.pipeline {
        out.push(with(&|c| {
            c.concurrency = 1;
            c.pipeline = false;
        }));
    }
    if s.sessions > 0 {
        out.push(with(&|c| c.sessions = 0));
    }
    if !s.identities.is_empty() || s.identity.is_some() {
        out.push(with(&|c| {
            c.identities.clear();
            c.identity = None;
        }));
    }
    if s.session.is_some() {
        out.push(with(&|c| c.session = None));
    }
    if s.delay_ms > 0 {
        out.push(with(&|c| c.delay_ms = 0));
    }
    out
}

/// The smallest case found that still fails, with its findings.
pub(crate) async fn shrink(
    bench: &Bench<'_>,
    mut best: CaseDraft,
    checks: &[Check],
    mut findings: Vec<Finding>,
) -> Result<(CaseDraft, Vec<Finding>), FuzzError> {
    let started = std::time::Instant::now();
    let limit = bench.cfg.shrink_time;
    let mut tries = 0;
    let still_fails = |f: &[Finding]| f.iter().any(|x| checks.contains(&x.check));
    // Pass 0: keep only the steps the findings name, when they all name one.
    let named: Option<Vec<usize>> = findings.iter().map(|f| f.step).collect();
    if let Some(mut keep) = named.filter(|k| !k.is_empty()) {
        keep.sort_unstable();
        keep.dedup();
        if keep.len() < best.steps.len() {
            let mut cand = best.clone();
            cand.steps = keep
                .iter()
                .filter_map(|i| best.steps.get(*i).cloned())
                .collect();
            tries += 1;
            let out = bench.run(&cand, "fz-shrink-named").await?;
            if still_fails(&out.findings) {
                best = cand;
                findings = out.findings;
            }
        }
    }
    // Pass 1: drop whole steps, latest first, until no single drop keeps the
    // failure (a 1-minimal sequence).
    let mut progress = true;
    while progress && tries < MAX_TRIES && started.elapsed() < limit {
        progress = false;
        let mut i = best.steps.len();
        while i > 0 && tries < MAX_TRIES && started.elapsed() < limit && best.steps.len() > 1 {
            i -= 1;
            let mut cand = best.clone();
            cand.steps.remove(i);
            tries += 1;
            let out = bench.run(&cand, &format!("fz-shrink-{tries}")).await?;
            if still_fails(&out.findings) {
                best = cand;
                findings = out.findings;
                progress = true;
            }
        }
    }
    // Pass 2: simplify each remaining step in place.
    let mut i = 0;
    while i < best.steps.len() && tries < MAX_TRIES && started.elapsed() < limit {
        let mut changed = false;
        for cand_step in simpler(&best.steps[i]) {
            if tries >= MAX_TRIES || started.elapsed() >= limit {
                break;
            }
            let mut cand = best.clone();
            cand.steps[i] = cand_step;
            tries += 1;
            let out = bench.run(&cand, &format!("fz-shrink-{tries}")).await?;
            if still_fails(&out.findings) {
                best = cand;
                findings = out.findings;
                changed = true;
                break;
            }
        }
        if !changed {
            i += 1;
        }
    }
    Ok((best, findings))
}
