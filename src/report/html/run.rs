//! The HTML report of one or more runs: the verdict matrix, charts, every
//! finding with its reproduction, and latency figures when a load run is in.

use std::fmt::Write;

use super::{VERDICTS, anchor, esc, page, reproduction, status_badge, status_color};
use crate::report::RunReport;
use crate::report::bench as figures;
use crate::report::svg::{self, Bar, Plot};
use crate::run::{BenchReport, SeriesKind, Status};

const ALLOWED: &str = "#1f77b4";
const DENIED: &str = "#d9822b";
const OTHER: &str = "#6a737d";

fn header(out: &mut String, report: &RunReport) {
    let _ = write!(
        out,
        "<h1>gauntlet against <code>{}</code></h1>",
        esc(&report.target_label())
    );
    if let Some(info) = &report.info {
        let _ = write!(
            out,
            "<p class=\"meta\">gauntlet {} · transport {} · seed {} · {} scenarios{}{}</p>",
            esc(&info.version),
            info.transport,
            info.seed,
            info.scenarios,
            if info.control {
                " · with control runs against the bare mock"
            } else {
                ""
            },
            info.started_at
                .as_deref()
                .map(|t| format!(" · started {}", esc(t)))
                .unwrap_or_default()
        );
    }
    let sum = &report.summary;
    out.push_str("<div class=\"cards\">");
    for (class, label, n) in [
        ("passed", "passed", sum.passed),
        ("failed", "failed", sum.failed),
        ("broken", "broken", sum.broken),
        ("error", "errors", sum.errors),
        ("skipped", "skipped", sum.skipped),
    ] {
        let _ = write!(out, "<div class=\"card {class}\"><b>{n}</b>{label}</div>");
    }
    let _ = write!(
        out,
        "<div class=\"card\"><b>{:.1} s</b>duration</div></div>",
        sum.duration_ms as f64 / 1000.0
    );
    if sum.interrupted {
        out.push_str("<p class=\"note\">Interrupted: this report is partial.</p>");
    }
    if let Some(m) = &sum.message {
        let _ = write!(out, "<p>error: <code>{}</code></p>", esc(m));
    }
}

fn matrix(out: &mut String, report: &RunReport, prefix: &str) {
    let _ = write!(
        out,
        "<h2>Verdict matrix</h2><table class=\"matrix verdict-matrix\" id=\"{prefix}verdict-matrix\"><tr><th>scenario</th><th>status</th><th>severity</th><th>category</th>"
    );
    for v in VERDICTS {
        let _ = write!(out, "<th>{}</th>", v.as_str());
    }
    out.push_str("<th>arrivals</th></tr>");
    for s in &report.scenarios {
        let counts = s.verdict_counts();
        let _ = write!(
            out,
            "<tr><td><a href=\"#{prefix}s-{}\"><code>{}</code></a> {}</td><td class=\"cell-{}\">{}</td><td><span class=\"sev {}\">{}</span></td><td>{}</td>",
            anchor(&s.id),
            esc(&s.id),
            esc(&s.title),
            s.status.as_str(),
            status_badge(s.status),
            s.severity,
            s.severity,
            s.category
        );
        for v in VERDICTS {
            let n = counts.iter().find(|(c, _)| *c == v).map_or(0, |(_, n)| *n);
            let class = match (n, v.is_failure()) {
                (0, _) => "num zero",
                (_, true) => "num bad",
                (_, false) => "num good",
            };
            let _ = write!(out, "<td class=\"{class}\">{n}</td>");
        }
        let arrivals = s.target.as_ref().map_or(0, |t| t.arrivals);
        let _ = write!(out, "<td class=\"num\">{arrivals}</td></tr>");
    }
    out.push_str("</table>");
}

fn charts(out: &mut String, report: &RunReport) {
    let status_note = |s: &crate::run::ScenarioReport| format!("{} · {}", s.id, s.status.as_str());
    let durations: Vec<Bar> = report
        .scenarios
        .iter()
        .map(|s| Bar {
            label: s.id.clone(),
            value: s.duration_ms as f64,
            color: status_color(s.status),
            note: status_note(s),
        })
        .collect();
    let arrivals: Vec<Bar> = report
        .scenarios
        .iter()
        .map(|s| Bar {
            label: s.id.clone(),
            value: s.target.as_ref().map_or(0, |t| t.arrivals) as f64,
            color: status_color(s.status),
            note: format!(
                "{} · {} tool call(s) reached the mock through the target{}",
                s.id,
                s.target.as_ref().map_or(0, |t| t.arrivals),
                s.control
                    .as_ref()
                    .map(|c| format!(", {} in the control run", c.arrivals))
                    .unwrap_or_default()
            ),
        })
        .collect();
    out.push_str("<h2>Scenarios</h2><div class=\"charts\">");
    out.push_str(&svg::bar_chart(
        "Time per scenario (target and control runs)",
        "ms",
        &durations,
    ));
    out.push_str(&svg::bar_chart(
        "Tool calls that reached the mock through the target",
        "calls",
        &arrivals,
    ));
    out.push_str("</div>");
}

fn color_of(kind: SeriesKind) -> &'static str {
    match kind {
        SeriesKind::Allowed => ALLOWED,
        SeriesKind::Denied => DENIED,
        SeriesKind::Other => OTHER,
    }
}

