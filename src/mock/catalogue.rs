//! The tool catalogue: `tools/list` entries as data, each with its input
//! schema compiled once, and name resolution in either matching mode.
//!
//! The bundled catalogue is five WizCommerce tools, one JSON file each under
//! `src/mock/tools/`. A user manifest (a saved `tools/list` result) loads
//! through the same path, so the mock can stand in for another server.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::names::NameMatching;

/// The bundled tool files, in `tools/list` order.
const BUNDLED: [(&str, &str); 5] = [
    (
        "post_customers.json",
        include_str!("tools/post_customers.json"),
    ),
    (
        "get_customers.json",
        include_str!("tools/get_customers.json"),
    ),
    (
        "get_customer_by_id.json",
        include_str!("tools/get_customer_by_id.json"),
    ),
    ("put_customer.json", include_str!("tools/put_customer.json")),
    (
        "delete_customer.json",
        include_str!("tools/delete_customer.json"),
    ),
];

/// The name of the 46-property customer-create tool.
pub const POST_CUSTOMERS: &str = "WizCommerce Open API_PostCustomers";
/// The name of the 10-property customer-list tool.
pub const GET_CUSTOMERS: &str = "WizCommerce Open API_GetCustomers";
/// The name of the single-customer read tool.
pub const GET_CUSTOMER_BY_ID: &str = "WizCommerce Open API_GetCustomerById";
/// The name of the customer-update tool.
pub const PUT_CUSTOMER: &str = "WizCommerce Open API_PutCustomer";
/// The name of the destructive customer-delete tool.
pub const DELETE_CUSTOMER: &str = "WizCommerce Open API_DeleteCustomer";

/// One `tools/list` entry, as it appears on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ToolEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input_schema: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<ToolAnnotations>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icons: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<Value>,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

/// The behaviour hints of a tool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ToolAnnotations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

/// What calling a tool does to the mock's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Creates a customer (PostCustomers).
    Create,
    /// Lists customers (GetCustomers).
    List,
    /// Reads one customer (GetCustomerById).
    Get,
    /// Updates one customer (PutCustomer).
    Update,
    /// Deletes one customer (DeleteCustomer).
    Delete,
    /// Touches nothing and echoes the arguments: tools from a user manifest.
    Echo,
}

impl Effect {
    /// The effect bound to a catalogue name. Only the bundled names have one;
    /// anything else just echoes, so a foreign manifest still works.
    pub fn for_name(name: &str) -> Effect {
        match name {
            POST_CUSTOMERS => Effect::Create,
            GET_CUSTOMERS => Effect::List,
            GET_CUSTOMER_BY_ID => Effect::Get,
            PUT_CUSTOMER => Effect::Update,
            DELETE_CUSTOMER => Effect::Delete,
            _ => Effect::Echo,
        }
    }
}

/// One violation of a tool's input schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaError {
    /// JSON pointer into the arguments.
    pub path: String,
    pub message: String,
}

/// A catalogue tool: its entry, its compiled validator and its effect.
#[derive(Debug)]
pub struct Tool {
    entry: ToolEntry,
    validator: jsonschema::Validator,
    effect: Effect,
}

impl Tool {
    /// The `tools/list` entry.
    pub fn entry(&self) -> &ToolEntry {
        &self.entry
    }

    /// The exact catalogue name.
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// What a call does to the store.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Every schema violation of `args`; empty when they are valid.
    pub fn validate(&self, args: &Value) -> Vec<SchemaError> {
        // The fast check allocates nothing; error details only on failure.
        if self.validator.is_valid(args) {
            return Vec::new();
        }
        self.validator
            .iter_errors(args)
            .map(|e| SchemaError {
                path: e.instance_path().as_str().to_owned(),
                message: e.to_string(),
            })
            .collect()
    }
}

/// Why a catalogue could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("tool file `{file}` is not a valid tool entry: {source}")]
    Entry {
        file: String,
        source: serde_json::Error,
    },
    #[error("manifest is not a `tools/list` result or an array of tools: {0}")]
    Manifest(serde_json::Error),
    #[error("input schema of tool `{name}` does not compile: {message}")]
    Schema { name: String, message: String },
    #[error("tool `{0}` is listed twice")]
    Duplicate(String),
    #[error("catalogue has no tools")]
    Empty,
}

