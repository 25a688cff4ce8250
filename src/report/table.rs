//! The terminal table: verdicts by category, then every finding with what
//! reproduces it.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::RunReport;
use crate::oracle::Verdict;
use crate::run::{ScenarioReport, Status};

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
    fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
}

const VERDICTS: [Verdict; 7] = [
    Verdict::Allowed,
    Verdict::Blocked,
    Verdict::Leaked,
    Verdict::OverBlocked,
    Verdict::Spoofed,
    Verdict::Hung,
    Verdict::Crashed,
];

/// Renders the report for a terminal.
pub fn render(report: &RunReport, color: bool) -> String {
    let p = Paint { on: color };
    let mut out = String::new();
    if let Some(b) = super::bench::only(report) {
        super::bench::table(&mut out, b);
        return out;
    }
    if let Some(info) = &report.info {
        let _ = writeln!(
            out,
            "{} {} · target {} ({}) · {} scenarios · seed {}{}\n",
            p.bold("gauntlet"),
            info.version,
            info.target,
            info.transport,
            info.scenarios,
            info.seed,
            if info.control {
                " · with control runs"
            } else {
                ""
            }
        );
    }

    // Scenario statuses and call verdicts, by category.
    let mut rows: BTreeMap<String, ([usize; 5], BTreeMap<Verdict, usize>)> = BTreeMap::new();
    for s in &report.scenarios {
        let row = rows.entry(s.category.to_string()).or_default();
        row.0[status_index(s.status)] += 1;
        for (v, n) in s.verdict_counts() {
            *row.1.entry(v).or_default() += n;
        }
    }
    let _ = write!(
        out,
        "{:<22}{:>7}{:>7}{:>7}{:>7}{:>8}",
        "category", "passed", "failed", "broken", "error", "skipped"
    );
    for v in VERDICTS {
        let _ = write!(out, "{:>13}", v.as_str());
    }
    out.push('\n');
    for (cat, (st, verdicts)) in &rows {
        let _ = write!(out, "{cat:<22}");
        let cells = [st[0], st[1], st[2], st[4], st[3]];
        for (i, n) in cells.iter().enumerate() {
            let w = if i == 4 { 8 } else { 7 };
            let cell = format!("{n:>w$}");
            let _ = write!(
                out,
                "{}",
                match (i, *n) {
                    (0, n) if n > 0 => p.green(&cell),
                    (1..=3, n) if n > 0 => p.red(&cell),
                    _ => cell,
                }
            );
        }
        for v in VERDICTS {
            let n = verdicts.get(&v).copied().unwrap_or(0);
            let cell = format!("{n:>13}");
            let _ = write!(
                out,
                "{}",
                if n > 0 && v.is_failure() {
                    p.red(&cell)
                } else {
                    cell
                }
            );
        }
        out.push('\n');
    }

    let failing: Vec<&ScenarioReport> = report
        .scenarios
        .iter()
        .filter(|s| matches!(s.status, Status::Failed | Status::Broken | Status::Error))
        .collect();
    if !failing.is_empty() {
        let _ = writeln!(out, "\n{}", p.bold("FINDINGS"));
    }
    for s in failing {
        let mark = match s.status {
            Status::Failed => p.red("✗"),
            _ => p.yellow("!"),
        };
        let _ = writeln!(
            out,
            "\n{mark} {} [{}] {} — {}",
            p.bold(&s.id),
            s.severity,
            s.title,
            s.status.as_str()
        );
        if let Some(r) = &s.rule {
            let _ = writeln!(out, "  attacks: {r}");
        }
        if s.status == Status::Broken {
            let _ = writeln!(
                out,
                "  the control run against the bare mock did not land: the scenario proves nothing"
            );
        }
        for e in &s.errors {
            let _ = writeln!(out, "  error: {e}");
        }
        for f in s.target.iter().flat_map(|t| &t.findings) {
            let _ = writeln!(
                out,
                "  {} · {}: {}",
                p.red(f.verdict.as_str()),
                f.check.as_str(),
                super::md::text_head(&f.message)
            );
            if let Some(rule) = &f.rule {
                let line = f.line.map(|l| format!(":{l}")).unwrap_or_default();
                let _ = writeln!(out, "    rule:   {rule} ({}{line})", s.policy_file);
            }
            if let (Some(id), Some(sess)) = (&f.identity, &f.session) {
                let _ = writeln!(out, "    grant:  {id} · session {sess}");
            }
            if let Some(frame) = &f.frame {
                let _ = writeln!(out, "    frame:  {}", p.dim(&one_line(frame, 400)));
            }
            for r in f.ledger.iter().take(2) {
                let _ = writeln!(
                    out,
                    "    ledger: #{} {} {} executed={}",
                    r.seq,
                    r.method.as_deref().unwrap_or("?"),
                    super::md::text_head(r.raw_name.as_deref().unwrap_or("")),
                    r.executed
                );
            }
        }
        let _ = writeln!(out, "  replay: {}", s.replay);
    }

    let sum = &report.summary;
    let total = report.scenarios.len();
    let _ = writeln!(
        out,
        "\n{total} scenarios: {} passed, {} failed, {} broken, {} errors, {} skipped in {:.1}s{}",
        sum.passed,
        sum.failed,
        sum.broken,
        sum.errors,
        sum.skipped,
        sum.duration_ms as f64 / 1000.0,
        if sum.interrupted {
            " (interrupted: partial report)"
        } else {
            ""
        }
    );
    if let Some(m) = &sum.message {
        let _ = writeln!(out, "error: {m}");
    }
    if let Some(b) = &report.bench {
        let _ = writeln!(out, "\n{}", p.bold("DECISION LATENCY"));
        super::bench::table(&mut out, b);
    }
    out
}

fn status_index(s: Status) -> usize {
    match s {
        Status::Passed => 0,
        Status::Failed => 1,
        Status::Broken => 2,
        Status::Skipped => 3,
        Status::Error => 4,
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.chars().map(|c| if c == '\n' { ' ' } else { c }).collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max).collect();
    format!("{cut}…")
}
