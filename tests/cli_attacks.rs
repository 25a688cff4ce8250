//! `gauntlet attacks list|show` against the real binary and catalogue.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use serde_json::Value;

fn gauntlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn list_as_json_holds_the_whole_catalogue() {
    let o = gauntlet(&["attacks", "list", "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(rows.len() >= 50);
    for r in &rows {
        for key in ["id", "category", "severity", "title", "steps", "path"] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        assert!(r["steps"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn list_filters_by_category_as_a_table() {
    let o = gauntlet(&[
        "attacks",
        "list",
        "--attacks",
        "rate-limit",
        "--catalogue",
        "attacks",
    ]);
    assert!(o.status.success());
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn show_prints_everything_with_the_policy_summary() {
    let o = gauntlet(&["attacks", "show", "rl-all-tools-global"]);
    assert!(o.status.success());
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn unknown_id_and_unmatched_pattern_are_harness_errors() {
    let o = gauntlet(&["attacks", "show", "no-such-attack"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "no scenario has the id `no-such-attack`\n"
    );
    let o = gauntlet(&["attacks", "list", "--attacks", "nope-*"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
}

#[test]
fn a_broken_catalogue_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("framing")).unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("framing/x.toml"), "id = \"x\"\nbogus = 1\n").unwrap();
    let o = gauntlet(&[
        "attacks",
        "list",
        "--catalogue",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("framing/x.toml:2:1: bogus: unknown field `bogus`"),
        "{err}"
    );
}
