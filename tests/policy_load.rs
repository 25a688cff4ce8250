//! Loading policies: the Intercept templates, the seed, and located
//! diagnostics for broken files (snapshotted).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use gauntlet::policy::{
    self, Action, DefaultAction, Dialect, Op, Policy, PolicyError, Scope, Window, WindowMode,
    parse_json, parse_yaml,
};

fn intercept_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/intercept");
    assert!(
        dir.is_dir(),
        "the Intercept policy fixtures are missing: expected them at {}",
        dir.display()
    );
    dir
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/policies")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn errors_of(result: Result<Policy, PolicyError>) -> String {
    match result {
        Ok(_) => panic!("the policy loaded, but it is broken"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_intercept_template_loads_and_the_invalid_ones_are_refused() {
    let mut loaded = 0;
    let mut refused = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(intercept_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    entries.sort();
    for path in &entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match policy::load_file(path) {
            Ok(p) => {
                assert_eq!(p.source.dialect, Dialect::Yaml, "{name}");
                assert_eq!(p.window_mode, WindowMode::Fixed, "{name}");
                assert!(!p.tools.is_empty(), "{name} loaded no tools");
                loaded += 1;
            }
            Err(e) => {
                assert!(!e.diagnostics.is_empty());
                for d in &e.diagnostics {
                    assert!(d.line > 0, "{name}: diagnostic without a line: {d}");
                }
                refused.push(name);
            }
        }
    }
    assert_eq!(refused, ["invalid_policy.yaml", "invalid_schema.yaml"]);
    assert!(loaded >= 55, "only {loaded} templates loaded");
}

#[test]
fn invalid_intercept_files_name_their_places() {
    let dir = intercept_dir();
    for name in ["invalid_policy.yaml", "invalid_schema.yaml"] {
        let src = std::fs::read_to_string(dir.join(name)).unwrap();
        insta::assert_snapshot!(name, errors_of(parse_yaml(&src, name)));
    }
}

#[test]
fn broken_fixtures_give_located_diagnostics() {
    for name in [
        "broken_fields.json",
        "broken_semantics.json",
        "syntax.json",
        "duplicate_tool.json",
        "broken_fields.yaml",
        "broken_state.yaml",
    ] {
        let src = fixture(name);
        let result = if name.ends_with(".json") {
            parse_json(&src, name)
        } else {
            parse_yaml(&src, name)
        };
        insta::assert_snapshot!(name, errors_of(result));
    }
}

#[test]
fn the_seed_policy_loads_as_written() {
    let p = parse_json(&fixture("seed.json"), "seed.json").unwrap();
    assert_eq!(p.default, DefaultAction::Deny);
    assert_eq!(p.window_mode, WindowMode::Sliding);
    assert!(!p.refund_on_error);
    assert_eq!(p.tools.len(), 1);
    let rule = &p.tools[0];
    assert_eq!(rule.name, "WizCommerce Open API_PostCustomers");
    assert_eq!(rule.action, Action::Allow);
    assert_eq!(
        rule.loc.pointer,
        "/tools/WizCommerce Open API_PostCustomers"
    );
    let limit = &rule.limits[0];
    assert_eq!(limit.counter, "wizcommerce open api_postcustomers_rate");
    assert_eq!(
        (limit.window, limit.max, limit.scope),
        (Window::MINUTE, 30, Scope::Grant)
    );
    assert_eq!(
        limit.loc.pointer,
        "/tools/WizCommerce Open API_PostCustomers/limits/0"
    );
    assert_eq!(limit.loc.line, Some(1));
}

#[test]
fn intercept_rules_map_onto_the_model() {
    let src = std::fs::read_to_string(intercept_dir().join("valid_policy.yaml")).unwrap();
    let p = parse_yaml(&src, "valid_policy.yaml").unwrap();
    assert!(
        p.refund_on_error,
        "Intercept rolls quota back on upstream errors"
    );
    let charge = p.tool_rule("create_charge").unwrap();
    assert_eq!(charge.require.len(), 2);
    assert_eq!(charge.require[0].op, Op::Lte);
    assert_eq!(
        charge.require[0].message.as_deref(),
        Some("Single charge cannot exceed $500.00")
    );
    assert_eq!(
        charge.require[0].loc.pointer,
        "tools.create_charge.rules[0].conditions[0]"
    );
    assert_eq!(charge.require[0].loc.line, Some(9));
    let spend = &charge.limits[0];
    // `state.create_charge.daily_spend lt 1000000` admits while the total stays below it.
    assert_eq!(
        (spend.counter.as_str(), spend.max, spend.window),
        ("create_charge.daily_spend", 999_999, Window::DAY)
    );
    assert_eq!(
        spend.increment_from.as_ref().unwrap().as_str(),
        "args.amount"
    );
    assert_eq!(spend.scope, Scope::Global);
    let issue = &p.tool_rule("create_issue").unwrap().limits[0];
    assert_eq!(
        (issue.counter.as_str(), issue.max, issue.window),
        ("create_issue._rate_hour", 5, Window::HOUR)
    );
    assert_eq!(p.tool_rule("delete_customer").unwrap().action, Action::Deny);
    assert_eq!(p.all_tools.len(), 1);
    assert_eq!(
        (p.all_tools[0].counter.as_str(), p.all_tools[0].max),
        ("_global.calls_per_minute", 59)
    );
}

#[test]
fn load_file_picks_the_dialect_by_extension_then_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let seed = fixture("seed.json");
    for name in ["p.json", "p.policy", "noext"] {
        let path = dir.path().join(name);
        std::fs::write(&path, &seed).unwrap();
        assert_eq!(
            policy::load_file(&path).unwrap().source.dialect,
            Dialect::Json,
            "{name}"
        );
    }
    let yaml = "version: \"1\"\ntools:\n  a:\n    rules: []\n";
    for name in ["p.yml", "p.YAML", "p.txt"] {
        let path = dir.path().join(name);
        std::fs::write(&path, yaml).unwrap();
        assert_eq!(
            policy::load_file(&path).unwrap().source.dialect,
            Dialect::Yaml,
            "{name}"
        );
    }
    let missing = policy::load_file(&dir.path().join("absent.json")).unwrap_err();
    assert!(
        missing.to_string().contains("cannot read the policy file"),
        "{missing}"
    );
}
