//! `judge` and `decide`: names, actions, conditions, increments, windows,
//! refunds, scopes, and all-or-nothing reservations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use gauntlet::policy::{
    Call, CounterStore, Decision, DenyKind, Judgement, ManualClock, MemoryStore, Policy, SchemaSet,
    decide, on_upstream_error, parse_json, parse_yaml,
};
use serde_json::{Value, json};

const POST: &str = "WizCommerce Open API_PostCustomers";
const GET: &str = "WizCommerce Open API_GetCustomers";

fn policy(v: Value) -> Policy {
    parse_json(&v.to_string(), "test.json").unwrap_or_else(|e| panic!("{e}"))
}

fn call<'a>(tool: &'a str, args: &'a Value) -> Call<'a> {
    Call {
        tool,
        args: Some(args),
        grant: "alice",
        session: "s1",
    }
}

fn denied(p: &Policy, tool: &str, args: &Value) -> Option<DenyKind> {
    match p.judge(&call(tool, args), None) {
        Judgement::Deny(d) => Some(d.kind),
        Judgement::Admit(_) => None,
    }
}

struct Bench {
    policy: Policy,
    store: MemoryStore,
    clock: ManualClock,
}

impl Bench {
    fn new(policy: Policy) -> Bench {
        Bench {
            policy,
            store: MemoryStore::default(),
            clock: ManualClock::new(Duration::from_secs(1_000_000)),
        }
    }

    fn send(&self, tool: &str, args: &Value, grant: &str, session: &str) -> Decision {
        let c = Call {
            tool,
            args: Some(args),
            grant,
            session,
        };
        decide(&self.policy, &c, None, &self.store, &self.clock)
    }

    fn admits(&self, tool: &str, args: &Value) -> bool {
        matches!(self.send(tool, args, "alice", "s1"), Decision::Allow(_))
    }

    fn count_admitted(&self, n: usize, tool: &str, args: &Value) -> usize {
        (0..n).filter(|_| self.admits(tool, args)).count()
    }

    fn at(&self, secs: u64) {
        self.clock.set(Duration::from_secs(secs));
    }
}

fn deny_kind(d: &Decision) -> Option<DenyKind> {
    match d {
        Decision::Deny(d) => Some(d.kind),
        Decision::Allow(_) => None,
    }
}

#[test]
fn name_variants_are_judged_as_the_tool() {
    let p = policy(json!({"version": "1", "default": "allow", "hide": [GET],
        "tools": {POST: {"action": "deny", "reason": "no writes"}}}));
    let args = json!({});
    for variant in [
        POST,
        "wizcommerce open api_postcustomers",
        "  WizCommerce Open API_PostCustomers\t",
        "ＷｉｚＣｏｍｍｅｒｃｅ Open API_PostCustomers",
        "WizCommerce Open API_Post\u{200B}Customers",
        "WizCommerce Open API_PostCustomers\0",
    ] {
        assert_eq!(
            denied(&p, variant, &args),
            Some(DenyKind::Action),
            "{variant:?}"
        );
    }
    assert_eq!(
        denied(&p, "wizcommerce open api_getcustomers ", &args),
        Some(DenyKind::Hidden)
    );
    assert!(p.is_hidden("WIZCOMMERCE OPEN API_GETCUSTOMERS"));
    assert!(!p.is_hidden(POST));
    // A homoglyph is another tool: under default allow it passes here, and the server will not know it.
    assert_eq!(
        denied(&p, "WizCommerce Open API_PostCustоmers", &args),
        None
    );
}

#[test]
fn hidden_unlisted_and_actions() {
    let p = policy(
        json!({"version": "1", "default": "deny", "hide": ["secret"],
        "tools": {"open": {}, "closed": {"action": "deny"}, "gated": {"action": "require_approval"},
                  "secret": {}}}),
    );
    let args = json!({});
    assert_eq!(denied(&p, "open", &args), None);
    assert_eq!(denied(&p, "closed", &args), Some(DenyKind::Action));
    assert_eq!(denied(&p, "gated", &args), Some(DenyKind::ApprovalRequired));
    assert_eq!(denied(&p, "secret", &args), Some(DenyKind::Hidden));
    assert_eq!(denied(&p, "other", &args), Some(DenyKind::Unlisted));
    let all_hidden = policy(json!({"version": "1", "default": "allow", "hide": ["*"]}));
    assert_eq!(
        denied(&all_hidden, "anything", &args),
        Some(DenyKind::Hidden)
    );
}

