//! Input schemas of the upstream's tools, compiled once.

use std::collections::HashMap;

use serde_json::Value;

use super::model::fold_name;
use crate::names::lenient_key;

enum Entry {
    Ready(Box<jsonschema::Validator>),
    /// A schema that does not compile: every call to the tool is refused.
    Broken(String),
}

/// Tool name (folded leniently) to its compiled input schema.
#[derive(Default)]
pub struct SchemaSet {
    tools: HashMap<String, Entry>,
}

impl std::fmt::Debug for SchemaSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaSet")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SchemaSet {
    /// Compiles the `inputSchema` of each `tools/list` entry (`{name, inputSchema, ...}`).
    /// Entries without a name or schema are skipped.
    pub fn from_tools(tools: &[Value]) -> SchemaSet {
        let mut set = SchemaSet::default();
        for tool in tools {
            let (Some(name), Some(schema)) = (
                tool.get("name").and_then(Value::as_str),
                tool.get("inputSchema"),
            ) else {
                continue;
            };
            let entry = match jsonschema::validator_for(schema) {
                Ok(v) => Entry::Ready(Box::new(v)),
                Err(e) => Entry::Broken(format!(
                    "the input schema of `{name}` does not compile: {e}"
                )),
            };
            set.tools.insert(lenient_key(name), entry);
        }
        set
    }

    /// Whether the set has a schema for `tool`.
    pub fn knows(&self, tool: &str) -> bool {
        self.tools.contains_key(fold_name(tool).as_ref())
    }

    /// Checks `args` against the schema of `tool`; a tool without a schema passes.
    pub fn check(&self, tool: &str, args: &Value) -> Result<(), Vec<String>> {
        self.check_key(&fold_name(tool), args).unwrap_or(Ok(()))
    }

    /// Like `check`, by lenient key; `None` when the tool has no schema.
    pub(crate) fn check_key(&self, key: &str, args: &Value) -> Option<Result<(), Vec<String>>> {
        Some(match self.tools.get(key)? {
            Entry::Broken(why) => Err(vec![why.clone()]),
            Entry::Ready(v) if v.is_valid(args) => Ok(()),
            Entry::Ready(v) => Err(v
                .iter_errors(args)
                .map(|e| {
                    let at = e.instance_path().to_string();
                    if at.is_empty() {
                        e.to_string()
                    } else {
                        format!("{at}: {e}")
                    }
                })
                .collect()),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set() -> SchemaSet {
        SchemaSet::from_tools(&[
            json!({"name": "Post", "inputSchema": {"type": "object", "required": ["email"],
                "properties": {"email": {"type": "string"}, "credit_limit": {"type": "number"}}}}),
            json!({"name": "Broken", "inputSchema": {"type": 12}}),
            json!({"description": "no name"}),
        ])
    }

    #[test]
    fn valid_args_pass_and_invalid_ones_list_errors() {
        let set = set();
        assert_eq!(set.check("Post", &json!({"email": "a@b"})), Ok(()));
        assert_eq!(
            set.check(" post\u{200B} ", &json!({"email": "a@b"})),
            Ok(())
        );
        let errors = set
            .check("Post", &json!({"credit_limit": "10"}))
            .unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("email")), "{errors:?}");
        assert!(
            errors.iter().any(|e| e.starts_with("/credit_limit")),
            "{errors:?}"
        );
    }

    #[test]
    fn unknown_tools_pass_and_broken_schemas_refuse() {
        let set = set();
        assert!(!set.knows("Other"));
        assert_eq!(set.check("Other", &json!(1)), Ok(()));
        assert!(set.check("Broken", &json!({})).is_err());
    }
}
