//! `gauntlet bench`: decision latency under load, against its baseline.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{BENCH_POLICY, BenchConfig, BenchEvent, BenchSink, Mix, Schedule, report};
use crate::run::cli::{TargetArgs, parse_duration};
use crate::target::Transport;

/// Longest run accepted: a bench is bounded in time.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Output formats of a bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchFormat {
    Table,
    Json,
}

/// `gauntlet bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The policy the enforcer runs (default: a bundled one that allows
    /// PostCustomers and GetCustomers without limits and denies
    /// DeleteCustomer; with `--tools`, one that allows every tool but the
    /// destructive ones, or the last listed).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Open loop: calls due per second, latency counted from each due time.
    #[arg(long, value_name = "R", conflicts_with = "concurrency")]
    pub rate: Option<f64>,
    /// Closed loop: this many calls in flight, each sent when one returns.
    #[arg(long, value_name = "C")]
    pub concurrency: Option<usize>,
    /// How long to measure, after the warm-up.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Calls sent but not measured before the measurement starts.
    #[arg(long, default_value = "5s", value_parser = parse_warmup)]
    pub warmup: Duration,
    /// Shares of allowed and denied calls.
    #[arg(long, default_value = "allow:70,deny:30")]
    pub mix: Mix,
    /// HTTP connections (default 16), or stdio sessions (default 1).
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
    /// Open loop over stdio: calls in flight at most, across sessions.
    #[arg(long, value_name = "K", default_value_t = 64)]
    pub in_flight: usize,
    /// Stop after this many calls (warm-up included).
    #[arg(long, value_name = "N")]
    pub max_calls: Option<u64>,
    /// Run the same load straight at the mock too, and report what the
    /// target adds.
    #[arg(long)]
    pub baseline: bool,
    /// Simulated backend latency of the mock per call, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub mock_latency: Option<u64>,
    /// Make the mock stall one call in N (with `--stall-ms`).
    #[arg(long, value_name = "N", requires = "stall_ms")]
    pub stall_every: Option<u64>,
    /// How long a stall lasts, in milliseconds.
    #[arg(long, value_name = "MS", requires = "stall_every")]
    pub stall_ms: Option<u64>,
    /// Keep each phase's work folder (ledger, audit log) under this folder.
    #[arg(long, value_name = "DIR")]
    pub keep_workdirs: Option<PathBuf>,
    /// Write bench.json, report.txt and the interval logs here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: BenchFormat,
}

fn parse_warmup(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" || s.trim() == "0s" {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
}

impl BenchArgs {
    /// The bench these switches describe.
    pub fn config(&self) -> Result<BenchConfig, String> {
        let target = self.target.spec()?;
        let mut harness = self.target.harness()?;
        harness.keep_workdirs = self.keep_workdirs.clone();
        let (policy, policy_label) = match &self.policy {
            Some(path) => (
                crate::policy::load_file(path).map_err(|e| e.to_string())?,
                path.display().to_string(),
            ),
            None if harness.tools.is_some() => {
                let catalogue = harness.catalogue().map_err(|e| e.to_string())?;
                (
                    super::bench_policy_for(&catalogue)?,
                    "bench policy for the manifest".to_owned(),
                )
            }
            None => (
                crate::policy::parse_json(BENCH_POLICY, "bench-policy.json")
                    .map_err(|e| e.to_string())?,
                "bundled bench policy".to_owned(),
            ),
        };
        if self.duration + self.warmup > MAX_DURATION {
            return Err("a bench may last 24h at most".into());
        }
        // A URL target speaks HTTP, and so must its baseline.
        if matches!(target, crate::target::TargetSpec::Url { .. }) {
            harness.transport = Transport::Http;
        }
        let http = harness.transport == Transport::Http;
        let schedule = match (self.rate, self.concurrency) {
            (Some(rate), _) => Schedule::Open { rate },
            (None, Some(_)) => Schedule::Closed,
            (None, None) => return Err("give --rate R (open loop) or --concurrency C".into()),
        };
        let connections = self.connections.unwrap_or(if http { 16 } else { 1 });
        let lanes = match (self.concurrency, http) {
            (Some(c), _) => c,
            (None, true) => connections,
            (None, false) => self.in_flight,
        };
        let mut mock_args = Vec::new();
        if let Some(ms) = self.mock_latency {
            mock_args.extend(["--latency".to_owned(), ms.to_string()]);
        }
        if let (Some(n), Some(ms)) = (self.stall_every, self.stall_ms) {
            mock_args.extend([
                "--stall-every".to_owned(),
                n.to_string(),
                "--stall-ms".to_owned(),
                ms.to_string(),
            ]);
        }
        Ok(BenchConfig {
            harness,
            target,
            policy,
            policy_label,
            schedule,
            warmup: self.warmup,
            duration: self.duration,
            mix: self.mix,
            connections,
            lanes,
            baseline: self.baseline,
            max_calls: self.max_calls,
            mock_args,
        })
    }
}