#[test]
fn denials_name_the_deciding_rule() {
    let p = policy(json!({"version": "1", "default": "deny",
        "tools": {"closed": {"action": "deny", "reason": "never"},
                  "t": {"deny_if": [{"path": "args.x", "op": "eq", "value": 1}]}}}));
    let Judgement::Deny(d) = p.judge(&call("closed", &json!({})), None) else {
        panic!()
    };
    assert_eq!(
        (d.rule.as_str(), d.reason.as_str()),
        ("/tools/closed", "never")
    );
    let Judgement::Deny(d) = p.judge(&call("t", &json!({"x": 1})), None) else {
        panic!()
    };
    assert_eq!(d.rule, "/tools/t/deny_if/0");
    assert!(d.reason.contains("args.x"), "{}", d.reason);
}

#[test]
fn wildcard_rules_apply_to_listed_tools_but_do_not_list_them() {
    let p = policy(json!({"version": "1", "default": "deny",
        "tools": {"a": {}, "*": {"deny_if": [{"path": "args.admin", "op": "eq", "value": true}]}}}));
    assert_eq!(denied(&p, "a", &json!({"admin": false})), None);
    assert_eq!(
        denied(&p, "a", &json!({"admin": true})),
        Some(DenyKind::Condition)
    );
    assert_eq!(
        denied(&p, "b", &json!({"admin": false})),
        Some(DenyKind::Unlisted)
    );
    assert_eq!(
        denied(&p, "*", &json!({"admin": false})),
        Some(DenyKind::Unlisted)
    );
}

#[test]
fn require_and_deny_if_fail_closed() {
    let p = policy(json!({"version": "1", "default": "deny", "tools": {POST: {
        "require": [{"path": "args.email", "op": "exists", "value": true}],
        "deny_if": [{"path": "args.credit_limit", "op": "gt", "value": 10000},
                    {"path": "args.company_name", "op": "regex", "value": "(?i)evil"}]}}}));
    let ok = |args: Value| denied(&p, POST, &args);
    assert_eq!(
        ok(json!({"email": "a@b.c", "credit_limit": 5000, "company_name": "Acme"})),
        None
    );
    assert_eq!(
        ok(json!({"email": "a@b.c", "credit_limit": 1e4, "company_name": "Acme"})),
        None
    );
    assert_eq!(
        ok(json!({"credit_limit": 5000, "company_name": "Acme"})),
        Some(DenyKind::Condition)
    );
    assert_eq!(
        ok(json!({"email": null, "credit_limit": 5000, "company_name": "Acme"})),
        Some(DenyKind::Condition)
    );
    assert_eq!(
        ok(json!({"email": "a", "credit_limit": 10001, "company_name": "Acme"})),
        Some(DenyKind::Condition)
    );
    assert_eq!(
        ok(json!({"email": "a", "credit_limit": 10000.5, "company_name": "A"})),
        Some(DenyKind::Condition)
    );
    // Type confusion: a string amount is not compared as a number, so the deny holds.
    assert_eq!(
        ok(json!({"email": "a", "credit_limit": "99999", "company_name": "A"})),
        Some(DenyKind::Condition)
    );
    assert_eq!(
        ok(json!({"email": "a", "credit_limit": [99999], "company_name": "A"})),
        Some(DenyKind::Condition)
    );
    // A deny_if on a missing path cannot be judged: deny.
    assert_eq!(
        ok(json!({"email": "a", "company_name": "Acme"})),
        Some(DenyKind::Condition)
    );
    assert_eq!(
        ok(json!({"email": "a", "credit_limit": 1, "company_name": "EVIL corp"})),
        Some(DenyKind::Condition)
    );
    assert_eq!(
        ok(json!({"email": "a", "credit_limit": 1, "company_name": 7})),
        Some(DenyKind::Condition)
    );
}