/// A set of tools with name lookup.
#[derive(Debug)]
pub struct Catalogue {
    tools: Vec<Tool>,
    exact: HashMap<String, usize>,
    lenient: HashMap<String, usize>,
}

/// What a manifest file may hold: a `tools/list` result or just its array.
#[derive(Deserialize)]
#[serde(untagged)]
enum Manifest {
    Result {
        tools: Vec<ToolEntry>,
        #[serde(rename = "nextCursor")]
        #[allow(dead_code)]
        next_cursor: Option<String>,
    },
    Bare(Vec<ToolEntry>),
}

impl Catalogue {
    /// The five bundled WizCommerce tools.
    pub fn bundled() -> Result<Catalogue, CatalogueError> {
        let entries = BUNDLED
            .iter()
            .map(|(file, text)| {
                serde_json::from_str(text).map_err(|source| CatalogueError::Entry {
                    file: (*file).to_owned(),
                    source,
                })
            })
            .collect::<Result<Vec<ToolEntry>, _>>()?;
        Catalogue::from_entries(entries)
    }

    /// A catalogue from a saved `tools/list` result (`{"tools": [...]}`) or
    /// a bare array of tool entries.
    pub fn from_manifest(text: &str) -> Result<Catalogue, CatalogueError> {
        let manifest: Manifest = serde_json::from_str(text).map_err(CatalogueError::Manifest)?;
        let entries = match manifest {
            Manifest::Result { tools, .. } | Manifest::Bare(tools) => tools,
        };
        Catalogue::from_entries(entries)
    }

    /// A catalogue from tool entries, compiling every input schema.
    pub fn from_entries(entries: Vec<ToolEntry>) -> Result<Catalogue, CatalogueError> {
        if entries.is_empty() {
            return Err(CatalogueError::Empty);
        }
        let mut tools = Vec::with_capacity(entries.len());
        let mut exact = HashMap::new();
        let mut lenient = HashMap::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&entry.input_schema)
                .map_err(|e| CatalogueError::Schema {
                    name: entry.name.clone(),
                    message: e.to_string(),
                })?;
            match exact.entry(entry.name.clone()) {
                Entry::Occupied(_) => return Err(CatalogueError::Duplicate(entry.name)),
                Entry::Vacant(v) => v.insert(i),
            };
            // Two names folding to one key: the first listed wins, as a
            // server scanning its registry in order would pick it.
            lenient
                .entry(NameMatching::Lenient.key(&entry.name))
                .or_insert(i);
            tools.push(Tool {
                effect: Effect::for_name(&entry.name),
                entry,
                validator,
            });
        }
        Ok(Catalogue {
            tools,
            exact,
            lenient,
        })
    }

    /// Every tool, in listing order.
    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    /// The tool a (possibly mangled) name resolves to under `matching`.
    pub fn resolve(&self, name: &str, matching: NameMatching) -> Option<&Tool> {
        let index = match matching {
            NameMatching::Exact => self.exact.get(name),
            NameMatching::Lenient => self.lenient.get(&NameMatching::Lenient.key(name)),
        };
        index.and_then(|i| self.tools.get(*i))
    }
}