/// Latency charts and figures. Without a load run the charts say so, and
/// the section keeps its place so pages look alike.
pub(crate) fn latency(out: &mut String, bench: Option<&BenchReport>) {
    out.push_str("<h2>Decision latency</h2>");
    match bench {
        None => out.push_str(
            "<p class=\"note\">No load run in this report: <code>gauntlet bench</code> adds latency figures.</p>",
        ),
        Some(b) => {
            let _ = write!(out, "<p class=\"meta\">{}</p>", esc(&figures::settings(b)));
            for p in b.phases() {
                let _ = write!(
                    out,
                    "<p class=\"meta\"><b>{}</b>: {}</p>",
                    esc(&p.name),
                    esc(&figures::rates(p))
                );
            }
            latency_table(out, b);
            if let Some(a) = figures::added(b) {
                let _ = write!(out, "<p><b>{}</b></p>", esc(&a));
            }
            if let Some(m) = &b.message {
                let _ = write!(out, "<p class=\"note\">Stopped early: {}</p>", esc(m));
            }
        }
    }
    let plots: Vec<Plot> = bench
        .into_iter()
        .flat_map(BenchReport::series)
        .map(|s| Plot {
            label: &s.label,
            color: color_of(s.kind),
            dashed: s.baseline,
            points: &s.buckets,
        })
        .collect();
    out.push_str("<div class=\"charts\">");
    out.push_str(&svg::histogram(
        "Latency histogram (share of calls, log time axis)",
        &plots,
    ));
    out.push_str(&svg::percentile_curve("Latency by percentile", &plots));
    out.push_str("</div>");
}

fn latency_table(out: &mut String, b: &BenchReport) {
    out.push_str("<table><tr><th>phase</th><th>calls</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>");
    for p in b.phases() {
        for (label, calls, q) in figures::rows(p) {
            let _ = write!(
                out,
                "<tr><td>{} {}</td><td class=\"num\">{calls}</td>",
                esc(&p.name),
                esc(&label)
            );
            for v in [q.p50_us, q.p90_us, q.p99_us, q.p999_us, q.max_us] {
                let _ = write!(out, "<td class=\"num\">{}</td>", figures::fmt(v));
            }
            out.push_str("</tr>");
        }
    }
    out.push_str("</table>");
    for p in b.phases() {
        let _ = write!(out, "<p>{}: {}</p>", esc(&p.name), esc(&figures::errors(p)));
    }
}

fn scenario_block(out: &mut String, s: &crate::run::ScenarioReport, prefix: &str) {
    let _ = write!(
        out,
        "<div class=\"scenario\" id=\"{prefix}s-{}\"><h3><code>{}</code> {} {} <span class=\"sev {}\">{}</span></h3><p>{}</p>",
        anchor(&s.id),
        esc(&s.id),
        esc(&s.title),
        status_badge(s.status),
        s.severity,
        s.severity,
        esc(&s.description)
    );
    let _ = write!(
        out,
        "<p class=\"meta\">{} · policy <code>{}</code> ({}) · MCP {}</p>",
        s.category,
        esc(&s.policy_file),
        esc(&s.policy_hash),
        esc(&s.revision)
    );
    if matches!(s.status, Status::Failed | Status::Broken | Status::Error) {
        reproduction(out, s);
    }
    out.push_str("</div>");
}

fn findings(out: &mut String, report: &RunReport, prefix: &str) {
    let (failing, rest): (Vec<_>, Vec<_>) = report
        .scenarios
        .iter()
        .partition(|s| matches!(s.status, Status::Failed | Status::Broken | Status::Error));
    let _ = write!(out, "<h2>Findings ({})</h2>", failing.len());
    if failing.is_empty() {
        out.push_str("<p class=\"note\">No findings: every invariant held.</p>");
    }
    for s in failing {
        scenario_block(out, s, prefix);
    }
    if !rest.is_empty() {
        let _ = write!(
            out,
            "<details><summary>{} scenario(s) passed or skipped</summary>",
            rest.len()
        );
        for s in rest {
            scenario_block(out, s, prefix);
        }
        out.push_str("</details>");
    }
}

fn section(out: &mut String, report: &RunReport, prefix: &str) {
    let _ = write!(out, "<section class=\"run\" id=\"{prefix}run\">");
    if let Some(b) = figures::only(report) {
        let _ = write!(
            out,
            "<h1>gauntlet bench against <code>{}</code></h1>",
            esc(&b.target.target)
        );
        latency(out, Some(b));
        out.push_str("</section>");
        return;
    }
    header(out, report);
    matrix(out, report, prefix);
    charts(out, report);
    latency(out, report.bench.as_ref());
    findings(out, report, prefix);
    out.push_str("</section>");
}

/// Renders the reports as one page, one section each.
pub fn render(reports: &[RunReport]) -> String {
    let mut body = String::new();
    for (i, r) in reports.iter().enumerate() {
        let prefix = if reports.len() > 1 {
            format!("r{i}-")
        } else {
            String::new()
        };
        section(&mut body, r, &prefix);
    }
    let title = match reports {
        [one] => format!("gauntlet report: {}", one.target_label()),
        _ => "gauntlet report".to_owned(),
    };
    page(&title, &body)
}
