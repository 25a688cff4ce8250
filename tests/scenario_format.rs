//! The scenario format: the committed JSON Schema accepts the whole
//! catalogue, the schema and the loader agree on broken files, and the
//! loader's messages (file, line, field) are pinned by snapshots.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use gauntlet::scenario::Loader;
use serde_json::Value;

const FIXTURES: &str = "tests/fixtures/scenarios";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("attacks/scenario.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert!(
        jsonschema::meta::is_valid(&schema),
        "the schema is not a valid JSON Schema"
    );
    jsonschema::validator_for(&schema).unwrap()
}

/// TOML → JSON, the way an editor or a CI step would validate a file.
fn as_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let value: toml::Value =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()));
    serde_json::to_value(value).unwrap()
}

fn schema_errors(v: &jsonschema::Validator, path: &Path) -> Vec<String> {
    let json = as_json(path);
    v.iter_errors(&json)
        .map(|e| format!("{}: {e}", e.instance_path().as_str()))
        .collect()
}

/// Fixtures are loaded relative to the crate root so that messages name
/// `tests/fixtures/...`, stable on every machine.
fn loader() -> Loader {
    Loader::new(Path::new(FIXTURES).join("policies")).check_layout(false)
}

fn fixtures(prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join(FIXTURES))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .map(|p| Path::new(FIXTURES).join(p.file_name().unwrap()))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no `{prefix}*` fixtures");
    out
}

fn catalogue_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let attacks = root().join("attacks");
    for dir in std::fs::read_dir(&attacks).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() || dir.ends_with("policies") {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "toml") {
                out.push(f);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn schema_accepts_every_catalogue_file() {
    let v = validator();
    let files = catalogue_files();
    assert!(files.len() >= 50);
    for f in files {
        let errors = schema_errors(&v, &f);
        assert!(errors.is_empty(), "{}:\n{}", f.display(), errors.join("\n"));
    }
}

#[test]
fn schema_and_loader_both_refuse_every_bad_fixture() {
    let v = validator();
    for f in fixtures("bad_") {
        let errors = schema_errors(&v, &root().join(&f));
        assert!(!errors.is_empty(), "the schema accepts {}", f.display());
        assert!(
            loader().load_file(&f).is_err(),
            "the loader accepts {}",
            f.display()
        );
    }
}

#[test]
fn loader_refuses_what_the_schema_cannot_see() {
    let v = validator();
    for f in fixtures("semantic_") {
        let errors = schema_errors(&v, &root().join(&f));
        assert!(
            errors.is_empty(),
            "{} should pass the schema (its fault is beyond it): {errors:?}",
            f.display()
        );
        assert!(
            loader().load_file(&f).is_err(),
            "the loader accepts {}",
            f.display()
        );
    }
}

#[test]
fn loader_messages() {
    let mut all = fixtures("bad_");
    all.extend(fixtures("semantic_"));
    all.extend(fixtures("syntax_"));
    for f in all {
        let err = loader().load_file(&f).unwrap_err();
        let name = f.file_stem().unwrap().to_str().unwrap().to_owned();
        for d in err.diagnostics() {
            assert!(d.line >= 1 && d.column >= 1, "{name}: {d}");
            assert!(d.file.ends_with(".toml"), "{name}: {d}");
        }
        insta::assert_snapshot!(name, err.to_string());
    }
}