/// How many property names a schema declares, counted at every depth: the
/// keys of every `properties` object, wherever it sits.
pub fn count_properties(schema: &Value) -> usize {
    match schema {
        Value::Object(map) => {
            let own = map
                .get("properties")
                .and_then(Value::as_object)
                .map_or(0, |p| p.len());
            own + map.values().map(count_properties).sum::<usize>()
        }
        Value::Array(items) => items.iter().map(count_properties).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn bundled() -> Catalogue {
        Catalogue::bundled().unwrap()
    }

    #[test]
    fn post_customers_has_exactly_46_properties() {
        let cat = bundled();
        let post = cat.resolve(POST_CUSTOMERS, NameMatching::Exact).unwrap();
        assert_eq!(count_properties(&post.entry().input_schema), 46);
    }

    #[test]
    fn get_customers_has_exactly_10_properties() {
        let cat = bundled();
        let get = cat.resolve(GET_CUSTOMERS, NameMatching::Exact).unwrap();
        assert_eq!(count_properties(&get.entry().input_schema), 10);
    }

    #[test]
    fn bundled_tools_are_the_five_with_effects() {
        let cat = bundled();
        let got: Vec<(&str, Effect)> = cat.tools().iter().map(|t| (t.name(), t.effect())).collect();
        assert_eq!(
            got,
            vec![
                (POST_CUSTOMERS, Effect::Create),
                (GET_CUSTOMERS, Effect::List),
                (GET_CUSTOMER_BY_ID, Effect::Get),
                (PUT_CUSTOMER, Effect::Update),
                (DELETE_CUSTOMER, Effect::Delete),
            ]
        );
        for known in [POST_CUSTOMERS, GET_CUSTOMERS] {
            let tool = cat.resolve(known, NameMatching::Exact).unwrap();
            assert_eq!(tool.entry().description.as_deref(), Some("List Attributes"));
        }
        let destructive: Vec<&str> = cat
            .tools()
            .iter()
            .filter(|t| {
                t.entry()
                    .annotations
                    .as_ref()
                    .and_then(|a| a.destructive_hint)
                    == Some(true)
            })
            .map(Tool::name)
            .collect();
        assert_eq!(destructive, vec![DELETE_CUSTOMER]);
    }

    #[test]
    fn names_resolve_leniently_but_not_exactly() {
        let cat = bundled();
        for variant in [
            "wizcommerce open api_postcustomers",
            " WizCommerce Open API_PostCustomers ",
            "WizCommerce Open API_Post\u{200B}Customers",
            "ＷｉｚＣｏｍｍｅｒｃｅ Open API_PostCustomers",
        ] {
            let lenient = cat.resolve(variant, NameMatching::Lenient).map(Tool::name);
            assert_eq!(lenient, Some(POST_CUSTOMERS), "{variant:?}");
            assert!(
                cat.resolve(variant, NameMatching::Exact).is_none(),
                "{variant:?}"
            );
        }
        assert!(
            cat.resolve("PostCustomers", NameMatching::Lenient)
                .is_none()
        );
    }

    #[test]
    fn validation_checks_formats_enums_and_required_fields() {
        let cat = bundled();
        let post = cat.resolve(POST_CUSTOMERS, NameMatching::Exact).unwrap();
        let ok = json!({"company_name": "Acme", "first_name": "Ada", "email": "ada@acme.test"});
        assert_eq!(post.validate(&ok), vec![]);

        let bad = json!({"company_name": "Acme", "first_name": "Ada", "email": "not-an-email",
                         "payment_term": "net_7", "credit_limit": -1, "surprise": true});
        let errors = post.validate(&bad);
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for want in ["/email", "/payment_term", "/credit_limit", ""] {
            assert!(paths.contains(&want), "{want} missing from {errors:?}");
        }
        let missing = post.validate(&json!({"company_name": "Acme"}));
        assert!(
            missing.iter().any(|e| e.message.contains("email")),
            "{missing:?}"
        );
        assert!(!post.validate(&json!("not an object")).is_empty());
    }

    #[test]
    fn manifest_loads_both_shapes_and_rejects_duplicates() {
        let entry = json!({"name": "echo", "inputSchema": {"type": "object"}});
        let result = json!({"tools": [entry], "nextCursor": null}).to_string();
        let cat = Catalogue::from_manifest(&result).unwrap();
        assert_eq!(cat.tools()[0].effect(), Effect::Echo);
        let bare = json!([entry]).to_string();
        assert_eq!(Catalogue::from_manifest(&bare).unwrap().tools().len(), 1);
        let twice = json!([entry, entry]).to_string();
        assert!(matches!(
            Catalogue::from_manifest(&twice),
            Err(CatalogueError::Duplicate(n)) if n == "echo"
        ));
        let unknown_field = json!([{"name": "x", "inputSchema": {}, "colour": 1}]).to_string();
        assert!(Catalogue::from_manifest(&unknown_field).is_err());
        assert!(matches!(
            Catalogue::from_manifest("[]"),
            Err(CatalogueError::Empty)
        ));
    }
}
