#!/usr/bin/env bash
# The harness's own load generator against oha, at equal connections, in the
# same run: both drive the bare HTTP mock (each its own, each writing its
# ledger to a file) with one GetCustomers call per request, closed loop.
# The pair runs ROUNDS times (default 2), alternating, so drift on a busy
# machine hits both; the last line per connection count is the median ratio.
#
#   bash benches/compare_oha.sh [CONNECTIONS...]     (default: 16 64)
#
# Needs `oha` on PATH (`cargo install oha`) and python3 for the JSON.
# DURATION (default 10s) sets each measurement's length; THREADS=N runs the
# harness's generator on N threads (`bench --threads`; default one per core).
set -euo pipefail

# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
command -v oha >/dev/null || { echo "oha is not on PATH: cargo install oha" >&2; exit 2; }

duration=${DURATION:-10s}
work=$(mktemp -d)
mock_pid=
cleanup() {
    [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/policy.json" <<'EOF'
{"version": "1", "default": "deny",
 "tools": {"WizCommerce Open API_GetCustomers": {}}}
EOF
body='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"WizCommerce Open API_GetCustomers","arguments":{}}}'

harness_rate() { # connections
    "$gauntlet" bench --target none --transport http --concurrency "$1" \
        --connections "$1" --duration "$duration" --warmup 2s ${THREADS:+--threads "$THREADS"} \
        --mix allow:100,deny:0 --policy "$work/policy.json" --format json |
        python3 -c 'import json,sys; b=json.load(sys.stdin)["bench"]["target"]
print("%.0f %.0f" % (b["achieved_rate"], b["allowed"]["corrected"]["p99_us"]))'
}

oha_rate() { # connections
    "$gauntlet" mock --http 127.0.0.1:0 --ledger "$work/oha-ledger.jsonl" >"$work/url" 2>/dev/null &
    mock_pid=$!
    for _ in $(seq 50); do [ -s "$work/url" ] && break; sleep 0.1; done
    local url
    url=$(head -1 "$work/url")
    # Warm-up, then the measurement, on the same mock.
    oha -z 2s -c "$1" --no-tui --output-format json -m POST \
        -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
        -H 'mcp-protocol-version: 2025-06-18' -d "$body" "$url" >/dev/null
    oha -z "$duration" -c "$1" --no-tui --output-format json -m POST \
        -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
        -H 'mcp-protocol-version: 2025-06-18' -d "$body" "$url" |
        python3 -c 'import json,sys; r=json.load(sys.stdin)
assert r["summary"]["successRate"] == 1.0, r["summary"]
print("%.0f %.0f" % (r["summary"]["requestsPerSec"], r["latencyPercentiles"]["p99"] * 1e6))'
    kill "$mock_pid"
    wait "$mock_pid" 2>/dev/null || true
    mock_pid=
    rm -f "$work/url" "$work/oha-ledger.jsonl"
}

printf '%-6s %-5s %12s %10s %12s %10s %7s\n' conns round gauntlet/s p99_us oha/s p99_us ratio
for c in "${@:-16 64}"; do
    for c1 in $c; do
        ratios=()
        for round in $(seq "${ROUNDS:-2}"); do
            read -r g gp99 < <(harness_rate "$c1")
            read -r o op99 < <(oha_rate "$c1")
            ratio=$(python3 -c "print('%.2f' % ($g / $o))")
            ratios+=("$ratio")
            printf '%-6s %-5s %12s %10s %12s %10s %7s\n' "$c1" "$round" "$g" "$gp99" "$o" "$op99" "$ratio"
        done
        printf '%-6s %-5s %56s\n' "$c1" median \
            "$(python3 -c 'import statistics,sys; print("%.2f" % statistics.median(map(float, sys.argv[1:])))' "${ratios[@]}")"
    done
done