#[test]
fn arguments_that_are_not_an_object_are_malformed() {
    let p = policy(json!({"version": "1", "default": "allow"}));
    assert_eq!(denied(&p, "t", &json!([1, 2])), Some(DenyKind::Malformed));
    assert_eq!(denied(&p, "t", &json!("x")), Some(DenyKind::Malformed));
    assert_eq!(denied(&p, "t", &json!(null)), None);
    assert!(matches!(
        p.judge(
            &Call {
                tool: "t",
                args: None,
                grant: "g",
                session: "s"
            },
            None
        ),
        Judgement::Admit(_)
    ));
}

#[test]
fn schema_failures_deny_and_list_the_errors() {
    let p = policy(json!({"version": "1", "default": "allow"}));
    let schemas = SchemaSet::from_tools(&[json!({"name": POST, "inputSchema": {"type": "object",
        "required": ["email"], "properties": {"credit_limit": {"type": "number"}}}})]);
    let Judgement::Deny(d) = p.judge(&call(POST, &json!({"credit_limit": "x"})), Some(&schemas))
    else {
        panic!()
    };
    assert_eq!(d.kind, DenyKind::Schema);
    assert!(
        d.reason.contains("email") && d.reason.contains("/credit_limit"),
        "{}",
        d.reason
    );
    assert!(matches!(
        p.judge(&call(POST, &json!({"email": "a"})), Some(&schemas)),
        Judgement::Admit(_)
    ));
    assert!(matches!(
        p.judge(&call(GET, &json!({"any": 1})), Some(&schemas)),
        Judgement::Admit(_)
    ));
}

fn spend_policy(extra: Value) -> Policy {
    let mut v = json!({"version": "1", "default": "allow", "tools": {"charge": {"limits": [
        {"counter": "spend", "window": "day", "max": 1000, "scope": "grant", "increment_from": "args.amount"}]}}});
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    policy(v)
}

#[test]
fn increment_from_fails_closed() {
    let p = spend_policy(json!({}));
    for bad in [
        json!({}),
        json!({"amount": "100"}),
        json!({"amount": -5}),
        json!({"amount": -0.5}),
        json!({"amount": 99.9}),
        json!({"amount": 1e20}),
        json!({"amount": null}),
        json!({"amount": [100]}),
        json!({"amount": true}),
    ] {
        assert_eq!(
            denied(&p, "charge", &bad),
            Some(DenyKind::BadIncrement),
            "{bad}"
        );
    }
    let Judgement::Admit(reqs) = p.judge(&call("charge", &json!({"amount": 250.0})), None) else {
        panic!()
    };
    assert_eq!(reqs[0].amount, 250);
    let b = Bench::new(p);
    assert!(b.admits("charge", &json!({"amount": 600})));
    assert!(b.admits("charge", &json!({"amount": 0})));
    assert!(!b.admits("charge", &json!({"amount": 401})));
    assert!(b.admits("charge", &json!({"amount": 400})));
    assert_eq!(
        deny_kind(&b.send("charge", &json!({"amount": 1}), "alice", "s1")),
        Some(DenyKind::Limit)
    );
    assert_eq!(
        deny_kind(&b.send("charge", &json!({"amount": u64::MAX}), "alice", "s1")),
        Some(DenyKind::Limit)
    );
}

fn rate_policy(mode: &str, max: u64, window: u64) -> Policy {
    policy(
        json!({"version": "1", "default": "allow", "window_mode": mode, "tools": {"t": {"limits": [
        {"counter": "rate", "window": window, "max": max, "scope": "global"}]}}}),
    )
}

#[test]
fn sliding_windows_count_the_last_span() {
    let b = Bench::new(rate_policy("sliding", 3, 60));
    let args = json!({});
    b.at(1000);
    assert_eq!(b.count_admitted(5, "t", &args), 3);
    b.at(1059);
    assert_eq!(b.count_admitted(1, "t", &args), 0);
    // At 1060 the calls of 1000 leave the window.
    b.at(1060);
    assert_eq!(b.count_admitted(5, "t", &args), 3);
    b.at(1119);
    assert_eq!(b.count_admitted(1, "t", &args), 0);
}

