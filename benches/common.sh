# shellcheck shell=bash
# Sourced by the bench scripts: builds the release binary and sets
# `gauntlet` to its path, wherever the target folder is.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
gauntlet="$target_dir/release/gauntlet"
