//! `gauntlet bench`: decision latency under load, against its baseline.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use super::log::IntervalLog;
use super::{BENCH_POLICY, BenchConfig, Mix, Schedule};
use crate::report::{self, Collector, Format, Output, Progress};
use crate::run::cli::{TargetArgs, parse_duration};
use crate::run::{BenchReport, Event, EventSink, Shard};
use crate::target::Transport;

/// Longest run accepted: a bench is bounded in time.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Slices per phase when a bench compares phases and `--rounds` is not
/// given.
const DEFAULT_ROUNDS: u32 = 6;

/// Furthest ahead `--start-at` may lie: a shard waits with its sessions open.
const MAX_START_WAIT: Duration = Duration::from_secs(600);

/// Output formats of a bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchFormat {
    Table,
    Json,
    Md,
    Html,
}

impl From<BenchFormat> for Format {
    fn from(f: BenchFormat) -> Format {
        match f {
            BenchFormat::Table => Format::Table,
            BenchFormat::Json => Format::Json,
            BenchFormat::Md => Format::Md,
            BenchFormat::Html => Format::Html,
        }
    }
}

/// Where a bench's report goes (`gauntlet bench`, `gauntlet merge`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutputArgs {
    /// Write report.json and the formats asked for here (and, for a bench,
    /// its interval logs).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// What to print on stdout (repeatable; with `--out`, what to write).
    #[arg(long, value_enum)]
    pub format: Vec<BenchFormat>,
}

impl OutputArgs {
    /// Renders `bench` through the reporters, writes `logs` under `--out`,
    /// and returns the bench's exit code.
    pub fn emit(
        &self,
        bench: &BenchReport,
        logs: &mut [(String, IntervalLog)],
    ) -> Result<u8, String> {
        let mut collector = Collector::default();
        collector.event(&Event::Bench(Box::new(bench.clone())));
        let mut formats: Vec<Format> = self.format.iter().map(|f| Format::from(*f)).collect();
        if formats.is_empty() {
            formats.push(Format::Table);
        }
        if let Some(dir) = &self.out {
            // The JSON report is what `gauntlet report` re-renders later.
            if !formats.contains(&Format::Json) {
                formats.push(Format::Json);
            }
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("creating `{}`: {e}", dir.display()))?;
            for (name, log) in logs.iter_mut() {
                let path = dir.join(&*name);
                std::fs::File::create(&path)
                    .map(std::io::BufWriter::new)
                    .and_then(|mut f| log.write_to(&mut f))
                    .map_err(|e| format!("writing `{}`: {e}", path.display()))?;
            }
        }
        let output = Output {
            formats,
            out: self.out.clone(),
            color: report::color_wanted(),
        };
        report::write(&collector.report(), &output)?;
        Ok(bench.exit_code())
    }
}

