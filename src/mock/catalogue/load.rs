//! Reading manifests: a `tools/list` result or a bare array in one file, or
//! a folder of tool files. Every bad entry is reported with its file, the
//! JSON pointer of the offending value and, when it has one, the tool name.

use std::fmt;
use std::path::Path;

use serde_json::Value;

use super::ToolEntry;

/// Where a tool entry (or a value inside it) sits in a manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The manifest file (or the folder's tool file) as given.
    pub file: String,
    /// A JSON pointer into that file; empty for the whole file.
    pub pointer: String,
    /// The entry's tool name, when it has a readable one.
    pub tool: Option<String>,
}

impl Location {
    pub(super) fn entry(file: &str, pointer: String, tool: &str) -> Location {
        Location {
            file: file.to_owned(),
            pointer,
            tool: Some(tool.to_owned()),
        }
    }

    /// The same place, further in by `suffix` (a JSON pointer).
    pub(super) fn within(mut self, suffix: &str) -> Location {
        self.pointer.push_str(suffix);
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.file)?;
        if !self.pointer.is_empty() {
            write!(f, " at `{}`", self.pointer)?;
        }
        if let Some(tool) = &self.tool {
            write!(f, " (tool `{tool}`)")?;
        }
        Ok(())
    }
}

/// Why a catalogue could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("reading `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("`{file}` is not JSON: {source}")]
    Json {
        file: String,
        source: serde_json::Error,
    },
    #[error(
        "`{file}` is neither a `tools/list` result (`{{\"tools\": [...]}}`) nor an array of tools: {reason}"
    )]
    Shape { file: String, reason: String },
    #[error("{at}: not a tool entry: {message}")]
    Entry { at: Location, message: String },
    #[error("{at}: the schema does not compile: {message}")]
    Schema { at: Location, message: String },
    #[error("{at}: tool `{name}` is listed twice (first in {first})")]
    Duplicate {
        at: Box<Location>,
        name: String,
        first: Box<Location>,
    },
    #[error("`{0}` has no tools")]
    Empty(String),
}

/// The keys a saved `tools/list` result may have besides `tools`.
const RESULT_KEYS: [&str; 3] = ["tools", "nextCursor", "_meta"];

/// The entries of a manifest file's text, each with its location.
pub(super) fn manifest_entries(
    text: &str,
    file: &str,
) -> Result<Vec<(Location, ToolEntry)>, CatalogueError> {
    let value: Value = serde_json::from_str(text).map_err(|source| CatalogueError::Json {
        file: file.to_owned(),
        source,
    })?;
    let (items, prefix) = match value {
        Value::Array(items) => (items, ""),
        Value::Object(mut map) => {
            if let Some(extra) = map.keys().find(|k| !RESULT_KEYS.contains(&k.as_str())) {
                let reason = if map.contains_key("inputSchema") {
                    "it is a single tool; put it in an array, or in a folder of tool files"
                        .to_owned()
                } else {
                    format!("unknown key `{extra}`")
                };
                return Err(CatalogueError::Shape {
                    file: file.to_owned(),
                    reason,
                });
            }
            match map.remove("tools") {
                Some(Value::Array(items)) => (items, "/tools"),
                Some(other) => {
                    return Err(CatalogueError::Shape {
                        file: file.to_owned(),
                        reason: format!("`tools` is {}, not an array", kind(&other)),
                    });
                }
                None => {
                    return Err(CatalogueError::Shape {
                        file: file.to_owned(),
                        reason: "it has no `tools` key".into(),
                    });
                }
            }
        }
        other => {
            return Err(CatalogueError::Shape {
                file: file.to_owned(),
                reason: format!("it is {}", kind(&other)),
            });
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| entry(item, file, format!("{prefix}/{i}")))
        .collect()
}

/// The entries of tool files, one tool object per file, in the order given.
pub(super) fn tool_files(
    files: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(Location, ToolEntry)>, CatalogueError> {
    files
        .into_iter()
        .map(|(file, text)| {
            let value: Value =
                serde_json::from_str(&text).map_err(|source| CatalogueError::Json {
                    file: file.clone(),
                    source,
                })?;
            entry(value, &file, String::new())
        })
        .collect()
}

/// Every `.json` file directly in `dir`, sorted by file name, with its text.
pub(super) fn read_folder(dir: &Path) -> Result<Vec<(String, String)>, CatalogueError> {
    let read_err = |path: &Path, source| CatalogueError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut paths = Vec::new();
    for item in std::fs::read_dir(dir).map_err(|e| read_err(dir, e))? {
        let path = item.map_err(|e| read_err(dir, e))?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "json") {
            paths.push(path);
        }
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
            Ok((path.display().to_string(), text))
        })
        .collect()
}

fn entry(
    value: Value,
    file: &str,
    pointer: String,
) -> Result<(Location, ToolEntry), CatalogueError> {
    let at = Location {
        file: file.to_owned(),
        pointer,
        tool: value.get("name").and_then(Value::as_str).map(str::to_owned),
    };
    let parsed: ToolEntry = serde_path_to_error::deserialize(&value).map_err(|e| {
        let inner = pointer_of(e.path());
        CatalogueError::Entry {
            at: at.clone().within(&inner),
            message: e.into_inner().to_string(),
        }
    })?;
    if parsed.name.trim().is_empty() {
        return Err(CatalogueError::Entry {
            at: at.within("/name"),
            message: "the tool name is empty".into(),
        });
    }
    Ok((at, parsed))
}

/// A serde path as a JSON pointer (`/annotations/readOnlyHint`).
fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push('/');
                out.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Unknown => {}
        }
    }
    out
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