/// The live view: the current rate and the rolling p99, on a terminal.
struct Live {
    bar: ProgressBar,
}

impl Live {
    fn new(enabled: bool) -> Live {
        let bar = ProgressBar::with_draw_target(
            None,
            if enabled {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
            bar.set_style(style);
        }
        Live { bar }
    }
}

impl BenchSink for Live {
    fn event(&mut self, event: &BenchEvent) {
        match event {
            BenchEvent::PhaseStarted { name, target } => {
                self.bar.set_message(format!("{name} ({target}): starting"));
            }
            BenchEvent::Tick { name, tick } => {
                self.bar.set_message(format!(
                    "{name}: {:.0} calls/s · p99 {:.0}µs (last second) · {:.0}s",
                    tick.rate, tick.p99_us, tick.at_s
                ));
                self.bar.tick();
            }
            BenchEvent::PhaseFinished(_) => {}
            BenchEvent::Finished(_) => self.bar.finish_and_clear(),
        }
    }
}

/// Runs `gauntlet bench`: 0 clean, 1 a denied call was answered with
/// success, 2 the bench could not measure cleanly.
pub async fn main(args: BenchArgs) -> ExitCode {
    match run(args).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: BenchArgs) -> Result<u8, String> {
    let mut cfg = args.config()?;
    // An already-running enforcer forwards to a mock the bench serves.
    let _mock_guard = match &cfg.target {
        crate::target::TargetSpec::Url { mock_http, .. } => {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let ledger = dir.path().join("ledger.jsonl");
            let mut words = vec![
                cfg.harness.exe.display().to_string(),
                "mock".into(),
                "--http".into(),
                mock_http.clone(),
                "--ledger".into(),
                ledger.display().to_string(),
            ];
            words.extend(cfg.harness.mock_tools_args());
            words.extend(cfg.mock_args.iter().cloned());
            let server = crate::target::start_server(&words, cfg.harness.timeout)
                .await
                .map_err(|e| e.to_string())?;
            cfg.harness.shared_ledger = Some(ledger);
            Some((server, dir))
        }
        _ => None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: stopping the load; the partial report follows");
            let _ = stop_tx.send(true);
        }
    });
    let mut live = Live::new(std::io::stderr().is_terminal());
    let outcome = super::run_bench(&cfg, &mut live, stop_rx)
        .await
        .map_err(|e| e.to_string())?;
    let table = report::table(&outcome.report);
    let json = serde_json::to_string_pretty(&outcome.report).map_err(|e| e.to_string())?;
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating `{}`: {e}", dir.display()))?;
        let mut files = vec![
            ("bench.json".to_owned(), json.clone().into_bytes()),
            ("report.txt".to_owned(), table.clone().into_bytes()),
        ];
        for (name, log) in &outcome.logs {
            files.push((format!("{name}.hlog"), log.clone()));
        }
        for (name, bytes) in files {
            let path = dir.join(name);
            std::fs::write(&path, bytes)
                .map_err(|e| format!("writing `{}`: {e}", path.display()))?;
        }
    }
    crate::report::print_stdout(match args.format {
        BenchFormat::Table => &table,
        BenchFormat::Json => &json,
    });
    if args.format == BenchFormat::Json {
        crate::report::print_stdout("\n");
    }
    Ok(outcome.report.exit_code())
}
