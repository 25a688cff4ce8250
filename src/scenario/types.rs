//! The typed form of a scenario, after the loader has checked it.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::mcp::Revision;
use crate::policy::Policy;

/// One attack pattern, loaded from `attacks/<category>/<id>.toml`.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Kebab-case, unique across the catalogue, equal to the file stem.
    pub id: String,
    /// One line for tables.
    pub title: String,
    /// The catalogue folder the scenario lives in.
    pub category: Category,
    /// How bad a leak of this attack would be.
    pub severity: Severity,
    /// The real-world threat, in a few sentences.
    pub description: String,
    /// OWASP ids and attack-database slugs.
    pub references: Vec<String>,
    /// Where the policy the attack runs under comes from.
    pub policy: PolicySource,
    /// That policy, loaded and validated.
    pub model: Policy,
    /// The protocol revision the client negotiates.
    pub revision: Revision,
    /// The transports the attack applies to.
    pub transport: TransportFilter,
    /// Run the mock with `--strict`.
    pub strict_mock: bool,
    /// What the client sends, in order.
    pub steps: Vec<Step>,
    /// Explicit expectations on top of those derived from the policy.
    pub expect: Expect,
    /// The policy rule the scenario attacks, when it was derived from one.
    pub rule: Option<RuleRef>,
    /// The file the scenario was loaded from.
    pub path: PathBuf,
}

/// Where the rule a derived scenario attacks sits in its policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRef {
    /// The policy file's name.
    pub file: String,
    /// 1-based line of the rule, when it could be located.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// A JSON pointer (JSON dialect) or a YAML path (YAML dialect).
    pub pointer: String,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "(whole policy)"
        } else {
            &self.pointer
        };
        match self.line {
            Some(line) => write!(f, "{at} ({}:{line})", self.file),
            None => write!(f, "{at} ({})", self.file),
        }
    }
}

impl Scenario {
    /// How many messages the scenario sends in total (each repeat counts).
    pub fn total_sends(&self) -> u64 {
        self.steps.iter().map(|s| u64::from(s.repeat)).sum()
    }

    /// Whether the scenario runs on a target reached over `transport`.
    pub fn runs_on(&self, transport: Transport) -> bool {
        self.transport.admits(transport)
    }
}

/// Where a scenario's policy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// A file under the catalogue's `policies/` folder (the path is resolved).
    File(PathBuf),
    /// Policy text inside the scenario file, in either dialect.
    Inline(String),
}

/// The catalogue's categories; each is a folder under `attacks/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Limits raced, rotated around or pushed across window edges.
    RateLimit,
    /// `increment_from` fed values that shrink or break the counter.
    CounterPoisoning,
    /// Refunds of quota for calls that did their damage anyway.
    QuotaRefund,
    /// Unlisted, denied, hidden and destructive tools.
    ToolAccess,
    /// Tool-name variants that fold to a denied tool upstream.
    NameConfusion,
    /// `require` / `deny_if` conditions and schema checks at their edges.
    ArgumentChecks,
    /// JSON-RPC framing and protocol smuggling.
    Framing,
    /// Malformed calls that an enforcer might forward unjudged.
    FailOpen,
    /// 2026-07-28 routing headers that disagree with the body.
    HeaderMismatch,
    /// Grants, tokens and sessions mixed up over HTTP.
    Identity,
    /// Bounded floods of bytes, depth, elements or connections.
    ResourceExhaustion,
}

impl Category {
    /// Every category, in catalogue order.
    pub const ALL: [Category; 11] = [
        Category::RateLimit,
        Category::CounterPoisoning,
        Category::QuotaRefund,
        Category::ToolAccess,
        Category::NameConfusion,
        Category::ArgumentChecks,
        Category::Framing,
        Category::FailOpen,
        Category::HeaderMismatch,
        Category::Identity,
        Category::ResourceExhaustion,
    ];

    /// The folder name, as written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::RateLimit => "rate-limit",
            Category::CounterPoisoning => "counter-poisoning",
            Category::QuotaRefund => "quota-refund",
            Category::ToolAccess => "tool-access",
            Category::NameConfusion => "name-confusion",
            Category::ArgumentChecks => "argument-checks",
            Category::Framing => "framing",
            Category::FailOpen => "fail-open",
            Category::HeaderMismatch => "header-mismatch",
            Category::Identity => "identity",
            Category::ResourceExhaustion => "resource-exhaustion",
        }
    }

    /// Parses a folder name.
    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad it is when the attack gets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Worth knowing; no harm on its own.
    Info,
    /// Minor harm or hard to exploit.
    Low,
    /// Real harm under some conditions.
    Medium,
    /// Direct, likely harm.
    High,
    /// Unbounded or irreversible harm.
    Critical,
}

impl Severity {
    /// The name as written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transport the harness reaches a target over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// Newline-delimited JSON over a child's stdin/stdout.
    Stdio,
    /// Streamable HTTP.
    Http,
}

/// Where an attack applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportFilter {
    /// Both transports.
    #[default]
    Any,
    /// Only stdio targets (e.g. pipelining on one pipe).
    Stdio,
    /// Only HTTP targets (headers, tokens, session ids).
    Http,
}

