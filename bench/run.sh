#!/usr/bin/env bash
# Reproducible benchmark: nginx as a fast mock upstream, wrk as the load generator, Quotaflow (release build)
# in between with auth, routing and durable ledger writes on. Everything is measured in one run and the
# figures are reported against the mock hit directly.
#
#   bench/run.sh [seconds per throughput run, default 20]
#
# The server logs at `warning` by default here; BENCH_LOG_LEVEL=info measures it with one access-log line
# per request (add BENCH_LOG_FORMAT=json for JSON lines).
#
# Needs wrk and nginx (apt-get install wrk nginx-light) and python3. Writes bench/out/<time>/.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${1:-20}"
OUT="$ROOT/bench/out/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
for tool in wrk nginx python3; do command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wrk nginx-light python3)"; exit 1; }; done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOCK_PORT=$(free_port); QF_PORT=$(free_port)
TOKEN="qf_op_benchmark-operator-token-$RANDOM$RANDOM"

echo "== building the release binary"
(cd "$ROOT" && swift build -c release --product quotaflow >/dev/null)
BIN="$(cd "$ROOT" && swift build -c release --show-bin-path)/quotaflow"

sed -e "s#__DIR__#$OUT#g" -e "s#__PORT__#$MOCK_PORT#g" "$ROOT/bench/mock-nginx.conf.template" > "$OUT/nginx.conf"
nginx -c "$OUT/nginx.conf" & NGINX=$!
QUOTAFLOW_OPERATOR_TOKEN="$TOKEN" "$BIN" serve --port "$QF_PORT" --database "$OUT/quotaflow.db" \
    --log-level "${BENCH_LOG_LEVEL:-warning}" --log-format "${BENCH_LOG_FORMAT:-text}" \
    --set admission_spacing_ms=100 > "$OUT/quotaflow.log" 2>&1 & QF=$!
cleanup() { kill "$QF" 2>/dev/null || true; kill "$NGINX" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$QF_PORT/readyz" >/dev/null && curl -sf "http://127.0.0.1:$MOCK_PORT/v1/models" >/dev/null && break; sleep 0.1; done

SETUP=$(python3 "$ROOT/bench/setup.py" "http://127.0.0.1:$QF_PORT" "$TOKEN" "http://127.0.0.1:$MOCK_PORT")
export QF_KEY=$(echo "$SETUP" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
TENANT=$(echo "$SETUP" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenant"])')
POOL=$(echo "$SETUP" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pool"])')
export BENCH_DIR="$ROOT/bench"
DIRECT="http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
THROUGH="http://127.0.0.1:$QF_PORT/v1/chat/completions"
ticks() { awk '{print $14 + $15}' "/proc/$QF/stat"; }
HZ=$(getconf CLK_TCK)

{
echo "# Quotaflow benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "swift: $(swift --version 2>&1 | head -1)"
echo "server log level: ${BENCH_LOG_LEVEL:-warning}, format ${BENCH_LOG_FORMAT:-text}"
echo
} > "$OUT/results.md"

echo "== warm-up"
wrk -t1 -c32 -d3s -s "$ROOT/bench/post.lua" "$THROUGH" > /dev/null

echo "== throughput: the mock hit directly"
QF_KEY= wrk -t1 -c64 -d"${DURATION}s" --latency -s "$ROOT/bench/post.lua" "$DIRECT" > "$OUT/direct.txt"
echo "== throughput: through Quotaflow"
T0=$(ticks); ROWS0=$(sqlite3 "$OUT/quotaflow.db" "SELECT COUNT(*) FROM ledger" 2>/dev/null || python3 -c "import sqlite3;print(sqlite3.connect('$OUT/quotaflow.db').execute('select count(*) from ledger').fetchone()[0])")
wrk -t1 -c64 -d"${DURATION}s" --latency -s "$ROOT/bench/post.lua" "$THROUGH" > "$OUT/through.txt"
T1=$(ticks)
sleep 1
ROWS1=$(python3 -c "import sqlite3;print(sqlite3.connect('$OUT/quotaflow.db').execute('select count(*) from ledger').fetchone()[0])")
RSS=$(awk '/VmHWM/ {print $2}' "/proc/$QF/status")

echo "== latency at 50 requests/s (1 connection, 20 ms between requests)"
QF_KEY= DELAY_MS=20 wrk -t1 -c1 -d30s --latency -s "$ROOT/bench/paced.lua" "$DIRECT" > "$OUT/paced-direct.txt"
DELAY_MS=20 wrk -t1 -c1 -d30s --latency -s "$ROOT/bench/paced.lua" "$THROUGH" > "$OUT/paced-through.txt"

echo "== budget concurrency: overshoot and false refusals"
python3 "$ROOT/bench/budget_scenario.py" "http://127.0.0.1:$QF_PORT" "$TOKEN" "$TENANT" "$POOL" 200 5 > "$OUT/budget.json"

python3 - "$OUT" "$T0" "$T1" "$HZ" "$ROWS0" "$ROWS1" "$RSS" >> "$OUT/results.md" <<'PY'
import json, re, sys
out, t0, t1, hz, rows0, rows1, rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
def parse(name):
    text = open(f"{out}/{name}").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    def ms(label):
        m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)" % label, text)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return rps, total, ms("50"), ms("99"), int(errors.group(1)) if errors else 0
d_rps, d_total, _, _, _ = parse("direct.txt")
q_rps, q_total, _, _, q_err = parse("through.txt")
_, _, pd50, pd99, _ = parse("paced-direct.txt")
_, _, pq50, pq99, pq_err = parse("paced-through.txt")
cpu_ms = (t1 - t0) * 1000 / hz
budget = json.load(open(f"{out}/budget.json"))
print("| measure | value | target |")
print("| --- | --- | --- |")
print(f"| mock hit directly | {d_rps:,.0f} req/s | baseline |")
print(f"| through Quotaflow | {q_rps:,.0f} req/s ({q_rps / d_rps:.1%} of direct, {q_err} non-2xx) | >= 10,000 req/s |")
print(f"| server CPU per request | {cpu_ms / q_total:.3f} ms ({cpu_ms / 1000:.1f} s CPU for {q_total:,} requests) | <= 0.1 ms |")
print(f"| ledger rows written during the run | {rows1 - rows0:,} (wrk counted {q_total:,} completed) | every request |")
print(f"| peak RSS | {rss / 1024:.1f} MB | <= 64 MB |")
print(f"| p50 at 50 req/s | direct {pd50:.3f} ms, through {pq50:.3f} ms: added {pq50 - pd50:.3f} ms | <= 0.3 ms added |")
print(f"| p99 at 50 req/s | direct {pd99:.3f} ms, through {pq99:.3f} ms: added {pq99 - pd99:.3f} ms | <= 1 ms added |")
print(f"| budget overshoot ({len(budget['rounds'])} rounds x 2 x {budget['requests_per_round']} concurrent) | {budget['total_overshoot_micros']} micro-USD | 0 |")
print(f"| budget false refusals | {budget['total_false_refusals']} | 0 |")
print(f"| counters vs ledger drift | {len(budget['reconcile_drift'])} counters | 0 |")
PY
{
echo
echo "## Raw output"
for f in direct through paced-direct paced-through; do echo; echo "### $f"; echo '```'; cat "$OUT/$f.txt"; echo '```'; done
echo; echo "### budget scenario"; echo '```json'; cat "$OUT/budget.json"; echo '```'
} >> "$OUT/results.md"
cat "$OUT/results.md" | sed -n '1,20p'
echo "full results: $OUT/results.md"
