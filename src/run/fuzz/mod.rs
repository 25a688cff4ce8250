//! Fuzz campaigns: call sequences drawn against the policy model, run in an
//! arena like any scenario, judged by the same oracle. A failing sequence
//! shrinks to the fewest steps and sends that still fail, then is saved as a
//! scenario file that `gauntlet run --catalogue DIR` replays unchanged.
//!
//! The differential part is the oracle itself: every call's outcome is
//! compared with what the model says of it (forbidden arrivals, arrivals
//! per window, over-blocking), with no expectations written by hand.

pub mod case;
pub mod cli;
mod focus;
mod pool;
mod shrink;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::mock::catalogue::Catalogue;
use crate::oracle::{Check, Finding};
use crate::scenario::{Loader, POLICIES_DIR, Scenario};
use crate::target::{HarnessConfig, TargetSpec, Transport};
pub use case::{CaseDraft, DraftKind, Model, StepDraft};

/// How often a running campaign reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// The policies a campaign picks from when none is given.
pub const BUNDLED_POLICIES: [(&str, &str); 2] = [
    ("fuzz-quota.json", include_str!("policies/fuzz-quota.json")),
    ("fuzz-open.json", include_str!("policies/fuzz-open.json")),
];

/// How long a campaign runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Time(Duration),
    Cases(u64),
}

impl Budget {
    /// Parses `60s`, `500ms`, `2m` (a time) or a bare number (of cases).
    pub fn parse(s: &str) -> Result<Budget, String> {
        let t = s.trim();
        if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
            return t
                .parse()
                .map(Budget::Cases)
                .map_err(|_| format!("`{s}` is not a number of cases"));
        }
        super::cli::parse_duration(t).map(Budget::Time)
    }
}

/// What a campaign runs against, and how.
#[derive(Debug, Clone)]
pub struct FuzzConfig {
    pub harness: HarnessConfig,
    pub target: TargetSpec,
    /// (file name, text) of each policy cases are drawn under.
    pub policies: Vec<(String, String)>,
    pub budget: Budget,
    pub seed: u64,
    /// Where findings are saved as scenario files.
    pub save: Option<PathBuf>,
    /// Stop after this many distinct findings.
    pub max_findings: usize,
    /// Cases in flight at once.
    pub jobs: usize,
    /// Steps per case, at most.
    pub max_steps: usize,
    /// Checks not reported: a target's known problems (say, `hung` on a
    /// frame it never answers) would otherwise mask everything else.
    pub ignore: Vec<Check>,
    /// How long shrinking one finding may take; it keeps the best so far.
    pub shrink_time: Duration,
}

/// What a campaign could not do at all.
#[derive(Debug, thiserror::Error)]
pub enum FuzzError {
    #[error("preparing the fuzz work folder: {0}")]
    Workdir(std::io::Error),
    #[error("policy `{file}`: {message}")]
    Policy { file: String, message: String },
    #[error("loading the mock's tool catalogue: {0}")]
    Catalogue(String),
    #[error("saving to `{path}`: {source}")]
    Save {
        path: String,
        source: std::io::Error,
    },
    #[error("a generated case does not load (a generator bug): {0}")]
    Generated(String),
    #[error("fuzzing an already-running URL target is not supported; give a command template")]
    UrlTarget,
}

/// One failure the campaign found, shrunk.
#[derive(Debug, Clone)]
pub struct FuzzFinding {
    /// The case number that failed first.
    pub case: u64,
    pub id: String,
    pub checks: Vec<Check>,
    /// The oracle's findings on the shrunk case.
    pub findings: Vec<Finding>,
    pub steps_before: usize,
    pub steps_after: usize,
    pub sends_after: u64,
    /// The shrunk case as a scenario file.
    pub toml: String,
    /// Where it was saved, if saving.
    pub saved: Option<PathBuf>,
}

/// Live figures, reported while the campaign runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub cases: u64,
    pub calls: u64,
    pub findings: usize,
    pub elapsed: Duration,
}