fn parse_start_at(s: &str) -> Result<SystemTime, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("`{s}` is not a time in seconds since the epoch (`date +%s`)"))?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs))
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
    /// Run the same load through `gauntlet relay` too, a null enforcer that
    /// moves bytes and reads none, and report what the target adds over it:
    /// its own work, beyond what one more process on the path costs.
    #[arg(long)]
    pub null_relay: bool,
    /// Interleave the phases: each runs in N slices of DURATION/N, taking
    /// turns with the others (rotated each round), so drift on the machine
    /// over the run hits the target, the baseline and the relay alike.
    /// Before each later slice a phase sends 0.5 s (at most --warmup) of
    /// unmeasured calls. 1 runs the phases one after another. Default:
    /// with --baseline or --null-relay, 6 (fewer if slices would be under
    /// a second); otherwise 1.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: Option<u32>,
    /// Threads the load generator runs on (default: one per core). 1 runs
    /// every lane and the recorder on one thread: no hand-offs between
    /// threads, about a third less CPU per call, so on a small machine the
    /// generator takes less from the target it measures.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Worker threads of the HTTP mock (`mock --threads`; default one per
    /// core), to weigh it against the generator and the target on a small
    /// machine.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub mock_threads: Option<u16>,
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
    /// Run shard I (from 0, like `JOB_COMPLETION_INDEX`) of N: this bench
    /// sends every Nth call of the schedule, so it offers R/N per second,
    /// and takes its share of `--concurrency`, `--connections` and
    /// `--in-flight`. `gauntlet merge` combines the shards' logs.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Start the target phase's schedule at this wall-clock time, in
    /// seconds since the epoch (at most 10 minutes ahead), so shards on
    /// several machines begin together.
    #[arg(long, value_name = "UNIX_SECONDS", value_parser = parse_start_at)]
    pub start_at: Option<SystemTime>,
    #[command(flatten)]
    pub output: OutputArgs,
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
        // A shard takes its share of what runs at once; connections and
        // calls in flight keep at least one, concurrency must split whole.
        let split = |total: usize| {
            self.shard
                .map_or(total, |s| s.share(total as u64) as usize)
                .max(1)
        };
        if let (Some(s), Some(c)) = (self.shard, self.concurrency)
            && (c as u64) < u64::from(s.count)
        {
            return Err(format!(
                "--concurrency {c} cannot be split {} ways: give at least {}",
                s.count, s.count
            ));
        }
        let connections = split(self.connections.unwrap_or(if http { 16 } else { 1 }));
        let lanes = match (self.concurrency, http) {
            (Some(c), _) => split(c),
            (None, true) => connections,
            (None, false) => split(self.in_flight),
        };
        if let Some(at) = self.start_at
            && at
                .duration_since(SystemTime::now())
                .is_ok_and(|wait| wait > MAX_START_WAIT)
        {
            return Err("--start-at lies more than 10 minutes ahead".into());
        }
        let rounds = self.rounds()?;
        let mut mock_args = Vec::new();
        if let Some(n) = self.mock_threads {
            if !http {
                return Err("--mock-threads sets the HTTP mock's threads; \
                            over stdio the mock runs on one thread"
                    .into());
            }
            mock_args.extend(["--threads".to_owned(), n.to_string()]);
        }
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
            null_relay: self.null_relay,
            rounds,
            threads: self.threads,
            max_calls: self.max_calls,
            mock_args,
            shard: self.shard,
            start_at: self.start_at,
        })
    }
}

