//! The checks behind each fuzz target, kept here so the targets stay one
//! line and the same checks run over the committed corpus on stable
//! (`cargo test --manifest-path fuzz/Cargo.toml`).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use arbitrary::Arbitrary;
use futures_util::FutureExt;
use gauntlet::policy::{
    Call, Decision, ManualClock, MemoryStore, Policy, decide as decide_call, parse_json,
    parse_yaml,
};

/// A JSON policy parses or is refused with a message; one that parses
/// survives its own round trip through both dialects.
pub fn policy_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(p) = parse_json(text, "fuzz.json") {
        round_trip(&p);
    }
}

/// The same for the YAML (Intercept) dialect.
pub fn policy_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(p) = parse_yaml(text, "fuzz.yaml") {
        round_trip(&p);
    }
}

fn round_trip(p: &Policy) {
    let json = p.to_json();
    let again = parse_json(&json, "again.json");
    assert!(again.is_ok(), "a parsed policy's own JSON is refused: {again:?}\n{json}");
    let yaml = p.to_yaml();
    // Not every JSON policy has a YAML form; those that print one must
    // read back.
    if !yaml.is_empty() {
        let _ = parse_yaml(&yaml, "again.yaml");
    }
}

/// The frame decoder: line framing, then JSON-RPC parsing and the key
/// checks, on whatever bytes a peer might send.
pub fn frame(data: &[u8]) {
    let mut reader = gauntlet::mcp::framing::FrameReader::new(data, 1 << 16);
    let mut frames = 0;
    // Reading from a byte slice never waits, so each read completes at once.
    while let Some(Ok(Some(f))) = reader.next_frame().now_or_never() {
        frames += 1;
        assert!(f.len() <= 1 << 16, "a frame longer than the limit came through");
        let _ = gauntlet::mcp::jsonrpc::parse_frame(&f);
        let _ = gauntlet::mcp::keys::duplicate_keys(&f);
        if frames > 64 {
            break;
        }
    }
    let _ = gauntlet::mcp::jsonrpc::parse_frame(data);
}

/// A policy with one limit and a run of calls against it.
#[derive(Debug, Arbitrary)]
pub struct DecideInput {
    pub max: u8,
    pub window_secs: u8,
    pub scope: u8,
    pub increment_from: bool,
    pub fixed: bool,
    pub calls: Vec<DecideCall>,
}

/// One call: who, what amount, and how long after the previous one.
#[derive(Debug, Arbitrary)]
pub struct DecideCall {
    pub grant: u8,
    pub session: u8,
    pub amount: i32,
    pub after_ms: u16,
    pub variant: u8,
}

/// `decide` never panics, and never admits more than `max` per window for
/// one counter key.
pub fn decide(input: &DecideInput) {
    let max = u64::from(input.max % 16) + 1;
    let window = u64::from(input.window_secs % 5) + 1;
    let scope = ["grant", "session", "global"][usize::from(input.scope % 3)];
    let from = if input.increment_from {
        r#", "increment_from": "args.n""#
    } else {
        ""
    };
    let mode = if input.fixed { r#""window_mode": "fixed","# } else { "" };
    let text = format!(
        r#"{{"version": "1", "default": "deny", {mode}
            "tools": {{"t": {{"limits": [{{"counter": "c", "window": {window}, "max": {max}, "scope": "{scope}"{from}}}]}}}}}}"#
    );
    let Ok(policy) = parse_json(&text, "decide.json") else {
        return;
    };
    let store = MemoryStore::new(4);
    let clock = ManualClock::new(Duration::from_secs(1_000_000));
    // Admitted amounts per counter key, with their times.
    let mut admitted: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
    for c in input.calls.iter().take(256) {
        clock.advance(Duration::from_millis(u64::from(c.after_ms % 2000)));
        let names = ["t", "T", " t", "t\u{200b}", "u"];
        let grant = format!("g{}", c.grant % 3);
        let session = format!("s{}", c.session % 3);
        let args = serde_json::json!({ "n": c.amount });
        let call = Call {
            tool: names[usize::from(c.variant) % names.len()],
            args: Some(&args),
            grant: &grant,
            session: &session,
        };
        if let Decision::Allow(_) = decide_call(&policy, &call, None, &store, &clock) {
            let key = match scope {
                "grant" => grant.clone(),
                "session" => session.clone(),
                _ => String::new(),
            };
            let amount = if input.increment_from {
                assert!(c.amount >= 0, "a negative amount was admitted");
                c.amount as u64
            } else {
                1
            };
            let now = gauntlet::policy::Clock::now(&clock).as_millis() as u64;
            admitted.entry(key).or_default().push((now, amount));
        }
    }
    let span = window * 1000;
    for (key, hits) in &admitted {
        for (i, (start, _)) in hits.iter().enumerate() {
            // Any one window's span (sliding), which also bounds the
            // calendar windows of fixed mode.
            let sum: u64 = hits[i..]
                .iter()
                .take_while(|(t, _)| *t < start + span)
                .map(|(_, a)| a)
                .sum();
            let limit = if input.fixed { 2 * max } else { max };
            assert!(sum <= limit, "key `{key}`: {sum} admitted in one window, max {max}");
        }
    }
}

/// The scenario loader: any text gives a scenario or diagnostics.
pub fn scenario(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../attacks/policies");
    let loader = gauntlet::scenario::Loader::new(policies).check_layout(false);
    let _ = loader.load_str(text, Path::new("fuzz/x.toml"));
}
