//! Reporters: events in, text out. Each one reads only [`Event`]s, so a run
//! saved as JSON renders the same way later.

mod json;
mod junit;
mod progress;
mod table;

use std::path::PathBuf;

use crate::run::{Event, EventSink, RunInfo, RunSummary, ScenarioReport};

pub use json::RunReport;
pub use progress::{Progress, Tee};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Junit,
}

impl Format {
    fn file_name(self) -> &'static str {
        match self {
            Format::Table => "report.txt",
            Format::Json => "report.json",
            Format::Junit => "junit.xml",
        }
    }
}

/// Collects a run's events and renders them when it ends.
#[derive(Default)]
pub struct Collector {
    pub info: Option<RunInfo>,
    pub scenarios: Vec<ScenarioReport>,
    pub summary: Option<RunSummary>,
}

impl EventSink for Collector {
    fn event(&mut self, event: &Event) {
        match event {
            Event::RunStarted(info) => self.info = Some(info.clone()),
            Event::ScenarioStarted { .. } => {}
            Event::ScenarioFinished(r) => self.scenarios.push((**r).clone()),
            Event::RunFinished(s) => self.summary = Some(s.clone()),
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
            bench: None,
        }
    }
}

/// Renders `report` in `format`.
pub fn render(report: &RunReport, format: Format, color: bool) -> Result<String, String> {
    match format {
        Format::Table => Ok(table::render(report, color)),
        Format::Json => serde_json::to_string_pretty(report).map_err(|e| e.to_string()),
        Format::Junit => junit::render(report),
    }
}

/// Writes every requested format: to files under `out`, and the table (or
/// the only format, without `out`) to stdout.
pub fn write(report: &RunReport, output: &Output) -> Result<(), String> {
    if let Some(dir) = &output.out {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating `{}`: {e}", dir.display()))?;
        for f in &output.formats {
            let text = render(report, *f, false)?;
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
    let text = render(report, first, output.color && first == Format::Table)?;
    print_stdout(&text);
    Ok(())
}

/// Prints to stdout; a closed pipe (`| head`) is not an error.
pub fn print_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}