impl BenchArgs {
    /// How many slices each phase runs in: as asked, or by default
    /// [`DEFAULT_ROUNDS`] when there is a phase to compare against (halving
    /// the spread of the added latency between runs, as measured with
    /// `benches/drift.sh`), as many as keep each slice a second long.
    fn rounds(&self) -> Result<u32, String> {
        let compared = self.baseline || self.null_relay;
        let whole_seconds = u32::try_from(self.duration.as_secs()).unwrap_or(u32::MAX);
        let rounds = match self.rounds {
            Some(n) => n,
            None if compared && self.shard.is_none() && self.max_calls.is_none() => {
                whole_seconds.clamp(1, DEFAULT_ROUNDS)
            }
            None => 1,
        };
        if rounds > 1 {
            if self.shard.is_some() || self.max_calls.is_some() {
                return Err("--rounds does not combine with --shard or --max-calls".into());
            }
            if self.duration / rounds < Duration::from_secs(1) {
                return Err(format!(
                    "--rounds {rounds} slices --duration {:?} into pieces under a second; \
                     give a longer duration or fewer rounds",
                    self.duration
                ));
            }
        }
        Ok(rounds)
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
    let mut live = Progress::new(std::io::stderr().is_terminal());
    let outcome = super::run_bench(&cfg, &mut live, stop_rx)
        .await
        .map_err(|e| e.to_string())?;
    let mut outcome = outcome;
    args.output.emit(&outcome.report, &mut outcome.logs)
}

/// `gauntlet merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// Interval logs that `gauntlet bench --shard i/n --out DIR` wrote
    /// (`target.shard-I-of-N.hlog`, and the `baseline` and `relay` ones if
    /// any). With `--out DIR` the merge writes one log per phase
    /// (`target.hlog`, ...): the shards' intervals added up second by second.
    #[arg(required = true, value_name = "LOG")]
    pub logs: Vec<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `gauntlet merge`: the exit code follows the merged report as
/// `gauntlet bench`'s does; 2 for a log that cannot be merged.
pub fn merge_main(args: &MergeArgs) -> ExitCode {
    match merge(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn merge(args: &MergeArgs) -> Result<u8, String> {
    let mut read = Vec::with_capacity(args.logs.len());
    for path in &args.logs {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| format!("reading `{file}`: {e}"))?;
        read.push(super::timeline::parse_timeline(&bytes, &file).map_err(|e| e.to_string())?);
    }
    let logs: Vec<super::log::PhaseLog> = read.iter().map(|(l, _)| l.clone()).collect();
    let report = super::merge::merge(&logs).map_err(|e| e.to_string())?;
    // With --out, one log per phase for the whole load, second by second.
    let mut merged = if args.output.out.is_some() {
        super::timeline::merge_logs(&read).map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    args.output.emit(&report, &mut merged)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Line {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn config(args: &[&str]) -> Result<BenchConfig, String> {
        let line = Line::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        line.bench.config()
    }

    #[test]
    fn a_shard_takes_its_share_of_what_runs_at_once() {
        let lanes = |shard: &str| {
            config(&["--concurrency", "5", "--shard", shard])
                .unwrap()
                .lanes
        };
        assert_eq!((lanes("0/2"), lanes("1/2")), (3, 2));
        let http = |shard: &str| {
            let c = config(&["--transport", "http", "--rate", "10", "--shard", shard]).unwrap();
            (c.connections, c.lanes)
        };
        // The default 16 connections, dealt out three ways.
        assert_eq!(
            [http("0/3"), http("1/3"), http("2/3")],
            [(6, 6), (5, 5), (5, 5)]
        );
        // Over stdio each shard keeps a session, and its share of in-flight.
        let stdio = config(&["--rate", "10", "--in-flight", "3", "--shard", "3/4"]).unwrap();
        assert_eq!((stdio.connections, stdio.lanes), (1, 1));
        // The schedule stays the whole load's: the shard picks its calls.
        assert_eq!(stdio.schedule, Schedule::Open { rate: 10.0 });
        assert_eq!(stdio.shard, Some(Shard { index: 3, count: 4 }));
        let whole = config(&["--rate", "10"]).unwrap();
        assert_eq!((whole.connections, whole.lanes, whole.shard), (1, 64, None));
    }

    #[test]
    fn shards_that_cannot_be_split_or_started_are_refused() {
        let e = config(&["--concurrency", "1", "--shard", "0/2"]).unwrap_err();
        assert!(e.contains("cannot be split 2 ways"), "{e}");
        let e = config(&["--rate", "1", "--shard", "2/2"]).unwrap_err();
        assert!(e.contains("must be below 2"), "{e}");
        let far = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        let e = config(&["--rate", "1", "--start-at", &far.to_string()]).unwrap_err();
        assert!(e.contains("10 minutes"), "{e}");
        assert!(config(&["--rate", "1", "--start-at", "soon"]).is_err());
    }

    #[test]
    fn phases_held_against_each_other_take_turns_by_default() {
        let rounds = |args: &[&str]| config(args).map(|c| c.rounds);
        assert_eq!(rounds(&["--rate", "10"]), Ok(1));
        assert_eq!(rounds(&["--rate", "10", "--baseline"]), Ok(6));
        // Slices stay a second long at least.
        let short = ["--rate", "10", "--null-relay", "--duration", "3s"];
        assert_eq!(rounds(&short), Ok(3));
        assert_eq!(
            rounds(&["--rate", "10", "--baseline", "--rounds", "1"]),
            Ok(1)
        );
        // A sharded or counted bench runs its phases one after another.
        let counted = ["--rate", "10", "--baseline", "--max-calls", "100"];
        assert_eq!(rounds(&counted), Ok(1));
        let e = config(&["--rate", "10", "--rounds", "2", "--shard", "0/2"]).unwrap_err();
        assert!(e.contains("does not combine"), "{e}");
        let e = config(&["--rate", "10", "--rounds", "4", "--duration", "2s"]).unwrap_err();
        assert!(e.contains("under a second"), "{e}");
        assert!(config(&["--rate", "10", "--rounds", "0"]).is_err());
    }

    #[test]
    fn mock_threads_reach_the_http_mock_only() {
        let c = config(&["--transport", "http", "--rate", "10", "--mock-threads", "1"]).unwrap();
        assert_eq!(c.mock_args, ["--threads", "1"]);
        let e = config(&["--rate", "10", "--mock-threads", "1"]).unwrap_err();
        assert!(e.contains("HTTP mock"), "{e}");
    }
}
