//! Every target's checks over its committed seed corpus, on stable: what `cargo
//! fuzz run` starts from must pass, and the targets cannot rot unbuilt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{target}: empty corpus");
    out
}

#[test]
fn policy_json() {
    corpus("policy_json").iter().for_each(|d| gauntlet_fuzz::policy_json(d));
}

#[test]
fn policy_yaml() {
    corpus("policy_yaml").iter().for_each(|d| gauntlet_fuzz::policy_yaml(d));
}

#[test]
fn frame() {
    corpus("frame").iter().for_each(|d| gauntlet_fuzz::frame(d));
}

#[test]
fn scenario() {
    corpus("scenario").iter().for_each(|d| gauntlet_fuzz::scenario(d));
}

#[test]
fn decide() {
    use arbitrary::{Arbitrary, Unstructured};
    for d in corpus("decide") {
        let mut u = Unstructured::new(&d);
        if let Ok(input) = gauntlet_fuzz::DecideInput::arbitrary(&mut u) {
            gauntlet_fuzz::decide(&input);
        }
    }
}
