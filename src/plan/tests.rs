//! The planner over the catalogue's own policies and the bundled tools:
//! each pattern's sends, replayed through the policy model, do what the
//! pattern claims.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::mock::catalogue::Catalogue;
use crate::names::{NameMatching, lenient_key};
use crate::policy::{Call, Decision, DenyKind, ManualClock, MemoryStore, decide};
use crate::scenario::{ArgSpec, At, Category, SessionSpec, StepKind, TransportFilter};

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("attacks/policies")
}

fn plan_of(file: &str) -> Plan {
    let path = policies().join(file);
    let policy = crate::policy::load_file(&path).unwrap();
    derive(
        &policy,
        &PolicySource::File(path),
        &Catalogue::bundled().unwrap(),
    )
    .unwrap()
}

fn item<'a>(plan: &'a Plan, id: &str) -> &'a Planned {
    plan.items
        .iter()
        .find(|p| p.scenario.id == id)
        .unwrap_or_else(|| {
            let ids: Vec<&str> = plan.items.iter().map(|p| p.scenario.id.as_str()).collect();
            panic!("no `{id}` in {ids:?}")
        })
}

/// What the model decides for every call send of every step, sent in order
/// at one instant (`None` for sends it cannot judge: raw frames, lists).
fn decisions(s: &Scenario) -> Vec<Vec<Option<Result<(), DenyKind>>>> {
    let cat = Catalogue::bundled().unwrap();
    let store = MemoryStore::default();
    let clock = ManualClock::new(Duration::from_secs(1_000_000));
    let mut out = Vec::new();
    for (i, step) in s.steps.iter().enumerate() {
        let mut sends = Vec::new();
        for n in 0..step.repeat {
            let StepKind::Call { name, args, set } = &step.kind else {
                sends.push(None);
                continue;
            };
            let mut value = match args {
                ArgSpec::Literal(v) => v.clone(),
                ArgSpec::Generate(_) => cat
                    .resolve(name, NameMatching::Lenient)
                    .map_or(json!({}), |t| {
                        crate::generate::valid(&t.entry().input_schema, u64::from(n))
                    }),
            };
            for (p, v) in set {
                crate::generate::set_path(&mut value, p, v.clone());
            }
            let session = match &step.session {
                SessionSpec::Named(l) => l.clone(),
                SessionSpec::Rotate(k) => format!("step{i}-rot{}", n % k),
            };
            let call = Call {
                tool: name,
                args: Some(&value),
                grant: step.who.for_send(n),
                session: &session,
            };
            sends.push(Some(match decide(&s.model, &call, None, &store, &clock) {
                Decision::Allow(_) => Ok(()),
                Decision::Deny(d) => Err(d.kind),
            }));
        }
        out.push(sends);
    }
    out
}

fn admitted(step: &[Option<Result<(), DenyKind>>]) -> usize {
    step.iter().filter(|d| matches!(d, Some(Ok(())))).count()
}

#[test]
fn every_limit_gets_bulk_race_rotation_sized_from_the_model() {
    let plan = plan_of("window-edge.json");
    // 5 per 2 seconds per grant: the sixth call is the first refused.
    let bulk = &item(&plan, "plan-creates-per-2s-bulk").scenario;
    assert_eq!(bulk.steps[0].repeat, 7);
    let d = decisions(bulk);
    assert_eq!(admitted(&d[0]), 5);
    assert_eq!(d[0][5], Some(Err(DenyKind::Limit)));

    let race = &item(&plan, "plan-creates-per-2s-race").scenario;
    assert_eq!(race.steps[0].repeat, 7);
    assert_eq!(race.steps[0].concurrency, 7);

    // Grant scope: fresh sessions must not reset the grant, and another
    // grant has its own quota.
    let rot = &item(&plan, "plan-creates-per-2s-rotation").scenario;
    assert_eq!(rot.steps[0].session, SessionSpec::Rotate(3));
    let d = decisions(rot);
    assert_eq!(admitted(&d[0]), 5, "{d:?}");
    assert!(d[0].len() > 5);
    assert_eq!(rot.steps[1].who.for_send(0), "bob");
    assert_eq!(admitted(&d[1]), d[1].len(), "bob's quota is his own");

    let edge = &item(&plan, "plan-creates-per-2s-window-edge").scenario;
    assert_eq!(edge.steps[0].at, Some(At::WindowEdge));
    assert_eq!(edge.steps[0].repeat, 12);
    assert!(plan.left_out.is_empty(), "{:?}", plan.left_out);
}

