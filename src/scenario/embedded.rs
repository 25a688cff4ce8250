//! The catalogue as it was when this binary was built.

use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/catalogue.rs"));

/// Writes the embedded catalogue under `dir` (which then loads like the
/// `attacks/` folder it came from).
pub fn extract(dir: &Path) -> std::io::Result<usize> {
    for (rel, text) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
    }
    Ok(FILES.len())
}

/// The catalogue folder to load: `asked` when it exists; otherwise, for the
/// default name, the embedded copy written to a temporary folder (kept alive
/// by the returned guard).
pub fn resolve(asked: &Path) -> std::io::Result<(std::path::PathBuf, Option<tempfile::TempDir>)> {
    if asked.exists() || asked != Path::new(DEFAULT_DIR) {
        return Ok((asked.to_path_buf(), None));
    }
    let dir = tempfile::Builder::new()
        .prefix("gauntlet-attacks-")
        .tempdir()?;
    extract(dir.path())?;
    Ok((dir.path().to_path_buf(), Some(dir)))
}

/// The catalogue folder `gauntlet` looks for by default.
pub const DEFAULT_DIR: &str = "attacks";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_catalogue_loads_like_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert!(extract(dir.path()).unwrap() > 50);
        let embedded = crate::scenario::load_catalogue(dir.path()).unwrap();
        let on_disk =
            crate::scenario::load_catalogue(&Path::new(env!("CARGO_MANIFEST_DIR")).join("attacks"))
                .unwrap();
        let ids =
            |v: &[crate::scenario::Scenario]| v.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&embedded), ids(&on_disk));
    }
}
