#!/usr/bin/env bash
# The built-in enforcer's added latency at 25 % and 100 % of the bare mock's
# saturation rate, over stdio and HTTP: the figures issue trackers and
# release notes quote. Each rate's run carries its own baseline (`--baseline`
# runs the same load straight at the mock in the same run).
#
# Every row is paired with a null relay at the same rate: `gauntlet relay`,
# a proxy that moves bytes and reads none, run as an external enforcer.
# What it adds is the price of one more process on the path on this machine
# (wake-ups, pipe or loopback hops), which no enforcer can go below;
# `over_null` is what the enforcer adds beyond it.
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

# The null relay, as enforcer templates.
null_stdio='{gauntlet} relay -- {upstream}'
null_http='{gauntlet} relay --listen 127.0.0.1:{port} --upstream-url {upstream_url}'

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

# Prints the added p50 and p99 (µs), the throughput ratio and a note, from a
# bench's JSON on stdin.
added() {
    python3 -c '
import json, sys
b = json.load(sys.stdin)["bench"]
t, added = b["target"], b.get("added") or {}
a = t["allowed"]["corrected"]
print("%.0f %.0f %.0f %.0f %.2f %s" % (
    a["p50_us"], a["p99_us"],
    added.get("p50_us", float("nan")), added.get("p99_us", float("nan")),
    added.get("throughput_ratio", float("nan")),
    "generator-bound" if t.get("generator_bound") else "-"))
'
}

printf '%-6s %-5s %8s %8s %8s %8s %8s %5s %9s %9s %9s %s\n' \
    transport load rate/s p50_us p99_us dp50_us dp99_us thr null_dp50 null_dp99 over_null note
for transport in stdio http; do
    sat=$(saturation "$transport")
    conns=$([ "$transport" = http ] && echo 16 || echo 1)
    null=$([ "$transport" = http ] && echo "$null_http" || echo "$null_stdio")
    for share in 25 100; do
        rate=$((sat * share / 100))
        read -r p50 p99 dp50 dp99 thr note < <(
            bench "$transport" --rate "$rate" --connections "$conns" --baseline | added)
        # The relay passes calls a policy denies, so its exit code is 1.
        read -r _ _ n50 n99 _ _ < <(
            bench "$transport" --rate "$rate" --connections "$conns" --baseline \
                --enforcer-cmd "$null" | added || true)
        over=$(python3 -c "print('%.0f' % (float('$dp50') - float('$n50')))")
        printf '%-6s %-5s %8s %8s %8s %8s %8s %5s %9s %9s %9s %s\n' "$transport" "$share%" \
            "$rate" "$p50" "$p99" "$dp50" "$dp99" "$thr" "$n50" "$n99" "$over" "$note"
    done
done