#[test]
fn global_limits_rotate_over_grants_and_pick_the_roomiest_tool() {
    let plan = plan_of("global.json");
    let rot = &item(&plan, "plan-all-calls-rotation").scenario;
    let StepKind::Call { name, .. } = &rot.steps[0].kind else {
        panic!()
    };
    assert!(rot.model.tool_rule(name).is_some());
    assert_eq!(rot.steps[0].who.for_send(1), "bob");
    let d = decisions(rot);
    assert_eq!(admitted(&d[0]), 10, "one budget for every grant");
    assert_eq!(d[0].len(), 12);
}

#[test]
fn long_windows_leave_the_window_edge_out_unless_the_clock_is_sped_up() {
    let plan = plan_of("tight-quota.json");
    assert!(!plan.items.iter().any(|p| p.pattern == Pattern::WindowEdge));
    let edge: Vec<&LeftOut> = plan
        .left_out
        .iter()
        .filter(|l| l.pattern == Pattern::WindowEdge)
        .collect();
    assert_eq!(edge.len(), 2);
    assert!(
        edge[0].reason.contains("--time-scale 20 --no-control"),
        "{edge:?}"
    );

    let path = policies().join("tight-quota.json");
    let policy = crate::policy::load_file(&path).unwrap();
    let edges = |opts: Options| {
        let plan = derive_with(
            &policy,
            &PolicySource::File(path.clone()),
            &Catalogue::bundled().unwrap(),
            &opts,
        )
        .unwrap();
        plan.items
            .iter()
            .filter(|p| p.pattern == Pattern::WindowEdge)
            .count()
    };
    let fast = Options {
        time_scale: 60.0,
        ..Options::default()
    };
    // Control runs wait for the edge on the wall clock.
    assert_eq!(edges(fast), 0);
    assert_eq!(
        edges(Options {
            control: false,
            ..fast
        }),
        2
    );
}

#[test]
fn increment_from_gets_every_poison_then_an_honest_fill() {
    let plan = plan_of("increment.json");
    let ids: Vec<&str> = plan.items.iter().map(|p| p.scenario.id.as_str()).collect();
    for kind in ["negative", "zero", "float", "huge", "string"] {
        let id = format!("plan-credit-exposure-poison-{kind}");
        assert!(ids.contains(&id.as_str()), "{id} missing from {ids:?}");
        assert_eq!(
            item(&plan, &id).scenario.category,
            Category::CounterPoisoning
        );
    }
    // 50000 a minute, charged from credit_limit: two honest calls of 50000
    // pass the budget, whatever the poison did.
    let neg = &item(&plan, "plan-credit-exposure-poison-negative").scenario;
    let d = decisions(neg);
    let (fill, poison) = d.split_last().unwrap();
    assert_eq!(poison.len(), 3);
    for p in poison {
        assert_eq!(p[0], Some(Err(DenyKind::BadIncrement)));
    }
    assert_eq!(fill, &vec![Some(Ok(())), Some(Err(DenyKind::Limit))]);

    let zero = &item(&plan, "plan-credit-exposure-poison-zero").scenario;
    let d = decisions(zero);
    assert_eq!(d[0][0], Some(Ok(())), "a zero amount is admitted");
    assert_eq!(admitted(d.last().unwrap()), 1);
}

#[test]
fn denied_hidden_and_unlisted_tools_get_variants_frames_and_headers() {
    let plan = plan_of("hidden.json");
    let delete = crate::mock::catalogue::DELETE_CUSTOMER;
    let names = &item(&plan, "plan-hidden-deletecustomer-names").scenario;
    assert_eq!(names.steps[0].kind, StepKind::List);
    let d = decisions(names);
    let mut folding = 0;
    for (step, verdict) in names.steps[1..].iter().zip(&d[1..]) {
        let name = step.kind.tool().unwrap();
        assert_ne!(name, delete);
        // Variants fold back to the hidden tool; under default deny,
        // look-alikes that do not are refused as unlisted.
        if lenient_key(name) == lenient_key(delete) {
            folding += 1;
            assert_eq!(verdict[0], Some(Err(DenyKind::Hidden)), "{name:?}");
        } else {
            assert_eq!(verdict[0], Some(Err(DenyKind::Unlisted)), "{name:?}");
        }
    }
    assert!(folding >= 8, "{folding}");

    let framing = &item(&plan, "plan-hidden-deletecustomer-framing").scenario;
    assert_eq!(framing.steps.len(), 14);
    for step in &framing.steps {
        let StepKind::Raw { bytes, .. } = &step.kind else {
            panic!()
        };
        let text = String::from_utf8_lossy(bytes);
        assert!(
            text.contains(delete) || text.contains("\\u0057\\u0069\\u007a"),
            "{text}"
        );
    }

    let headers = &item(&plan, "plan-hidden-deletecustomer-headers").scenario;
    assert_eq!(headers.transport, TransportFilter::Http);
    assert_eq!(headers.revision.as_str(), "2026-07-28");

    // Default deny: an unlisted tool of the manifest, and look-alikes.
    let unlisted = &item(&plan, "plan-unlisted-putcustomer-names").scenario;
    assert!(
        decisions(unlisted)
            .iter()
            .all(|s| s[0] == Some(Err(DenyKind::Unlisted)))
    );
    assert_eq!(unlisted.rule.as_ref().unwrap().pointer, "/default");
}

