//! The shipped attack catalogue: it loads, it is big and varied enough, it
//! covers every attack the catalogue promises, it stays fast, and the calls
//! its policies admit are ones the mock will execute.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use gauntlet::mock::catalogue::Catalogue;
use gauntlet::names::NameMatching;
use gauntlet::policy::{Call, Judgement};
use gauntlet::scenario::{
    ArgSpec, Category, PolicySource, Scenario, SessionSpec, StepKind, Who, load_catalogue,
};
use serde_json::Value;

fn attacks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("attacks")
}

fn catalogue() -> Vec<Scenario> {
    load_catalogue(&attacks_dir()).unwrap_or_else(|e| panic!("the catalogue does not load:\n{e}"))
}

#[test]
fn catalogue_is_big_and_varied() {
    let all = catalogue();
    assert!(all.len() >= 50, "only {} scenarios", all.len());
    let cats: BTreeSet<Category> = all.iter().map(|s| s.category).collect();
    assert!(cats.len() >= 10, "only {} categories", cats.len());
    for c in Category::ALL {
        assert!(cats.contains(&c), "no scenario in category `{c}`");
    }
    let ids: HashSet<&str> = all.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), all.len(), "duplicate ids");
}

#[test]
fn files_sit_in_their_category_folder_under_their_id() {
    for s in catalogue() {
        let folder = s.path.parent().and_then(Path::file_name).unwrap();
        assert_eq!(
            folder.to_str(),
            Some(s.category.as_str()),
            "{}",
            s.path.display()
        );
        assert_eq!(
            s.path.file_stem().and_then(|x| x.to_str()),
            Some(s.id.as_str())
        );
    }
}

#[test]
fn catalogue_is_sorted_by_category_then_id() {
    let all = catalogue();
    let keys: Vec<_> = all.iter().map(|s| (s.category, s.id.clone())).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn every_policy_loads_and_is_used() {
    let dir = attacks_dir().join("policies");
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        gauntlet::policy::load_file(&path)
            .unwrap_or_else(|e| panic!("{} does not load:\n{e}", path.display()));
        files.insert(path);
    }
    assert!(
        files.len() >= 6,
        "a handful of policies, got {}",
        files.len()
    );
    let used: BTreeSet<PathBuf> = catalogue()
        .into_iter()
        .filter_map(|s| match s.policy {
            PolicySource::File(f) => Some(f),
            PolicySource::Inline(_) => None,
        })
        .collect();
    for f in &files {
        assert!(used.contains(f), "no scenario uses {}", f.display());
    }
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "yaml")),
        "at least one policy in the Intercept YAML dialect"
    );
}

#[test]
fn seed_policy_is_the_seed_exactly() {
    let text = std::fs::read_to_string(attacks_dir().join("policies/seed.json")).unwrap();
    let got: Value = serde_json::from_str(&text).unwrap();
    let want: Value = serde_json::from_str(
        r#"{"version":"1","default":"deny","tools":{"WizCommerce Open API_PostCustomers":{"limits":[{"counter":"wizcommerce open api_postcustomers_rate","window":"minute","max":30,"scope":"grant"}]}}}"#,
    )
    .unwrap();
    assert_eq!(got, want);
}

