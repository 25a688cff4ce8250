//! The pages of the matrix site, each in HTML and in Markdown.

use std::fmt::Write;

use super::{Column, Matrix, outcome};
use crate::report::html::{self, anchor, esc, page, status_badge};
use crate::report::md::{cell, code, verdict_summary};
use crate::run::{ScenarioReport, Status};

fn md_icon(status: Option<Status>) -> &'static str {
    match status {
        Some(Status::Passed) => "🟢",
        Some(Status::Failed) => "🔴",
        Some(Status::Broken) => "🟠",
        Some(Status::Error) => "🟣",
        Some(Status::Skipped) | None => "⚪",
    }
}

fn cell_class(s: Option<&ScenarioReport>) -> &'static str {
    match s.map(|s| s.status) {
        Some(Status::Passed) => "cell-passed",
        Some(Status::Failed) => "cell-failed",
        Some(Status::Broken) => "cell-broken",
        Some(Status::Error) => "cell-error",
        Some(Status::Skipped) => "cell-skipped",
        None => "cell-missing",
    }
}

fn reference_html(r: &str) -> String {
    if r.starts_with("https://") || r.starts_with("http://") {
        format!("<a href=\"{0}\">{0}</a>", esc(r))
    } else {
        esc(r)
    }
}

fn legend() -> &'static str {
    "<p class=\"meta\">Each cell is what the enforcer did about the attack, judged from the mock's ledger: \
<b>held</b> (every invariant held), <b>leaked</b> (a call the policy forbids reached the server), \
<b>spoofed</b> (the client was told of a success that never happened), <b>over-blocked</b> (an allowed call was denied), \
<b>hung</b> or <b>crashed</b>; <b>broken</b> means the attack did not land even with nothing in front, so the cell proves nothing.</p>"
}

fn summary_counts(c: &Column) -> String {
    let s = &c.report.summary;
    format!(
        "{} held · {} failed · {} broken · {} errors · {} skipped",
        s.passed, s.failed, s.broken, s.errors, s.skipped
    )
}

/// The index page: the matrix itself.
pub fn index_html(m: &Matrix) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>MCP policy enforcers × attacks</h1><p class=\"meta\">{} attacks against {} enforcers. \
Every attack also ran against the bare mock server to prove it lands when nothing is in front.</p>",
        m.attacks.len(),
        m.columns.len()
    );
    b.push_str(legend());
    b.push_str("<table class=\"matrix\" id=\"matrix\"><tr><th>attack</th><th>severity</th>");
    for c in &m.columns {
        let _ = write!(
            b,
            "<th><a href=\"enforcers/{}.html\">{}</a></th>",
            c.slug,
            esc(&c.name)
        );
    }
    b.push_str("</tr>");
    for (category, ids) in m.by_category() {
        let _ = write!(
            b,
            "<tr><th colspan=\"{}\">{}</th></tr>",
            m.columns.len() + 2,
            esc(&category)
        );
        for id in ids {
            let Some(attack) = m.attack(id) else { continue };
            let _ = write!(
                b,
                "<tr><td><a href=\"attacks/{0}.html\"><code>{1}</code></a> {2}</td><td><span class=\"sev {3}\">{3}</span></td>",
                anchor(id),
                esc(id),
                esc(&attack.title),
                attack.severity
            );
            for c in &m.columns {
                let s = c.scenario(id);
                let text = s.map_or("not run", outcome);
                let _ = write!(
                    b,
                    "<td class=\"{}\"><a href=\"attacks/{}.html#{}\">{}</a></td>",
                    cell_class(s),
                    anchor(id),
                    c.slug,
                    text
                );
            }
            b.push_str("</tr>");
        }
    }
    b.push_str("<tr><th colspan=\"2\">total</th>");
    for c in &m.columns {
        let _ = write!(b, "<td>{}</td>", summary_counts(c));
    }
    b.push_str("</tr></table>");
    page("MCP policy enforcers × attacks", &b)
}

