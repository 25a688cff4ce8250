//! The catalogue against deliberately flawed enforcers: each fixture has
//! exactly one flaw, and the catalogue must catch every one; the same proxy
//! without a flaw must pass (but for the one check it knowingly lacks).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet::report::Collector;
use gauntlet::run::{RunConfig, Status, run};
use gauntlet::scenario::Scenario;
use gauntlet::target::{HarnessConfig, TargetSpec};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn proxy(flaw: Option<&str>) -> TargetSpec {
    let script = root().join("tests/fixtures/flawed/proxy.py");
    let flaw = flaw.map(|f| format!(" --flaw {f}")).unwrap_or_default();
    TargetSpec::Command(format!(
        "python3 {} --policy {{policy}} --state {{workdir}}/state.json{flaw} -- {{upstream}}",
        script.display()
    ))
}

/// Runs `patterns` of the catalogue against `target`; returns the ids of
/// scenarios that did not pass, with their first finding.
async fn failing(target: TargetSpec, patterns: &[&str]) -> Vec<(String, String)> {
    let all = gauntlet::scenario::load_catalogue(&root().join("attacks")).unwrap();
    let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
    let chosen: Vec<Scenario> = if patterns.is_empty() {
        all
    } else {
        gauntlet::scenario::select(&all, &patterns).unwrap()
    };
    let cfg = RunConfig {
        harness: HarnessConfig {
            timeout: Duration::from_secs(10),
            ..HarnessConfig::new(PathBuf::from(env!("CARGO_BIN_EXE_gauntlet")))
        },
        target,
        control: false,
        seed: 0,
        replay_prefix: "gauntlet run".into(),
        jobs: 4,
    };
    let mut collector = Collector::default();
    let (_tx, mut rx) = tokio::sync::watch::channel(false);
    run(&cfg, &chosen, &mut collector, &mut rx).await;
    collector
        .scenarios
        .iter()
        .filter(|s| !matches!(s.status, Status::Passed | Status::Skipped))
        .map(|s| {
            let why = s
                .target
                .as_ref()
                .and_then(|t| t.findings.first())
                .map(|f| f.message.clone())
                .unwrap_or_else(|| format!("{:?} {:?}", s.status, s.errors));
            (s.id.clone(), why)
        })
        .collect()
}

/// Scenarios the correct fixture fails by design (none: it validates
/// arguments against the tools' schemas as the reference enforcer does).
const KNOWN: &[&str] = &[];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_correct_proxy_passes_the_catalogue() {
    let fails = failing(proxy(None), &[]).await;
    let ids: BTreeSet<&str> = fails.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, KNOWN.iter().copied().collect(), "{fails:#?}");
}

/// Each flaw, and the part of the catalogue that must catch it.
const FLAWS: &[(&str, &[&str])] = &[
    ("off-by-one", &["rate-limit"]),
    ("forward-batches", &["framing"]),
    ("fail-open-params", &["fail-open"]),
    ("exact-name", &["name-confusion"]),
    ("spoof-deny", &["tool-access"]),
    ("memory-counters", &["rate-limit"]),
    ("non-atomic", &["rate-limit"]),
    // With schemas checked, `minimum: 0` refuses a negative amount before the
    // counters see it; judged on the policy alone (as PolicyLayer does) the
    // flawed counter is exposed.
    ("negative-increment --no-schemas", &["counter-poisoning"]),
    ("shallow-paths", &["argument-checks"]),
    ("refund-on-error", &["quota-refund"]),
    ("notification-call", &["framing"]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flaw_is_caught() {
    let mut missed = Vec::new();
    for (flaw, where_) in FLAWS {
        let fails = failing(proxy(Some(flaw)), where_).await;
        let caught: Vec<&(String, String)> = fails
            .iter()
            .filter(|(id, _)| !KNOWN.contains(&id.as_str()))
            .collect();
        if caught.is_empty() {
            missed.push(*flaw);
        } else {
            eprintln!(
                "{flaw}: caught by {:?}",
                caught.iter().map(|(id, _)| id).collect::<Vec<_>>()
            );
        }
    }
    assert!(missed.is_empty(), "flaws the catalogue missed: {missed:?}");
}
