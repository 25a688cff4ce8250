//! `gauntlet report` (re-render saved runs) and `gauntlet matrix` (publish
//! several runs as a static site), plus the CI gate switches `gauntlet run`
//! shares with them.

use std::path::PathBuf;
use std::process::ExitCode;

use super::gate::{self, FailOn, KnownGaps};
use super::{Format, Output, RunReport};

/// The CI gate.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GateArgs {
    /// Fail only on findings whose scenario is at least this severe.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    /// Accepted findings (TOML `[[gap]]` or YAML `gap:` entries with
    /// `scenario`, `check` and `reason`); a listed finding that no longer
    /// occurs fails the run as a stale entry.
    #[arg(long, value_name = "FILE")]
    pub known_gaps: Option<PathBuf>,
}

impl GateArgs {
    /// Whether either switch was given.
    pub fn given(&self) -> bool {
        self.fail_on.is_some() || self.known_gaps.is_some()
    }

    /// The exit code for `reports` (the worst of them), explaining it on
    /// stderr when the gate was asked for.
    pub fn exit_code(&self, reports: &[RunReport]) -> Result<u8, String> {
        let gaps = match &self.known_gaps {
            Some(p) => KnownGaps::load(p).map_err(|e| e.to_string())?,
            None => KnownGaps::default(),
        };
        let fail_on = self.fail_on.unwrap_or(FailOn::Info);
        let mut worst = 0;
        for r in reports {
            let outcome = gate::evaluate(r, fail_on, &gaps);
            if self.given() {
                eprint!("{}", outcome.explain());
            }
            worst = worst.max(outcome.exit_code());
        }
        Ok(worst)
    }
}

/// `gauntlet report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Saved runs (`gauntlet run --format json`); several render into one
    /// document, a section (or SARIF run, or JUnit suite) each.
    #[arg(required = true, value_name = "RUN.json")]
    pub runs: Vec<PathBuf>,
    /// Output format (repeatable).
    #[arg(long, value_enum)]
    pub format: Vec<Format>,
    /// Write every format into this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// With a gate switch, the exit code follows the saved findings.
    #[command(flatten)]
    pub gate: GateArgs,
}

/// `gauntlet matrix`.
#[derive(Debug, Clone, clap::Args)]
pub struct MatrixArgs {
    /// Saved runs, one per enforcer, as `RUN.json` (named after its target)
    /// or `NAME=RUN.json`.
    #[arg(required = true, value_name = "[NAME=]RUN.json")]
    pub runs: Vec<String>,
    /// The folder the site is written to.
    #[arg(long, default_value = "site")]
    pub out: PathBuf,
}

fn exit(result: Result<u8, String>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs `gauntlet report`: 0 once rendered, unless a gate switch asks for
/// the findings to decide.
pub fn report_main(args: &ReportArgs) -> ExitCode {
    exit(report(args))
}

fn report(args: &ReportArgs) -> Result<u8, String> {
    let reports = args
        .runs
        .iter()
        .map(|p| RunReport::load(p).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let formats = if args.format.is_empty() {
        vec![Format::Table]
    } else {
        args.format.clone()
    };
    let output = Output {
        formats,
        out: args.out.clone(),
        color: super::color_wanted(),
    };
    super::write_many(&reports, &output)?;
    if args.gate.given() {
        args.gate.exit_code(&reports)
    } else {
        Ok(0)
    }
}

/// Splits `NAME=PATH`; a bare path (even one holding `=`) stays a path.
fn named(arg: &str) -> (Option<String>, PathBuf) {
    if !std::path::Path::new(arg).exists()
        && let Some((name, path)) = arg.split_once('=')
        && !name.is_empty()
    {
        return (Some(name.to_owned()), PathBuf::from(path));
    }
    (None, PathBuf::from(arg))
}

/// Runs `gauntlet matrix`.
pub fn matrix_main(args: &MatrixArgs) -> ExitCode {
    exit(matrix(args))
}

fn matrix(args: &MatrixArgs) -> Result<u8, String> {
    let mut runs = Vec::new();
    for arg in &args.runs {
        let (name, path) = named(arg);
        let report = RunReport::load(&path).map_err(|e| e.to_string())?;
        runs.push((name.unwrap_or_else(|| report.target_label()), report));
    }
    let matrix = super::matrix::Matrix::new(runs)?;
    let site = super::matrix::write_site(&matrix, &args.out)?;
    eprintln!(
        "wrote {} pages for {} attacks × {} enforcers into `{}`",
        site.files.len(),
        matrix.attacks.len(),
        matrix.columns.len(),
        args.out.display()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_off_only_when_the_path_is_not_a_file() {
        assert_eq!(
            named("builtin=runs/builtin.json"),
            (Some("builtin".into()), PathBuf::from("runs/builtin.json"))
        );
        assert_eq!(named("runs/x.json"), (None, PathBuf::from("runs/x.json")));
        assert_eq!(named("=x.json"), (None, PathBuf::from("=x.json")));
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a=b.json");
        std::fs::write(&odd, "{}").unwrap();
        let shown = odd.display().to_string();
        assert_eq!(named(&shown), (None, odd));
    }
}