impl Progress {
    /// Calls per second so far.
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The whole campaign's result.
#[derive(Debug, Clone, Default)]
pub struct FuzzSummary {
    pub progress: Progress,
    pub findings: Vec<FuzzFinding>,
    /// Tags exercised (`op:gte`, `mutation:batch`, ...) with their counts.
    pub coverage: BTreeMap<String, u64>,
    /// Harness problems (a case that could not start), not verdicts.
    pub errors: Vec<String>,
}

/// A case after it ran.
struct Outcome {
    calls: u64,
    findings: Vec<Finding>,
    error: Option<String>,
}

/// Everything one case needs to run.
pub(crate) struct Bench<'a> {
    cfg: &'a FuzzConfig,
    loader: Loader,
    catalogue: &'a Catalogue,
    scratch: PathBuf,
    pool: pool::Pool,
}

impl Bench<'_> {
    fn scenario(&self, draft: &CaseDraft, id: &str) -> Result<Scenario, FuzzError> {
        let text = draft.to_toml(id, "fuzz case", "A generated call sequence.");
        let path = self.scratch.join(format!("{id}.toml"));
        self.loader
            .load_str(&text, &path)
            .map_err(|e| FuzzError::Generated(format!("{e}\n{text}")))
    }

    async fn run(&self, draft: &CaseDraft, id: &str) -> Result<Outcome, FuzzError> {
        let scenario = self.scenario(draft, id)?;
        Ok(self
            .pool
            .run(
                &self.cfg.harness,
                &self.cfg.target,
                &scenario,
                self.catalogue,
            )
            .await)
    }
}

fn checks_of(findings: &[Finding]) -> Vec<Check> {
    let mut out: Vec<Check> = Vec::new();
    for f in findings {
        if !out.contains(&f.check) {
            out.push(f.check);
        }
    }
    out
}