/// The attacks the catalogue promises, each pinned to the scenario that
/// carries it, so deleting or renaming one fails here.
const COVERAGE: &[(&str, &str)] = &[
    ("sequential bulk writes", "rl-sequential-bulk"),
    ("parallel burst", "rl-parallel-burst"),
    ("pipelined burst on stdio", "rl-pipelined-burst"),
    ("session rotation vs grant scope", "rl-session-rotation"),
    ("identity rotation keeps full quota", "rl-identity-rotation"),
    ("window-edge burst", "rl-window-edge-burst"),
    ("all_tools global limit", "rl-all-tools-global"),
    ("increment_from negative", "cp-negative-increment"),
    ("increment_from float", "cp-float-increment"),
    ("increment_from string", "cp-string-increment"),
    ("increment_from huge", "cp-huge-integer-wrap"),
    ("increment_from missing", "cp-missing-increment"),
    ("refund abuse via write-then-error", "qr-write-then-error"),
    (
        "unlisted tool under default deny",
        "ta-unlisted-default-deny",
    ),
    ("action deny", "ta-action-deny"),
    ("hidden tool call", "ta-hidden-call"),
    ("hidden tool in tools/list", "ta-hidden-in-list"),
    ("the destructive tool", "ta-destructive-tool"),
    ("name case", "nc-case-default-allow"),
    ("name whitespace", "nc-whitespace-default-allow"),
    ("name fullwidth NFKC", "nc-fullwidth-default-allow"),
    ("name homoglyph", "nc-homoglyph-default-deny"),
    ("name zero-width", "nc-zero-width-default-allow"),
    ("name space/underscore", "nc-space-underscore-default-deny"),
    ("name trailing NUL", "nc-trailing-nul-default-allow"),
    (
        "name variant under default deny",
        "nc-case-hidden-default-deny",
    ),
    ("missing required", "ac-missing-required"),
    ("wrong types", "ac-wrong-types"),
    ("extra properties", "ac-extra-properties"),
    ("deny_if gt boundary", "ac-deny-if-gt-boundary"),
    ("deny_if gte boundary", "ac-deny-if-gte-boundary"),
    (
        "10000 vs 1e4 vs 10000.0 vs \"10000\"",
        "ac-numeric-spellings",
    ),
    ("nested paths", "ac-nested-path"),
    ("regex vs SQL", "ac-regex-sql-injection"),
    ("regex vs shell", "ac-regex-shell-injection"),
    ("regex vs path traversal", "ac-regex-path-traversal"),
    ("regex vs CRLF", "ac-regex-crlf-injection"),
    ("regex vs prompt injection", "ac-regex-prompt-injection"),
    ("batch", "fr-batch-denied-call"),
    ("mixed batch", "fr-batch-mixed"),
    ("downgrade to 2025-03-26 for batches", "fr-batch-downgrade"),
    ("tools/call notification", "fr-notification-call"),
    ("duplicate keys", "fr-duplicate-name-key"),
    ("case-variant keys", "fr-case-variant-key"),
    ("params as array", "fr-params-array"),
    ("id reuse", "fr-id-reuse"),
    ("odd id types", "fr-odd-id-types"),
    ("method case variant", "fr-method-case"),
    ("BOM", "fr-bom"),
    ("invalid UTF-8", "fr-invalid-utf8"),
    ("embedded newline", "fr-embedded-newline"),
    ("call before initialize", "fr-call-before-initialize"),
    ("arguments as string", "fo-arguments-string"),
    ("arguments as array", "fo-arguments-array"),
    ("arguments as null", "fo-arguments-null"),
    ("name as number", "fo-name-number"),
    ("invalid JSON", "fo-invalid-json"),
    ("upstream crash mid-call", "fo-upstream-crash"),
    (
        "Mcp-Name header/body mismatch",
        "hm-name-allowed-body-denied",
    ),
    ("token passthrough", "id-token-passthrough"),
    (
        "session id with another grant's token",
        "id-session-hijack-quota",
    ),
    ("oversized argument", "re-oversized-argument"),
    ("JSON nested 10,000 deep", "re-deep-nesting"),
    ("huge array", "re-huge-array"),
    ("many connections at once", "re-many-connections"),
];

