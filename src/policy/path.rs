//! Argument paths (`args.a.b.0.c`) and the document paths diagnostics use.

use std::fmt;

use serde_json::Value;

/// A parsed path into a call's arguments, written `args.a.b.0.c`.
///
/// A numeric segment indexes an array, or names a key when the value there
/// is an object. Keys that contain a dot cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArgPath {
    text: String,
    segments: Vec<PathSegment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PathSegment {
    key: String,
    index: Option<usize>,
}

impl ArgPath {
    /// Parses `args.<segment>(.<segment>)*`; segments must not be empty.
    pub fn parse(text: &str) -> Result<ArgPath, String> {
        let Some(rest) = text.strip_prefix("args.") else {
            return Err(format!("path must start with `args.`, got `{text}`"));
        };
        let mut segments = Vec::new();
        for key in rest.split('.') {
            if key.is_empty() {
                return Err(format!("path `{text}` has an empty segment"));
            }
            let index = if key.bytes().all(|b| b.is_ascii_digit()) {
                key.parse().ok()
            } else {
                None
            };
            segments.push(PathSegment {
                key: key.to_owned(),
                index,
            });
        }
        Ok(ArgPath {
            text: text.to_owned(),
            segments,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value at this path in `args` (the arguments object), if any.
    pub fn get<'a>(&self, args: &'a Value) -> Option<&'a Value> {
        let mut current = args;
        for seg in &self.segments {
            current = match current {
                Value::Object(map) => map.get(&seg.key)?,
                Value::Array(items) => items.get(seg.index?)?,
                _ => return None,
            };
        }
        Some(current)
    }
}

impl fmt::Display for ArgPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One step of a path into a policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A path into a policy document, rendered per dialect.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct DocPath(pub(crate) Vec<Seg>);

impl DocPath {
    pub(crate) fn key(&self, key: &str) -> DocPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        DocPath(segs)
    }

    pub(crate) fn index(&self, index: usize) -> DocPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        DocPath(segs)
    }

    /// RFC 6901 JSON pointer.
    pub(crate) fn pointer(&self) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            out.push('/');
            match seg {
                Seg::Key(k) => out.push_str(&k.replace('~', "~0").replace('/', "~1")),
                Seg::Index(i) => out.push_str(&i.to_string()),
            }
        }
        out
    }

    /// `tools.create_charge.rules[0].op`; keys that would be ambiguous are quoted.
    pub(crate) fn yaml(&self) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    if k.is_empty() || k.contains(['.', '[', ']', '"']) {
                        out.push_str(&format!("{k:?}"));
                    } else {
                        out.push_str(k);
                    }
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    pub(crate) fn render(&self, dialect: super::Dialect) -> String {
        match dialect {
            super::Dialect::Json => self.pointer(),
            super::Dialect::Yaml => self.yaml(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_keys_and_indices() {
        let args = json!({"a": {"b": [{"c": 1}, {"c": 2}]}, "0": "zero"});
        assert_eq!(
            ArgPath::parse("args.a.b.1.c").unwrap().get(&args),
            Some(&json!(2))
        );
        assert_eq!(
            ArgPath::parse("args.a.b.0").unwrap().get(&args),
            Some(&json!({"c": 1}))
        );
        // A numeric segment names a key when the value there is an object.
        assert_eq!(
            ArgPath::parse("args.0").unwrap().get(&args),
            Some(&json!("zero"))
        );
    }

    #[test]
    fn missing_and_mistyped_steps_give_none() {
        let args = json!({"a": {"b": [1]}, "s": "text"});
        for path in [
            "args.x",
            "args.a.b.1",
            "args.a.b.x",
            "args.s.0",
            "args.a.b.0.c",
        ] {
            assert_eq!(ArgPath::parse(path).unwrap().get(&args), None, "{path}");
        }
        assert_eq!(ArgPath::parse("args.a").unwrap().get(&json!([1])), None);
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in ["a.b", "args", "args.", "args.a..b", "state.x.y"] {
            assert!(ArgPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn doc_paths_render_per_dialect() {
        let p = DocPath::default()
            .key("tools")
            .key("a/b~c")
            .index(0)
            .key("op");
        assert_eq!(p.pointer(), "/tools/a~1b~0c/0/op");
        assert_eq!(
            DocPath::default().key("tools").key("x.y").index(2).yaml(),
            "tools.\"x.y\"[2]"
        );
        assert_eq!(
            DocPath::default()
                .key("tools")
                .key("*")
                .key("rules")
                .index(0)
                .yaml(),
            "tools.*.rules[0]"
        );
    }
}
