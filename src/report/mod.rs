//! Reporters: events in, text out. Each one reads only [`Event`]s (or the
//! [`RunReport`] collected from them), so a run saved as JSON renders the same
//! way later.
//!
//! - `table`, `md`, `junit`, `sarif`, `html`: one file per format;
//! - `svg`: the inline charts the HTML pages draw;
//! - `gate`: `--fail-on` and `--known-gaps`, which decide the exit code;
//! - `matrix`: several runs, one per enforcer, as a static site;
//! - `cli`: `gauntlet report` and `gauntlet matrix`.

mod bench;
pub mod cli;
pub mod gate;
mod html;
mod json;
mod junit;
pub mod matrix;
mod md;
mod progress;
mod sarif;
mod svg;
mod table;

use std::path::PathBuf;

use crate::run::{Event, EventSink, RunInfo, RunSummary, ScenarioReport};

pub use json::{LoadError, RunReport};
pub use progress::{Progress, Tee};
pub use sarif::fingerprint;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Format {
    /// A table for the terminal.
    Table,
    /// The full report (`docs/report.schema.json`).
    Json,
    /// JUnit XML: one test case per scenario.
    Junit,
    /// SARIF 2.1.0 for code scanning.
    Sarif,
    /// A Markdown summary for a pull-request comment.
    Md,
    /// One self-contained HTML page with inline SVG charts.
    Html,
}

impl Format {
    /// The file a format is written to under `--out`.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Table => "report.txt",
            Format::Json => "report.json",
            Format::Junit => "junit.xml",
            Format::Sarif => "report.sarif",
            Format::Md => "report.md",
            Format::Html => "report.html",
        }
    }
}

/// Collects a run's events and renders them when it ends.
#[derive(Default)]
pub struct Collector {
    pub info: Option<RunInfo>,
    pub scenarios: Vec<ScenarioReport>,
    pub summary: Option<RunSummary>,
    pub bench: Option<crate::run::BenchReport>,
}

impl EventSink for Collector {
    fn event(&mut self, event: &Event) {
        match event {
            Event::RunStarted(info) => self.info = Some(info.clone()),
            Event::ScenarioStarted { .. } => {}
            Event::ScenarioFinished(r) => self.scenarios.push((**r).clone()),
            Event::RunFinished(s) => self.summary = Some(s.clone()),
            Event::BenchPhase { .. } | Event::BenchTick { .. } => {}
            Event::Bench(b) => self.bench = Some((**b).clone()),
        }
    }
}

/// Where reports go.
#[derive(Debug, Clone)]
pub struct Output {
    pub formats: Vec<Format>,
    /// A folder for report files; without it the first format goes to stdout.
    pub out: Option<PathBuf>,
    pub color: bool,
}

impl Collector {
    /// The report as it stands (a run cut short by Ctrl-C renders what it had).
    pub fn report(&self) -> RunReport {
        RunReport {
            info: self.info.clone(),
            scenarios: self.scenarios.clone(),
            summary: self.summary.clone().unwrap_or_default(),
            bench: self.bench.clone(),
        }
    }
}

/// Whether the terminal table should be coloured: stdout is a terminal and
/// `NO_COLOR` is unset or empty (<https://no-color.org>).
pub fn color_wanted() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}

/// Renders `report` in `format`.
pub fn render(report: &RunReport, format: Format, color: bool) -> Result<String, String> {
    render_many(std::slice::from_ref(report), format, color)
}

/// Renders several runs as one document: SARIF gets one run per report,
/// JUnit one suite per report and category, the table, Markdown and HTML one
/// section each, and JSON an array (a single report stays an object).
pub fn render_many(reports: &[RunReport], format: Format, color: bool) -> Result<String, String> {
    match format {
        Format::Table => Ok(reports
            .iter()
            .map(|r| table::render(r, color))
            .collect::<Vec<_>>()
            .join("\n")),
        Format::Json => match reports {
            [one] => serde_json::to_string_pretty(one),
            many => serde_json::to_string_pretty(many),
        }
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| e.to_string()),
        Format::Junit => junit::render(reports),
        Format::Sarif => sarif::render(reports),
        Format::Md => Ok(md::render(reports)),
        Format::Html => Ok(html::render(reports)),
    }
}

/// Writes every requested format: to files under `out`, and the table (or
/// the only format, without `out`) to stdout.
pub fn write(report: &RunReport, output: &Output) -> Result<(), String> {
    write_many(std::slice::from_ref(report), output)
}

/// [`write`] for several runs rendered together.
pub fn write_many(reports: &[RunReport], output: &Output) -> Result<(), String> {
    if let Some(dir) = &output.out {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating `{}`: {e}", dir.display()))?;
        for f in &output.formats {
            let text = render_many(reports, *f, false)?;
            let path = dir.join(f.file_name());
            std::fs::write(&path, text)
                .map_err(|e| format!("writing `{}`: {e}", path.display()))?;
        }
        if !output.formats.contains(&Format::Table) {
            return Ok(());
        }
    }
    let first = if output.out.is_some() {
        Format::Table
    } else {
        output.formats.first().copied().unwrap_or(Format::Table)
    };
    let text = render_many(reports, first, output.color && first == Format::Table)?;
    print_stdout(&text);
    Ok(())
}

/// Prints to stdout; a closed pipe (`| head`) is not an error.
pub fn print_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}