#[test]
fn every_promised_attack_has_its_scenario() {
    let all = catalogue();
    let by_id: BTreeMap<&str, &Scenario> = all.iter().map(|s| (s.id.as_str(), s)).collect();
    for (what, id) in COVERAGE {
        assert!(by_id.contains_key(id), "`{what}` is not covered: no `{id}`");
    }
    // The items whose point is their shape, not only their name.
    let s = by_id["rl-pipelined-burst"];
    assert!(s.steps.iter().any(|st| st.pipeline) && s.transport.as_str() == "stdio");
    let s = by_id["rl-session-rotation"];
    assert!(
        s.steps
            .iter()
            .any(|st| matches!(st.session, SessionSpec::Rotate(n) if n > 1))
    );
    let s = by_id["rl-identity-rotation"];
    assert!(
        s.steps
            .iter()
            .any(|st| matches!(&st.who, Who::Rotate(ids) if ids.len() > 1))
    );
    let s = by_id["rl-window-edge-burst"];
    assert!(s.steps.iter().any(|st| st.at.is_some()));
    let s = by_id["rl-all-tools-global"];
    assert!(!s.model.all_tools.is_empty());
    let s = by_id["fr-batch-downgrade"];
    assert_eq!(s.revision.as_str(), "2025-03-26");
    let s = by_id["hm-name-allowed-body-denied"];
    assert_eq!(s.revision.as_str(), "2026-07-28");
    assert!(s.steps.iter().any(|st| matches!(&st.kind,
        StepKind::Raw { headers, .. } if headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("mcp-name")))));
    let s = by_id["fr-call-before-initialize"];
    assert!(s.steps[0].skip_handshake);
    let s = by_id["re-many-connections"];
    assert!(
        s.steps
            .iter()
            .any(|st| st.concurrency >= 64 && st.session == SessionSpec::Rotate(64))
    );
    let s = by_id["re-oversized-argument"];
    let big = s.steps.iter().any(|st| match &st.kind {
        StepKind::Call {
            args: ArgSpec::Literal(v),
            ..
        } => v.to_string().len() > 4 * 1024 * 1024,
        _ => false,
    });
    assert!(big, "the oversized argument must make a frame over 4 MiB");
    let s = by_id["re-deep-nesting"];
    let deep = s.steps.iter().any(|st| match &st.kind {
        StepKind::Raw { bytes, .. } => bytes.iter().filter(|b| **b == b'[').count() >= 10_000,
        _ => false,
    });
    assert!(deep);
    // Name confusion is exercised under both kinds of default.
    use gauntlet::policy::DefaultAction;
    let defaults: HashSet<_> = all
        .iter()
        .filter(|s| s.category == Category::NameConfusion)
        .map(|s| matches!(s.model.default, DefaultAction::Allow))
        .collect();
    assert_eq!(
        defaults.len(),
        2,
        "name confusion under default allow and default deny"
    );
}

#[test]
fn scenarios_stay_fast() {
    for s in catalogue() {
        let waits: u64 = s.steps.iter().map(|st| st.delay_ms + st.after_ms).sum();
        assert!(waits <= 2_500, "{} waits {waits} ms", s.id);
        for (i, st) in s.steps.iter().enumerate() {
            let volume = s.category == Category::ResourceExhaustion;
            assert!(
                volume || st.repeat <= 100,
                "{} step[{i}] repeats {}",
                s.id,
                st.repeat
            );
        }
        assert!(s.total_sends() <= 200, "{} sends {}", s.id, s.total_sends());
    }
}

/// Applies `set` the way the format defines it: dot paths, numeric segments
/// index arrays, missing objects are created.
fn apply_set(args: &mut Value, path: &str, v: &Value) {
    let mut cur = args;
    let segs: Vec<&str> = path.split('.').collect();
    for (n, seg) in segs.iter().enumerate() {
        let last = n + 1 == segs.len();
        cur = match cur {
            Value::Array(a) => {
                let i: usize = seg.parse().unwrap();
                &mut a[i]
            }
            Value::Object(m) => {
                if last {
                    m.insert((*seg).to_owned(), v.clone());
                    return;
                }
                m.entry(*seg)
                    .or_insert_with(|| Value::Object(Default::default()))
            }
            other => panic!("cannot set `{path}` inside {other}"),
        };
        if last {
            *cur = v.clone();
        }
    }
}

#[test]
fn admitted_calls_are_valid_for_the_mock() {
    let tools = Catalogue::bundled().unwrap();
    let mut checked = 0;
    for s in catalogue() {
        for (i, st) in s.steps.iter().enumerate() {
            let StepKind::Call {
                name,
                args: ArgSpec::Literal(args),
                set,
            } = &st.kind
            else {
                continue;
            };
            let mut args = args.clone();
            for (p, v) in set {
                apply_set(&mut args, p, v);
            }
            let call = Call {
                tool: name,
                args: Some(&args),
                grant: "alice",
                session: "main",
            };
            if !matches!(s.model.judge(&call, None), Judgement::Admit(_)) {
                continue;
            }
            let tool = tools
                .resolve(name, NameMatching::Lenient)
                .unwrap_or_else(|| panic!("{} step[{i}]: the mock has no tool `{name}`", s.id));
            let errors = tool.validate(&args);
            assert!(
                errors.is_empty(),
                "{} step[{i}]: the policy admits it but the mock refuses it: {errors:?}",
                s.id
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} admitted calls checked");
}
