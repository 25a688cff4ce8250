//! `gauntlet run`: the catalogue against a target, with control runs.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::report::cli::GateArgs;
use crate::report::{self, Collector, Format, Output, Progress, Tee};
use crate::target::{HarnessConfig, TargetSpec, Transport};

/// Switches shared by every command that talks to a target.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// `builtin` (the reference enforcer), `none` (straight to the mock), or
    /// the URL of an enforcer that is already running.
    #[arg(long, default_value = "builtin")]
    pub target: String,
    /// An external enforcer, as a command template with `{upstream}`,
    /// `{upstream_url}`, `{policy}`, `{policy_yaml}`, `{workdir}`, `{port}`,
    /// `{identity}`, `{gauntlet}`, `{replica}`, `{redis_url}` and `{faketime}`.
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "target")]
    pub enforcer_cmd: Option<String>,
    /// With a URL target: where to serve the mock the enforcer forwards to.
    #[arg(long, value_name = "ADDR")]
    pub mock_http: Option<String>,
    /// The transport, where the target leaves a choice.
    #[arg(long, value_enum, default_value = "stdio")]
    pub transport: TransportArg,
    /// How long one exchange or start-up may take (e.g. `5s`, `800ms`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Allow a target that is not on loopback.
    #[arg(long)]
    pub allow_remote: bool,
    /// Start this many instances of the target per scenario (`{replica}` is
    /// 0..N-1); steps with `replicas = "round-robin"` spread their sends.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub replicas: u16,
    /// A Redis server (`redis://HOST:PORT`): each scenario gets a fresh
    /// database of it as `{redis_url}`, and the built-in enforcer keeps its
    /// counters there.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Run the enforcer's clock K times faster: the built-in one through
    /// `--time-scale`, external ones through a `{faketime}` prefix. Step
    /// delays and windows are then read in the enforcer's time.
    #[arg(long, value_name = "K", default_value_t = 1.0)]
    pub time_scale: f64,
    /// The tools manifest the mock serves instead of the bundled Aksjah
    /// tools (see `gauntlet mock --tools`); calls are generated and judged
    /// against it.
    #[arg(long, value_name = "MANIFEST")]
    pub tools: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TransportArg {
    Stdio,
    Http,
}

/// `gauntlet run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Scenarios to run: ids, categories or paths (default: all).
    #[arg(long, num_args = 1..)]
    pub attacks: Vec<String>,
    /// The catalogue folder.
    #[arg(long, default_value = "attacks")]
    pub catalogue: PathBuf,
    /// Run the attacks derived from this policy's own rules (see `gauntlet
    /// plan`) instead of the catalogue.
    #[arg(long, value_name = "POLICY", conflicts_with = "catalogue")]
    pub policy: Option<PathBuf>,
    /// Seed for generated arguments; the same seed replays the same run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output format (repeatable).
    #[arg(long, value_enum)]
    pub format: Vec<Format>,
    /// Write every format into this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Skip the control runs against the bare mock.
    #[arg(long)]
    pub no_control: bool,
    /// Keep each scenario's work folder (ledger, audit log) under this folder.
    #[arg(long)]
    pub keep_workdirs: Option<PathBuf>,
    /// Scenarios run at once (each in its own folder, with its own state).
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    #[command(flatten)]
    pub gate: GateArgs,
}

/// Parses `5s`, `250ms`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like `5s` or `250ms`"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit in `{s}`: use ms, s, m or h")),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("`{s}` must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl TargetArgs {
    /// The target, checked against the loopback rule.
    pub fn spec(&self) -> Result<TargetSpec, String> {
        if let Some(t) = &self.enforcer_cmd {
            return Ok(TargetSpec::Command(t.clone()));
        }
        match self.target.as_str() {
            "builtin" => Ok(TargetSpec::Builtin),
            "none" => Ok(TargetSpec::None),
            url if url.starts_with("http://") || url.starts_with("https://") => {
                if !self.allow_remote && !is_loopback_url(url) {
                    return Err(format!(
                        "`{url}` is not a loopback address; pass --allow-remote to target it"
                    ));
                }
                let mock = self.mock_http.clone().ok_or(
                    "a URL target needs --mock-http ADDR: the address its upstream points at",
                )?;
                if !self.allow_remote && !is_loopback_url(&mock) {
                    return Err(format!("--mock-http `{mock}` must be a loopback address"));
                }
                Ok(TargetSpec::Url {
                    url: url.to_owned(),
                    mock_http: mock,
                })
            }
            other => Err(format!(
                "unknown target `{other}`: expected builtin, none or an http:// URL"
            )),
        }
    }

    /// Harness settings for these switches.
    pub fn harness(&self) -> Result<HarnessConfig, String> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(format!(
                "--time-scale `{}` must be a positive number",
                self.time_scale
            ));
        }
        if let Some(r) = &self.redis
            && !crate::policy::is_redis_url(r)
        {
            return Err(format!("--redis `{r}` is not a redis:// URL"));
        }
        let exe =
            std::env::current_exe().map_err(|e| format!("finding the gauntlet executable: {e}"))?;
        // Enforcers may start the mock from another folder: hand it a path
        // that does not depend on where it runs.
        let tools = self
            .tools
            .as_deref()
            .map(std::path::absolute)
            .transpose()
            .map_err(|e| format!("resolving --tools: {e}"))?;
        Ok(HarnessConfig {
            exe,
            timeout: self.timeout,
            transport: match self.transport {
                TransportArg::Stdio => Transport::Stdio,
                TransportArg::Http => Transport::Http,
            },
            keep_workdirs: None,
            shared_ledger: None,
            replicas: usize::from(self.replicas),
            redis: self.redis.clone(),
            time_scale: self.time_scale,
            tools,
        })
    }
}

