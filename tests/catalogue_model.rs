//! What the policy model makes of every scenario, sent in order on a bare
//! mock (the control run's view): how many sends of each step it admits and
//! why it refuses the rest. The snapshot is the reviewed record of each
//! scenario's intent; the assertions check that every attack lands, i.e.
//! something the policy forbids would reach a mock with nothing in front.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use gauntlet::mock::catalogue::Catalogue;
use gauntlet::policy::{Call, Decision, DenyKind, ManualClock, MemoryStore, SchemaSet, decide};
use gauntlet::scenario::{ArgSpec, Scenario, SessionSpec, Step, StepKind, load_catalogue};
use serde_json::Value;

/// Scenarios whose point is that the policy forbids nothing: over-blocking
/// checks, and checks on what the upstream sees or the client is told.
const NOTHING_FORBIDDEN: &[&str] = &[
    "fo-upstream-crash",
    "id-token-passthrough",
    "rl-identity-rotation",
    "rl-window-refill",
];

/// One message as the model sees it.
enum Judged {
    Call { tool: String, args: Option<Value> },
    Unjudgeable(&'static str),
    Other,
}

fn set_path(args: &mut Value, path: &str, v: &Value) {
    let segs: Vec<&str> = path.split('.').collect();
    let mut cur = args;
    for (n, seg) in segs.iter().enumerate() {
        let last = n + 1 == segs.len();
        cur = match cur {
            Value::Array(a) => &mut a[seg.parse::<usize>().unwrap()],
            Value::Object(m) if last => {
                m.insert((*seg).to_owned(), v.clone());
                return;
            }
            Value::Object(m) => m
                .entry(*seg)
                .or_insert_with(|| Value::Object(Default::default())),
            _ => panic!("cannot set {path}"),
        };
        if last {
            *cur = v.clone();
        }
    }
}

fn judge_message(m: &Value) -> Judged {
    if m.get("method").and_then(Value::as_str) != Some("tools/call") {
        return Judged::Other;
    }
    let Some(params) = m.get("params").and_then(Value::as_object) else {
        return Judged::Unjudgeable("params not an object");
    };
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Judged::Unjudgeable("no string name");
    };
    Judged::Call {
        tool: name.to_owned(),
        args: params.get("arguments").cloned(),
    }
}

fn messages(step: &Step) -> Vec<Judged> {
    match &step.kind {
        StepKind::Call { name, args, set } => match args {
            ArgSpec::Literal(v) => {
                let mut v = v.clone();
                for (p, x) in set {
                    set_path(&mut v, p, x);
                }
                vec![Judged::Call {
                    tool: name.clone(),
                    args: Some(v),
                }]
            }
            ArgSpec::Generate(_) => vec![Judged::Unjudgeable("generated")],
        },
        StepKind::Raw { bytes, .. } => {
            // One write may hold several lines on stdio.
            let mut out = Vec::new();
            for line in bytes.split(|b| *b == b'\n') {
                match serde_json::from_slice::<Value>(line) {
                    Ok(Value::Array(items)) => out.extend(items.iter().map(judge_message)),
                    Ok(v) => out.push(judge_message(&v)),
                    Err(_) => out.push(Judged::Unjudgeable("not JSON")),
                }
            }
            out
        }
        StepKind::List => vec![Judged::Other],
    }
}

fn describe(s: &Scenario, schemas: Option<&SchemaSet>) -> (String, u64) {
    let store = MemoryStore::new(4);
    let clock = ManualClock::new(Duration::from_secs(1_000_000));
    let mut out = String::new();
    let mut forbidden = 0;
    for (i, step) in s.steps.iter().enumerate() {
        clock.advance(Duration::from_millis(step.delay_ms));
        let mut admitted = 0;
        let mut denied: BTreeMap<String, u32> = BTreeMap::new();
        for n in 0..step.repeat {
            let grant = step.who.for_send(n);
            let session = match &step.session {
                SessionSpec::Named(l) => l.clone(),
                SessionSpec::Rotate(k) => format!("s{i}-{}", n % k),
            };
            for m in messages(step) {
                match m {
                    Judged::Call { tool, args } => {
                        let call = Call {
                            tool: &tool,
                            args: args.as_ref(),
                            grant,
                            session: &session,
                        };
                        match decide(&s.model, &call, schemas, &store, &clock) {
                            Decision::Allow(_) => admitted += 1,
                            Decision::Deny(d) => {
                                *denied.entry(kind(d.kind)).or_default() += 1;
                            }
                        }
                    }
                    Judged::Unjudgeable(why) => {
                        *denied.entry(format!("unjudgeable: {why}")).or_default() += 1
                    }
                    Judged::Other => {}
                }
                clock.advance(Duration::from_millis(1));
            }
        }
        let what = match &step.kind {
            StepKind::Call { .. } => "call",
            StepKind::Raw { .. } => "raw",
            StepKind::List => "list",
        };
        let _ = write!(out, "  step[{i}] {what}: {admitted} admitted");
        for (k, n) in &denied {
            let _ = write!(out, ", {n} {k}");
            forbidden += u64::from(*n);
        }
        if matches!(step.kind, StepKind::List) {
            let _ = write!(out, " (hidden tools: {})", s.model.hide.len());
            forbidden += s.model.hide.len() as u64;
        }
        out.push('\n');
    }
    (out, forbidden)
}

fn kind(k: DenyKind) -> String {
    format!("{k:?}").to_lowercase()
}

fn schema_set() -> SchemaSet {
    let tools: Vec<Value> = Catalogue::bundled()
        .unwrap()
        .tools()
        .iter()
        .map(|t| serde_json::to_value(t.entry()).unwrap())
        .collect();
    SchemaSet::from_tools(&tools)
}

fn policy_name(s: &Scenario) -> String {
    match &s.policy {
        gauntlet::scenario::PolicySource::File(f) => {
            f.file_name().unwrap().to_string_lossy().into_owned()
        }
        gauntlet::scenario::PolicySource::Inline(_) => "inline".to_owned(),
    }
}

#[test]
fn every_attack_lands_on_a_bare_mock() {
    let all = load_catalogue(&Path::new(env!("CARGO_MANIFEST_DIR")).join("attacks")).unwrap();
    let schemas = schema_set();
    let mut report = String::new();
    for s in &all {
        let (plain, forbidden) = describe(s, None);
        let (with_schemas, _) = describe(s, Some(&schemas));
        let _ = writeln!(report, "{} ({}):", s.id, policy_name(s));
        report.push_str(&plain);
        if with_schemas != plain {
            report.push_str("  with the tools' schemas:\n");
            for l in with_schemas.lines() {
                let _ = writeln!(report, "  {l}");
            }
        }
        if let Some(n) = s.expect.max_arrivals {
            let _ = writeln!(report, "  expect: at most {n} arrive");
        }
        if s.expect.no_success {
            let _ = writeln!(report, "  expect: no success");
        }
        let capped = s.expect.max_arrivals.is_some_and(|n| n < s.total_sends());
        let lands = forbidden > 0 || capped;
        if NOTHING_FORBIDDEN.contains(&s.id.as_str()) {
            assert!(!lands, "{}: meant to forbid nothing, yet:\n{plain}", s.id);
        } else {
            assert!(lands, "{}: nothing in it is forbidden:\n{plain}", s.id);
        }
    }
    insta::assert_snapshot!(report);
}
