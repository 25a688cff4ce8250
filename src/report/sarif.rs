//! SARIF 2.1.0 for code scanning. One rule per scenario, whether or not it
//! failed, so an alert closes when its scenario starts passing; one result per
//! finding, located at the policy rule that should have stopped it.
//!
//! The structs cover only what gauntlet writes; the committed OASIS schema
//! (`tests/fixtures/schemas/sarif-schema-2.1.0.json`) checks them in tests.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::RunReport;
use crate::oracle::Finding;
use crate::run::{ScenarioReport, Status};
use crate::scenario::Severity;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The key of gauntlet's own fingerprint; bump the suffix if its inputs change.
const FINGERPRINT_KEY: &str = "gauntlet/v1";

#[derive(Serialize)]
struct Log {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Run>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    tool: Tool,
    automation_details: AutomationDetails,
    invocations: Vec<Invocation>,
    results: Vec<SarifResult>,
    properties: BTreeMap<&'static str, serde_json::Value>,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    version: String,
    semantic_version: String,
    rules: Vec<Rule>,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
struct Help {
    text: String,
    markdown: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    id: String,
    name: String,
    short_description: Text,
    full_description: Text,
    help: Help,
    default_configuration: Configuration,
    properties: RuleProperties,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct RuleProperties {
    tags: Vec<String>,
    precision: &'static str,
    #[serde(rename = "security-severity", skip_serializing_if = "Option::is_none")]
    security_severity: Option<&'static str>,
}

#[derive(Serialize)]
struct AutomationDetails {
    id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Invocation {
    execution_successful: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_time_utc: Option<String>,
    tool_execution_notifications: Vec<Notification>,
}

#[derive(Serialize)]
struct Notification {
    level: &'static str,
    message: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    descriptor: Option<DescriptorRef>,
}

#[derive(Serialize)]
struct DescriptorRef {
    id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    rule_id: String,
    rule_index: usize,
    level: &'static str,
    message: Text,
    locations: Vec<Location>,
    partial_fingerprints: BTreeMap<&'static str, String>,
    properties: BTreeMap<&'static str, serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: PhysicalLocation,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Region>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation {
    uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_base_id: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: u32,
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub ranks security alerts by this number (critical ≥ 9, high ≥ 7, ...).
fn security_severity(severity: Severity) -> Option<&'static str> {
    match severity {
        Severity::Critical => Some("9.5"),
        Severity::High => Some("8.0"),
        Severity::Medium => Some("5.5"),
        Severity::Low => Some("3.0"),
        Severity::Info => None,
    }
}

/// A stable identity for a finding: the scenario, the broken invariant, the
/// policy rule and the MCP tool involved, folded so that name variants of one
/// tool agree. Timestamps, seeds and process ids stay out of it.
pub fn fingerprint(scenario: &str, check: &str, rule: &str, tool: &str) -> String {
    let mut h = Sha256::new();
    for part in [scenario, check, rule, tool] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The MCP tool a finding is about: what the mock resolved, else the name sent.
fn finding_tool(f: &Finding) -> String {
    let from_ledger = f
        .ledger
        .iter()
        .find_map(|r| r.tool.clone().or_else(|| r.raw_name.clone()));
    let from_frame = || {
        let frame: serde_json::Value = serde_json::from_str(f.frame.as_deref()?).ok()?;
        frame
            .pointer("/params/name")
            .and_then(|n| n.as_str())
            .map(str::to_owned)
    };
    from_ledger
        .or_else(from_frame)
        .map(|n| crate::names::lenient_key(&n))
        .unwrap_or_default()
}

/// A relative path as a URI reference under `%SRCROOT%`, an absolute one as
/// a `file://` URI.
fn artifact(path: &str) -> ArtifactLocation {
    let path = path.strip_prefix("./").unwrap_or(path);
    let encoded = percent_encode(path);
    if path.starts_with('/') {
        ArtifactLocation {
            uri: format!("file://{encoded}"),
            uri_base_id: None,
        }
    } else {
        ArtifactLocation {
            uri: encoded,
            uri_base_id: Some("%SRCROOT%"),
        }
    }
}

fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn slug(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches('-').chars().take(40).collect()
}

fn rule(s: &ScenarioReport) -> Rule {
    let mut markdown = format!("{}\n\n", s.description);
    let mut text = s.description.clone();
    if !s.references.is_empty() {
        markdown.push_str("References:\n\n");
        text.push_str("\n\nReferences: ");
        text.push_str(&s.references.join(", "));
        for r in &s.references {
            markdown.push_str(&format!("- {r}\n"));
        }
    }
    markdown.push_str(&format!("\nReplay: `{}`\n", s.replay));
    Rule {
        id: s.id.clone(),
        name: s.id.clone(),
        short_description: Text {
            text: s.title.clone(),
        },
        full_description: Text {
            text: s.description.clone(),
        },
        help: Help { text, markdown },
        default_configuration: Configuration {
            level: level(s.severity),
        },
        properties: RuleProperties {
            tags: vec![
                "security".into(),
                "mcp".into(),
                s.category.to_string(),
                s.severity.to_string(),
            ],
            precision: "very-high",
            security_severity: security_severity(s.severity),
        },
    }
}

fn result(
    s: &ScenarioReport,
    index: usize,
    f: &Finding,
    seen: &mut HashMap<String, usize>,
) -> SarifResult {
    let check = f.check.as_str();
    let rule_ptr = f.rule.clone().unwrap_or_default();
    let mut print = fingerprint(&s.id, check, &rule_ptr, &finding_tool(f));
    // Two findings with the same identity in one run (two windows over one
    // limit) are still two alerts; their order within a scenario is stable.
    let n = seen.entry(print.clone()).or_insert(0);
    *n += 1;
    if *n > 1 {
        print = format!("{print}:{n}");
    }
    let file = if s.policy_file.is_empty() {
        &s.file
    } else {
        &s.policy_file
    };
    let mut message = format!(
        "{}: {}",
        f.verdict.as_str(),
        super::md::text_head(&f.message)
    );
    if let Some(r) = &f.rule {
        message.push_str(&format!(" [rule {r}]"));
    }
    let mut properties = BTreeMap::new();
    properties.insert("verdict", f.verdict.as_str().into());
    properties.insert("check", check.into());
    properties.insert("replay", s.replay.clone().into());
    for (key, value) in [
        ("rule", &f.rule),
        ("grant", &f.identity),
        ("session", &f.session),
    ] {
        if let Some(v) = value {
            properties.insert(key, v.clone().into());
        }
    }
    if let Some(frame) = &f.frame {
        properties.insert("frame", super::md::frame_head(frame).into());
    }
    if let Some(step) = f.step {
        properties.insert("step", step.into());
    }
    SarifResult {
        rule_id: s.id.clone(),
        rule_index: index,
        level: level(s.severity),
        message: Text { text: message },
        locations: vec![Location {
            physical_location: PhysicalLocation {
                artifact_location: artifact(file),
                region: f.line.map(|start_line| Region { start_line }),
            },
        }],
        partial_fingerprints: BTreeMap::from([(FINGERPRINT_KEY, print)]),
        properties,
    }
}

fn notifications(report: &RunReport) -> Vec<Notification> {
    let mut out = Vec::new();
    for s in &report.scenarios {
        let text = match s.status {
            Status::Broken => {
                "the control run against the bare mock did not land: the scenario proves nothing"
                    .to_owned()
            }
            Status::Error => format!("the scenario could not run: {}", s.errors.join("; ")),
            _ => continue,
        };
        out.push(Notification {
            level: "error",
            message: Text { text },
            descriptor: Some(DescriptorRef { id: s.id.clone() }),
        });
    }
    if let Some(m) = &report.summary.message {
        out.push(Notification {
            level: "error",
            message: Text { text: m.clone() },
            descriptor: None,
        });
    }
    out
}

fn run(report: &RunReport) -> Run {
    let version = report.info.as_ref().map_or_else(
        || env!("CARGO_PKG_VERSION").to_owned(),
        |i| i.version.clone(),
    );
    let rules: Vec<Rule> = report.scenarios.iter().map(rule).collect();
    let mut seen = HashMap::new();
    let results = report
        .scenarios
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.target
                .iter()
                .flat_map(|t| &t.findings)
                .map(move |f| (i, s, f))
        })
        .map(|(i, s, f)| result(s, i, f, &mut seen))
        .collect();
    let sum = &report.summary;
    let mut properties = BTreeMap::new();
    properties.insert("target", report.target_label().into());
    if let Some(info) = &report.info {
        properties.insert("seed", info.seed.into());
        properties.insert("transport", info.transport.to_string().into());
    }
    Run {
        tool: Tool {
            driver: Driver {
                name: "gauntlet",
                semantic_version: version.clone(),
                version,
                rules,
            },
        },
        automation_details: AutomationDetails {
            id: format!("gauntlet/{}/", slug(&report.target_label())),
        },
        invocations: vec![Invocation {
            execution_successful: sum.errors == 0
                && sum.broken == 0
                && !sum.interrupted
                && sum.message.is_none(),
            start_time_utc: report.info.as_ref().and_then(|i| i.started_at.clone()),
            tool_execution_notifications: notifications(report),
        }],
        results,
        properties,
    }
}

/// Renders the reports as one SARIF log, one run each.
pub fn render(reports: &[RunReport]) -> Result<String, String> {
    let log = Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: reports.iter().map(run).collect(),
    };
    serde_json::to_string_pretty(&log)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_depend_on_every_part_and_nothing_else() {
        let base = fingerprint("fx-bulk", "over-limit", "/tools/a/limits/0", "a");
        assert_eq!(
            base,
            fingerprint("fx-bulk", "over-limit", "/tools/a/limits/0", "a")
        );
        assert_eq!(base.len(), 32);
        for other in [
            fingerprint("fx-bulk2", "over-limit", "/tools/a/limits/0", "a"),
            fingerprint("fx-bulk", "forbidden-arrival", "/tools/a/limits/0", "a"),
            fingerprint("fx-bulk", "over-limit", "/tools/a/limits/1", "a"),
            fingerprint("fx-bulk", "over-limit", "/tools/a/limits/0", "b"),
            // The separator keeps shifted boundaries apart.
            fingerprint("fx-bul", "kover-limit", "/tools/a/limits/0", "a"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn paths_become_uri_references() {
        let rel = artifact("./attacks/policies/seed policy.json");
        assert_eq!(rel.uri, "attacks/policies/seed%20policy.json");
        assert_eq!(rel.uri_base_id, Some("%SRCROOT%"));
        let abs = artifact("/srv/p#1.yaml");
        assert_eq!(abs.uri, "file:///srv/p%231.yaml");
        assert_eq!(abs.uri_base_id, None);
    }

    #[test]
    fn severities_map_to_levels() {
        assert_eq!(level(Severity::Critical), "error");
        assert_eq!(level(Severity::High), "error");
        assert_eq!(level(Severity::Medium), "warning");
        assert_eq!(level(Severity::Low), "note");
        assert_eq!(level(Severity::Info), "note");
        assert_eq!(
            slug("cmd: python3 x.py --flaw a"),
            "cmd-python3-x-py-flaw-a"
        );
    }
}
