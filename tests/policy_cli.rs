//! `gauntlet policy check`: summaries, conversions and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/policies")
        .join(name)
}

fn gauntlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn a_valid_policy_prints_a_summary_and_exits_0() {
    let out = gauntlet(&["policy", "check", fixture("seed.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("(policylayer json)"), "{stdout}");
    assert!(
        stdout.contains("default: deny; windows: sliding"),
        "{stdout}"
    );
    assert!(
        stdout.contains("limit `wizcommerce open api_postcustomers_rate`: 30 per minute (grant)"),
        "{stdout}"
    );
}

#[test]
fn a_broken_policy_prints_located_errors_and_exits_2() {
    let path = fixture("broken_state.yaml");
    let out = gauntlet(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 10, "{stderr}");
    assert!(
        stderr.contains(
            "broken_state.yaml:23:13: at `tools.create_charge.rules[2].conditions[0].op`"
        ),
        "{stderr}"
    );
    let missing = gauntlet(&["policy", "check", "no/such/policy.json"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn conversions_load_back_in_the_other_dialect() {
    let dir = tempfile::tempdir().unwrap();
    for (from, to, ext) in [("rich.json", "yaml", "yaml"), ("rich.json", "json", "json")] {
        let out = gauntlet(&[
            "policy",
            "check",
            fixture(from).to_str().unwrap(),
            "--to",
            to,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let converted = dir.path().join(format!("converted.{ext}"));
        std::fs::write(&converted, &out.stdout).unwrap();
        let back = gauntlet(&["policy", "check", converted.to_str().unwrap()]);
        assert_eq!(
            back.status.code(),
            Some(0),
            "{}\n{}",
            text(&out.stdout),
            text(&back.stderr)
        );
        assert!(
            text(&back.stdout).contains("tools: 5"),
            "{}",
            text(&back.stdout)
        );
    }
}