#[test]
fn conditions_get_edges_types_and_path_tricks() {
    let plan = plan_of("conditions.json");
    let edges = &item(&plan, "plan-postcustomers-credit-limit-gt-boundary").scenario;
    let sets: Vec<Value> = edges
        .steps
        .iter()
        .map(|s| match &s.kind {
            StepKind::Call { set, .. } => set
                .iter()
                .find(|(p, _)| p == "credit_limit")
                .unwrap()
                .1
                .clone(),
            _ => panic!(),
        })
        .collect();
    for want in [json!(10000), json!(10001), json!(9999), json!("10000")] {
        assert!(sets.contains(&want), "{want} missing from {sets:?}");
    }
    let d = decisions(edges);
    let verdict = |v: Value| d[sets.iter().position(|s| *s == v).unwrap()][0];
    assert_eq!(verdict(json!(10000)), Some(Ok(())));
    assert_eq!(verdict(json!(9999)), Some(Ok(())));
    assert_eq!(verdict(json!(10001)), Some(Err(DenyKind::Condition)));
    assert_eq!(verdict(json!("10000")), Some(Err(DenyKind::Condition)));

    let types = &item(&plan, "plan-postcustomers-credit-limit-gt-types").scenario;
    assert!(
        decisions(types)
            .iter()
            .all(|s| s[0] == Some(Err(DenyKind::Condition))),
        "a deny_if that cannot be judged denies"
    );

    // A server that keeps the last of duplicated keys, or decodes escaped
    // ones, reads the refused country.
    let paths = &item(&plan, "plan-postcustomers-addresses-0-country-in-paths").scenario;
    assert_eq!(paths.steps.len(), 3);
    for step in &paths.steps {
        let StepKind::Raw { bytes, .. } = &step.kind else {
            panic!()
        };
        let frame: Value = serde_json::from_slice(bytes).unwrap();
        let args = &frame["params"]["arguments"];
        assert_eq!(args["addresses"][0]["country"], "KP", "{frame}");
        let call = Call {
            tool: frame["params"]["name"].as_str().unwrap(),
            args: Some(args),
            grant: "alice",
            session: "main",
        };
        assert!(matches!(
            paths.model.judge(&call, None),
            crate::policy::Judgement::Deny(d) if d.kind == DenyKind::Condition
        ));
    }
}

#[test]
fn tools_the_manifest_lacks_are_left_out_with_the_reason() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/intercept/default_deny_policy.yaml");
    let policy = crate::policy::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let plan = derive(
        &policy,
        &PolicySource::File(path),
        &Catalogue::bundled().unwrap(),
    )
    .unwrap();
    let issue = plan
        .left_out
        .iter()
        .find(|l| l.rule.pointer == "tools.create_issue.rules[0]" && l.pattern == Pattern::Bulk)
        .unwrap();
    assert!(
        issue.reason.contains("no `create_issue`"),
        "{}",
        issue.reason
    );
    // The denied tool needs no manifest entry: a refused call must not
    // arrive whether or not the server knows it.
    assert!(
        plan.items
            .iter()
            .any(|p| p.scenario.id == "plan-deny-delete-customer-names")
    );
}