#[test]
fn fixed_windows_reset_at_the_boundary() {
    let b = Bench::new(rate_policy("fixed", 3, 60));
    let args = json!({});
    // 1019 s is 59 s into a minute bucket (1020 = 17 * 60).
    b.at(1019);
    assert_eq!(b.count_admitted(5, "t", &args), 3);
    b.at(1020);
    assert_eq!(
        b.count_admitted(5, "t", &args),
        3,
        "a new bucket starts at the boundary"
    );
    b.at(1079);
    assert_eq!(b.count_admitted(1, "t", &args), 0);
    // The same burst pattern under sliding windows is held to 3 across the boundary.
    let s = Bench::new(rate_policy("sliding", 3, 60));
    s.at(1019);
    assert_eq!(s.count_admitted(5, "t", &args), 3);
    s.at(1020);
    assert_eq!(s.count_admitted(5, "t", &args), 0);
}

#[test]
fn refunds_follow_the_policy() {
    for (refund, expect_after) in [(true, 1), (false, 0)] {
        let mut p = rate_policy("sliding", 1, 60);
        p.refund_on_error = refund;
        let b = Bench::new(p);
        let Decision::Allow(receipt) = b.send("t", &json!({}), "a", "s") else {
            panic!()
        };
        assert_eq!(receipt.items.len(), 1);
        assert_eq!(b.count_admitted(1, "t", &json!({})), 0);
        assert_eq!(on_upstream_error(&b.policy, &b.store, &receipt), refund);
        assert_eq!(
            b.count_admitted(1, "t", &json!({})),
            expect_after,
            "refund_on_error = {refund}"
        );
    }
}

#[test]
fn fixed_refunds_do_not_leak_into_the_next_bucket() {
    let b = Bench::new(rate_policy("fixed", 1, 60));
    b.at(1019);
    let Decision::Allow(receipt) = b.send("t", &json!({}), "a", "s") else {
        panic!()
    };
    b.at(1020);
    assert!(b.admits("t", &json!({})));
    b.store.refund(&receipt);
    assert!(
        !b.admits("t", &json!({})),
        "a refund from an old bucket must not free the new one"
    );
}

#[test]
fn all_tools_limits_apply_to_every_call() {
    let b = Bench::new(policy(json!({"version": "1", "default": "allow",
        "all_tools": {"limits": [{"counter": "calls", "window": "minute", "max": 4, "scope": "session"}]},
        "tools": {"a": {}}})));
    let args = json!({});
    assert!(b.admits("a", &args));
    assert!(b.admits("b", &args));
    assert!(b.admits("unlisted", &args));
    assert!(b.admits("A", &args));
    assert!(!b.admits("a", &args));
    assert!(!b.admits("c", &args));
    // Another session has its own counter.
    assert!(matches!(
        b.send("a", &args, "alice", "s2"),
        Decision::Allow(_)
    ));
}

#[test]
fn scopes_key_counters_by_grant_session_or_nobody() {
    let limits = |scope: &str| {
        policy(
            json!({"version": "1", "default": "allow", "tools": {"t": {"limits": [
            {"counter": "c", "window": "minute", "max": 1, "scope": scope}]}}}),
        )
    };
    let args = json!({});
    let allowed =
        |b: &Bench, g: &str, s: &str| matches!(b.send("t", &args, g, s), Decision::Allow(_));
    let grant = Bench::new(limits("grant"));
    assert!(allowed(&grant, "alice", "s1"));
    assert!(
        !allowed(&grant, "alice", "s2"),
        "a grant's quota spans its sessions"
    );
    assert!(allowed(&grant, "bob", "s1"));
    let session = Bench::new(limits("session"));
    assert!(allowed(&session, "alice", "s1"));
    assert!(allowed(&session, "alice", "s2"));
    assert!(!allowed(&session, "bob", "s1"));
    let global = Bench::new(limits("global"));
    assert!(allowed(&global, "alice", "s1"));
    assert!(!allowed(&global, "bob", "s2"));
}

