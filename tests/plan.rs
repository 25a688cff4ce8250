//! Attack plans derived from real policies: the plan of the Stripe-like
//! `valid_policy.yaml` is pinned by a snapshot; every valid Intercept policy
//! yields a plan the built-in enforcer passes (with control runs, so every
//! derived attack is shown to land on a bare mock); a flawed enforcer that
//! ignores the sign of `increment_from` amounts is caught by it; and the
//! command line plans, saves and replays.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gauntlet::plan::Options;
use gauntlet::plan::cli::{Prepared, prepare};
use gauntlet::report::Collector;
use gauntlet::run::{RunConfig, ScenarioReport, Status, run};
use gauntlet::scenario::Scenario;
use gauntlet::target::{HarnessConfig, TargetSpec};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Intercept policies kept with the tests (`GAUNTLET_INTERCEPT_POLICIES`
/// points elsewhere, e.g. at a newer set).
fn intercept() -> PathBuf {
    std::env::var_os("GAUNTLET_INTERCEPT_POLICIES")
        .map_or_else(|| root().join("tests/fixtures/intercept"), PathBuf::from)
}

fn valid_policy() -> PathBuf {
    intercept().join("valid_policy.yaml")
}

fn plan(policy: &Path) -> Prepared {
    prepare(policy, None, &Options::default())
        .unwrap_or_else(|e| panic!("{}: {e}", policy.display()))
}

fn flawed_proxy(opts: &str) -> TargetSpec {
    let script = root().join("tests/fixtures/flawed/proxy.py");
    TargetSpec::Command(format!(
        "python3 {} --policy {{policy}} --state {{workdir}}/state.json {opts} -- {{upstream}}",
        script.display()
    ))
}

/// Runs `scenarios` of a prepared plan against `target`, the mocks serving
/// the plan's (synthesised) manifest.
async fn run_plan(
    p: &Prepared,
    scenarios: &[Scenario],
    target: TargetSpec,
    control: bool,
) -> Vec<ScenarioReport> {
    let dir = tempfile::tempdir().unwrap();
    let tools = dir.path().join("tools.json");
    let manifest = p.tools.synthesized.as_ref().unwrap();
    std::fs::write(&tools, manifest.to_string()).unwrap();
    let cfg = RunConfig {
        harness: HarnessConfig {
            timeout: Duration::from_secs(10),
            tools: Some(tools),
            ..HarnessConfig::new(PathBuf::from(env!("CARGO_BIN_EXE_gauntlet")))
        },
        target,
        control,
        seed: 0,
        replay_prefix: "gauntlet run --policy".into(),
        jobs: 4,
    };
    let mut collector = Collector::default();
    let (_tx, mut rx) = tokio::sync::watch::channel(false);
    run(&cfg, scenarios, &mut collector, &mut rx).await;
    collector.scenarios
}

fn not_passed(reports: &[ScenarioReport]) -> Vec<(String, Status, String)> {
    reports
        .iter()
        .filter(|s| !matches!(s.status, Status::Passed | Status::Skipped))
        .map(|s| {
            let why = s
                .target
                .as_ref()
                .and_then(|t| t.findings.first())
                .map(|f| f.message.clone())
                .unwrap_or_else(|| format!("{:?}", s.errors));
            (s.id.clone(), s.status, why)
        })
        .collect()
}

#[test]
fn the_plan_of_the_stripe_like_policy() {
    let p = plan(&valid_policy());
    insta::assert_json_snapshot!("valid_policy_plan", p.plan.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_valid_intercept_policy_yields_a_plan_the_builtin_enforcer_passes() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(intercept())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && !p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("invalid")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 50, "{} policies", files.len());
    let started = Instant::now();
    let mut total = 0;
    let mut failures = Vec::new();
    for file in &files {
        let p = plan(file);
        assert!(!p.plan.items.is_empty(), "{}: empty plan", file.display());
        total += p.plan.items.len();
        let reports = run_plan(&p, &p.plan.scenarios(), TargetSpec::Builtin, true).await;
        assert_eq!(reports.len(), p.plan.items.len(), "{}", file.display());
        for f in not_passed(&reports) {
            failures.push((file.file_name().unwrap().to_owned(), f));
        }
    }
    eprintln!(
        "{} policies, {total} derived scenarios, run with control runs in {:.1?}",
        files.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_ignores_the_sign_of_increments_is_caught() {
    let p = plan(&valid_policy());
    // Judged on the policy alone, as PolicyLayer does; the synthesised
    // schemas set no minimum either, so the counter alone must hold.
    let reports = run_plan(
        &p,
        &p.plan.scenarios(),
        flawed_proxy("--flaw negative-increment --no-schemas"),
        false,
    )
    .await;
    let failed = not_passed(&reports);
    let ids: BTreeSet<&str> = failed.iter().map(|(id, _, _)| id.as_str()).collect();
    assert!(
        ids.contains("plan-create-charge-daily-spend-poison-negative"),
        "{failed:#?}"
    );
    for s in reports.iter().filter(|s| ids.contains(s.id.as_str())) {
        assert_eq!(s.status, Status::Failed, "{}", s.id);
        assert_eq!(s.category.as_str(), "counter-poisoning", "{}", s.id);
        let rule = s.rule.as_ref().unwrap();
        assert_eq!(
            (rule.file.as_str(), rule.line, rule.pointer.as_str()),
            (
                "valid_policy.yaml",
                Some(14),
                "tools.create_charge.rules[1]"
            )
        );
    }

    // The same proxy without the flaw passes the same attacks.
    let poison: Vec<Scenario> = p
        .plan
        .scenarios()
        .into_iter()
        .filter(|s| s.id.contains("-poison-"))
        .collect();
    assert_eq!(poison.len(), 5);
    let reports = run_plan(&p, &poison, flawed_proxy("--no-schemas"), false).await;
    assert_eq!(not_passed(&reports), vec![]);
}

fn gauntlet(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

#[test]
fn the_command_line_plans_saves_and_replays() {
    let policy = valid_policy();
    let policy = policy.to_str().unwrap();
    let json = gauntlet(&["plan", "--policy", policy, "--format", "json"]);
    assert!(json.status.success(), "{json:?}");
    let summary: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(summary["policy"], "valid_policy.yaml");
    assert!(String::from_utf8_lossy(&json.stderr).contains("synthesised 4 tools"));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let saved = gauntlet(&["plan", "--policy", policy, "--save", out]);
    assert!(saved.status.success(), "{saved:?}");
    assert!(dir.path().join("policies/valid_policy.yaml").is_file());
    let tools = dir.path().join("tools.json");
    let replay = gauntlet(&[
        "run",
        "--catalogue",
        out,
        "--tools",
        tools.to_str().unwrap(),
        "--attacks",
        "plan-deny-delete-customer-names",
        "plan-create-issue-rate-hour-bulk",
    ]);
    assert_eq!(replay.status.code(), Some(0), "{replay:?}");

    // One line in a pipeline: findings exit 1 and point at the rule.
    let script = root().join("tests/fixtures/flawed/proxy.py");
    let cmd = format!(
        "python3 {} --policy {{policy}} --state {{workdir}}/s.json --flaw negative-increment --no-schemas -- {{upstream}}",
        script.display()
    );
    let caught = gauntlet(&[
        "run",
        "--policy",
        policy,
        "--enforcer-cmd",
        &cmd,
        "--attacks",
        "counter-poisoning",
    ]);
    let stdout = String::from_utf8_lossy(&caught.stdout);
    assert_eq!(caught.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("attacks: tools.create_charge.rules[1] (valid_policy.yaml:14)"),
        "{stdout}"
    );
    assert!(stdout.contains("replay: gauntlet run --policy"), "{stdout}");
}