/// The index page in Markdown.
pub fn index_md(m: &Matrix) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "# MCP policy enforcers × attacks\n\n{} attacks against {} enforcers, judged from the mock server's ledger. \
🟢 held · 🔴 failed (the word says how) · 🟠 broken (the attack did not land even with nothing in front) · 🟣 error · ⚪ not run.\n",
        m.attacks.len(),
        m.columns.len()
    );
    b.push_str("| attack | severity |");
    for c in &m.columns {
        let _ = write!(b, " [{}](enforcers/{}.md) |", cell(&c.name), c.slug);
    }
    b.push_str("\n|---|---|");
    b.push_str(&"---|".repeat(m.columns.len()));
    b.push('\n');
    for (category, ids) in m.by_category() {
        let _ = write!(b, "| **{}** | |", cell(&category));
        b.push_str(&" |".repeat(m.columns.len()));
        b.push('\n');
        for id in ids {
            let Some(attack) = m.attack(id) else { continue };
            let _ = write!(
                b,
                "| [{}](attacks/{}.md) {} | {} |",
                code(id),
                anchor(id),
                cell(&attack.title),
                attack.severity
            );
            for c in &m.columns {
                let s = c.scenario(id);
                let _ = write!(
                    b,
                    " {} {} |",
                    md_icon(s.map(|s| s.status)),
                    s.map_or("not run", outcome)
                );
            }
            b.push('\n');
        }
    }
    b.push_str("| **total** | |");
    for c in &m.columns {
        let _ = write!(b, " {} |", summary_counts(c));
    }
    b.push('\n');
    b
}

/// One attack: what it is, the policy, and every enforcer's outcome.
pub fn attack_html(m: &Matrix, id: &str) -> String {
    let mut b = String::from("<p><a href=\"../index.html\">← all attacks</a></p>");
    let Some(a) = m.attack(id) else {
        return page(id, &b);
    };
    let _ = write!(
        b,
        "<h1><code>{}</code> {}</h1><p class=\"meta\">{} · <span class=\"sev {}\">{}</span> · MCP {}</p><p>{}</p>",
        esc(id),
        esc(&a.title),
        a.category,
        a.severity,
        a.severity,
        esc(&a.revision),
        esc(&a.description)
    );
    if !a.references.is_empty() {
        b.push_str("<h2>References</h2><ul>");
        for r in &a.references {
            let _ = write!(b, "<li>{}</li>", reference_html(r));
        }
        b.push_str("</ul>");
    }
    let _ = write!(
        b,
        "<h2>Policy</h2><p class=\"meta\"><code>{}</code> · sha256 {}…</p><pre>{}</pre>",
        esc(&a.policy_file),
        esc(&a.policy_hash),
        esc(&a.policy_text)
    );
    b.push_str("<h2>Outcomes</h2><table class=\"matrix\"><tr><th>enforcer</th><th>outcome</th><th>verdicts</th><th>arrivals</th><th>control</th></tr>");
    for c in &m.columns {
        let s = c.scenario(id);
        let control = s.and_then(|s| s.control.as_ref()).map_or_else(
            || "—".to_owned(),
            |c| {
                format!(
                    "{} ({} arrivals)",
                    if c.landed { "landed" } else { "did not land" },
                    c.arrivals
                )
            },
        );
        let _ = write!(
            b,
            "<tr><td><a href=\"#{}\">{}</a></td><td class=\"{}\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            c.slug,
            esc(&c.name),
            cell_class(s),
            s.map_or("not run", outcome),
            esc(&s.map_or_else(String::new, verdict_summary)),
            s.and_then(|s| s.target.as_ref()).map_or(0, |t| t.arrivals),
            control
        );
    }
    b.push_str("</table>");
    for c in &m.columns {
        let _ = write!(
            b,
            "<div class=\"scenario\" id=\"{}\"><h3><a href=\"../enforcers/{}.html\">{}</a> ",
            c.slug,
            c.slug,
            esc(&c.name)
        );
        match c.scenario(id) {
            None => b.push_str("</h3><p class=\"note\">Not in this run.</p>"),
            Some(s) => {
                let _ = write!(b, "{}</h3>", status_badge(s.status));
                if s.policy_hash != a.policy_hash {
                    let _ = write!(
                        b,
                        "<p class=\"note\">Ran under a different policy: <code>{}</code> ({}).</p>",
                        esc(&s.policy_file),
                        esc(&s.policy_hash)
                    );
                }
                if s.status == Status::Passed {
                    b.push_str("<p>Every invariant held.</p>");
                }
                html::reproduction(&mut b, s);
            }
        }
        b.push_str("</div>");
    }
    page(&format!("{id}: {}", a.title), &b)
}

