#!/usr/bin/env bash
# The built-in enforcer's added latency at 25 % and 100 % of the bare mock's
# saturation rate, over stdio and HTTP: the figures issue trackers and
# release notes quote. Each rate's run carries its own baseline (`--baseline`
# runs the same load straight at the mock in the same run).
#
#   bash benches/added_latency.sh            (DURATION=10s by default)
#
# Needs python3 for the JSON.
set -euo pipefail

cd "$(dirname "$0")/.."
cargo build --release --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
gauntlet="$target_dir/release/gauntlet"
duration=${DURATION:-10s}

bench() { # transport, then switches
    local transport=$1
    shift
    "$gauntlet" bench --transport "$transport" --duration "$duration" --warmup 2s \
        --format json "$@"
}

saturation() { # transport: closed loop straight at the mock
    bench "$1" --target none --concurrency 16 --connections "$([ "$1" = http ] && echo 16 || echo 1)" |
        python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["bench"]["target"]["achieved_rate"])'
}

printf '%-6s %-5s %9s %9s %9s %10s %10s %7s %s\n' \
    transport load rate/s p50_us p99_us dp50_us dp99_us thr note
for transport in stdio http; do
    sat=$(saturation "$transport")
    for share in 25 100; do
        rate=$((sat * share / 100))
        conns=$([ "$transport" = http ] && echo 16 || echo 1)
        bench "$transport" --rate "$rate" --connections "$conns" --baseline |
            python3 -c '
import json, sys
share, transport, rate = sys.argv[1:4]
b = json.load(sys.stdin)["bench"]
t, added = b["target"], b.get("added") or {}
a = t["allowed"]["corrected"]
note = "generator-bound" if t.get("generator_bound") else ""
print("%-6s %-5s %9s %9.0f %9.0f %10.0f %10.0f %7.2f %s" % (
    transport, share + "%", rate, a["p50_us"], a["p99_us"],
    added.get("p50_us", float("nan")), added.get("p99_us", float("nan")),
    added.get("throughput_ratio", float("nan")), note))
' "$share" "$transport" "$rate"
    done
done
