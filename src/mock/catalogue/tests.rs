//! Tests of the catalogue: the bundled tools, names, validation, manifests.

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
    let cat = Catalogue::from_manifest(&result, "m.json").unwrap();
    assert_eq!(cat.tools()[0].effect(), Effect::Echo);
    let bare = json!([entry]).to_string();
    assert_eq!(
        Catalogue::from_manifest(&bare, "m.json")
            .unwrap()
            .tools()
            .len(),
        1
    );
    let twice = json!({"tools": [entry, entry]}).to_string();
    let err = Catalogue::from_manifest(&twice, "m.json").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`m.json` at `/tools/1` (tool `echo`): tool `echo` is listed twice \
         (first in `m.json` at `/tools/0` (tool `echo`))"
    );
    assert!(matches!(
        Catalogue::from_manifest("[]", "m.json"),
        Err(CatalogueError::Empty(f)) if f == "m.json"
    ));
}

/// Each broken manifest, and the message that must point at the culprit.
#[test]
fn bad_entries_are_reported_with_file_pointer_and_tool() {
    let ok = json!({"name": "fine", "inputSchema": {"type": "object"}});
    let cases = [
        (
            json!({"tools": [ok, {"name": "x", "inputSchema": {}, "colour": 1}]}),
            "`m.json` at `/tools/1/colour` (tool `x`): not a tool entry: unknown field `colour`",
        ),
        (
            json!([ok, ok.clone(), {"name": "ann", "inputSchema": {},
                  "annotations": {"readOnlyHint": "yes"}}]),
            "`m.json` at `/2/annotations/readOnlyHint` (tool `ann`): not a tool entry: invalid type",
        ),
        (
            json!([{"inputSchema": {}}]),
            "`m.json` at `/0`: not a tool entry: missing field `name`",
        ),
        (
            json!([{"name": " ", "inputSchema": {}}]),
            "`m.json` at `/0/name` (tool ` `): not a tool entry: the tool name is empty",
        ),
        (
            json!([{"name": "s", "inputSchema": {"type": "no such type"}}]),
            "`m.json` at `/0/inputSchema` (tool `s`): the schema does not compile",
        ),
        (
            json!([{"name": "o", "inputSchema": {}, "outputSchema": {"type": 7}}]),
            "`m.json` at `/0/outputSchema` (tool `o`): the schema does not compile",
        ),
        (
            json!({"tools": {"name": "x"}}),
            "`m.json` is neither a `tools/list` result (`{\"tools\": [...]}`) nor an array of tools: `tools` is an object, not an array",
        ),
        (
            json!({"name": "x", "inputSchema": {}}),
            "it is a single tool; put it in an array, or in a folder of tool files",
        ),
        (json!({"result": {}}), "unknown key `result`"),
        (json!("tools"), "it is a string"),
    ];
    for (manifest, want) in cases {
        let err = Catalogue::from_manifest(&manifest.to_string(), "m.json").unwrap_err();
        assert!(
            err.to_string().contains(want),
            "{manifest}\n  got:  {err}\n  want: {want}"
        );
    }
    let err = Catalogue::from_manifest("{\"tools\": [", "m.json").unwrap_err();
    assert!(
        err.to_string().starts_with("`m.json` is not JSON: "),
        "{err}"
    );
}

#[test]
fn a_folder_of_tool_files_loads_in_file_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let tool = |name: &str| json!({"name": name, "inputSchema": {"type": "object"}}).to_string();
    std::fs::write(dir.path().join("b.json"), tool("second")).unwrap();
    std::fs::write(dir.path().join("a.json"), tool("first")).unwrap();
    std::fs::write(dir.path().join("README.md"), "not a tool").unwrap();
    std::fs::create_dir(dir.path().join("nested.json")).unwrap();
    let cat = Catalogue::load(dir.path()).unwrap();
    let names: Vec<&str> = cat.tools().iter().map(Tool::name).collect();
    assert_eq!(names, ["first", "second"]);

    std::fs::write(
        dir.path().join("c.json"),
        r#"{"name": "third", "inputSchema": {}, "outputSchema": 3, "surprise": 1}"#,
    )
    .unwrap();
    let err = Catalogue::load(dir.path()).unwrap_err().to_string();
    let file = dir.path().join("c.json").display().to_string();
    assert!(
        err.starts_with(&format!(
            "`{file}` at `/surprise` (tool `third`): not a tool entry: unknown field `surprise`"
        )),
        "{err}"
    );

    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Catalogue::load(empty.path()),
        Err(CatalogueError::Empty(_))
    ));
    let missing = dir.path().join("missing.json");
    assert!(matches!(
        Catalogue::load(&missing),
        Err(CatalogueError::Read { .. })
    ));
}

/// The bundled tools are just a folder: loading `src/mock/tools` from disk
/// gives the catalogue that is compiled in.
#[test]
fn the_bundled_manifest_is_the_tools_folder() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(BUNDLED_DIR);
    let from_disk = Catalogue::load(&dir).unwrap();
    assert_eq!(from_disk.manifest(), bundled().manifest());
    let listed = bundled().manifest();
    assert_eq!(listed["tools"].as_array().map(Vec::len), Some(5));
    assert_eq!(listed["tools"][0]["name"], POST_CUSTOMERS);
    // A saved manifest round-trips: what the catalogue lists, it can load.
    let again = Catalogue::from_manifest(&listed.to_string(), "saved.json").unwrap();
    assert_eq!(again.manifest(), listed);
}
