//! A derived scenario before it is loaded, and its text in the catalogue's
//! TOML format. The planner loads exactly the text it would save, so a saved
//! plan replays what `gauntlet run --policy` ran.

use std::fmt::Write;

use serde_json::Value;

use crate::scenario::{Category, RuleRef, Severity, TransportFilter};

/// One derived scenario, ready to be written out.
#[derive(Debug, Clone)]
pub(crate) struct ScenarioDraft {
    pub id: String,
    pub title: String,
    pub category: Category,
    pub severity: Severity,
    pub description: String,
    pub references: Vec<&'static str>,
    pub rule: RuleRef,
    pub transport: TransportFilter,
    pub revision: Option<&'static str>,
    pub steps: Vec<StepDraft>,
}

/// What one step sends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Send {
    /// A `tools/call`; `set` is the probed value, kept apart so the file
    /// shows what the step is about. With `pins`, the file asks for
    /// generated arguments and sets only these paths (then `set`); without,
    /// it spells `args` out.
    Call {
        name: String,
        args: Value,
        pins: Option<Vec<(String, Value)>>,
        set: Option<(String, Value)>,
    },
    /// A frame sent as it is.
    Raw {
        text: String,
        headers: Vec<(String, String)>,
    },
    /// A `tools/list`.
    List,
}

/// One `[[step]]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepDraft {
    pub send: Send,
    pub repeat: u32,
    pub concurrency: u32,
    pub identity: Option<String>,
    pub identities: Vec<String>,
    pub sessions: u32,
    pub at_edge: bool,
    pub after_ms: u64,
}

impl StepDraft {
    /// One send of `send`, on the default grant and session.
    pub fn once(send: Send) -> StepDraft {
        StepDraft {
            send,
            repeat: 1,
            concurrency: 1,
            identity: None,
            identities: Vec::new(),
            sessions: 0,
            at_edge: false,
            after_ms: 0,
        }
    }

    /// `repeat` sends of `send`.
    pub fn times(send: Send, repeat: u32) -> StepDraft {
        StepDraft {
            repeat: repeat.max(1),
            ..StepDraft::once(send)
        }
    }
}

