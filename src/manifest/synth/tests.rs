//! Tests of the synthesised manifest: shapes, notes, and that the mock
//! serves what comes out for every real policy.

use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::mock::catalogue::Catalogue;
use crate::names::NameMatching;

const STRIPE_LIKE: &str = r#"
version: "1"
description: "payments"
tools:
  create_charge:
    rules:
      - name: "max single charge"
        conditions:
          - path: "args.amount"
            op: "lte"
            value: 50000
      - name: "daily spend cap"
        conditions:
          - path: "state.create_charge.daily_spend"
            op: "lt"
            value: 1000000
        state:
          counter: "daily_spend"
          window: "day"
          increment_from: "args.amount"
      - name: "allowed currencies"
        conditions:
          - path: "args.currency"
            op: "in"
            value: ["usd", "eur"]
  create_refund:
    rules:
      - name: "refund limit"
        conditions:
          - path: "args.amount"
            op: "lte"
            value: 10000
  delete_customer:
    rules:
      - name: "block"
        action: "deny"
  "*":
    rules:
      - name: "global rate limit"
        rate_limit: 60/minute
"#;

fn tools(s: &Synthesized) -> Vec<Value> {
    s.manifest["tools"].as_array().cloned().unwrap()
}

fn schema_of(s: &Synthesized, name: &str) -> Value {
    tools(s)
        .into_iter()
        .find(|t| t["name"] == name)
        .map(|t| t["inputSchema"].clone())
        .unwrap()
}

#[test]
fn one_permissive_tool_per_name_with_the_types_the_ops_imply() {
    let policy = crate::policy::parse_yaml(STRIPE_LIKE, "policies/stripe.yaml").unwrap();
    let s = synthesize(&policy);
    let names: Vec<Value> = tools(&s).iter().map(|t| t["name"].clone()).collect();
    assert_eq!(
        names,
        [
            "create_charge",
            "create_refund",
            "delete_customer",
            "gauntlet_unlisted"
        ]
    );
    assert_eq!(
        schema_of(&s, "create_charge"),
        json!({"type": "object", "additionalProperties": true, "properties": {
            "amount": {"type": "number"},
            "currency": {"type": "string"}}})
    );
    assert_eq!(
        schema_of(&s, "delete_customer"),
        json!({"type": "object", "additionalProperties": true})
    );
    assert_eq!(
        tools(&s)[0]["description"],
        "Synthesised from the policy `stripe.yaml`."
    );
    assert_eq!(s.unlisted, UNLISTED_TOOL);
    assert_eq!(
        s.notes,
        [
            "no manifest given: synthesised 3 tools from the policy's names in its tool rules",
            "`create_charge`: properties `amount` (number), `currency` (string)",
            "`create_refund`: properties `amount` (number)",
            "added `gauntlet_unlisted`, a tool the policy does not name (its default allows it)",
        ]
    );
}

