#!/usr/bin/env bash
# Where a request's hand-offs happen at everyday load: Quotaflow and nginx as a bare reverse proxy in front of the
# nginx mock, each driven at 50 requests/s (one connection, 20 ms apart) for a few seconds, with context switches
# per request by thread name (bench/threads.py) and the added p50/p99 against the mock hit directly.
#
#   bench/hops.sh [path to a quotaflow binary, default the release build] [seconds, default 10]
#
# A short, focused companion to bench/run.sh for working on the hot path. Needs wrk, nginx and python3.
# DELAY_MS sets the pause between requests (default 20: 50 req/s). QF_ENV="NAME=value ..." passes environment to the server; PERF_OUT=file records the through-Quotaflow run with
# perf (PERF_EVENTS overrides the default "-F 5000" sampling, e.g. "-e sched:sched_wakeup" to see who wakes whom).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${1:-$(cd "$ROOT" && swift build -c release --show-bin-path)/quotaflow}"
SECONDS_RUN="${2:-10}"
OUT="$ROOT/bench/out/$(date -u +%Y%m%dT%H%M%SZ)-hops"
mkdir -p "$OUT"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOCK_PORT=$(free_port); QF_PORT=$(free_port); PROXY_PORT=$(free_port)
TOKEN="qf_op_benchmark-operator-token-$RANDOM$RANDOM"
sed -e "s#__DIR__#$OUT#g" -e "s#__PORT__#$MOCK_PORT#g" "$ROOT/bench/mock-nginx.conf.template" > "$OUT/nginx.conf"
nginx -c "$OUT/nginx.conf" & NGINX=$!
sed -e "s#__DIR__#$OUT#g" -e "s#__PORT__#$PROXY_PORT#g" -e "s#__MOCK_PORT__#$MOCK_PORT#g" "$ROOT/bench/proxy-nginx.conf.template" > "$OUT/proxy-nginx.conf"
nginx -c "$OUT/proxy-nginx.conf" & PROXY=$!
env ${QF_ENV:-X=1} QUOTAFLOW_OPERATOR_TOKEN="$TOKEN" "$BIN" serve --port "$QF_PORT" --database "$OUT/quotaflow.db" --log-level warning \
    --set admission_spacing_ms=100 --set allow_private_egress=true > "$OUT/quotaflow.log" 2>&1 & QF=$!
cleanup() { kill "$QF" "$NGINX" "$PROXY" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$QF_PORT/readyz" >/dev/null && curl -sf "http://127.0.0.1:$PROXY_PORT/v1/models" >/dev/null && break; sleep 0.1; done
SETUP=$(python3 "$ROOT/bench/setup.py" "http://127.0.0.1:$QF_PORT" "$TOKEN" "http://127.0.0.1:$MOCK_PORT")
export QF_KEY=$(echo "$SETUP" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
export BENCH_DIR="$ROOT/bench"
PXW=$(pgrep -P "$PROXY" | head -1)
wrk -t1 -c8 -d2s -s "$ROOT/bench/post.lua" "http://127.0.0.1:$QF_PORT/v1/chat/completions" > /dev/null
paced() {
    local delay="${DELAY_MS:-20}"
    [ -n "${PERF_OUT:-}" ] && [ "$2" = "$OUT/through.txt" ] && (sleep 1; perf record ${PERF_EVENTS:--F 5000} -g -p "$QF" -o "$PERF_OUT" -- sleep 5 >/dev/null 2>&1) & DELAY_MS=$delay wrk -t1 -c1 -d"${SECONDS_RUN}s" --latency -s "$ROOT/bench/paced.lua" "$1" > "$2"; }
count() { awk '/requests in/ {print $1}' "$1"; }
p() { awk -v q="$2" '$1 == q {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' "$1"; }
QF_KEY= paced "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" "$OUT/direct.txt"
python3 "$ROOT/bench/threads.py" snapshot "$QF" > "$OUT/qf-before.json"
paced "http://127.0.0.1:$QF_PORT/v1/chat/completions" "$OUT/through.txt"
python3 "$ROOT/bench/threads.py" snapshot "$QF" > "$OUT/qf-after.json"
python3 "$ROOT/bench/threads.py" snapshot "$PXW" > "$OUT/px-before.json"
QF_KEY= paced "http://127.0.0.1:$PROXY_PORT/v1/chat/completions" "$OUT/proxied.txt"
python3 "$ROOT/bench/threads.py" snapshot "$PXW" > "$OUT/px-after.json"
{
echo "## Quotaflow at $((1000 / ${DELAY_MS:-20})) req/s: $(count "$OUT/through.txt") requests, p50 $(p "$OUT/through.txt" 50%) ms, p99 $(p "$OUT/through.txt" 99%) ms (mock direct: p50 $(p "$OUT/direct.txt" 50%), p99 $(p "$OUT/direct.txt" 99%))"
echo
python3 "$ROOT/bench/threads.py" diff "$OUT/qf-before.json" "$OUT/qf-after.json" "$(count "$OUT/through.txt")"
echo
echo "## nginx as a bare reverse proxy at $((1000 / ${DELAY_MS:-20})) req/s: $(count "$OUT/proxied.txt") requests, p50 $(p "$OUT/proxied.txt" 50%) ms, p99 $(p "$OUT/proxied.txt" 99%) ms"
echo
python3 "$ROOT/bench/threads.py" diff "$OUT/px-before.json" "$OUT/px-after.json" "$(count "$OUT/proxied.txt")"
} | tee "$OUT/hops.md"
