//! Loading one file or a whole catalogue, and picking scenarios from it.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use super::convert::{self, Draft, FileFacts, RawPolicy};
use super::error::{Diagnostic, ScenarioError};
use super::locate::{FieldPath, LineCol, Locator};
use super::types::{Category, PolicySource, Scenario};
use crate::policy::{self, Policy, PolicyError};

/// The folder under a catalogue that holds the policies.
pub const POLICIES_DIR: &str = "policies";

/// Loads scenario files against one policies folder.
#[derive(Debug, Clone)]
pub struct Loader {
    policies: PathBuf,
    check_layout: bool,
}

impl Loader {
    /// A loader whose `policy = "x"` names `policies_dir/x`; it checks the
    /// catalogue layout, `<category>/<id>.toml`.
    pub fn new(policies_dir: impl Into<PathBuf>) -> Loader {
        Loader {
            policies: policies_dir.into(),
            check_layout: true,
        }
    }

    /// Whether the file stem must equal the id and the parent folder the
    /// category. Off for files kept outside a catalogue, such as fixtures.
    pub fn check_layout(mut self, on: bool) -> Loader {
        self.check_layout = on;
        self
    }

    /// The policies folder.
    pub fn policies_dir(&self) -> &Path {
        &self.policies
    }

    /// Reads and checks one file.
    pub fn load_file(&self, path: &Path) -> Result<Scenario, ScenarioError> {
        let src = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.load_str(&src, path)
    }

    /// Checks `src` as if it were the file at `path`.
    pub fn load_str(&self, src: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let display = path.display().to_string();
        let (stem, folder) = if self.check_layout {
            (
                path.file_stem().and_then(|s| s.to_str()),
                path.parent()
                    .and_then(Path::file_name)
                    .and_then(|s| s.to_str()),
            )
        } else {
            (None, None)
        };
        let facts = FileFacts {
            display: &display,
            stem,
            folder,
        };
        let draft = convert::draft(src, &facts)?;
        self.finish(src, &display, path, draft)
    }

    fn finish(
        &self,
        src: &str,
        display: &str,
        path: &Path,
        d: Draft,
    ) -> Result<Scenario, ScenarioError> {
        let loc = Locator::new(src);
        let at_field = |message: String| {
            let at = loc.find(&d.policy_field);
            Diagnostic {
                file: display.to_owned(),
                line: at.line,
                column: at.column,
                field: d.policy_field.to_string(),
                message,
            }
        };
        let (policy, model) = match d.policy {
            RawPolicy::File(name) => {
                let file = self
                    .resolve(&name)
                    .map_err(|m| ScenarioError::one(at_field(m)))?;
                let model = policy::load_file(&file).map_err(|e| {
                    ScenarioError::Invalid(
                        e.diagnostics
                            .iter()
                            .map(|pd| at_field(format!("does not load: {pd}")))
                            .collect(),
                    )
                })?;
                (PolicySource::File(file), model)
            }
            RawPolicy::Inline(text) => {
                let model = parse_inline(&text).map_err(|e| {
                    let start = loc.string_start(&d.policy_field);
                    ScenarioError::Invalid(
                        e.diagnostics
                            .iter()
                            .map(|pd| inline_diagnostic(display, &d.policy_field, start, pd))
                            .collect(),
                    )
                })?;
                (PolicySource::Inline(text), model)
            }
        };
        let f = d.fields;
        let mut problems = Vec::new();
        for (i, step) in f.steps.iter().enumerate() {
            if step.at.is_some()
                && let Some(tool) = step.kind.tool()
                && !has_limit(&model, tool)
            {
                let p = FieldPath::step(i).then("at");
                let at = loc.find(&p);
                problems.push(Diagnostic {
                    file: display.to_owned(),
                    line: at.line,
                    column: at.column,
                    field: p.to_string(),
                    message: format!(
                        "the policy sets no limit on `{tool}`, so it has no window edge"
                    ),
                });
            }
        }
        if !problems.is_empty() {
            return Err(ScenarioError::Invalid(problems));
        }
        Ok(Scenario {
            id: f.id,
            title: f.title,
            category: f.category,
            severity: f.severity,
            description: f.description,
            references: f.references,
            policy,
            model,
            revision: f.revision,
            transport: f.transport,
            strict_mock: f.strict_mock,
            steps: f.steps,
            expect: f.expect,
            rule: f.rule,
            path: path.to_path_buf(),
        })
    }

