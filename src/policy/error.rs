//! Load and validation errors, one diagnostic per problem.

use std::fmt;

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name as given to the loader.
    pub file: String,
    /// 1-based line; 0 when the problem has no place (an unreadable file).
    pub line: u32,
    /// 1-based column; 0 when unknown.
    pub column: u32,
    /// A JSON pointer (JSON dialect) or a YAML path (YAML dialect); empty for syntax errors.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            write!(f, "at `{}`: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// A policy that could not be loaded, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.diagnostics))]
pub struct PolicyError {
    /// The problems, in file order where known.
    pub diagnostics: Vec<Diagnostic>,
}

fn render(diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

impl PolicyError {
    /// An error with a single diagnostic that has no place in the file.
    pub fn whole_file(file: &str, message: String) -> PolicyError {
        PolicyError {
            diagnostics: vec![Diagnostic {
                file: file.to_owned(),
                line: 0,
                column: 0,
                path: String::new(),
                message,
            }],
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_per_problem() {
        let d = |line, path: &str, message: &str| Diagnostic {
            file: "policy.yaml".into(),
            line,
            column: 9,
            path: path.into(),
            message: message.into(),
        };
        let err = PolicyError {
            diagnostics: vec![
                d(
                    12,
                    "tools.create_charge.rules[0].conditions[0].op",
                    "unknown op `gtx`",
                ),
                d(3, "", "did not find expected key"),
            ],
        };
        assert_eq!(
            err.to_string(),
            "policy.yaml:12:9: at `tools.create_charge.rules[0].conditions[0].op`: unknown op `gtx`\n\
             policy.yaml:3:9: did not find expected key"
        );
        assert_eq!(
            PolicyError::whole_file("p.json", "cannot read".into()).to_string(),
            "p.json: cannot read"
        );
    }
}
