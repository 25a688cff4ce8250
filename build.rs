//! Embeds the attack catalogue (`attacks/`) in the binary, so `gauntlet run`
//! works from any folder: a catalogue on disk is used when there is one. Also
//! embeds the bundled tool manifest (`src/mock/tools/`), listed the way a
//! folder given to `gauntlet mock --tools` is read: its `.json` files in
//! file-name order.

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
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("catalogue.rs"), code)?;
    bundled_tools(&out_dir)
}

fn bundled_tools(out_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=src/mock/tools");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("src/mock/tools");
    let mut names: Vec<String> = std::fs::read_dir(&root)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.retain(|n| n.ends_with(".json"));
    names.sort();
    let mut code =
        String::from("/// The bundled tool files: (file name, text), in listing order.\n");
    code.push_str("pub(crate) static BUNDLED_TOOLS: &[(&str, &str)] = &[\n");
    for name in &names {
        writeln!(
            code,
            "    ({name:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), {:?}))),",
            format!("/src/mock/tools/{name}")
        )?;
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("bundled_tools.rs"), code)?;
    Ok(())
}