#[test]
fn every_scenario_names_its_rule_and_the_plan_is_deterministic() {
    for file in [
        "conditions.json",
        "deny-list.json",
        "global.json",
        "hidden.json",
        "increment.json",
        "intercept.yaml",
        "seed.json",
        "tight-quota.json",
        "window-edge.json",
    ] {
        let plan = plan_of(file);
        assert!(!plan.items.is_empty(), "{file}");
        let again = plan_of(file);
        let text = |p: &Plan| p.items.iter().map(|i| i.toml.clone()).collect::<Vec<_>>();
        assert_eq!(text(&plan), text(&again), "{file}");
        let mut ids = std::collections::BTreeSet::new();
        let src = std::fs::read_to_string(policies().join(file)).unwrap();
        for p in &plan.items {
            let s = &p.scenario;
            assert!(ids.insert(s.id.clone()), "{file}: `{}` twice", s.id);
            assert!(s.id.starts_with("plan-") && s.id.len() <= 64, "{}", s.id);
            assert!(s.id.contains(p.pattern.as_str()), "{}", s.id);
            let rule = s.rule.as_ref().unwrap();
            assert_eq!(rule.file, file);
            let line = rule.line.unwrap();
            assert!(
                s.description.contains(&format!("at {file}:{line}")),
                "{}",
                s.description
            );
            assert!(
                src.lines().nth(line as usize - 1).is_some(),
                "{file}:{line}"
            );
        }
    }
}

#[test]
fn a_saved_plan_loads_back_as_the_same_catalogue() {
    let plan = plan_of("intercept.yaml");
    let dir = tempfile::tempdir().unwrap();
    let source = PolicySource::File(policies().join("intercept.yaml"));
    let written = plan.save(dir.path(), &source).unwrap();
    assert_eq!(written.len(), plan.items.len() + 1);
    let loaded = crate::scenario::load_catalogue(dir.path()).unwrap();
    let ids = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        ids(loaded.iter().map(|s| s.id.as_str()).collect()),
        ids(plan.items.iter().map(|p| p.scenario.id.as_str()).collect())
    );
    for (l, p) in loaded.iter().zip(&plan.items) {
        assert_eq!(l.steps, p.scenario.steps, "{}", l.id);
        assert_eq!(l.rule, p.scenario.rule, "{}", l.id);
    }
}

/// Odd corners of the policy language: whatever the policy, every derived
/// scenario loads (a load failure is a planner bug) and ids stay unique.
#[test]
fn odd_policies_still_derive_loadable_plans() {
    let cases = [
        r#"{"version":"1","default":"deny","hide":["*"],"tools":{"a":{}}}"#,
        r#"{"version":"1","default":"allow","tools":{"*":{"action":"deny"}}}"#,
        r#"{"version":"1","default":"deny","tools":{}}"#,
        r#"{"version":"1","default":"allow","tools":{"*":{"require":[{"path":"args.k","op":"regex","value":"^[a-z]+$"}],"limits":[{"counter":"c","window":1,"max":3,"scope":"session"}]}}}"#,
        r#"{"version":"1","default":"allow","tools":{"we\"ird\nna me ÄÖ":{"deny_if":[{"path":"args.x.0.y","op":"exists","value":false}]},"a_tool_with_a_name_far_longer_than_any_id_could_hold_whole":{"limits":[{"counter":"a counter with a long name, spaces and punctuation!","window":"hour","max":2,"scope":"grant"}]}}}"#,
        r#"{"version":"1","default":"allow","tools":{"pay":{"limits":[{"counter":"zero","window":"day","max":0,"scope":"global","increment_from":"args.n"},{"counter":"huge","window":"day","max":100000,"scope":"global"}],"require":[{"path":"args.n","op":"lt","value":0.5},{"path":"args.c","op":"not_in","value":[1,2]},{"path":"args.d","op":"contains","value":"ok"},{"path":"args.e","op":"neq","value":false}]}}}"#,
        "version: \"1\"\ndefault: deny\ntools:\n  x:\n    rules:\n      - name: approval\n        action: require_approval\n  y:\n    rules:\n      - name: eq\n        conditions:\n          - path: args.mode\n            op: eq\n            value: read\n",
    ];
    for text in cases {
        let policy = if text.starts_with('{') {
            crate::policy::parse_json(text, "p.json")
        } else {
            crate::policy::parse_yaml(text, "p.yaml")
        }
        .unwrap();
        let source = PolicySource::Inline(text.to_owned());
        let synth = crate::manifest::synthesize(&policy);
        let synthesized = Catalogue::from_manifest(&synth.manifest.to_string(), "synth").unwrap();
        for tools in [Catalogue::bundled().unwrap(), synthesized] {
            let plan = derive(&policy, &source, &tools).unwrap_or_else(|e| panic!("{text}\n{e}"));
            let ids: std::collections::BTreeSet<&str> =
                plan.items.iter().map(|p| p.scenario.id.as_str()).collect();
            assert_eq!(ids.len(), plan.items.len(), "{text}");
            assert!(
                !plan.items.is_empty() || !plan.left_out.is_empty(),
                "{text}: neither a scenario nor a reason"
            );
        }
    }
}
