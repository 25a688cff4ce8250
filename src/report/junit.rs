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
        let _ = writeln!(out, "{} ({:?}): {}", f.verdict.as_str(), f.check, f.message);
        if let Some(rule) = &f.rule {
            let _ = writeln!(out, "  rule: {rule}");
        }
        if let Some(frame) = &f.frame {
            let _ = writeln!(out, "  frame: {frame}");
        }
    }
    let _ = writeln!(out, "replay: {}", s.replay);
    out
}

/// Renders the report as JUnit XML.
pub fn render(report: &RunReport) -> Result<String, String> {
    let mut junit = Report::new("gauntlet");
    let mut suites: BTreeMap<String, TestSuite> = BTreeMap::new();
    for s in &report.scenarios {
        let status = match s.status {
            Status::Passed => TestCaseStatus::success(),
            Status::Skipped => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(s.errors.join("; "));
                st
            }
            Status::Failed => {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let first = s
                    .target
                    .as_ref()
                    .and_then(|t| t.findings.first())
                    .map(|f| f.message.clone())
                    .unwrap_or_default();
                st.set_message(first)
                    .set_type("finding")
                    .set_description(details(s));
                st
            }
            Status::Broken | Status::Error => {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
                st.set_message(if s.status == Status::Broken {
                    "control run did not land".to_owned()
                } else {
                    s.errors.join("; ")
                })
                .set_type(s.status.as_str())
                .set_description(details(s));
                st
            }
        };
        let mut case = TestCase::new(format!("{} — {}", s.id, s.title), status);
        case.set_classname(format!("gauntlet.{}", s.category))
            .set_time(Duration::from_millis(s.duration_ms));
        suites
            .entry(s.category.to_string())
            .or_insert_with_key(|k| TestSuite::new(k.clone()))
            .add_test_case(case);
    }
    junit.add_test_suites(suites.into_values());
    junit.to_string().map_err(|e| e.to_string())
}