/// How the scenario names its policy.
pub(crate) enum PolicyRef<'a> {
    /// A file in the catalogue's `policies/` folder.
    File(&'a str),
    /// The policy text itself.
    Inline(&'a str),
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// `value` as a TOML value, when it has one (no nulls, integers within i64).
fn toml_value(value: &Value) -> Option<toml::Value> {
    fn has_null(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Array(a) => a.iter().any(has_null),
            Value::Object(o) => o.values().any(has_null),
            _ => false,
        }
    }
    if has_null(value) {
        return None;
    }
    toml::Value::try_from(value).ok()
}

impl ScenarioDraft {
    /// The scenario file's text.
    pub fn to_toml(&self, policy: &PolicyRef<'_>) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "id = {}", quote(&self.id));
        let _ = writeln!(out, "title = {}", quote(&self.title));
        let _ = writeln!(out, "category = {}", quote(self.category.as_str()));
        let _ = writeln!(out, "severity = {}", quote(self.severity.as_str()));
        let _ = writeln!(out, "description = {}", quote(&self.description));
        let refs: Vec<String> = self.references.iter().map(|r| quote(r)).collect();
        let _ = writeln!(out, "references = [{}]", refs.join(", "));
        match policy {
            PolicyRef::File(name) => {
                let _ = writeln!(out, "policy = {}", quote(name));
            }
            PolicyRef::Inline(text) => {
                let _ = writeln!(out, "policy_inline = {}", quote(text));
            }
        }
        if let Some(r) = self.revision {
            let _ = writeln!(out, "revision = {}", quote(r));
        }
        if self.transport != TransportFilter::Any {
            let _ = writeln!(out, "transport = {}", quote(self.transport.as_str()));
        }
        out.push_str("\n[rule]\n");
        let _ = writeln!(out, "file = {}", quote(&self.rule.file));
        if let Some(line) = self.rule.line {
            let _ = writeln!(out, "line = {line}");
        }
        let _ = writeln!(out, "pointer = {}", quote(&self.rule.pointer));
        for step in &self.steps {
            out.push_str("\n[[step]]\n");
            write_step(&mut out, step);
        }
        out
    }
}

fn write_step(out: &mut String, step: &StepDraft) {
    match &step.send {
        Send::Call {
            name,
            args,
            pins,
            set,
        } => {
            let _ = writeln!(out, "call = {}", quote(name));
            if let Some(sets) = pins.as_ref().and_then(|p| generated(p, set.as_ref())) {
                out.push_str("generate = \"valid\"\n");
                if !sets.is_empty() {
                    let _ = writeln!(out, "set = {{ {} }}", sets.join(", "));
                }
            } else {
                literal(out, args, set.as_ref());
            }
        }
        Send::Raw { text, headers } => {
            let _ = writeln!(out, "raw = {}", quote(text));
            if !headers.is_empty() {
                let h: Vec<String> = headers
                    .iter()
                    .map(|(k, v)| format!("{} = {}", quote(k), quote(v)))
                    .collect();
                let _ = writeln!(out, "headers = {{ {} }}", h.join(", "));
            }
        }
        Send::List => out.push_str("list = true\n"),
    }
    if step.repeat != 1 {
        let _ = writeln!(out, "repeat = {}", step.repeat);
    }
    if step.concurrency > 1 {
        let _ = writeln!(out, "concurrency = {}", step.concurrency);
    }
    if let Some(i) = &step.identity {
        let _ = writeln!(out, "identity = {}", quote(i));
    }
    if !step.identities.is_empty() {
        let ids: Vec<String> = step.identities.iter().map(|i| quote(i)).collect();
        let _ = writeln!(out, "identities = [{}]", ids.join(", "));
    }
    if step.sessions > 0 {
        let _ = writeln!(out, "sessions = {}", step.sessions);
    }
    if step.at_edge {
        out.push_str("at = \"window-edge\"\n");
        let _ = writeln!(out, "after_ms = {}", step.after_ms);
    }
}

/// `set` entries for generated arguments: the pins, then the probe (which
/// replaces a pin at or under its path); `None` when a value has no TOML
/// spelling.
fn generated(pins: &[(String, Value)], probe: Option<&(String, Value)>) -> Option<Vec<String>> {
    let mut all: Vec<(&String, &Value)> = pins
        .iter()
        .filter(|(p, _)| probe.is_none_or(|(q, _)| p != q && !p.starts_with(&format!("{q}."))))
        .map(|(p, v)| (p, v))
        .collect();
    if let Some((p, v)) = probe {
        all.push((p, v));
    }
    all.into_iter()
        .map(|(p, v)| toml_value(v).map(|t| format!("{} = {t}", quote(p))))
        .collect()
}

/// The arguments spelled out: a TOML table with the probe in `set`, or,
/// when TOML cannot spell a value, JSON text with the probe applied.
fn literal(out: &mut String, args: &Value, set: Option<&(String, Value)>) {
    let set_toml = set.and_then(|(p, v)| toml_value(v).map(|t| (p, t)));
    match (toml_value(args), set_toml) {
        (Some(a), Some((path, v))) => {
            let _ = writeln!(out, "args = {a}");
            let _ = writeln!(out, "set = {{ {} = {v} }}", quote(path));
        }
        (Some(a), None) if set.is_none() => {
            let _ = writeln!(out, "args = {a}");
        }
        _ => {
            // JSON text, not TOML: a value holds a null or an integer
            // TOML cannot spell.
            let mut full = args.clone();
            if let Some((path, v)) = set {
                crate::generate::set_path(&mut full, path, v.clone());
            }
            let _ = writeln!(out, "args_json = {}", quote(&full.to_string()));
        }
    }
}

/// A kebab-case slug of `s`: ASCII letters and digits, single dashes.
pub(crate) fn slug(s: &str) -> String {
    let folded = crate::names::lenient_key(s);
    let mut out = String::new();
    for c in folded.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// `slug` cut to `max` characters; a cut slug ends in a short hash of the
/// whole text, so two long names that share a prefix stay apart.
pub(crate) fn short_slug(s: &str, max: usize) -> String {
    let full = slug(s);
    let full = if full.is_empty() {
        "rule".to_owned()
    } else {
        full
    };
    if full.len() <= max {
        return full;
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(s.as_bytes());
    let hash: String = digest.iter().take(3).map(|b| format!("{b:02x}")).collect();
    let keep = max.saturating_sub(hash.len() + 1);
    let head = full[..keep].trim_end_matches('-');
    format!("{head}-{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slugs_are_kebab_case_and_bounded() {
        assert_eq!(slug("_global.calls_per_minute"), "global-calls-per-minute");
        assert_eq!(
            slug("WizCommerce Open API_PostCustomers"),
            "wizcommerce-open-api-postcustomers"
        );
        assert_eq!(slug("ＷＩＺ"), "wiz");
        let long = short_slug(&"a_very_long_tool_name".repeat(4), 30);
        assert!(long.len() <= 30, "{long}");
        assert_ne!(long, short_slug(&"a_very_long_tool_name".repeat(5), 30));
        assert_eq!(short_slug("", 30), "rule");
    }

    #[test]
    fn values_toml_cannot_spell_fall_back_to_json_text() {
        let draft = ScenarioDraft {
            id: "plan-x-boundary".into(),
            title: "t".into(),
            category: Category::ArgumentChecks,
            severity: Severity::High,
            description: "d \"quoted\"".into(),
            references: vec!["derived-plan"],
            rule: RuleRef {
                file: "p.json".into(),
                line: Some(3),
                pointer: "/tools/x".into(),
            },
            transport: TransportFilter::Any,
            revision: None,
            steps: vec![
                StepDraft::once(Send::Call {
                    name: "x".into(),
                    args: json!({"a b": 1}),
                    pins: None,
                    set: Some(("a.b".into(), json!(2))),
                }),
                StepDraft::once(Send::Call {
                    name: "x".into(),
                    args: json!({"a": 1}),
                    pins: None,
                    set: Some(("a".into(), Value::Null)),
                }),
                StepDraft::once(Send::Call {
                    name: "x".into(),
                    args: json!({"a": u64::MAX}),
                    pins: None,
                    set: None,
                }),
            ],
        };
        let text = draft.to_toml(&PolicyRef::File("p.json"));
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        let steps = parsed["step"].as_array().unwrap();
        assert_eq!(steps[0]["set"]["a.b"].as_integer(), Some(2), "{text}");
        assert_eq!(steps[1]["args_json"].as_str(), Some(r#"{"a":null}"#));
        assert_eq!(
            steps[2]["args_json"].as_str(),
            Some(r#"{"a":18446744073709551615}"#)
        );
        assert_eq!(parsed["rule"]["line"].as_integer(), Some(3));
    }
}
