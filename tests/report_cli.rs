//! The publishing commands end to end through the binary: `run` writing
//! every format and gating its exit code, `report` re-rendering saved runs,
//! `matrix` building the site, and `completions`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

fn gauntlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Saved runs of the fixture catalogue: against the bare mock, and through a
/// pass-through "enforcer" (the mock itself as the command), which gets
/// control runs. Made once for the whole file.
struct Runs {
    _dir: tempfile::TempDir,
    none: PathBuf,
    passthrough: PathBuf,
    none_out: PathBuf,
    none_exit: i32,
}

fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let none_out = dir.path().join("none");
        let out = gauntlet(&[
            "run",
            "--target",
            "none",
            "--catalogue",
            "tests/fixtures/catalogue",
            "--format",
            "json",
            "--format",
            "sarif",
            "--format",
            "junit",
            "--format",
            "md",
            "--format",
            "html",
            "--format",
            "table",
            "--out",
            none_out.to_str().unwrap(),
        ]);
        let pass_out = dir.path().join("passthrough");
        let pass = gauntlet(&[
            "run",
            "--enforcer-cmd",
            "{upstream}",
            "--catalogue",
            "tests/fixtures/catalogue",
            "--format",
            "json",
            "--out",
            pass_out.to_str().unwrap(),
        ]);
        assert_eq!(code(&pass), 1, "{}", stderr(&pass));
        Runs {
            none: none_out.join("report.json"),
            passthrough: pass_out.join("report.json"),
            none_exit: code(&out),
            none_out,
            _dir: dir,
        }
    })
}

#[test]
fn run_writes_every_format_into_out() {
    let r = runs();
    assert_eq!(r.none_exit, 1, "every fixture leaks against the bare mock");
    for name in [
        "report.json",
        "report.sarif",
        "junit.xml",
        "report.md",
        "report.html",
        "report.txt",
    ] {
        let text = std::fs::read_to_string(r.none_out.join(name)).unwrap();
        assert!(text.contains("fx-bulk"), "{name}");
    }
}

