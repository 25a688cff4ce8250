//! `gauntlet attacks list|show`: the catalogue, as a table, JSON, or one
//! scenario in full.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::PathBuf;

use serde_json::{Value, json};

use super::types::{ArgSpec, Generation, Scenario, SessionSpec, Step, StepKind, Who};
use super::{PolicySource, ScenarioError, load_catalogue, select};

/// `gauntlet attacks`.
#[derive(Debug, clap::Args)]
pub struct AttacksArgs {
    #[command(subcommand)]
    pub command: AttacksCommand,
    /// The catalogue folder: `<category>/<id>.toml` files and `policies/`.
    #[arg(long, global = true, default_value = "attacks", value_name = "DIR")]
    pub catalogue: PathBuf,
}

/// What to print.
#[derive(Debug, clap::Subcommand)]
pub enum AttacksCommand {
    /// List the scenarios: id, category, severity, steps, title.
    List {
        /// Keep only these: ids, categories, paths, or id globs (`rl-*`).
        #[arg(long = "attacks", value_name = "PATTERN", num_args = 1..)]
        attacks: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Show one scenario in full, with its policy's summary.
    Show {
        /// The scenario's id.
        id: String,
    },
}

/// Output formats of `attacks list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// Aligned columns.
    Table,
    /// A JSON array.
    Json,
}

/// Runs the command; returns the exit code (0, or 2 when the catalogue
/// cannot be loaded).
pub fn run(args: &AttacksArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match render(args) {
        Ok(text) => {
            write_ok(out, &text);
            0
        }
        Err(e) => {
            write_ok(err, &format!("{e}\n"));
            2
        }
    }
}

/// The text the command prints.
pub fn render(args: &AttacksArgs) -> Result<String, ScenarioError> {
    let all = load_catalogue(&args.catalogue)?;
    match &args.command {
        AttacksCommand::List { attacks, format } => {
            let picked = select(&all, attacks)?;
            Ok(match format {
                ListFormat::Table => table(&picked),
                ListFormat::Json => {
                    let rows: Vec<Value> = picked.iter().map(row_json).collect();
                    let mut s = serde_json::to_string_pretty(&rows).unwrap_or_default();
                    s.push('\n');
                    s
                }
            })
        }
        AttacksCommand::Show { id } => all
            .iter()
            .find(|s| &s.id == id)
            .map(show)
            .ok_or_else(|| ScenarioError::UnknownId { id: id.clone() }),
    }
}

fn write_ok(to: &mut dyn Write, text: &str) {
    if let Err(e) = to.write_all(text.as_bytes()).and_then(|()| to.flush())
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        let _ = writeln!(io::stderr(), "cannot write output: {e}");
    }
}