    /// The file a `policy = "name"` refers to; names stay inside the folder.
    fn resolve(&self, name: &str) -> Result<PathBuf, String> {
        let rel = Path::new(name);
        if name.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(format!(
                "`{name}` must be a relative path inside the policies folder, without `..`"
            ));
        }
        let file = self.policies.join(rel);
        if file.is_file() {
            Ok(file)
        } else {
            Err(format!(
                "policy `{name}` not found in {}",
                self.policies.display()
            ))
        }
    }
}

/// Inline policy text: JSON when it starts with `{`, else Intercept YAML.
fn parse_inline(text: &str) -> Result<Policy, PolicyError> {
    if text.trim_start().starts_with('{') {
        policy::parse_json(text, "policy_inline")
    } else {
        policy::parse_yaml(text, "policy_inline")
    }
}

/// A policy diagnostic moved onto the scenario file's lines.
fn inline_diagnostic(
    file: &str,
    field: &FieldPath,
    start: Option<LineCol>,
    pd: &policy::Diagnostic,
) -> Diagnostic {
    let start = start.unwrap_or(LineCol { line: 1, column: 1 });
    let (line, column) = if pd.line == 0 {
        (start.line, start.column)
    } else if pd.line == 1 {
        (start.line, start.column + pd.column.saturating_sub(1))
    } else {
        (start.line + pd.line - 1, pd.column.max(1))
    };
    let message = if pd.path.is_empty() {
        pd.message.clone()
    } else {
        format!("at `{}`: {}", pd.path, pd.message)
    };
    Diagnostic {
        file: file.to_owned(),
        line,
        column,
        field: field.to_string(),
        message,
    }
}

/// Whether any limit applies to calls of `tool`.
fn has_limit(model: &Policy, tool: &str) -> bool {
    !model.all_tools.is_empty()
        || model.tool_rule(tool).is_some_and(|r| !r.limits.is_empty())
        || model.wildcard_rule().is_some_and(|r| !r.limits.is_empty())
}

/// Loads one file laid out as `<catalogue>/<category>/<id>.toml`; its
/// policies come from `<catalogue>/policies/`.
pub fn load_file(path: &Path) -> Result<Scenario, ScenarioError> {
    let catalogue = path
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| Path::new("."));
    Loader::new(catalogue.join(POLICIES_DIR)).load_file(path)
}