fn gate(extra: &[&str]) -> Output {
    let mut args = vec!["report", runs().none.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    gauntlet(&args)
}

#[test]
fn fail_on_gates_by_severity() {
    // The fixtures are all `high`.
    assert_eq!(code(&gate(&[])), 0, "rendering alone does not gate");
    assert_eq!(code(&gate(&["--fail-on", "low"])), 1);
    assert_eq!(code(&gate(&["--fail-on", "high"])), 1);
    let critical = gate(&["--fail-on", "critical"]);
    assert_eq!(code(&critical), 0, "{}", stderr(&critical));
    assert!(stderr(&critical).contains("4 finding(s) below the --fail-on threshold"));
}

fn gaps_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const ALL_GAPS: &str = r#"
[[gap]]
scenario = "fx-bulk"
check = "over-limit"
reason = "the mock has no limit of its own"

[[gap]]
scenario = "fx-unlisted"
check = "forbidden-arrival"
reason = "nothing is in front"

[[gap]]
scenario = "fx-case"
check = "forbidden-arrival"
reason = "nothing is in front"

[[gap]]
scenario = "fx-batch"
check = "forbidden-arrival"
reason = "nothing is in front"
"#;

#[test]
fn known_gaps_accept_listed_findings_and_flag_unlisted_and_stale_ones() {
    let dir = tempfile::tempdir().unwrap();
    let all = gaps_file(dir.path(), "all.toml", ALL_GAPS);
    let out = gate(&["--known-gaps", all.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("4 finding(s) accepted"));

    // One finding unlisted: it fails the run.
    let three = ALL_GAPS
        .split("\n[[gap]]")
        .take(4)
        .collect::<Vec<_>>()
        .join("\n[[gap]]");
    let three = gaps_file(dir.path(), "three.toml", &three);
    let out = gate(&["--known-gaps", three.to_str().unwrap()]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("`fx-batch` (forbidden-arrival) fails the run"));

    // A listed gap that did not occur is stale; YAML works as well as TOML.
    let yaml = "gap:\n  - scenario: fx-bulk\n    check: over-limit\n    reason: r\n  - scenario: fx-bulk\n    check: hung\n    reason: it used to hang\n";
    let stale = gaps_file(dir.path(), "stale.yaml", yaml);
    let out = gate(&[
        "--known-gaps",
        stale.to_str().unwrap(),
        "--fail-on",
        "critical",
    ]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("`fx-bulk` (hung) no longer occurs"));

    // A gap for a scenario this run did not include is not stale.
    let other = gaps_file(
        dir.path(),
        "other.toml",
        "[[gap]]\nscenario = \"not-in-this-run\"\ncheck = \"hung\"\nreason = \"r\"\n",
    );
    let out = gate(&[
        "--known-gaps",
        other.to_str().unwrap(),
        "--fail-on",
        "critical",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn run_honours_the_gate_and_refuses_a_bad_gaps_file() {
    let dir = tempfile::tempdir().unwrap();
    let all = gaps_file(dir.path(), "all.toml", ALL_GAPS);
    let out = gauntlet(&[
        "run",
        "--target",
        "none",
        "--catalogue",
        "tests/fixtures/catalogue",
        "--attacks",
        "fx-case",
        "fx-batch",
        "--known-gaps",
        all.to_str().unwrap(),
    ]);
    // Listed and still occurring; the others did not run, so are not stale.
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let bad = gaps_file(
        dir.path(),
        "bad.toml",
        "[[gap]]\nscenario = \"x\"\ncheck = \"over-limit\"\n",
    );
    let out = gauntlet(&[
        "run",
        "--target",
        "none",
        "--catalogue",
        "tests/fixtures/catalogue",
        "--known-gaps",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("reason"), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "nothing ran");
}

#[test]
fn report_rerenders_saved_runs_together() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let out = gauntlet(&[
        "report",
        r.none.to_str().unwrap(),
        r.passthrough.to_str().unwrap(),
        "--format",
        "sarif",
        "--format",
        "json",
        "--format",
        "html",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.sarif")).unwrap())
            .unwrap();
    let runs = sarif["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "one SARIF run per saved run");
    assert_ne!(
        runs[0]["automationDetails"]["id"], runs[1]["automationDetails"]["id"],
        "code scanning keeps the targets apart"
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("id=\"r0-verdict-matrix\"") && html.contains("id=\"r1-verdict-matrix\""));

    // Without --out the first format goes to stdout; a bad file is a harness error.
    let md = gauntlet(&["report", r.none.to_str().unwrap(), "--format", "md"]);
    assert!(String::from_utf8_lossy(&md.stdout).starts_with("### ❌ gauntlet against `none`"));
    let missing = gauntlet(&["report", "no/such/run.json"]);
    assert_eq!(code(&missing), 2);
    assert!(stderr(&missing).contains("`no/such/run.json`"));
    let junit = dir.path().join("junit.xml");
    std::fs::write(&junit, "<testsuites/>").unwrap();
    let wrong = gauntlet(&["report", junit.to_str().unwrap()]);
    assert_eq!(code(&wrong), 2);
    assert!(stderr(&wrong).contains("is not a gauntlet JSON report"));
}

#[test]
fn matrix_builds_a_static_site() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let none_arg = format!("bare mock={}", r.none.display());
    let out = gauntlet(&[
        "matrix",
        &none_arg,
        r.passthrough.to_str().unwrap(),
        "--out",
        site.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("4 attacks × 2 enforcers"));
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert!(index.contains("<table class=\"matrix\" id=\"matrix\">"));
    assert!(index.contains("enforcers/bare-mock.html"));
    assert!(
        index.contains("enforcers/cmd-upstream.html"),
        "named after its target"
    );
    assert_eq!(index.matches("class=\"cell-failed\"").count(), 8);
    for id in ["fx-bulk", "fx-unlisted", "fx-case", "fx-batch"] {
        let page = std::fs::read_to_string(site.join(format!("attacks/{id}.html"))).unwrap();
        assert!(page.contains("<h2>Policy</h2>"), "{id}");
        assert!(page.contains("id=\"bare-mock\"") && page.contains("id=\"cmd-upstream\""));
        assert!(page.contains("Replay:"), "each enforcer's reproduction");
        let md = std::fs::read_to_string(site.join(format!("attacks/{id}.md"))).unwrap();
        assert!(md.contains("## Outcomes"));
    }
    // The pass-through run had control runs; the attack page shows them.
    let bulk = std::fs::read_to_string(site.join("attacks/fx-bulk.html")).unwrap();
    assert!(bulk.contains("landed (35 arrivals)"));
    let enforcer = std::fs::read_to_string(site.join("enforcers/bare-mock.html")).unwrap();
    assert!(enforcer.contains("Decision latency"));
    let index_md = std::fs::read_to_string(site.join("index.md")).unwrap();
    assert!(index_md.contains("| [`fx-bulk`](attacks/fx-bulk.md)"));

    let twice = gauntlet(&[
        "matrix",
        r.none.to_str().unwrap(),
        r.none.to_str().unwrap(),
        "--out",
        site.to_str().unwrap(),
    ]);
    assert_eq!(code(&twice), 2);
    assert!(stderr(&twice).contains("two runs are named `none`"));
}

#[test]
fn completions_cover_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let out = gauntlet(&["completions", shell]);
        assert_eq!(code(&out), 0);
        let script = String::from_utf8(out.stdout).unwrap();
        for sub in ["run", "report", "matrix", "completions"] {
            assert!(script.contains(sub), "{shell}: {sub}");
        }
    }
}

#[test]
fn harness_trouble_outranks_the_gate_and_keeps_its_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let mut run: Value =
        serde_json::from_str(&std::fs::read_to_string(&runs().none).unwrap()).unwrap();
    // fx-batch broke: its control did not land, so it proves nothing either way.
    let batch = run["scenarios"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["id"] == "fx-batch")
        .unwrap();
    batch["status"] = "broken".into();
    batch["target"]["findings"] = Value::Array(Vec::new());
    run["summary"]["failed"] = 3.into();
    run["summary"]["broken"] = 1.into();
    let saved = dir.path().join("broken.json");
    std::fs::write(&saved, serde_json::to_string(&run).unwrap()).unwrap();
    let all = gaps_file(dir.path(), "all.toml", ALL_GAPS);
    let out = gauntlet(&[
        "report",
        saved.to_str().unwrap(),
        "--known-gaps",
        all.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("no longer occurs"),
        "a broken scenario does not make its gap stale: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("3 finding(s) accepted"));
}