/// Runs `gauntlet run`; the exit code follows the findings.
pub async fn main(args: RunArgs) -> ExitCode {
    match run(args).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: RunArgs) -> Result<u8, String> {
    let target = args.target.spec()?;
    // A broken known-gaps file should stop the run before it starts.
    if let Some(path) = &args.gate.known_gaps {
        report::gate::KnownGaps::load(path).map_err(|e| e.to_string())?;
    }
    let mut harness = args.target.harness()?;
    harness.keep_workdirs = args.keep_workdirs.clone();
    // With --policy and no --tools, the mocks serve a manifest synthesised
    // from the policy, written here for the run's length.
    let mut synthesized_dir = None;
    let (all, mut replay, _embedded) = match &args.policy {
        Some(policy) => {
            let opts = crate::plan::Options {
                time_scale: args.target.time_scale,
                control: !args.no_control,
                ..crate::plan::Options::default()
            };
            let prepared = crate::plan::cli::prepare(policy, args.target.tools.as_deref(), &opts)
                .map_err(|e| e.to_string())?;
            for note in &prepared.tools.notes {
                eprintln!("note: {note}");
            }
            if let Some(manifest) = &prepared.tools.synthesized {
                let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                let path = dir.path().join("tools.json");
                std::fs::write(&path, manifest.to_string())
                    .map_err(|e| format!("writing `{}`: {e}", path.display()))?;
                harness.tools = Some(path);
                synthesized_dir = Some(dir);
            }
            eprintln!(
                "derived {} scenarios from `{}` over {}{}",
                prepared.plan.items.len(),
                policy.display(),
                prepared.tools.label,
                match prepared.plan.left_out.len() {
                    0 => String::new(),
                    n => format!(
                        "; {n} patterns left out (`gauntlet plan --policy {}` says why)",
                        policy.display()
                    ),
                }
            );
            let replay = format!(
                "gauntlet run --policy {}",
                shlex::try_quote(&policy.display().to_string()).unwrap_or_default()
            );
            (prepared.plan.scenarios(), replay, None)
        }
        None => {
            let (catalogue, embedded) = crate::scenario::embedded::resolve(&args.catalogue)
                .map_err(|e| format!("writing the embedded catalogue: {e}"))?;
            let all = crate::scenario::load_catalogue(&catalogue).map_err(|e| e.to_string())?;
            let replay = format!("gauntlet run --catalogue {}", args.catalogue.display());
            (all, replay, Some(embedded))
        }
    };
    let scenarios = crate::scenario::select(&all, &args.attacks).map_err(|e| e.to_string())?;
    if scenarios.is_empty() {
        return Err(format!("no scenario matches {:?}", args.attacks));
    }

    // An already-running enforcer forwards to a mock the run serves.
    let _mock_guard = match &target {
        TargetSpec::Url { mock_http, .. } => {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let ledger = dir.path().join("ledger.jsonl");
            let mut words = vec![
                harness.exe.display().to_string(),
                "mock".into(),
                "--http".into(),
                mock_http.clone(),
                "--ledger".into(),
                ledger.display().to_string(),
            ];
            words.extend(harness.mock_tools_args());
            let server = crate::target::start_server(&words, harness.timeout)
                .await
                .map_err(|e| e.to_string())?;
            harness.shared_ledger = Some(ledger);
            Some((server, dir))
        }
        _ => None,
    };

    match &target {
        TargetSpec::Builtin => {}
        TargetSpec::None => replay.push_str(" --target none"),
        TargetSpec::Command(t) => replay.push_str(&format!(
            " --enforcer-cmd {}",
            shlex::try_quote(t).unwrap_or_default()
        )),
        TargetSpec::Url { url, mock_http } => {
            replay.push_str(&format!(" --target {url} --mock-http {mock_http}"))
        }
    }
    if let Some(tools) = harness.tools.as_ref().filter(|_| synthesized_dir.is_none()) {
        let path = tools.display().to_string();
        replay.push_str(&format!(
            " --tools {}",
            shlex::try_quote(&path).unwrap_or_default()
        ));
    }
    let cfg = crate::run::RunConfig {
        harness,
        target,
        control: !args.no_control,
        seed: args.seed,
        replay_prefix: replay,
        jobs: args.jobs,
    };

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: stopping after cleaning up; the partial report follows");
            let _ = stop_tx.send(true);
        }
    });

    let mut collector = Collector::default();
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    {
        let mut tee = Tee(vec![&mut progress, &mut collector]);
        crate::run::run(&cfg, &scenarios, &mut tee, &mut stop_rx).await;
    }
    let formats = if args.format.is_empty() {
        vec![Format::Table]
    } else {
        args.format.clone()
    };
    let output = Output {
        formats,
        out: args.out.clone(),
        color: report::color_wanted(),
    };
    let report = collector.report();
    report::write(&report, &output)?;
    args.gate.exit_code(std::slice::from_ref(&report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn loopback_rule() {
        for ok in [
            "http://127.0.0.1:8080/mcp",
            "http://localhost/mcp",
            "http://[::1]:9/mcp",
            "127.0.0.1:9",
        ] {
            assert!(is_loopback_url(ok), "{ok}");
        }
        for bad in [
            "http://10.0.0.1/mcp",
            "http://example.com/mcp",
            "http://127.0.0.1.evil.example/",
        ] {
            assert!(!is_loopback_url(bad), "{bad}");
        }
    }
}
