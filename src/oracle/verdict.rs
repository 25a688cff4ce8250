//! Verdicts and findings: what the oracle concludes, in report-ready form.

use serde::Serialize;

use crate::mock::ledger::LedgerRecord;
use crate::policy::Policy;
use crate::run::exec::{CallObs, CallResult, Sent};

/// The outcome for one call.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Arrived, and the policy allows it.
    Allowed,
    /// Did not arrive; the client was told no.
    Blocked,
    /// Arrived though the policy forbids it.
    Leaked,
    /// Denied though the policy allows it and every limit had room.
    OverBlocked,
    /// Did not arrive, yet the client was told it succeeded.
    Spoofed,
    /// No reply in time.
    Hung,
    /// The enforcer died or closed the connection.
    Crashed,
}

impl Verdict {
    /// Whether this verdict fails the scenario.
    pub fn is_failure(self) -> bool {
        !matches!(self, Verdict::Allowed | Verdict::Blocked)
    }

    /// The word used in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Blocked => "blocked",
            Verdict::Leaked => "leaked",
            Verdict::OverBlocked => "over-blocked",
            Verdict::Spoofed => "spoofed",
            Verdict::Hung => "hung",
            Verdict::Crashed => "crashed",
        }
    }
}

/// Which invariant a finding breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    ForbiddenArrival,
    OverLimit,
    OverBlocked,
    Spoofed,
    Hung,
    Crashed,
    HiddenListed,
    TokenPassthrough,
    SuccessOnProbe,
    MaxArrivals,
}

impl Check {
    /// The name used in reports and known-gaps files.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::ForbiddenArrival => "forbidden-arrival",
            Check::OverLimit => "over-limit",
            Check::OverBlocked => "over-blocked",
            Check::Spoofed => "spoofed",
            Check::Hung => "hung",
            Check::Crashed => "crashed",
            Check::HiddenListed => "hidden-listed",
            Check::TokenPassthrough => "token-passthrough",
            Check::SuccessOnProbe => "success-on-probe",
            Check::MaxArrivals => "max-arrivals",
        }
    }
}

/// A ledger record, cut down for a report.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RecordBrief {
    pub seq: u64,
    pub instance: String,
    pub method: Option<String>,
    pub raw_name: Option<String>,
    pub tool: Option<String>,
    pub executed: bool,
    pub identity: Option<String>,
    /// The head of the frame as it arrived.
    pub raw: String,
}

const RAW_SHOWN: usize = 600;

fn cap(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl RecordBrief {
    fn of(rec: &LedgerRecord) -> RecordBrief {
        RecordBrief {
            seq: rec.seq,
            instance: rec.instance.clone(),
            method: rec.method.clone(),
            raw_name: rec.raw_name.clone(),
            tool: rec.tool.clone(),
            executed: rec.executed,
            identity: rec.identity.clone(),
            raw: cap(rec.raw.as_deref().unwrap_or(""), RAW_SHOWN),
        }
    }
}

/// A failed invariant, with what reproduces it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Finding {
    pub verdict: Verdict,
    pub check: Check,
    pub message: String,
    /// The policy rule involved (a JSON pointer or YAML path), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The line of that rule in the policy file, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The frame the client sent, when one send reproduces it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<String>,
    /// What the ledger saw.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ledger: Vec<RecordBrief>,
}

impl Finding {
    pub(crate) fn new(verdict: Verdict, check: Check, message: String) -> Finding {
        Finding {
            verdict,
            check,
            message,
            rule: None,
            line: None,
            step: None,
            identity: None,
            session: None,
            frame: None,
            ledger: Vec::new(),
        }
    }

    pub(crate) fn at_rule(mut self, rule: &str) -> Finding {
        if !rule.is_empty() {
            self.rule = Some(rule.to_owned());
        }
        self
    }

    pub(crate) fn with_records(mut self, ledger: &[LedgerRecord], idx: &[usize]) -> Finding {
        // The first few are enough to reproduce; a burst of 90 is noise.
        self.ledger = idx
            .iter()
            .take(5)
            .filter_map(|i| ledger.get(*i).map(RecordBrief::of))
            .collect();
        self
    }

    pub(crate) fn with_origin(mut self, origin: &super::Origin) -> Finding {
        self.step = origin.step;
        self.identity = Some(origin.identity.clone());
        self.session = Some(origin.session.clone());
        self
    }

