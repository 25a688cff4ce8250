//! What goes wrong loading scenarios, with file, line and field.

use std::fmt;

/// One problem in one scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as the caller named it.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// The field, such as `step[2].concurrency`; empty for the whole file.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// A scenario or a catalogue that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A file or folder could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The path as the caller named it.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// One file has problems; one diagnostic per problem.
    #[error("{}", join(.0))]
    Invalid(Vec<Diagnostic>),
    /// Two files claim the same id.
    #[error("{second}: id `{id}` is already used by {first}")]
    DuplicateId {
        /// The id.
        id: String,
        /// The file loaded first.
        first: String,
        /// The file refused.
        second: String,
    },
    /// A catalogue folder holds no scenario.
    #[error("{dir}: no scenario files found (expected `<category>/<id>.toml`)")]
    Empty {
        /// The catalogue folder.
        dir: String,
    },
    /// A selection pattern matched nothing.
    #[error("no scenario matches `{pattern}` (give an id, a category, or a path)")]
    NoMatch {
        /// The pattern.
        pattern: String,
    },
    /// An id asked for by `show` is not in the catalogue.
    #[error("no scenario has the id `{id}`")]
    UnknownId {
        /// The id.
        id: String,
    },
    /// Several files failed; each error is kept.
    #[error("{}", join(.0))]
    Many(Vec<ScenarioError>),
}

impl ScenarioError {
    /// A single-problem error.
    pub fn one(d: Diagnostic) -> ScenarioError {
        ScenarioError::Invalid(vec![d])
    }

    /// Every diagnostic held, flattening `Many`.
    pub fn diagnostics(&self) -> Vec<&Diagnostic> {
        match self {
            ScenarioError::Invalid(ds) => ds.iter().collect(),
            ScenarioError::Many(es) => es.iter().flat_map(ScenarioError::diagnostics).collect(),
            _ => Vec::new(),
        }
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