/// One attack in Markdown.
pub fn attack_md(m: &Matrix, id: &str) -> String {
    let mut b = String::from("[← all attacks](../index.md)\n\n");
    let Some(a) = m.attack(id) else {
        return b;
    };
    let _ = writeln!(
        b,
        "# {} {}\n\n{} · **{}** · MCP {}\n\n{}\n",
        code(id),
        cell(&a.title),
        a.category,
        a.severity,
        a.revision,
        a.description
    );
    if !a.references.is_empty() {
        b.push_str("## References\n\n");
        for r in &a.references {
            let _ = writeln!(b, "- {r}");
        }
        b.push('\n');
    }
    let _ = writeln!(
        b,
        "## Policy\n\n{} · sha256 {}…\n\n````\n{}\n````\n",
        code(&a.policy_file),
        a.policy_hash,
        a.policy_text.trim_end()
    );
    b.push_str("## Outcomes\n\n| enforcer | outcome | verdicts | replay |\n|---|---|---|---|\n");
    for c in &m.columns {
        let s = c.scenario(id);
        let _ = writeln!(
            b,
            "| [{}](../enforcers/{}.md) | {} {} | {} | {} |",
            cell(&c.name),
            c.slug,
            md_icon(s.map(|s| s.status)),
            s.map_or("not run", outcome),
            cell(&s.map_or_else(String::new, verdict_summary)),
            s.map_or_else(String::new, |s| code(&s.replay))
        );
    }
    for c in &m.columns {
        let Some(s) = c.scenario(id) else { continue };
        let findings: Vec<_> = s.target.iter().flat_map(|t| &t.findings).collect();
        if findings.is_empty() && s.errors.is_empty() {
            continue;
        }
        let _ = writeln!(b, "\n### {}\n", cell(&c.name));
        for e in &s.errors {
            let _ = writeln!(b, "- error: {}", cell(e));
        }
        for f in findings {
            let _ = writeln!(
                b,
                "- **{}**: {}",
                f.verdict.as_str(),
                cell(&crate::report::md::text_head(&f.message))
            );
            if let Some(frame) = &f.frame {
                let _ = writeln!(
                    b,
                    "  - frame: {}",
                    code(&crate::report::md::shorten(frame, 300))
                );
            }
        }
    }
    b
}

/// One enforcer's run.
pub fn enforcer_html(m: &Matrix, c: &Column) -> String {
    let mut b = String::from("<p><a href=\"../index.html\">← all enforcers</a></p>");
    let _ = write!(b, "<h1>{}</h1>", esc(&c.name));
    let r = &c.report;
    if let Some(info) = &r.info {
        let _ = write!(
            b,
            "<p class=\"meta\">target <code>{}</code> · transport {} · seed {} · gauntlet {}{}</p>",
            esc(&info.target),
            info.transport,
            info.seed,
            esc(&info.version),
            info.started_at
                .as_deref()
                .map(|t| format!(" · {}", esc(t)))
                .unwrap_or_default()
        );
    }
    let _ = write!(b, "<p>{}</p>", summary_counts(c));
    crate::report::html::latency_section(&mut b, r.bench.as_ref());
    b.push_str("<h2>Attacks</h2><table class=\"matrix\"><tr><th>attack</th><th>severity</th><th>outcome</th><th>verdicts</th><th>time</th></tr>");
    for id in &m.attacks {
        let Some(s) = c.scenario(id) else { continue };
        let _ = write!(
            b,
            "<tr><td><a href=\"../attacks/{0}.html#{1}\"><code>{2}</code></a> {3}</td><td><span class=\"sev {4}\">{4}</span></td><td class=\"{5}\">{6}</td><td>{7}</td><td class=\"num\">{8} ms</td></tr>",
            anchor(id),
            c.slug,
            esc(id),
            esc(&s.title),
            s.severity,
            cell_class(Some(s)),
            outcome(s),
            esc(&verdict_summary(s)),
            s.duration_ms
        );
    }
    b.push_str("</table>");
    page(&format!("gauntlet: {}", c.name), &b)
}

/// One enforcer's run in Markdown.
pub fn enforcer_md(m: &Matrix, c: &Column) -> String {
    let mut b = String::from("[← all enforcers](../index.md)\n\n");
    let _ = writeln!(b, "# {}\n\n{}\n", cell(&c.name), summary_counts(c));
    if let Some(info) = &c.report.info {
        let _ = writeln!(
            b,
            "Target {} · transport {} · seed {} · gauntlet {}\n",
            code(&info.target),
            info.transport,
            info.seed,
            info.version
        );
    }
    if let Some(bench) = &c.report.bench {
        crate::report::bench::md(&mut b, bench, "##");
    }
    b.push_str("## Attacks\n\n| attack | severity | outcome | verdicts |\n|---|---|---|---|\n");
    for id in &m.attacks {
        let Some(s) = c.scenario(id) else { continue };
        let _ = writeln!(
            b,
            "| [{}](../attacks/{}.md) {} | {} | {} {} | {} |",
            code(id),
            anchor(id),
            cell(&s.title),
            s.severity,
            md_icon(Some(s.status)),
            outcome(s),
            cell(&verdict_summary(s))
        );
    }
    b
}
