//! A Markdown summary sized for a pull-request comment: a headline, a table
//! of what failed, and each reproduction folded away under `<details>`.

use std::fmt::Write;

use super::RunReport;
use crate::run::{ScenarioReport, Status};

/// GitHub refuses comments over 65,536 characters: the table of failures
/// stops once the text passes the first budget, the reproductions once it
/// passes the second, leaving room for what follows.
const TABLE_BUDGET: usize = 30_000;
const COMMENT_BUDGET: usize = 50_000;
const FRAME_SHOWN: usize = 400;
const FINDINGS_SHOWN: usize = 3;

fn icon(status: Status) -> &'static str {
    match status {
        Status::Passed => "✅",
        Status::Failed => "❌",
        Status::Broken => "⚠️",
        Status::Skipped => "⏭️",
        Status::Error => "💥",
    }
}

/// Text fit for a table cell: one line, pipes escaped.
pub(super) fn cell(s: &str) -> String {
    s.replace('\r', "")
        .replace('\n', " ")
        .replace('|', "\\|")
        .trim()
        .to_owned()
}

/// Inline code that survives backticks inside.
pub(super) fn code(s: &str) -> String {
    let s = cell(s);
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

/// The most of one frame a human-facing report shows; a flood attack's frame
/// runs to megabytes, and the JSON report keeps it whole.
pub(super) const FRAME_LIMIT: usize = 4000;

/// The most of a message or a name a human-facing report shows: an attack
/// may pad a tool name to a megabyte, and the oracle quotes it.
pub(super) const TEXT_LIMIT: usize = 500;

/// A message or name cut to [`TEXT_LIMIT`].
pub(super) fn text_head(s: &str) -> String {
    shorten(s, TEXT_LIMIT)
}

/// A frame cut to [`FRAME_LIMIT`], saying how much was left out.
pub(super) fn frame_head(frame: &str) -> String {
    let total = frame.chars().count();
    if total <= FRAME_LIMIT {
        return frame.to_owned();
    }
    let head: String = frame.chars().take(FRAME_LIMIT).collect();
    format!(
        "{head}… ({} more characters in the JSON report)",
        total - FRAME_LIMIT
    )
}

/// At most `max` characters of `s`, with an ellipsis when cut.
pub(super) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

/// A fenced block whose fence is longer than any backtick run inside.
fn fenced(lang: &str, body: &str) -> String {
    let mut fence = "```".to_owned();
    while body.contains(&fence) {
        fence.push('`');
    }
    format!("{fence}{lang}\n{body}\n{fence}\n")
}

/// `30 allowed, 5 leaked`: the target run's verdicts, counted.
pub(super) fn verdict_summary(s: &ScenarioReport) -> String {
    let counts = s.verdict_counts();
    if counts.is_empty() {
        return "—".into();
    }
    counts
        .iter()
        .map(|(v, n)| format!("{n} {}", v.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn headline(out: &mut String, report: &RunReport) {
    let sum = &report.summary;
    let total = report.scenarios.len();
    let bad = sum.failed + sum.broken + sum.errors;
    let mark = if bad == 0 && !sum.interrupted && sum.message.is_none() {
        "✅"
    } else {
        "❌"
    };
    let _ = writeln!(
        out,
        "### {mark} gauntlet against {}: {} of {total} scenarios failed\n",
        code(&report.target_label()),
        sum.failed
    );
    let _ = write!(
        out,
        "**{}** passed · **{}** failed · **{}** broken · **{}** errors · **{}** skipped",
        sum.passed, sum.failed, sum.broken, sum.errors, sum.skipped
    );
    if let Some(info) = &report.info {
        let _ = write!(
            out,
            " · seed {} · {} · gauntlet {}",
            info.seed, info.transport, info.version
        );
    }
    out.push_str("\n\n");
    if sum.interrupted {
        out.push_str("> **Interrupted:** this report is partial.\n\n");
    }
    if let Some(m) = &sum.message {
        let _ = writeln!(out, "> **Error:** {}\n", cell(m));
    }
}

fn table(out: &mut String, failing: &[&ScenarioReport]) {
    out.push_str("| | scenario | severity | category | verdicts | first finding |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for (i, s) in failing.iter().enumerate() {
        if out.len() > TABLE_BUDGET {
            let _ = writeln!(
                out,
                "\n… and {} more failing scenarios: see the HTML or JSON report.",
                failing.len() - i
            );
            break;
        }
        let first = s
            .target
            .as_ref()
            .and_then(|t| t.findings.first())
            .map(|f| f.message.clone())
            .or_else(|| s.errors.first().cloned())
            .unwrap_or_else(|| match s.status {
                Status::Broken => "the control run did not land".into(),
                _ => String::new(),
            });
        let _ = writeln!(
            out,
            "| {} | {} {} | {} | {} | {} | {} |",
            icon(s.status),
            code(&s.id),
            cell(&s.title),
            s.severity,
            s.category,
            cell(&verdict_summary(s)),
            cell(&shorten(&first, 160)),
        );
    }
    out.push('\n');
}

fn reproduction(out: &mut String, s: &ScenarioReport) {
    let _ = writeln!(
        out,
        "#### {} {} — {}\n",
        icon(s.status),
        code(&s.id),
        cell(&s.title)
    );
    if s.status == Status::Broken {
        out.push_str(
            "The control run against the bare mock did not land: the scenario proves nothing.\n\n",
        );
    }
    if let Some(r) = &s.rule {
        let line = r.line.map(|l| format!(" line {l}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "Derived from rule {} in {}{line}.\n",
            code(&r.pointer),
            code(&r.file)
        );
    }
    for e in &s.errors {
        let _ = writeln!(out, "- error: {}", cell(e));
    }
    let findings: Vec<_> = s.target.iter().flat_map(|t| &t.findings).collect();
    for f in findings.iter().take(FINDINGS_SHOWN) {
        let _ = writeln!(
            out,
            "- **{}** · {}: {}",
            f.verdict.as_str(),
            code(f.check.as_str()),
            cell(&text_head(&f.message))
        );
        if let Some(rule) = &f.rule {
            let line = f.line.map(|l| format!(" line {l}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  - rule {} in {}{line}",
                code(rule),
                code(&s.policy_file)
            );
        }
        if let (Some(id), Some(sess)) = (&f.identity, &f.session) {
            let _ = writeln!(out, "  - grant {} · session {}", code(id), code(sess));
        }
        if let Some(frame) = &f.frame {
            out.push_str("  - frame:\n\n");
            for line in fenced("json", &shorten(frame, FRAME_SHOWN)).lines() {
                let _ = writeln!(out, "    {line}");
            }
            out.push('\n');
        }
        if let Some(r) = f.ledger.first() {
            let _ = writeln!(
                out,
                "  - the ledger saw #{} {} {} (executed: {})",
                r.seq,
                r.method.as_deref().unwrap_or("?"),
                code(&text_head(r.raw_name.as_deref().unwrap_or(""))),
                r.executed
            );
        }
    }
    if findings.len() > FINDINGS_SHOWN {
        let _ = writeln!(
            out,
            "- … and {} more finding(s) in the full report",
            findings.len() - FINDINGS_SHOWN
        );
    }
    let _ = writeln!(out, "\nReplay: {}\n", code(&s.replay));
}

fn run(out: &mut String, report: &RunReport) {
    if let Some(b) = super::bench::only(report) {
        super::bench::md(out, b, "###");
        return;
    }
    headline(out, report);
    let failing: Vec<&ScenarioReport> = report
        .scenarios
        .iter()
        .filter(|s| matches!(s.status, Status::Failed | Status::Broken | Status::Error))
        .collect();
    if !failing.is_empty() {
        table(out, &failing);
        out.push_str("<details><summary>Reproductions</summary>\n\n");
        for (i, s) in failing.iter().enumerate() {
            if out.len() > COMMENT_BUDGET {
                let _ = writeln!(
                    out,
                    "… and {} more: see the HTML or JSON report.\n",
                    failing.len() - i
                );
                break;
            }
            reproduction(out, s);
        }
        out.push_str("</details>\n\n");
    }
    let passed: Vec<&ScenarioReport> = report
        .scenarios
        .iter()
        .filter(|s| matches!(s.status, Status::Passed | Status::Skipped))
        .collect();
    if !passed.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>{} passed or skipped</summary>\n",
            passed.len()
        );
        for (i, s) in passed.iter().enumerate() {
            if out.len() > COMMENT_BUDGET + 8_000 {
                let _ = writeln!(out, "- … and {} more", passed.len() - i);
                break;
            }
            let _ = writeln!(
                out,
                "- {} {} {} — {}",
                icon(s.status),
                code(&s.id),
                cell(&s.title),
                cell(&verdict_summary(s))
            );
        }
        out.push_str("\n</details>\n\n");
    }
    if let Some(b) = &report.bench {
        super::bench::md(out, b, "####");
    }
}

/// Renders the reports as Markdown, one section each.
pub fn render(reports: &[RunReport]) -> String {
    let mut out = String::new();
    for report in reports {
        run(&mut out, report);
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_and_code_survive_markdown() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
        assert_eq!(code("x`y"), "`` x`y ``");
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(fenced("json", "a ``` b"), "````json\na ``` b\n````\n");
        assert_eq!(shorten("abcdef", 3), "abc…");
        let long = "x".repeat(FRAME_LIMIT + 10);
        assert!(frame_head(&long).ends_with("… (10 more characters in the JSON report)"));
        assert_eq!(frame_head("short"), "short");
    }
}