#[test]
fn nested_paths_hidden_names_and_shared_rules_reach_every_tool() {
    let src = json!({"version": "1", "default": "deny",
    "hide": ["secret_tool", "Transfer", "*"],
    "all_tools": {"limits": [{"counter": "spend", "window": "day", "max": 100,
                              "scope": "grant", "increment_from": "args.cost.cents"}]},
    "tools": {
        "transfer": {
            "require": [{"path": "args.meta.region", "op": "regex", "value": "^eu-"},
                        {"path": "args.lines.0.qty", "op": "gt", "value": 0},
                        {"path": "args.flag", "op": "in", "value": [true, "yes"]}],
            "deny_if": [{"path": "args.tags", "op": "contains", "value": "x"},
                        {"path": "args.note", "op": "exists", "value": true}]},
        "*": {"deny_if": [{"path": "args.dry_run", "op": "eq", "value": false}]},
        "gauntlet_unlisted": {}
    }})
    .to_string();
    let policy = crate::policy::parse_json(&src, "p.json").unwrap();
    let s = synthesize(&policy);
    // Rules in the order the policy holds them, then hidden names not seen
    // yet (`Transfer` folds onto `transfer`), then the unlisted tool, which
    // dodges the policy's own `gauntlet_unlisted`.
    let names: Vec<Value> = tools(&s).iter().map(|t| t["name"].clone()).collect();
    let ruled: Vec<&str> = policy
        .tools
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| *n != WILDCARD)
        .collect();
    let mut want: Vec<&str> = ruled.clone();
    want.extend(["secret_tool", "gauntlet_unlisted_2"]);
    assert_eq!(names, want);
    assert_eq!(ruled.len(), 2);
    assert_eq!(s.unlisted, "gauntlet_unlisted_2");
    assert_eq!(
        schema_of(&s, "transfer"),
        json!({"type": "object", "additionalProperties": true, "properties": {
            "cost": {"type": "object", "additionalProperties": true,
                     "properties": {"cents": {"type": "integer"}}},
            "dry_run": {"type": "boolean"},
            "flag": {"type": ["boolean", "string"]},
            "lines": {"type": "array", "items": {"type": "object", "additionalProperties": true,
                                                  "properties": {"qty": {"type": "number"}}}},
            "meta": {"type": "object", "additionalProperties": true,
                     "properties": {"region": {"type": "string"}}},
            "note": {},
            "tags": {"type": ["string", "array"]}}})
    );
    // The shared rules reach tools without rules of their own too.
    assert_eq!(
        schema_of(&s, "secret_tool")["properties"],
        json!({"cost": {"type": "object", "additionalProperties": true,
                        "properties": {"cents": {"type": "integer"}}},
               "dry_run": {"type": "boolean"}})
    );
    assert!(
        s.notes[0].ends_with("in its tool rules (2) and its `hide` list (1)"),
        "{:?}",
        s.notes
    );
    assert!(s.notes.last().unwrap().ends_with("(its default denies it)"));

    // The mock serves it, and arguments of the implied shape pass its checks.
    let cat = Catalogue::from_manifest(&s.manifest.to_string(), "synthesised").unwrap();
    let transfer = cat.resolve("TRANSFER", NameMatching::Lenient).unwrap();
    let args = json!({"meta": {"region": "eu-west"}, "lines": [{"qty": 2}],
                      "cost": {"cents": 5}, "flag": "yes", "extra": [1]});
    assert_eq!(transfer.validate(&args), vec![]);
    assert!(
        !transfer
            .validate(&json!({"cost": {"cents": 1.5}}))
            .is_empty()
    );
}

#[test]
fn a_policy_naming_no_tool_still_gets_the_unlisted_one() {
    let policy = crate::policy::parse_json(
        r#"{"version": "1", "default": "allow",
            "all_tools": {"limits": [{"counter": "c", "window": "minute", "max": 5, "scope": "global"}]}}"#,
        "p.json",
    )
    .unwrap();
    let s = synthesize(&policy);
    assert_eq!(tools(&s).len(), 1);
    assert_eq!(
        s.notes[0],
        "no manifest given, and the policy names no tool: synthesised none from it"
    );
    assert!(Catalogue::from_manifest(&s.manifest.to_string(), "s").is_ok());
}

/// Every valid policy in the Intercept collection synthesises a
/// manifest the mock loads, with a tool for each of its names.
#[test]
fn every_shared_policy_synthesises_a_manifest_the_mock_serves() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/intercept");
    let mut checked = 0;
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let Ok(policy) = crate::policy::load_file(&path) else {
            continue;
        };
        let s = synthesize(&policy);
        let cat = Catalogue::from_manifest(&s.manifest.to_string(), "s")
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for rule in policy.tools.iter().filter(|r| r.name != WILDCARD) {
            assert!(
                cat.resolve(&rule.name, NameMatching::Lenient).is_some(),
                "{}: `{}` missing",
                path.display(),
                rule.name
            );
        }
        assert!(cat.resolve(&s.unlisted, NameMatching::Exact).is_some());
        assert!(policy.tool_rule(&s.unlisted).is_none());
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} policies loaded");
}
