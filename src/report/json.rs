//! The full report as JSON: everything the other formats are made from. Its
//! schema is `docs/report.schema.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::run::{BenchReport, RunInfo, RunSummary, ScenarioReport};

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunReport {
    pub info: Option<RunInfo>,
    pub scenarios: Vec<ScenarioReport>,
    pub summary: RunSummary,
    /// Latency figures, when the run included a load run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bench: Option<BenchReport>,
}

/// A saved report that could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("`{path}` is not a gauntlet JSON report: {source}")]
    Parse {
        path: String,
        source: serde_path_to_error::Error<serde_json::Error>,
    },
}

impl RunReport {
    /// Reads a report saved with `--format json`.
    pub fn load(path: &Path) -> Result<RunReport, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(de).map_err(|source| LoadError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// A short name for the target the run was against.
    pub fn target_label(&self) -> String {
        self.info
            .as_ref()
            .map(|i| i.target.clone())
            .or_else(|| self.bench.as_ref().map(|b| b.target.target.clone()))
            .unwrap_or_else(|| "unknown".into())
    }
}