/// The list as aligned columns, with a count line.
pub fn table(scenarios: &[Scenario]) -> String {
    let head = ["ID", "CATEGORY", "SEVERITY", "STEPS", "TITLE"];
    let rows: Vec<[String; 5]> = scenarios
        .iter()
        .map(|s| {
            [
                s.id.clone(),
                s.category.to_string(),
                s.severity.to_string(),
                s.steps.len().to_string(),
                s.title.clone(),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut s = String::new();
    let mut line = |cells: [&str; 5]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        s.push_str(l.trim_end());
        s.push('\n');
    };
    line(head);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
    }
    let cats: std::collections::BTreeSet<_> = scenarios.iter().map(|s| s.category).collect();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let _ = writeln!(
        s,
        "{} in {}",
        plural(scenarios.len(), "scenario", "scenarios"),
        plural(cats.len(), "category", "categories")
    );
    s
}

fn row_json(s: &Scenario) -> Value {
    json!({
        "id": s.id,
        "category": s.category,
        "severity": s.severity,
        "title": s.title,
        "steps": s.steps.len(),
        "sends": s.total_sends(),
        "transport": s.transport,
        "revision": s.revision,
        "policy": policy_name(&s.policy),
        "path": s.path.display().to_string(),
    })
}

fn policy_name(p: &PolicySource) -> String {
    match p {
        PolicySource::File(f) => f.display().to_string(),
        PolicySource::Inline(_) => "inline".to_owned(),
    }
}

/// One scenario in full.
pub fn show(s: &Scenario) -> String {
    let mut o = String::new();
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let _ = writeln!(o, "{}: {}", s.id, s.title);
    let _ = writeln!(o, "  category:    {}", s.category);
    let _ = writeln!(o, "  severity:    {}", s.severity);
    let _ = writeln!(o, "  file:        {}", s.path.display());
    let _ = writeln!(o, "  transport:   {}", s.transport.as_str());
    let _ = writeln!(o, "  revision:    {}", s.revision);
    let _ = writeln!(o, "  strict mock: {}", yes_no(s.strict_mock));
    let _ = writeln!(o, "  references:  {}", s.references.join(", "));
    o.push('\n');
    for l in wrap(s.description.trim(), 76) {
        let _ = writeln!(o, "  {l}");
    }
    o.push('\n');
    let _ = writeln!(o, "policy: {}", policy_name(&s.policy));
    for l in crate::policy::cli::summary(&s.model).lines() {
        let _ = writeln!(o, "  {l}");
    }
    o.push('\n');
    let sends = s.total_sends();
    let noun = if sends == 1 { "message" } else { "messages" };
    let _ = writeln!(o, "steps: {} ({sends} {noun})", s.steps.len());
    for (i, step) in s.steps.iter().enumerate() {
        let _ = writeln!(o, "  [{i}] {}", step_line(step));
        for d in step_details(step) {
            let _ = writeln!(o, "      {d}");
        }
    }
    o.push('\n');
    let mut expect = Vec::new();
    if let Some(n) = s.expect.max_arrivals {
        expect.push(format!("at most {n} calls arrive"));
    }
    if s.expect.no_success {
        expect.push("no call succeeds".to_owned());
    }
    if expect.is_empty() {
        let _ = writeln!(o, "expect: derived from the policy");
    } else {
        let _ = writeln!(
            o,
            "expect: derived from the policy, and {}",
            expect.join(", ")
        );
    }
    o
}

fn step_line(step: &Step) -> String {
    let what = match &step.kind {
        StepKind::Call { name, .. } => format!("call {}", quote(name)),
        StepKind::Raw { bytes, .. } => format!("raw frame of {} bytes", bytes.len()),
        StepKind::List => "tools/list".to_owned(),
    };
    let mut parts = vec![what];
    if step.repeat > 1 {
        parts.push(format!("x{}", step.repeat));
    }
    if step.concurrency > 1 {
        parts.push(format!("{} at once", step.concurrency));
    }
    if step.pipeline {
        parts.push("pipelined".to_owned());
    }
    parts.push(match &step.who {
        Who::Identity(id) => format!("as {id}"),
        Who::Rotate(ids) => format!("as {} in turn", ids.join(", ")),
    });
    parts.push(match &step.session {
        SessionSpec::Named(n) => format!("on session {n}"),
        SessionSpec::Rotate(n) => format!("over {n} fresh sessions"),
    });
    if step.skip_handshake {
        parts.push("before initialize".to_owned());
    }
    if step.delay_ms > 0 {
        parts.push(format!("after {} ms", step.delay_ms));
    }
    if step.at.is_some() {
        parts.push(format!(
            "across the next window edge (+{} ms)",
            step.after_ms
        ));
    }
    parts.join(" ")
}

fn step_details(step: &Step) -> Vec<String> {
    match &step.kind {
        StepKind::Call { args, set, .. } => {
            let mut d = vec![match args {
                ArgSpec::Literal(v) => format!("args: {}", preview(&v.to_string())),
                ArgSpec::Generate(Generation::Valid) => "args: generated, valid".to_owned(),
                ArgSpec::Generate(Generation::Violate(r)) => {
                    format!("args: generated, breaking `{}`", r.as_str())
                }
            }];
            for (path, v) in set {
                d.push(format!("set {path} = {}", preview(&v.to_string())));
            }
            d
        }
        StepKind::Raw {
            bytes,
            headers,
            bare,
        } => {
            let mut d = vec![format!("bytes: {}", preview(&escape_bytes(bytes)))];
            for (k, v) in headers {
                d.push(format!("header {k}: {}", preview(v)));
            }
            if *bare {
                d.push("without the client's automatic headers".to_owned());
            }
            d
        }
        StepKind::List => Vec::new(),
    }
}

fn quote(name: &str) -> String {
    format!("{name:?}")
}

/// Shows bytes as text: printable UTF-8 as is, anything else escaped.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut s = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => s.push_str("\\n"),
                '\r' => s.push_str("\\r"),
                '\t' => s.push_str("\\t"),
                c if c.is_control() || matches!(c, '\u{200B}'..='\u{200F}' | '\u{FEFF}') => {
                    let _ = write!(s, "\\u{{{:04x}}}", u32::from(c));
                }
                c => s.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s
}

const PREVIEW: usize = 160;

fn preview(s: &str) -> String {
    let n = s.chars().count();
    if n <= PREVIEW {
        return s.to_owned();
    }
    let head: String = s.chars().take(PREVIEW).collect();
    format!("{head}... ({n} characters)")
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split("\n\n") {
        let mut line = String::new();
        for word in para.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines.push(String::new());
    }
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_escape_readably() {
        let s = escape_bytes(b"\xef\xbb\xbf{\"a\":\"x\xff\"}\n\0");
        assert_eq!(s, "\\u{feff}{\"a\":\"x\\xff\"}\\n\\u{0000}");
    }

    #[test]
    fn long_previews_are_cut() {
        let long = "a".repeat(500);
        let p = preview(&long);
        assert!(p.ends_with("... (500 characters)"), "{p}");
        assert_eq!(preview("short"), "short");
    }

    #[test]
    fn wrapping_keeps_words_whole() {
        let w = wrap("one two three four five", 9);
        assert_eq!(w, vec!["one two", "three", "four five"]);
    }
}
