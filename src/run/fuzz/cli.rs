//! `gauntlet fuzz`: a campaign against a target, with live progress and a
//! coverage summary.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use super::{BUNDLED_POLICIES, Budget, FuzzConfig, FuzzSummary, Progress, check_word};
use crate::generate::frames::Mutation;
use crate::generate::names::Variant;
use crate::oracle::Check;
use crate::policy::Op;
use crate::run::cli::TargetArgs;

/// `gauntlet fuzz`.
#[derive(Debug, Clone, clap::Args)]
pub struct FuzzArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The policy to fuzz under (default: pick from the bundled fuzzing
    /// policies, case by case).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// How long to run: a time (`60s`, `2m`) or a number of cases.
    #[arg(long, default_value = "20s", value_parser = Budget::parse)]
    pub budget: Budget,
    /// The same seed draws the same cases.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Save each finding, shrunk, as a scenario file under this catalogue
    /// folder (its policy goes under `policies/`).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Stop after this many distinct findings.
    #[arg(long, default_value_t = 5)]
    pub max_findings: usize,
    /// Cases run at once [default: 16 where one target serves case after
    /// case (the built-in enforcer over stdio), else 4, since each case then
    /// starts the target afresh].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Steps per case, at most.
    #[arg(long, default_value_t = 4)]
    pub max_steps: usize,
    /// Do not report findings of these checks (e.g. `hung`), so a target's
    /// known problem does not hide the rest.
    #[arg(long, value_parser = super::parse_check)]
    pub ignore: Vec<Check>,
    /// How long shrinking one finding may take.
    #[arg(long, default_value = "10s", value_parser = crate::run::cli::parse_duration)]
    pub shrink_time: std::time::Duration,
}

/// Runs `gauntlet fuzz`: 0 when nothing was found, 1 with findings, 2 when
/// the campaign could not run.
pub async fn main(args: FuzzArgs) -> ExitCode {
    let mut err = std::io::stderr();
    match run(&args, &mut err).await {
        Ok(summary) => {
            let mut out = std::io::stdout();
            let _ = write_summary(&summary, &args, &mut out);
            ExitCode::from(u8::from(!summary.findings.is_empty()))
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The campaign configuration these switches describe.
pub fn config(args: &FuzzArgs) -> Result<FuzzConfig, String> {
    let policies = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("reading `{}`: {e}", path.display()))?;
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("policy.json")
                .to_owned();
            vec![(name, text)]
        }
        None => BUNDLED_POLICIES
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect(),
    };
    let harness = args.target.harness()?;
    let target = args.target.spec()?;
    let jobs = args
        .jobs
        .unwrap_or(if crate::target::resettable(&target, &harness) {
            16
        } else {
            4
        });
    Ok(FuzzConfig {
        harness,
        target,
        policies,
        budget: args.budget,
        seed: args.seed,
        save: args.save.clone(),
        max_findings: args.max_findings.max(1),
        jobs: jobs.max(1),
        max_steps: args.max_steps.max(1),
        ignore: args.ignore.clone(),
        shrink_time: args.shrink_time,
    })
}

async fn run(args: &FuzzArgs, err: &mut dyn Write) -> Result<FuzzSummary, String> {
    let cfg = config(args)?;
    let live = std::io::stderr().is_terminal();
    let mut last = std::time::Instant::now();
    let mut report = |p: &Progress| {
        if live || last.elapsed().as_secs() >= 5 {
            last = std::time::Instant::now();
            let end = if live { "\r" } else { "\n" };
            let _ = write!(
                err,
                "fuzz: {} cases, {} calls, {:.0} calls/s, {} findings{end}",
                p.cases,
                p.calls,
                p.rate(),
                p.findings
            );
            let _ = err.flush();
        }
    };
    let summary = super::fuzz(&cfg, &mut report)
        .await
        .map_err(|e| e.to_string())?;
    if live {
        let _ = writeln!(err);
    }
    Ok(summary)
}

/// The closing report: figures, findings, coverage and what was not covered.
pub fn write_summary(s: &FuzzSummary, args: &FuzzArgs, out: &mut dyn Write) -> std::io::Result<()> {
    let p = &s.progress;
    writeln!(
        out,
        "fuzz: seed {}, {} cases, {} calls in {:.1} s ({:.0} calls/s), {} finding(s)",
        args.seed,
        p.cases,
        p.calls,
        p.elapsed.as_secs_f64(),
        p.rate(),
        s.findings.len()
    )?;
    for f in &s.findings {
        let words: Vec<&str> = f.checks.iter().map(|c| check_word(*c)).collect();
        writeln!(
            out,
            "\nFINDING {} ({}): shrunk from {} to {} step(s), {} send(s)",
            f.id,
            words.join(", "),
            f.steps_before,
            f.steps_after,
            f.sends_after
        )?;
        for finding in f.findings.iter().take(3) {
            writeln!(out, "  {}", finding.message)?;
        }
        match &f.saved {
            Some(path) => {
                let dir = args.save.as_deref().map(|d| d.display().to_string());
                writeln!(out, "  saved: {}", path.display())?;
                writeln!(
                    out,
                    "  replay: gauntlet run --catalogue {} --attacks {}",
                    dir.unwrap_or_default(),
                    f.id
                )?;
            }
            None => {
                writeln!(out, "  (pass --save DIR to keep it as a scenario file)")?;
                for line in f.toml.lines() {
                    writeln!(out, "  | {line}")?;
                }
            }
        }
    }
    for e in s.errors.iter().take(5) {
        writeln!(out, "harness: {e}")?;
    }
    writeln!(out, "\ncoverage (cases that exercised each):")?;
    let mut groups: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
    for (tag, n) in &s.coverage {
        let (group, name) = tag.split_once(':').unwrap_or((tag.as_str(), ""));
        groups.entry(group).or_default().push((name, *n));
    }
    for (group, items) in &groups {
        let list: Vec<String> = items
            .iter()
            .map(|(n, c)| {
                if n.is_empty() {
                    format!("{c}")
                } else {
                    format!("{n} {c}")
                }
            })
            .collect();
        writeln!(out, "  {group:<9} {}", list.join(", "))?;
    }
    let missing = |prefix: &str, names: Vec<&str>| -> Vec<String> {
        names
            .into_iter()
            .filter(|n| !s.coverage.contains_key(&format!("{prefix}:{n}")))
            .map(str::to_owned)
            .collect()
    };
    let gaps = [
        (
            "op",
            missing("op", Op::ALL.iter().map(|o| o.as_str()).collect()),
        ),
        (
            "mutation",
            missing(
                "mutation",
                Mutation::ALL.iter().map(|m| m.as_str()).collect(),
            ),
        ),
        (
            "variant",
            missing("variant", Variant::ALL.iter().map(|v| v.as_str()).collect()),
        ),
    ];
    for (group, names) in gaps {
        if !names.is_empty() {
            writeln!(out, "  not exercised {group}: {}", names.join(", "))?;
        }
    }
    Ok(())
}
