//! Loader behaviour in process: what a file turns into, and how catalogues
//! and selections fail.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::*;

const HEAD: &str = r#"id = "x-one"
title = "A scenario"
category = "framing"
severity = "low"
description = "Something real."
references = ["ASI02", "runaway-tool-loops"]
policy = "seed.json"
"#;

const SEED: &str = r#"{"version":"1","default":"deny","tools":{"WizCommerce Open API_PostCustomers":{"limits":[{"counter":"c","window":"minute","max":30,"scope":"grant"}]}}}"#;

/// A catalogue folder with `policies/seed.json` and the given files.
fn catalogue(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/seed.json"), SEED).unwrap();
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn load(body: &str) -> Result<Scenario, ScenarioError> {
    let dir = catalogue(&[]);
    let text = format!("{HEAD}{body}");
    Loader::new(dir.path().join("policies"))
        .load_str(&text, Path::new("attacks/framing/x-one.toml"))
}

fn messages(e: &ScenarioError) -> Vec<String> {
    e.diagnostics()
        .iter()
        .map(|d| format!("{}: {}", d.field, d.message))
        .collect()
}

#[test]
fn a_full_file_becomes_typed_steps() {
    let s = load(
        r#"revision = "2025-03-26"
transport = "stdio"
strict_mock = true

[[step]]
call = "WizCommerce Open API_PostCustomers"
args = { company_name = "Acme", addresses = [{ city = "a" }] }
set = { credit_limit = 10001, "addresses.0.city" = "b", contacts.0.email = "c@d.test" }
repeat = 4
concurrency = 2
identities = ["alice", "bob"]
sessions = 2

[[step]]
raw_hex = "efbb bf7b_7d"
delay_ms = 250

[[step]]
call = "WizCommerce Open API_PostCustomers"
args_json = '"not an object"'
session = "other"
skip_handshake = true

[[step]]
call = "WizCommerce Open API_PostCustomers"
generate = { violate = "max_length" }
at = "window-edge"
after_ms = 300

[[step]]
list = true

[expect]
max_arrivals = 3
no_success = true
"#,
    )
    .unwrap();
    assert_eq!(s.revision.as_str(), "2025-03-26");
    assert_eq!(s.transport, TransportFilter::Stdio);
    assert!(s.strict_mock);
    assert_eq!(s.steps.len(), 5);
    assert_eq!(s.total_sends(), 8);
    assert_eq!(
        s.expect,
        Expect {
            max_arrivals: Some(3),
            no_success: true
        }
    );

    let st = &s.steps[0];
    let StepKind::Call { name, args, set } = &st.kind else {
        panic!("{:?}", st.kind)
    };
    assert_eq!(name, "WizCommerce Open API_PostCustomers");
    assert_eq!(
        *args,
        ArgSpec::Literal(json!({"company_name": "Acme", "addresses": [{"city": "a"}]}))
    );
    // Quoted and unquoted dotted keys mean the same path.
    let mut set = set.clone();
    set.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        set,
        vec![
            ("addresses.0.city".to_owned(), json!("b")),
            ("contacts.0.email".to_owned(), json!("c@d.test")),
            ("credit_limit".to_owned(), json!(10001)),
        ]
    );
    assert_eq!((st.repeat, st.concurrency), (4, 2));
    assert_eq!(st.who, Who::Rotate(vec!["alice".into(), "bob".into()]));
    assert_eq!(st.session, SessionSpec::Rotate(2));
    assert_eq!(
        (st.who.for_send(0), st.who.for_send(1), st.who.for_send(2)),
        ("alice", "bob", "alice")
    );

    let st = &s.steps[1];
    assert_eq!(
        st.kind,
        StepKind::Raw {
            bytes: vec![0xef, 0xbb, 0xbf, b'{', b'}'],
            headers: vec![],
            bare: false
        }
    );
    assert_eq!(st.delay_ms, 250);
    assert_eq!(st.who, Who::Identity(DEFAULT_IDENTITY.into()));
    assert_eq!(st.session, SessionSpec::Named(DEFAULT_SESSION.into()));

    let st = &s.steps[2];
    assert!(
        matches!(&st.kind, StepKind::Call { args: ArgSpec::Literal(v), .. } if v == &json!("not an object"))
    );
    assert!(st.skip_handshake);

    let st = &s.steps[3];
    assert!(matches!(
        &st.kind,
        StepKind::Call {
            args: ArgSpec::Generate(Generation::Violate(Rule::MaxLength)),
            ..
        }
    ));
    assert_eq!((st.at, st.after_ms), (Some(At::WindowEdge), 300));
    assert_eq!(s.steps[4].kind, StepKind::List);
}

