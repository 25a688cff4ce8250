//! JUnit XML: one test suite per category, one test case per scenario, so CI
//! systems show attacks as tests natively.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::RunReport;
use crate::run::{ScenarioReport, Status};

fn details(s: &ScenarioReport) -> String {
    let mut out = String::new();
    for e in &s.errors {
        let _ = writeln!(out, "error: {e}");
    }
    for f in s.target.iter().flat_map(|t| &t.findings) {
        let _ = writeln!(
            out,
            "{} ({}): {}",
            f.verdict.as_str(),
            f.check.as_str(),
            super::md::text_head(&f.message)
        );
        if let Some(rule) = &f.rule {
            let at = f.line.map(|l| format!(" (line {l})")).unwrap_or_default();
            let _ = writeln!(out, "  rule: {} {rule}{at}", s.policy_file);
        }
        if let (Some(id), Some(sess)) = (&f.identity, &f.session) {
            let _ = writeln!(out, "  grant: {id} · session {sess}");
        }
        if let Some(frame) = &f.frame {
            let _ = writeln!(out, "  frame: {}", super::md::frame_head(frame));
        }
        for r in &f.ledger {
            let _ = writeln!(out, "  ledger #{}: {}", r.seq, r.raw);
        }
    }
    let _ = writeln!(out, "replay: {}", s.replay);
    xml_safe(&out)
}

/// XML 1.0 cannot carry most control characters even escaped, and attack
/// frames are full of them: spell them out instead.
fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c.to_string(),
            c if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' => {
                format!("\\u{{{:04x}}}", c as u32)
            }
            c => c.to_string(),
        })
        .collect()
}

/// Renders the reports as JUnit XML: one suite per category (per target and
/// category when there are several runs).
pub fn render(reports: &[RunReport]) -> Result<String, String> {
    let mut junit = Report::new("gauntlet");
    let mut suites: BTreeMap<String, TestSuite> = BTreeMap::new();
    for report in reports {
        add_run(report, reports.len() > 1, &mut suites);
    }
    junit.add_test_suites(suites.into_values());
    junit.to_string().map_err(|e| e.to_string())
}

fn add_run(report: &RunReport, prefixed: bool, suites: &mut BTreeMap<String, TestSuite>) {
    let target = report.target_label();
    for s in &report.scenarios {
        let status = match s.status {
            Status::Passed => TestCaseStatus::success(),
            Status::Skipped => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(xml_safe(&s.errors.join("; ")));
                st
            }
            Status::Failed => {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let first = s
                    .target
                    .as_ref()
                    .and_then(|t| t.findings.first())
                    .map(|f| super::md::text_head(&f.message))
                    .unwrap_or_default();
                st.set_message(xml_safe(&first))
                    .set_type("finding")
                    .set_description(details(s));
                st
            }
            Status::Broken | Status::Error => {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
                st.set_message(if s.status == Status::Broken {
                    "control run did not land".to_owned()
                } else {
                    xml_safe(&s.errors.join("; "))
                })
                .set_type(s.status.as_str())
                .set_description(details(s));
                st
            }
        };
        let mut case = TestCase::new(format!("{} — {}", s.id, s.title), status);
        case.set_classname(format!("gauntlet.{}", s.category))
            .set_time(Duration::from_millis(s.duration_ms));
        let suite = if prefixed {
            format!("{target} · {}", s.category)
        } else {
            s.category.to_string()
        };
        suites
            .entry(suite)
            .or_insert_with_key(|k| TestSuite::new(k.clone()))
            .add_test_case(case);
    }
}