    pub(crate) fn for_call(mut self, _index: usize, call: &CallObs) -> Finding {
        self.step = Some(call.step);
        self.identity = Some(call.identity.clone());
        self.session = Some(call.session.clone());
        self.frame = Some(frame_text(&call.sent));
        self
    }
}

/// The frame of a send as text, for reproductions.
pub fn frame_text(sent: &Sent) -> String {
    match sent {
        Sent::Call { name, args } => serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": name, "arguments": args}
        })
        .to_string(),
        Sent::Raw { bytes } => cap(&String::from_utf8_lossy(bytes), 2000),
        Sent::List => r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#.into(),
    }
}

/// One send's verdict, for tables.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CallVerdict {
    pub step: usize,
    pub n: u32,
    pub identity: String,
    pub session: String,
    /// The tool name, `raw` or `tools/list`.
    pub what: String,
    pub verdict: Verdict,
    /// What the client was told, shortened.
    pub reply: String,
    /// Tool calls this send alone caused at the mock (0 when unknown).
    pub arrivals: usize,
}

impl CallVerdict {
    pub(crate) fn new(
        _ci: usize,
        call: &CallObs,
        verdict: Verdict,
        reply: String,
        arrivals: usize,
    ) -> CallVerdict {
        CallVerdict {
            step: call.step,
            n: call.index,
            identity: call.identity.clone(),
            session: call.session.clone(),
            what: match &call.sent {
                Sent::Call { name, .. } => name.clone(),
                Sent::Raw { .. } => "raw".into(),
                Sent::List => "tools/list".into(),
            },
            verdict,
            reply,
            arrivals,
        }
    }
}

/// Everything the oracle concluded about one run of a scenario.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ScenarioJudgement {
    /// Something forbidden arrived, or every call went through: on a
    /// control run, proof that the attack lands when nothing is in front.
    pub landed: bool,
    /// Tool calls that reached the mock.
    pub arrivals: u64,
    pub calls: Vec<CallVerdict>,
    pub findings: Vec<Finding>,
}

/// Whether a send was answered with a success.
pub(crate) fn succeeded(result: &CallResult) -> bool {
    match result {
        CallResult::Reply(ex) => !ex.replies.is_empty() && !ex.denied(),
        _ => false,
    }
}

fn is_call_send(sent: &Sent) -> bool {
    match sent {
        Sent::Call { .. } => true,
        Sent::Raw { bytes } => serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .is_some_and(|v| {
                v.get("method").and_then(|m| m.as_str()) == Some("tools/call")
                    && v.get("id").is_some()
            }),
        Sent::List => false,
    }
}

/// The verdict of one send and the reply text kept for it.
pub(crate) fn for_call(
    call: &CallObs,
    arrived: &[usize],
    forbidden: &std::collections::HashMap<usize, String>,
    over_blocked: bool,
    _policy: &Policy,
) -> (Verdict, String) {
    let ex = match &call.result {
        CallResult::Timeout => return (Verdict::Hung, "no reply within the timeout".into()),
        CallResult::Closed(m) => return (Verdict::Crashed, cap(m, 300)),
        CallResult::Error(m) => return (Verdict::Crashed, cap(m, 300)),
        CallResult::Reply(ex) => ex,
    };
    let mut text = ex.text();
    if let Some(status) = ex.status.filter(|s| *s != 200) {
        text = format!("HTTP {status} {text}");
    }
    let text = cap(&text, 300);
    if arrived.iter().any(|i| forbidden.contains_key(i)) {
        return (Verdict::Leaked, text);
    }
    if over_blocked {
        return (Verdict::OverBlocked, text);
    }
    let success = succeeded(&call.result);
    if call.arrivals.is_none() {
        // Concurrent: the step as a whole was checked against the ledger.
        return (
            if success {
                Verdict::Allowed
            } else {
                Verdict::Blocked
            },
            text,
        );
    }
    if arrived.is_empty() {
        let verdict = match (is_call_send(&call.sent), success) {
            (true, true) => Verdict::Spoofed,
            (false, true) => Verdict::Allowed,
            (_, false) => Verdict::Blocked,
        };
        return (verdict, text);
    }
    (Verdict::Allowed, text)
}