#[test]
fn expansions_build_large_frames_and_arguments() {
    let s = load(
        r#"transport = "http"

[[step]]
raw = '{"a":@O@1@C@,"b":"x@FF@"}'
expand = [{ mark = "@O@", text = "[", times = 3 }, { mark = "@C@", text = "]", times = 3 }, { mark = "@FF@", hex = "ff" }]
headers = { Mcp-Name = "n", X-Two = "v" }

[[step]]
call = "WizCommerce Open API_PostCustomers"
args = { company_name = "@P@", nested = ["@P@"] }
set = { reason = "<@P@>" }
expand = [{ mark = "@P@", text = "ab", times = 2 }]
"#,
    )
    .unwrap();
    let StepKind::Raw { bytes, headers, .. } = &s.steps[0].kind else {
        panic!()
    };
    assert_eq!(bytes.as_slice(), b"{\"a\":[[[1]]],\"b\":\"x\xff\"}");
    assert_eq!(headers.len(), 2);
    let StepKind::Call { args, set, .. } = &s.steps[1].kind else {
        panic!()
    };
    assert_eq!(
        *args,
        ArgSpec::Literal(json!({"company_name": "abab", "nested": ["abab"]}))
    );
    assert_eq!(set, &vec![("reason".to_owned(), json!("<abab>"))]);
}

#[test]
fn every_problem_of_a_file_is_reported_with_its_field() {
    let e = load(
        r#"
[[step]]
call = "WizCommerce Open API_PostCustomers"
args = { a = 1979-05-27 }
repeat = 3
concurrency = 4
pipeline = true

[[step]]
list = true
at = "window-edge"
after_ms = 10
"#,
    )
    .unwrap_err();
    let m = messages(&e);
    assert!(
        m.iter()
            .any(|l| l.starts_with("step[0].args.a: the datetime")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|l| l.starts_with("step[0].concurrency: 4 calls in flight")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|l| l.starts_with("step[0].pipeline: pipelining writes")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|l| l.starts_with("step[1].at: needs a call step")),
        "{m:?}"
    );
    assert_eq!(m.len(), 4, "{m:?}");
}

#[test]
fn non_finite_and_oversized_values_are_refused() {
    let e = load(
        r#"
[[step]]
call = "t"
args = { a = nan }

[[step]]
raw = "@X@"
expand = [{ mark = "@X@", text = "0123456789abcdef", times = 2000000 }]
"#,
    )
    .unwrap_err();
    let m = messages(&e);
    assert!(m.iter().any(|l| l.contains("has no JSON form")), "{m:?}");
    assert!(
        m.iter()
            .any(|l| l.starts_with("step[1].expand[0]: the expansions add")),
        "{m:?}"
    );
}

#[test]
fn layout_rules_apply_to_catalogue_files() {
    let dir = catalogue(&[]);
    let text = format!("{HEAD}\n[[step]]\nlist = true\n");
    let loader = Loader::new(dir.path().join("policies"));
    let e = loader
        .load_str(&text, Path::new("attacks/rate-limit/x-two.toml"))
        .unwrap_err();
    let m = messages(&e);
    assert_eq!(
        m,
        vec![
            "id: `x-one` must equal the file name `x-two`",
            "category: `framing` must equal the folder name `rate-limit`"
        ]
    );
    let relaxed = loader.check_layout(false);
    assert!(
        relaxed
            .load_str(&text, Path::new("elsewhere/y.toml"))
            .is_ok()
    );
}

fn scenario_file(id: &str, category: &str) -> String {
    let head = HEAD
        .replace("\"x-one\"", &format!("\"{id}\""))
        .replace("\"framing\"", &format!("\"{category}\""));
    format!("{head}\n[[step]]\nlist = true\n")
}

#[test]
fn catalogue_loads_sorted_and_refuses_duplicates() {
    let dir = catalogue(&[
        ("framing/b.toml", &scenario_file("b", "framing")),
        ("framing/a.toml", &scenario_file("a", "framing")),
        ("rate-limit/z.toml", &scenario_file("z", "rate-limit")),
        ("policies/notes.toml", "not a scenario"),
    ]);
    let all = load_catalogue(dir.path()).unwrap();
    let ids: Vec<_> = all.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, vec!["z", "a", "b"], "rate-limit sorts before framing");

    std::fs::write(
        dir.path().join("rate-limit/b.toml"),
        scenario_file("b", "rate-limit"),
    )
    .unwrap();
    let e = load_catalogue(dir.path()).unwrap_err();
    assert!(
        matches!(&e, ScenarioError::DuplicateId { id, .. } if id == "b"),
        "{e}"
    );
}