fn runner(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(b"gauntlet");
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// The genome of one case: which policy, and one gene vector per step.
fn genome(policies: usize, max_steps: usize) -> impl Strategy<Value = (usize, Vec<Vec<u32>>)> {
    (
        0..policies.max(1),
        vec(vec(any::<u32>(), 16), 1..=max_steps.max(1)),
    )
}

/// Runs a campaign, calling `on_progress` after every case.
pub async fn fuzz(
    cfg: &FuzzConfig,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<FuzzSummary, FuzzError> {
    if matches!(cfg.target, TargetSpec::Url { .. }) {
        return Err(FuzzError::UrlTarget);
    }
    let started = Instant::now();
    let work = tempfile::Builder::new()
        .prefix("gauntlet-fuzz-")
        .tempdir()
        .map_err(FuzzError::Workdir)?;
    let policies_dir = work.path().join(POLICIES_DIR);
    std::fs::create_dir_all(&policies_dir).map_err(FuzzError::Workdir)?;
    let catalogue = cfg
        .harness
        .catalogue()
        .map_err(|e| FuzzError::Catalogue(e.to_string()))?;
    let mut models = Vec::new();
    for (file, text) in &cfg.policies {
        let path = policies_dir.join(file);
        std::fs::write(&path, text).map_err(FuzzError::Workdir)?;
        let policy = crate::policy::load_file(&path).map_err(|e| FuzzError::Policy {
            file: file.clone(),
            message: e.to_string(),
        })?;
        models.push(Model::new(&policy, &catalogue));
    }
    let http = effective_transport(cfg) == Transport::Http;
    let bench = Bench {
        cfg,
        loader: Loader::new(&policies_dir).check_layout(false),
        catalogue: &catalogue,
        scratch: work.path().to_path_buf(),
        pool: pool::Pool::default(),
    };

    let mut runner = runner(cfg.seed);
    let strategy = genome(models.len(), cfg.max_steps);
    let draw = |runner: &mut TestRunner, case: u64| -> Option<CaseDraft> {
        let (p, genomes) = strategy.new_tree(runner).ok()?.current();
        // Focused families take turns with each policy.
        let p = if case % focus::FAMILIES == focus::FAMILIES - 1 {
            p
        } else {
            ((case / focus::FAMILIES) as usize) % models.len()
        };
        let model = &models[p % models.len()];
        let round = case / focus::FAMILIES / models.len() as u64 + cfg.seed;
        let steps = focus::steps(model, case, round, http).unwrap_or_else(|| {
            genomes
                .iter()
                .enumerate()
                .map(|(i, g)| case::step(model, g, i, http))
                .collect()
        });
        Some(CaseDraft {
            policy_file: cfg.policies[p % cfg.policies.len()].0.clone(),
            http,
            steps,
        })
    };

    let mut summary = FuzzSummary::default();
    let mut seen: Vec<Vec<Check>> = Vec::new();
    let mut next_case = 0u64;
    let jobs = cfg.jobs.max(1);
    // Cases drawn in order, `jobs` in flight, a new one started as soon as
    // any ends (one slow case must not hold the others back); results are
    // taken in draw order. The draw never depends on results, so a seed
    // always gives the same cases.
    let mut inflight = FuturesUnordered::new();
    // Ended cases waiting for their turn; `None` for a number whose draw
    // failed.
    type Ended = Option<(CaseDraft, Result<Outcome, FuzzError>)>;
    let mut done: BTreeMap<u64, Ended> = BTreeMap::new();
    let mut next_result = 0u64;
    // Failures waiting to be shrunk, once nothing else is in flight: a
    // case left unpolled while another is shrunk would see its replies
    // late and report them as hung.
    let mut to_shrink: Vec<(u64, CaseDraft, Vec<Check>, Vec<Finding>)> = Vec::new();
    let mut last_report = Instant::now();
    'campaign: loop {
        while to_shrink.is_empty() && inflight.len() < jobs {
            let more = match cfg.budget {
                Budget::Cases(n) => next_case < n,
                Budget::Time(t) => started.elapsed() < t,
            };
            if !more {
                break;
            }
            let n = next_case;
            next_case += 1;
            match draw(&mut runner, n) {
                Some(draft) => {
                    let bench = &bench;
                    inflight.push(async move {
                        let result = bench.run(&draft, &format!("fz-case-{n}")).await;
                        (n, draft, result)
                    });
                }
                None => {
                    done.insert(n, None);
                }
            }
        }
        let Some(ended) = done.remove(&next_result) else {
            match inflight.next().await {
                Some((n, draft, result)) => {
                    done.insert(n, Some((draft, result)));
                    continue;
                }
                None if to_shrink.is_empty() && done.is_empty() => break,
                None => {}
            }
            for (n, draft, checks, reported) in std::mem::take(&mut to_shrink) {
                let found = shrink::shrink(&bench, draft.clone(), &checks, reported).await?;
                let finding = finish(cfg, n, &draft, found, checks, &policies_dir)?;
                summary.findings.push(finding);
                summary.progress.findings = summary.findings.len();
                summary.progress.elapsed = started.elapsed();
                on_progress(&summary.progress);
                if summary.findings.len() >= cfg.max_findings {
                    break 'campaign;
                }
            }
            continue;
        };
        let n = next_result;
        next_result += 1;
        let Some((draft, result)) = ended else {
            continue;
        };
        let outcome = result?;
        summary.progress.cases += 1;
        summary.progress.calls += outcome.calls;
        for tag in draft.tags() {
            *summary.coverage.entry(tag).or_default() += 1;
        }
        if let Some(e) = outcome.error {
            summary.errors.push(format!("case {n}: {e}"));
        }
        let reported: Vec<Finding> = outcome
            .findings
            .into_iter()
            .filter(|f| !cfg.ignore.contains(&f.check))
            .collect();
        if !reported.is_empty() {
            let checks = checks_of(&reported);
            if !seen.contains(&checks) && seen.len() < cfg.max_findings {
                seen.push(checks.clone());
                to_shrink.push((n, draft, checks, reported));
            }
        }
        if last_report.elapsed() >= PROGRESS_EVERY {
            last_report = Instant::now();
            summary.progress.elapsed = started.elapsed();
            on_progress(&summary.progress);
        }
    }
    bench.pool.close().await;
    summary.progress.findings = summary.findings.len();
    summary.progress.elapsed = started.elapsed();
    Ok(summary)
}

fn effective_transport(cfg: &FuzzConfig) -> Transport {
    match &cfg.target {
        TargetSpec::Command(t) if crate::target::uses(t, "port") => Transport::Http,
        TargetSpec::Command(_) => Transport::Stdio,
        TargetSpec::Url { .. } => Transport::Http,
        _ => cfg.harness.transport,
    }
}

fn finish(
    cfg: &FuzzConfig,
    case: u64,
    original: &CaseDraft,
    (draft, findings): (CaseDraft, Vec<Finding>),
    checks: Vec<Check>,
    policies_dir: &Path,
) -> Result<FuzzFinding, FuzzError> {
    let id = format!("fz-{}-{case}", cfg.seed);
    let first = findings
        .first()
        .map_or_else(String::new, |f| f.message.clone());
    let words: Vec<&str> = checks.iter().map(|c| check_word(*c)).collect();
    let title = format!("Fuzz finding: {}", words.join(", "));
    let description = format!(
        "Found by `gauntlet fuzz --seed {}` (case {case}) and shrunk from {} to {} step(s). \
         The first finding: {first}",
        cfg.seed,
        original.steps.len(),
        draft.steps.len()
    );
    let toml = draft.to_toml(&id, &title, &description);
    let saved = match &cfg.save {
        Some(dir) => Some(save(dir, &draft, &id, &toml, policies_dir)?),
        None => None,
    };
    Ok(FuzzFinding {
        case,
        id,
        checks,
        findings,
        steps_before: original.steps.len(),
        steps_after: draft.steps.len(),
        sends_after: draft.sends(),
        toml,
        saved,
    })
}

/// Every check, for parsing and listing.
pub const CHECKS: [Check; 10] = [
    Check::ForbiddenArrival,
    Check::OverLimit,
    Check::OverBlocked,
    Check::Spoofed,
    Check::Hung,
    Check::Crashed,
    Check::HiddenListed,
    Check::TokenPassthrough,
    Check::SuccessOnProbe,
    Check::MaxArrivals,
];

/// The kebab-case word for a check, as reports spell it.
pub fn check_word(c: Check) -> &'static str {
    match c {
        Check::ForbiddenArrival => "forbidden-arrival",
        Check::OverLimit => "over-limit",
        Check::OverBlocked => "over-blocked",
        Check::Spoofed => "spoofed",
        Check::Hung => "hung",
        Check::Crashed => "crashed",
        Check::HiddenListed => "hidden-listed",
        Check::TokenPassthrough => "token-passthrough",
        Check::SuccessOnProbe => "success-on-probe",
        Check::MaxArrivals => "max-arrivals",
    }
}

/// Parses a check's kebab-case word.
pub fn parse_check(s: &str) -> Result<Check, String> {
    CHECKS
        .into_iter()
        .find(|c| check_word(*c) == s)
        .ok_or_else(|| {
            let all: Vec<&str> = CHECKS.iter().map(|c| check_word(*c)).collect();
            format!("unknown check `{s}`: expected one of {}", all.join(", "))
        })
}

fn save(
    dir: &Path,
    draft: &CaseDraft,
    id: &str,
    toml: &str,
    policies_dir: &Path,
) -> Result<PathBuf, FuzzError> {
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |source| FuzzError::Save { path, source }
    };
    let folder = dir.join(draft.category().as_str());
    std::fs::create_dir_all(&folder).map_err(err(&folder))?;
    let pdir = dir.join(POLICIES_DIR);
    std::fs::create_dir_all(&pdir).map_err(err(&pdir))?;
    let from = policies_dir.join(&draft.policy_file);
    let to = pdir.join(&draft.policy_file);
    std::fs::copy(&from, &to).map_err(err(&to))?;
    let file = folder.join(format!("{id}.toml"));
    std::fs::write(&file, toml).map_err(err(&file))?;
    Ok(file)
}