impl TransportFilter {
    /// Whether a target reached over `t` runs the scenario.
    pub fn admits(self, t: Transport) -> bool {
        match self {
            TransportFilter::Any => true,
            TransportFilter::Stdio => t == Transport::Stdio,
            TransportFilter::Http => t == Transport::Http,
        }
    }

    /// The name as written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportFilter::Any => "any",
            TransportFilter::Stdio => "stdio",
            TransportFilter::Http => "http",
        }
    }
}

/// One step: what to send, how often, and over which sessions and grants.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What each send of the step is.
    pub kind: StepKind,
    /// How many sends the step makes (1..=10000).
    pub repeat: u32,
    /// Sends in flight at once (1..=256, at most `repeat`).
    pub concurrency: u32,
    /// On one session, write every frame before reading any reply.
    pub pipeline: bool,
    /// The grant(s) the sends go out under.
    pub who: Who,
    /// The session(s) the sends go out on.
    pub session: SessionSpec,
    /// Wait this long before the step starts.
    pub delay_ms: u64,
    /// Start the step at a point in the step tool's limit window.
    pub at: Option<At>,
    /// With `at`: how far past the edge the step continues; the sends are
    /// split evenly before and after the edge.
    pub after_ms: u64,
    /// Send on a session that has not done the initialize handshake.
    pub skip_handshake: bool,
    /// Which replica of the target each send goes to.
    pub replicas: Spread,
}

/// What one send of a step is.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// A `tools/call` the client builds.
    Call {
        /// The tool name exactly as sent; variants are the attack.
        name: String,
        /// The `arguments` member.
        args: ArgSpec,
        /// Overrides applied on top of `args`, as (dot path, value) pairs in
        /// file order. A numeric segment indexes an array.
        set: Vec<(String, Value)>,
    },
    /// Bytes sent as they are (a newline is added on stdio).
    Raw {
        /// The frame.
        bytes: Vec<u8>,
        /// HTTP only: headers to add or override.
        headers: Vec<(String, String)>,
        /// HTTP only: leave out the client's automatic headers.
        bare: bool,
    },
    /// A `tools/list`; the oracle checks hidden tools are absent.
    List,
}

impl StepKind {
    /// The tool name of a call step.
    pub fn tool(&self) -> Option<&str> {
        match self {
            StepKind::Call { name, .. } => Some(name),
            _ => None,
        }
    }

    /// A word for tables: `call`, `raw` or `list`.
    pub fn word(&self) -> &'static str {
        match self {
            StepKind::Call { .. } => "call",
            StepKind::Raw { .. } => "raw",
            StepKind::List => "list",
        }
    }
}

/// The arguments of a call step.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgSpec {
    /// Exactly this JSON (from `args` or `args_json`); not always an object.
    Literal(Value),
    /// Built from the tool's input schema.
    Generate(Generation),
}

/// How arguments are generated from a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generation {
    /// Valid against the schema.
    Valid,
    /// Valid except for one broken rule.
    Violate(Rule),
}

/// A schema rule a generated argument set can break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Leave out a required property.
    Required,
    /// Give a property a value of the wrong JSON type.
    Type,
    /// Give an enum property a value outside the enum.
    Enum,
    /// Give a formatted string (email, date-time) a malformed value.
    Format,
    /// Exceed a `maxLength`.
    MaxLength,
    /// Fall short of a `minLength`.
    MinLength,
    /// Add a property where `additionalProperties` is false.
    Additional,
    /// Go below a `minimum`.
    Minimum,
}

impl Rule {
    /// The name as written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Required => "required",
            Rule::Type => "type",
            Rule::Enum => "enum",
            Rule::Format => "format",
            Rule::MaxLength => "max_length",
            Rule::MinLength => "min_length",
            Rule::Additional => "additional",
            Rule::Minimum => "minimum",
        }
    }
}

/// The grant(s) a step's sends go out under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// One grant for every send.
    Identity(String),
    /// Sends spread round-robin over these grants.
    Rotate(Vec<String>),
}

impl Who {
    /// The grant of the `n`th send of the step (0-based).
    pub fn for_send(&self, n: u32) -> &str {
        match self {
            Who::Identity(id) => id,
            Who::Rotate(ids) => ids
                .get(n as usize % ids.len().max(1))
                .map_or("", String::as_str),
        }
    }
}

/// The session(s) a step's sends go out on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSpec {
    /// A labelled session; a label not seen before in the scenario opens a
    /// new one, a known one continues it.
    Named(String),
    /// Sends spread round-robin over this many fresh sessions.
    Rotate(u32),
}

/// How a step's sends are spread over the target's replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Spread {
    /// Every send goes to the first replica.
    #[default]
    First,
    /// Send `n` goes to replica `n mod N`.
    RoundRobin,
}

/// Where in a limit's window a step starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum At {
    /// Just before the next window edge of the step tool's limit.
    WindowEdge,
}

/// Explicit expectations; everything else is derived from the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// At most this many `tools/call` messages may reach the mock.
    pub max_arrivals: Option<u64>,
    /// No reply to a call may be a success.
    pub no_success: bool,
}

/// The default grant of a step.
pub const DEFAULT_IDENTITY: &str = "alice";
/// The default session label of a step.
pub const DEFAULT_SESSION: &str = "main";
