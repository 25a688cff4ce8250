#!/usr/bin/env bash
# The built-in enforcer's added latency at 25 % and 100 % of the bare mock's
# saturation rate, over stdio and HTTP: the figures issue trackers and
# release notes quote. Each rate's run carries its own baseline (`--baseline`
# runs the same load straight at the mock in the same run).
#
# The 25 % row is an open loop at a quarter of that rate: decision time.
# The 100 % row is the closed loop the saturation was measured with (16 in
# flight): an open loop at the saturation rate only queues, in every phase,
# and its differences are noise in milliseconds. Its `thr` column is the
# target's throughput against the bare mock's, its latencies those at
# saturation. `rate/s` is what the target achieved.
#
# Every run carries the null relay too (`--null-relay`: `gauntlet relay`, a
# proxy that moves bytes and reads none). What it adds over the bare mock
# is the price of one more process on the path on this machine (wake-ups,
# pipe or loopback hops), which no enforcer can go below; `over_null` is
# what the enforcer adds beyond it.
#
#   bash benches/added_latency.sh            (DURATION=10s by default)
#
# The phases take turns in slices (the bench's default `--rounds`; ROUNDS=N
# sets it, ROUNDS=1 runs them one after another), so slow drift on a busy
# machine hits them alike. REPEAT=N (default 1) runs each row N times and
# prints the median of every column.
#
# Needs python3 for the JSON.
set -euo pipefail

# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
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

# Prints, from a bench's JSON on stdin: the target's achieved rate, its
# allowed p50 and p99,
# what it adds over the mock (p50, p99, throughput ratio), what the null
# relay adds over the mock (p50, p99), what the target adds over the relay
# (p50), and a note.
figures() {
    python3 -c '
import json, sys
b = json.load(sys.stdin)["bench"]
t, base, relay = b["target"], b["baseline"], b["relay"]
p = lambda phase, q: phase["allowed"]["corrected"][q]
a = b["added"]
print("%.0f %.0f %.0f %.0f %.0f %.2f %.0f %.0f %.0f %s" % (
    t["achieved_rate"], p(t, "p50_us"), p(t, "p99_us"), a["p50_us"], a["p99_us"], a["throughput_ratio"],
    p(relay, "p50_us") - p(base, "p50_us"), p(relay, "p99_us") - p(base, "p99_us"),
    b["over_relay"]["p50_us"],
    "generator-bound" if t.get("generator_bound") else "-"))
'
}

# The median of each column over rows of `figures` output (the note is
# the first row's, or generator-bound if any row was).
median() {
    python3 -c '
import statistics, sys
rows = [r.split() for r in sys.argv[1:]]
cols = [statistics.median(float(r[i]) for r in rows) for i in range(9)]
note = "generator-bound" if any(r[9] != "-" for r in rows) else "-"
print(" ".join(["%.0f" % c if i != 5 else "%.2f" % c for i, c in enumerate(cols)] + [note]))
' "$@"
}

printf '%-6s %-5s %8s %8s %8s %8s %8s %5s %9s %9s %9s %s\n' \
    transport load rate/s p50_us p99_us dp50_us dp99_us thr null_dp50 null_dp99 over_null note
for transport in stdio http; do
    sat=$(saturation "$transport")
    conns=$([ "$transport" = http ] && echo 16 || echo 1)
    for share in 25 100; do
        if [ "$share" = 100 ]; then
            load=(--concurrency 16)
        else
            load=(--rate "$((sat * share / 100))")
        fi
        runs=()
        for _ in $(seq "${REPEAT:-1}"); do
            # A generator-bound bench exits 2; its figures still count.
            runs+=("$(bench "$transport" "${load[@]}" --connections "$conns" --baseline \
                --null-relay ${ROUNDS:+--rounds "$ROUNDS"} | figures || true)")
        done
        read -r rate p50 p99 dp50 dp99 thr n50 n99 over note < <(median "${runs[@]}")
        printf '%-6s %-5s %8s %8s %8s %8s %8s %5s %9s %9s %9s %s\n' "$transport" "$share%" \
            "$rate" "$p50" "$p99" "$dp50" "$dp99" "$thr" "$n50" "$n99" "$over" "$note"
    done
done