#[test]
fn one_full_limit_consumes_no_other() {
    let b = Bench::new(policy(json!({"version": "1", "default": "allow",
        "all_tools": {"limits": [{"counter": "calls", "window": "minute", "max": 100, "scope": "global"}]},
        "tools": {"t": {"limits": [
            {"counter": "spend", "window": "minute", "max": 10, "scope": "global", "increment_from": "args.n"},
            {"counter": "count", "window": "minute", "max": 100, "scope": "global"}]}}})));
    assert!(b.admits("t", &json!({"n": 10})));
    for _ in 0..20 {
        let d = b.send("t", &json!({"n": 1}), "a", "s");
        let Decision::Deny(denial) = d else {
            panic!("spend is full")
        };
        assert_eq!(denial.kind, DenyKind::Limit);
        assert_eq!(denial.rule, "/tools/t/limits/0");
    }
    // The 20 refused calls took nothing from `count` or `calls`: 99 more fit in each.
    assert_eq!(b.count_admitted(120, "t", &json!({"n": 0})), 99);
}

#[test]
fn intercept_limits_behave_like_intercept() {
    let src = r#"
version: "1"
tools:
  create_charge:
    rules:
      - name: "daily spend cap"
        conditions:
          - path: "state.create_charge.daily_spend"
            op: "lt"
            value: 1000
        on_deny: "Daily spending cap reached"
        state:
          counter: "daily_spend"
          window: "day"
          increment_from: "args.amount"
  "*":
    rules:
      - name: "global"
        rate_limit: 3/minute
"#;
    let b = Bench::new(parse_yaml(src, "p.yaml").unwrap());
    b.at(86_400 * 20 + 100);
    assert!(b.admits("create_charge", &json!({"amount": 999})));
    let Decision::Deny(d) = b.send("create_charge", &json!({"amount": 1}), "a", "s") else {
        panic!()
    };
    assert_eq!(d.reason, "Daily spending cap reached");
    assert_eq!(d.rule, "tools.create_charge.rules[0]");
    assert!(b.admits("other", &json!({})));
    assert!(b.admits("other", &json!({})));
    let Decision::Deny(d) = b.send("other", &json!({}), "a", "s") else {
        panic!()
    };
    assert_eq!(
        d.reason,
        "Rate limit of 3 per minute reached. Try again later."
    );
    // Calendar-aligned: the next UTC day starts afresh.
    b.at(86_400 * 21);
    assert!(b.admits("create_charge", &json!({"amount": 999})));
}

#[test]
fn idle_counters_are_swept() {
    let store = MemoryStore::new(1);
    let b = Bench {
        store,
        ..Bench::new(rate_policy("sliding", 2, 60))
    };
    assert_eq!(b.count_admitted(3, "t", &json!({})), 2);
    b.store.sweep(Duration::from_secs(2_000_000));
    assert!(b.store.is_empty(), "idle counters are dropped");
}

#[test]
fn intercept_hide_default_deny_and_zero_increment() {
    let src = r#"
version: "1"
default: deny
hide: [secret_tool]
tools:
  read_file:
    rules:
      - name: "count reads"
        conditions:
          - path: "state.read_file.reads"
            op: "lte"
            value: 2
        state:
          counter: "reads"
          window: "hour"
          increment: 0
"#;
    let p = parse_yaml(src, "p.yaml").unwrap();
    let Judgement::Deny(d) = p.judge(&call("Secret_Tool", &json!({})), None) else {
        panic!()
    };
    assert_eq!((d.kind, d.rule.as_str()), (DenyKind::Hidden, "hide"));
    let Judgement::Deny(d) = p.judge(&call("write_file", &json!({})), None) else {
        panic!()
    };
    assert_eq!((d.kind, d.rule.as_str()), (DenyKind::Unlisted, "default"));
    // Intercept reads `increment: 0` as the default of 1.
    let b = Bench::new(p);
    assert_eq!(b.count_admitted(5, "read_file", &json!({})), 2);
}