/// Loads every `*.toml` under `dir` (except `dir/policies`), sorted by
/// category then id. Every bad file is reported, not only the first.
pub fn load_catalogue(dir: &Path) -> Result<Vec<Scenario>, ScenarioError> {
    let loader = Loader::new(dir.join(POLICIES_DIR));
    let mut errors = Vec::new();
    let mut files = Vec::new();
    walk(dir, dir, 0, &mut files, &mut errors)?;
    files.sort();
    let mut out: Vec<Scenario> = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        match loader.load_file(&file) {
            Ok(s) => {
                if let Some(first) = seen.get(&s.id) {
                    errors.push(ScenarioError::DuplicateId {
                        id: s.id.clone(),
                        first: first.display().to_string(),
                        second: file.display().to_string(),
                    });
                } else {
                    seen.insert(s.id.clone(), file);
                    out.push(s);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 if out.is_empty() => Err(ScenarioError::Empty {
            dir: dir.display().to_string(),
        }),
        0 => {
            out.sort_by(|a, b| (a.category, &a.id).cmp(&(b.category, &b.id)));
            Ok(out)
        }
        1 => Err(errors.remove(0)),
        _ => Err(ScenarioError::Many(errors)),
    }
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    files: &mut Vec<PathBuf>,
    errors: &mut Vec<ScenarioError>,
) -> Result<(), ScenarioError> {
    let read_err = |source| ScenarioError::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read_err)?;
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("");
        if path.is_dir() {
            if depth == 0 && name == POLICIES_DIR {
                continue;
            }
            if depth == 0 && Category::parse(name).is_none() && !name.starts_with('.') {
                errors.push(misplaced(
                    &path,
                    format!("`{name}` is not a category folder"),
                ));
                continue;
            }
            if depth == 0 {
                walk(root, &path, depth + 1, files, errors)?;
            } else if !name.starts_with('.') {
                errors.push(misplaced(
                    &path,
                    "a category folder holds scenario files, not folders".to_owned(),
                ));
            }
        } else if path.extension().is_some_and(|e| e == "toml") {
            if depth == 1 {
                files.push(path);
            } else {
                errors.push(misplaced(
                    &path,
                    format!(
                        "scenario files live in a category folder: {}/<category>/<id>.toml",
                        root.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn misplaced(path: &Path, message: String) -> ScenarioError {
    ScenarioError::one(Diagnostic {
        file: path.display().to_string(),
        line: 1,
        column: 1,
        field: String::new(),
        message,
    })
}

/// Picks scenarios by id, category, path (a file or a folder), or an id
/// glob with `*`. No patterns picks everything. A pattern that matches
/// nothing is an error, so a typo does not silently run less.
pub fn select(all: &[Scenario], patterns: &[String]) -> Result<Vec<Scenario>, ScenarioError> {
    if patterns.is_empty() {
        return Ok(all.to_vec());
    }
    let mut keep = vec![false; all.len()];
    for pattern in patterns {
        let mut hit = false;
        for (k, s) in keep.iter_mut().zip(all) {
            if picks(pattern, s) {
                *k = true;
                hit = true;
            }
        }
        if !hit {
            return Err(ScenarioError::NoMatch {
                pattern: pattern.clone(),
            });
        }
    }
    Ok(all
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(s, _)| s.clone())
        .collect())
}

fn picks(pattern: &str, s: &Scenario) -> bool {
    let pattern = pattern.trim_end_matches('/');
    if pattern == s.id || pattern == s.category.as_str() {
        return true;
    }
    if pattern.contains('*') && !pattern.contains('/') {
        return glob(pattern, &s.id);
    }
    let p = Path::new(pattern);
    s.path == p || s.path.starts_with(p) || same_file(p, &s.path)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => b.starts_with(&a),
        _ => false,
    }
}

/// `*` matches any run of characters; everything else is literal.
fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = match parts.split_first() {
        Some(x) => x,
        None => return false,
    };
    let Some(mut tail) = s.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return tail.is_empty();
    };
    for part in middle {
        match tail.find(part) {
            Some(i) => tail = &tail[i + part.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_ids() {
        assert!(glob("rl-*", "rl-bulk"));
        assert!(glob("*-bulk", "rl-bulk"));
        assert!(glob("rl-*-bulk", "rl-seq-bulk"));
        assert!(!glob("rl-*-bulk", "rl-bulk"));
        assert!(glob("*", "x"));
        assert!(!glob("fo*", "bar"));
        assert!(glob("a*a", "aa"));
        assert!(!glob("a*a", "a"));
    }

    #[test]
    fn policy_names_stay_inside_the_folder() {
        let l = Loader::new("attacks/policies");
        assert!(
            l.resolve("../Cargo.toml")
                .unwrap_err()
                .contains("without `..`")
        );
        assert!(l.resolve("/etc/passwd").unwrap_err().contains("relative"));
        assert!(l.resolve("").is_err());
        assert!(l.resolve("nope.json").unwrap_err().contains("not found"));
    }
}
