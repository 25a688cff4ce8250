//! The `load` stage: decision latency under load (`gauntlet bench`).
//!
//! - [`schedule`] says when each call is due: an open loop at a fixed rate
//!   (latency counted from the due time, correcting for coordinated
//!   omission) or a closed loop. It is the only thing the modes differ in.
//! - [`mix`] prepares the calls: tools the policy admits, with valid
//!   generated arguments, and tools it denies, in the asked shares.
//! - [`run`] runs a bench's phases (target, and the baseline and null
//!   relay it is held against) one after another, or taking turns in
//!   slices (`--rounds`) so that drift on the machine hits them alike.
//! - [`phase`] holds a phase's target and the one load loop: lanes take
//!   the next call index, wait for its due time, send it over a pipelined
//!   stdio session or a keep-alive HTTP connection, and hand samples on.
//! - [`recorder`] folds samples into HdrHistograms (1 µs..60 s, 3
//!   significant digits), allowed and denied apart, and the interval lines
//!   of the phase's log;
//! - [`log`] writes and reads that interval log, the mergeable artifact,
//!   with the phase's counts in a header line;
//! - [`timeline`] writes a log's interval lines, and merges shards' logs
//!   second by second into one (`gauntlet merge --out`).
//! - [`merge`] turns counts and histograms into a phase's figures, for one
//!   machine and for shards' logs alike (`gauntlet merge`).
//! - [`relay`] is the null enforcer (`gauntlet relay`) that `--null-relay`
//!   benches: the floor of what any enforcer adds on this machine.
//!
//! The figures go out as [`crate::run::Event::Bench`], which the reporters
//! read like any run.

pub mod cli;
pub mod log;
pub mod merge;
pub mod mix;
mod phase;
pub mod recorder;
pub mod relay;
mod run;
pub mod schedule;
pub mod timeline;

use std::time::{Duration, SystemTime};

pub use mix::{Class, Mix, Plan};
pub use run::{BenchOutcome, log_name, run_bench};
pub use schedule::Schedule;

use crate::policy::Policy;
use crate::target::{HarnessConfig, TargetSpec};

/// The policy a bench runs under when none is given: PostCustomers and
/// GetCustomers allowed without limits, DeleteCustomer denied, so allowed
/// calls are never throttled by the policy itself.
pub const BENCH_POLICY: &str = include_str!("bench-policy.json");

/// The policy a bench runs under when it serves a manifest (`--tools`) and
/// none is given: the same idea as [`BENCH_POLICY`] for any tool set. Every
/// tool is allowed without limits except the destructive ones (annotated
/// `destructiveHint: true`), which are denied; when none is annotated, the
/// last listed tool is denied, so both classes of the mix have calls.
pub fn bench_policy_for(
    catalogue: &crate::mock::catalogue::Catalogue,
) -> Result<crate::policy::Policy, String> {
    let tools = catalogue.tools();
    let destructive = |t: &crate::mock::catalogue::Tool| {
        t.entry()
            .annotations
            .as_ref()
            .and_then(|a| a.destructive_hint)
            == Some(true)
    };
    let any_destructive = tools.iter().any(destructive);
    let mut rules = serde_json::Map::new();
    for (i, tool) in tools.iter().enumerate() {
        let denied = if any_destructive {
            destructive(tool)
        } else {
            tools.len() > 1 && i + 1 == tools.len()
        };
        let rule = if denied {
            serde_json::json!({"action": "deny", "reason": "denied during a bench"})
        } else {
            serde_json::json!({})
        };
        rules.insert(tool.name().to_owned(), rule);
    }
    let text = serde_json::json!({"version": "1", "default": "deny", "tools": rules}).to_string();
    crate::policy::parse_json(&text, "bench-policy.json").map_err(|e| e.to_string())
}

/// What a bench could not do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("call mix: {0}")]
    Mix(String),
    #[error("policy: {0}")]
    Policy(String),
    #[error(transparent)]
    Target(#[from] crate::target::TargetError),
    #[error("the mock's catalogue: {0}")]
    Catalogue(#[from] crate::mock::catalogue::CatalogueError),
    #[error("{0}")]
    Config(String),
}

/// Everything one bench needs.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub harness: HarnessConfig,
    pub target: TargetSpec,
    pub policy: Policy,
    /// Where the policy came from, for the report.
    pub policy_label: String,
    pub schedule: Schedule,
    pub warmup: Duration,
    pub duration: Duration,
    pub mix: Mix,
    /// HTTP connections, or stdio sessions.
    pub connections: usize,
    /// Calls in flight at once (over HTTP, one per connection).
    pub lanes: usize,
    /// Also run the same load straight at the mock.
    pub baseline: bool,
    /// Also run the same load through `gauntlet relay`, the null enforcer.
    pub null_relay: bool,
    /// Slices each phase runs in, taking turns with the others; 1 runs
    /// the phases one after another.
    pub rounds: u32,
    /// The generator's worker threads (`--threads`), for the report; the
    /// caller builds the runtime.
    pub threads: Option<u16>,
    /// Stop after this many calls (warm-up included).
    pub max_calls: Option<u64>,
    /// Extra switches for the mock (`--latency`, `--stall-every`, ...).
    pub mock_args: Vec<String>,
    /// This bench's share of a sharded load: of the schedule's calls it
    /// sends those whose index is its own modulo the count. `lanes` and
    /// `connections` are already its share.
    pub shard: Option<crate::run::Shard>,
    /// When the target phase's schedule starts (wall clock), so shards on
    /// several machines begin together; `None` starts at once.
    pub start_at: Option<SystemTime>,
}
