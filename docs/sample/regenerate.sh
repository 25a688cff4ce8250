#!/usr/bin/env bash
# Regenerates docs/sample: a small enforcer × attack matrix made from real runs
# of a dozen attacks against the bare mock, the reference enforcer, the fastmcp
# proxy and the flawed fixture proxy (correct, and with three of its flaws).
#
# Run from anywhere after `cargo build`; the fastmcp proxy needs the Python
# environment `.ci/run` installs into .venv (or set PYTHON).
#
# An enforcer command runs in its scenario's work folder, so the templates
# name scripts by absolute path; the checkout's own path is then cut out of
# the pages, which show the commands as run from the repository root.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$(pwd)
gauntlet=${GAUNTLET:-${CARGO_TARGET_DIR:-target}/debug/gauntlet}
python=${PYTHON:-.venv/bin/python}
# Absolute, but not resolved: a venv's python is a symlink that must stay one.
python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"
out=docs/sample

attacks=(
    rl-sequential-bulk rl-pipelined-burst cp-negative-increment
    ta-unlisted-default-deny ta-hidden-in-list nc-case-default-allow
    ac-nested-path fr-batch-denied-call fr-bom
    fo-arguments-string fo-upstream-crash re-oversized-argument
)
flawed="python3 $root/tests/fixtures/flawed/proxy.py --policy {policy} --state {workdir}/state.json"
fastmcp="$python $root/tests/interop/fastmcp_proxy.py --rate 0.5 --burst 30 --disable 'WizCommerce Open API_DeleteCustomer' -- {upstream}"

runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT

# run NAME SWITCHES...: one saved run; findings (exit 1) and broken
# scenarios (exit 2) are what the sample is for, so only a missing report fails.
run() {
    local name=$1
    shift
    # One scenario at a time, with a generous timeout: the Python proxies take
    # seconds to start, and starting eight at once on a small machine would
    # read as hangs.
    "$gauntlet" run --seed 1 --jobs 1 --timeout 20s --attacks "${attacks[@]}" \
        --format json --out "$runs/$name" "$@" \
        >/dev/null 2>"$runs/$name.log" || true
    if [ ! -f "$runs/$name/report.json" ]; then
        cat "$runs/$name.log" >&2
        echo "regenerate: the $name run wrote no report" >&2
        exit 1
    fi
    echo "$name=$runs/$name/report.json"
}

args=(
    "$(run none --target none)"
    "$(run builtin --target builtin)"
    "$(run fastmcp --enforcer-cmd "$fastmcp")"
    "$(run flawed-proxy --enforcer-cmd "$flawed -- {upstream}")"
    "$(run flawed-off-by-one --enforcer-cmd "$flawed --flaw off-by-one -- {upstream}")"
    "$(run flawed-forward-batches --enforcer-cmd "$flawed --flaw forward-batches -- {upstream}")"
    "$(run flawed-exact-name --enforcer-cmd "$flawed --flaw exact-name -- {upstream}")"
)

rm -rf "$out/attacks" "$out/enforcers" "$out/index.html" "$out/index.md"
"$gauntlet" matrix "${args[@]}" --out "$out"
find "$out" -name '*.html' -o -name '*.md' | xargs sed -i \
    -e "s#$python#.venv/bin/python#g" -e "s#$root/##g"
