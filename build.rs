//! Embeds the attack catalogue (`attacks/`) in the binary, so `gauntlet run`
//! works from any folder: a catalogue on disk is used when there is one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("toml" | "json" | "yaml" | "yml" | "md")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=attacks");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("attacks");
    let mut files = Vec::new();
    if root.is_dir() {
        walk(&root, &mut files)?;
    }
    let mut code =
        String::from("/// Every file of the catalogue: (path under `attacks/`, text).\n");
    code.push_str("pub static FILES: &[(&str, &str)] = &[\n");
    for f in &files {
        let rel = f.strip_prefix(&root)?.to_string_lossy().replace('\\', "/");
        // Relative to the manifest at compile time, not an absolute path
        // frozen into OUT_DIR: a cached target folder may outlive the
        // checkout it was built from.
        writeln!(
            code,
            "    ({rel:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), {:?}))),",
            format!("/attacks/{rel}")
        )?;
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("catalogue.rs");
    std::fs::write(out, code)?;
    Ok(())
}
