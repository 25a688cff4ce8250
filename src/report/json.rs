//! The full report as JSON: everything the other formats are made from.

use serde::{Deserialize, Serialize};

use crate::run::{RunInfo, RunSummary, ScenarioReport};

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub info: Option<RunInfo>,
    pub scenarios: Vec<ScenarioReport>,
    pub summary: RunSummary,
    /// A load bench's figures, when the report carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bench: Option<crate::load::BenchReport>,
}
