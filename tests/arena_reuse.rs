//! One arena, many uses: a reset empties every counter of the built-in
//! stdio enforcer (grant, session and global scopes) while its sessions stay
//! open, and the ledger is read again from its end. Targets whose state the
//! harness does not own cannot be reset.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use gauntlet::mcp::Revision;
use gauntlet::oracle::is_call;
use gauntlet::target::{Arena, ArenaSpec, HarnessConfig, SessionKey, TargetSpec, Transport};
use serde_json::json;

const GET: &str = "WizCommerce Open API_GetCustomers";

/// Two calls per minute in `scope`.
fn policy(scope: &str) -> String {
    format!(
        r#"{{"version":"1","default":"deny","tools":{{"{GET}":{{"limits":[
          {{"counter":"c","window":"minute","max":2,"scope":"{scope}"}}]}}}}}}"#
    )
}

fn harness(transport: Transport) -> HarnessConfig {
    HarnessConfig {
        timeout: Duration::from_secs(10),
        transport,
        ..HarnessConfig::new(PathBuf::from(env!("CARGO_BIN_EXE_gauntlet")))
    }
}

fn key(identity: &str) -> SessionKey {
    SessionKey {
        identity: identity.into(),
        label: "main".into(),
        replica: 0,
    }
}

/// Whether each of `n` calls by `identity` was admitted.
async fn calls(arena: &mut Arena, identity: &str, n: usize) -> Vec<bool> {
    let client = arena.session(&key(identity), true).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let ex = client.call_tool(GET, json!({})).await.unwrap();
        out.push(!ex.denied());
    }
    out
}

async fn arena(target: TargetSpec, transport: Transport, scope: &str) -> Arena {
    let policy = gauntlet::policy::parse_json(&policy(scope), "policy.json").unwrap();
    let spec = ArenaSpec {
        policy: &policy,
        strict_mock: false,
        revision: Revision::LATEST_STATEFUL,
    };
    Arena::new(&harness(transport), &target, &spec)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_empties_the_counters_and_keeps_the_sessions() {
    let mut arena = arena(TargetSpec::Builtin, Transport::Stdio, "grant").await;
    assert!(arena.resettable());
    assert_eq!(calls(&mut arena, "alice", 3).await, [true, true, false]);
    assert_eq!(calls(&mut arena, "bob", 1).await, [true]);
    arena.poll_ledger().unwrap();
    let instances: Vec<String> = arena.records().iter().map(|r| r.instance.clone()).collect();
    let arrived = arena.records().iter().filter(|r| is_call(r)).count();
    assert_eq!(arrived, 3, "the calls that passed");

    arena.reset().unwrap();
    assert!(arena.records().is_empty());
    assert_eq!(calls(&mut arena, "alice", 3).await, [true, true, false]);
    arena.poll_ledger().unwrap();
    // Only this use's calls (no handshake: the session was not reopened),
    // from the same mock process.
    let after = arena.records();
    assert_eq!(after.len(), 2, "{after:#?}");
    assert!(after.iter().all(|r| instances.contains(&r.instance)));
    let mut keys = arena.session_keys();
    keys.sort_by(|a, b| a.identity.cmp(&b.identity));
    assert_eq!(keys, [key("alice"), key("bob")]);

    // A closed session is opened afresh on its next use.
    arena.close_session(&key("alice")).await;
    assert_eq!(arena.session_keys(), [key("bob")]);
    arena.reset().unwrap();
    assert_eq!(calls(&mut arena, "alice", 1).await, [true]);
    arena.poll_ledger().unwrap();
    assert!(
        arena
            .records()
            .iter()
            .any(|r| !instances.contains(&r.instance))
    );
    arena.finish(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scope_starts_empty_after_a_reset() {
    for scope in ["grant", "session", "global"] {
        let mut arena = arena(TargetSpec::Builtin, Transport::Stdio, scope).await;
        assert_eq!(
            calls(&mut arena, "carol", 3).await,
            [true, true, false],
            "{scope}"
        );
        // Without the reset every call would be over the limit.
        arena.reset().unwrap();
        assert_eq!(
            calls(&mut arena, "carol", 3).await,
            [true, true, false],
            "{scope}"
        );
        arena.finish(None).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_whose_state_the_harness_does_not_own_cannot_be_reset() {
    let mut bare = arena(TargetSpec::None, Transport::Stdio, "grant").await;
    assert!(!bare.resettable());
    assert!(bare.reset().is_err());
    bare.finish(None).await.unwrap();
    let template = format!(
        "{} enforce --policy {{policy}} -- {{upstream}}",
        env!("CARGO_BIN_EXE_gauntlet")
    );
    let external = arena(TargetSpec::Command(template), Transport::Stdio, "grant").await;
    assert!(!external.resettable());
    external.finish(None).await.unwrap();
    let http = arena(TargetSpec::Builtin, Transport::Http, "grant").await;
    assert!(!http.resettable());
    http.finish(None).await.unwrap();
}