#[test]
fn catalogue_reports_every_bad_file_and_misplaced_ones() {
    let dir = catalogue(&[
        ("framing/a.toml", &scenario_file("a", "framing")),
        ("framing/bad.toml", "id = 1"),
        ("stray.toml", &scenario_file("stray", "framing")),
        ("dos/c.toml", &scenario_file("c", "framing")),
        ("framing/deeper/d.toml", &scenario_file("d", "framing")),
    ]);
    let e = load_catalogue(dir.path()).unwrap_err();
    let text = e.to_string();
    let ScenarioError::Many(errors) = &e else {
        panic!("{e}")
    };
    assert_eq!(errors.len(), 4, "{text}");
    assert!(
        text.contains("deeper:1:1: a category folder holds scenario files, not folders"),
        "{text}"
    );
    assert!(text.contains("`dos` is not a category folder"), "{text}");
    assert!(
        text.contains("stray.toml:1:1: scenario files live in a category folder"),
        "{text}"
    );
    assert!(
        text.contains("bad.toml:1:6: id: invalid type: integer `1`, expected a string"),
        "{text}"
    );
}

#[test]
fn empty_catalogue_is_an_error() {
    let dir = catalogue(&[]);
    assert!(matches!(
        load_catalogue(dir.path()),
        Err(ScenarioError::Empty { .. })
    ));
    assert!(matches!(
        load_catalogue(&dir.path().join("missing")),
        Err(ScenarioError::Read { .. })
    ));
}

#[test]
fn selection_by_id_category_path_and_glob() {
    let dir = catalogue(&[
        ("framing/fr-a.toml", &scenario_file("fr-a", "framing")),
        ("framing/fr-b.toml", &scenario_file("fr-b", "framing")),
        ("rate-limit/rl-a.toml", &scenario_file("rl-a", "rate-limit")),
    ]);
    let all = load_catalogue(dir.path()).unwrap();
    let pick = |p: &[&str]| -> Vec<String> {
        let patterns: Vec<String> = p.iter().map(|s| (*s).to_owned()).collect();
        select(&all, &patterns)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect()
    };
    assert_eq!(pick(&[]), vec!["rl-a", "fr-a", "fr-b"]);
    assert_eq!(pick(&["fr-b"]), vec!["fr-b"]);
    assert_eq!(pick(&["framing"]), vec!["fr-a", "fr-b"]);
    assert_eq!(pick(&["fr-*", "fr-a"]), vec!["fr-a", "fr-b"]);
    assert_eq!(
        pick(&["fr-b", "rl-a"]),
        vec!["rl-a", "fr-b"],
        "catalogue order"
    );
    let file: PathBuf = dir.path().join("framing/fr-a.toml");
    assert_eq!(pick(&[file.to_str().unwrap()]), vec!["fr-a"]);
    let folder = dir.path().join("rate-limit");
    assert_eq!(pick(&[&format!("{}/", folder.display())]), vec!["rl-a"]);
    let e = select(&all, &["nope".to_owned()]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no scenario matches `nope` (give an id, a category, or a path)"
    );
}

#[test]
fn load_file_finds_policies_beside_the_categories() {
    let dir = catalogue(&[("framing/x-one.toml", &scenario_file("x-one", "framing"))]);
    let s = load_file(&dir.path().join("framing/x-one.toml")).unwrap();
    assert_eq!(
        s.policy,
        PolicySource::File(dir.path().join("policies/seed.json"))
    );
    assert_eq!(s.model.tools.len(), 1);
}

#[test]
fn at_window_edge_needs_a_limit_on_the_tool() {
    let ok = load(
        "\n[[step]]\ncall = \"wizcommerce open api_postcustomers\"\nargs = {}\nat = \"window-edge\"\n",
    );
    assert!(ok.is_ok(), "a name variant finds the tool's limit");
    let e = load("\n[[step]]\ncall = \"Other\"\nargs = {}\nat = \"window-edge\"\n").unwrap_err();
    assert_eq!(
        messages(&e),
        vec!["step[0].at: the policy sets no limit on `Other`, so it has no window edge"]
    );
}
