#!/usr/bin/env bash
# How far the added-latency figure moves between runs of the same bench,
# with the phases run one after another (`--rounds 1`) and interleaved
# (`--rounds ROUNDS`, default 6). The two modes alternate, run by run, so
# the machine's own drift over the session hits both alike. Each run holds
# the built-in enforcer against its baseline and the null relay; the last
# lines give, per mode, the mean and standard deviation of Δp50 (target
# over the bare mock) and of the target over the relay.
#
#   bash benches/drift.sh        (RUNS=6 DURATION=6s RATE=5000 TRANSPORT=stdio)
#
# A smaller spread means a single run's figure is worth more: that is what
# `--rounds` is for.
set -euo pipefail

# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
runs=${RUNS:-6}
rounds=${ROUNDS:-6}
transport=${TRANSPORT:-stdio}
conns=$([ "$transport" = http ] && echo 16 || echo 1)

one() { # rounds
    "$gauntlet" bench --transport "$transport" --connections "$conns" \
        --rate "${RATE:-5000}" --duration "${DURATION:-6s}" --warmup 1s \
        --baseline --null-relay --rounds "$1" --format json |
        python3 -c '
import json, sys
b = json.load(sys.stdin)["bench"]
print("%.1f %.1f %.1f" % (b["added"]["p50_us"], b["added"]["p99_us"], b["over_relay"]["p50_us"]))'
}

seq_rows=()
int_rows=()
printf '%-4s %-12s %9s %9s %12s\n' run mode dp50_us dp99_us over_relay
for i in $(seq "$runs"); do
    row=$(one 1)
    seq_rows+=("$row")
    printf '%-4s %-12s %9s %9s %12s\n' "$i" sequential $row
    row=$(one "$rounds")
    int_rows+=("$row")
    printf '%-4s %-12s %9s %9s %12s\n' "$i" "rounds $rounds" $row
done

summary() { # label, rows...
    local label=$1
    shift
    python3 -c '
import statistics, sys
label, rows = sys.argv[1], [list(map(float, r.split())) for r in sys.argv[2:]]
cols = list(zip(*rows))
fmt = lambda c: "%.0f ± %.0f" % (statistics.mean(c), statistics.stdev(c) if len(c) > 1 else 0.0)
print("%-15s dp50 %s µs · dp99 %s µs · over relay %s µs" % (label, fmt(cols[0]), fmt(cols[1]), fmt(cols[2])))
' "$label" "$@"
}
summary sequential "${seq_rows[@]}"
summary "rounds $rounds" "${int_rows[@]}"
