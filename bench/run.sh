#!/usr/bin/env bash
# Reproducible benchmark: nginx as a fast mock upstream, wrk as the load generator, Quotaflow (release build)
# in between with auth, routing and durable ledger writes on. Everything is measured in one run and the
# figures are reported against the mock hit directly.
#
#   bench/run.sh [seconds per throughput run, default 15]
#
# Throughput is measured in three alternating rounds (direct, through Quotaflow, then through nginx as a bare
# reverse proxy: the second baseline, the best any proxy can do here) and reported as the median round, because
# shared machines drift by tens of percent between runs. At 50 requests/s it also counts context switches per
# request across every thread (/proc/<pid>/task/*/status) for Quotaflow and the bare proxy.
#
# The server logs at `warning` by default here; BENCH_LOG_LEVEL=info measures it with one access-log line
# per request (add BENCH_LOG_FORMAT=json for JSON lines).
#
# Needs wrk and nginx (apt-get install wrk nginx-light) and python3. Writes bench/out/<time>/.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${1:-15}"
ROUNDS=3
OUT="$ROOT/bench/out/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
for tool in wrk nginx python3; do command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wrk nginx-light python3)"; exit 1; }; done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOCK_PORT=$(free_port); QF_PORT=$(free_port); PROXY_PORT=$(free_port)
TOKEN="qf_op_benchmark-operator-token-$RANDOM$RANDOM"

echo "== building the release binary"
(cd "$ROOT" && swift build -c release --product quotaflow >/dev/null)
BIN="$(cd "$ROOT" && swift build -c release --show-bin-path)/quotaflow"

sed -e "s#__DIR__#$OUT#g" -e "s#__PORT__#$MOCK_PORT#g" "$ROOT/bench/mock-nginx.conf.template" > "$OUT/nginx.conf"
nginx -c "$OUT/nginx.conf" & NGINX=$!
sed -e "s#__DIR__#$OUT#g" -e "s#__PORT__#$PROXY_PORT#g" -e "s#__MOCK_PORT__#$MOCK_PORT#g" "$ROOT/bench/proxy-nginx.conf.template" > "$OUT/proxy-nginx.conf"
nginx -c "$OUT/proxy-nginx.conf" & PROXY=$!
QUOTAFLOW_OPERATOR_TOKEN="$TOKEN" "$BIN" serve --port "$QF_PORT" --database "$OUT/quotaflow.db" \
    --log-level "${BENCH_LOG_LEVEL:-warning}" --log-format "${BENCH_LOG_FORMAT:-text}" \
    --set admission_spacing_ms=100 --set allow_private_egress=true > "$OUT/quotaflow.log" 2>&1 & QF=$!
cleanup() { kill "$QF" 2>/dev/null || true; kill "$NGINX" 2>/dev/null || true; kill "$PROXY" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$QF_PORT/readyz" >/dev/null && curl -sf "http://127.0.0.1:$MOCK_PORT/v1/models" >/dev/null && curl -sf "http://127.0.0.1:$PROXY_PORT/v1/models" >/dev/null && break; sleep 0.1; done

SETUP=$(python3 "$ROOT/bench/setup.py" "http://127.0.0.1:$QF_PORT" "$TOKEN" "http://127.0.0.1:$MOCK_PORT")
export QF_KEY=$(echo "$SETUP" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
TENANT=$(echo "$SETUP" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenant"])')
POOL=$(echo "$SETUP" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pool"])')
export BENCH_DIR="$ROOT/bench"
DIRECT="http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
THROUGH="http://127.0.0.1:$QF_PORT/v1/chat/completions"
PROXIED="http://127.0.0.1:$PROXY_PORT/v1/chat/completions"
ticks() { awk '{print $14 + $15}' "/proc/$QF/stat"; }
NGW=$(pgrep -P "$NGINX" | head -1)
nticks() { awk '{print $14 + $15}' "/proc/$NGW/stat"; }
PXW=$(pgrep -P "$PROXY" | head -1)
pticks() { awk '{print $14 + $15}' "/proc/$PXW/stat"; }
# Voluntary and involuntary context switches of every thread of a process (per-thread counts from /proc).
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(voluntary|nonvoluntary)_ctxt_switches/ {s += $2} END {print s}'; }
lastseq() { python3 -c "import sqlite3;print(sqlite3.connect('$OUT/quotaflow.db').execute('select coalesce(max(seq),0) from ledger').fetchone()[0])"; }
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

ROWS0=$(lastseq)
for i in $(seq "$ROUNDS"); do
    echo "== throughput round $i: the mock hit directly"
    N0=$(nticks)
    QF_KEY= wrk -t1 -c64 -d"${DURATION}s" --latency -s "$ROOT/bench/post.lua" "$DIRECT" > "$OUT/direct-$i.txt"
    N1=$(nticks)
    echo "== throughput round $i: through Quotaflow"
    T0=$(ticks)
    wrk -t1 -c64 -d"${DURATION}s" --latency -s "$ROOT/bench/post.lua" "$THROUGH" > "$OUT/through-$i.txt"
    T1=$(ticks)
    echo "== throughput round $i: through nginx as a bare reverse proxy"
    P0=$(pticks)
    QF_KEY= wrk -t1 -c64 -d"${DURATION}s" --latency -s "$ROOT/bench/post.lua" "$PROXIED" > "$OUT/proxied-$i.txt"
    P1=$(pticks)
    echo "$((N1 - N0)) $((T1 - T0)) $((P1 - P0))" > "$OUT/ticks-$i.txt"
done
sleep 1
ROWS1=$(lastseq)
RSS=$(awk '/VmHWM/ {print $2}' "/proc/$QF/status")

echo "== latency at 50 requests/s (1 connection, 20 ms between requests)"
N2=$(nticks)
QF_KEY= DELAY_MS=20 wrk -t1 -c1 -d30s --latency -s "$ROOT/bench/paced.lua" "$DIRECT" > "$OUT/paced-direct.txt"
N3=$(nticks); T2=$(ticks); SEQ0=$(lastseq); CS0=$(switches "$QF")
DELAY_MS=20 wrk -t1 -c1 -d30s --latency -s "$ROOT/bench/paced.lua" "$THROUGH" > "$OUT/paced-through.txt"
T3=$(ticks); CS1=$(switches "$QF"); sleep 0.2; SEQ1=$(lastseq)
P2=$(pticks); PS0=$(switches "$PXW")
QF_KEY= DELAY_MS=20 wrk -t1 -c1 -d30s --latency -s "$ROOT/bench/paced.lua" "$PROXIED" > "$OUT/paced-proxied.txt"
P3=$(pticks); PS1=$(switches "$PXW")
echo "$((CS1 - CS0)) $((PS1 - PS0)) $((P3 - P2))" > "$OUT/paced-switches.txt"
# Where the time goes at low load (not targets): CPU per request when requests arrive 20 ms apart, for
# Quotaflow and for nginx, against the same at saturation; and the in-server split from the ledger rows.
python3 - "$OUT/quotaflow.db" "$SEQ0" "$SEQ1" > "$OUT/paced-ledger.json" <<'PY'
import json, sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "SELECT latency_us, ttfb_us FROM ledger WHERE seq > ? AND seq <= ? AND status = 200", (int(sys.argv[2]), int(sys.argv[3]))).fetchall()
def median(v): v = sorted(v); return v[len(v) // 2] if v else 0
print(json.dumps({"rows": len(rows), "median_latency_us": median([r[0] for r in rows]), "median_ttfb_us": median([r[1] or 0 for r in rows])}))
PY

echo "== dialects: server CPU per request, Chat Completions against Responses, at two payload sizes"
for i in 1 2; do
    for v in chat:0 responses:0 chat:32768 responses:32768; do
        d=${v%%:*}; s=${v##*:}
        T0=$(ticks)
        DIALECT=$d SIZE=$s wrk -t1 -c64 -d"${DURATION}s" --latency -s "$ROOT/bench/dialect.lua" "$THROUGH" > "$OUT/dialect-$d-$s-$i.txt"
        T1=$(ticks)
        echo "$((T1 - T0))" > "$OUT/dialect-$d-$s-$i.ticks"
    done
done

echo "== budget concurrency: overshoot and false refusals"
python3 "$ROOT/bench/budget_scenario.py" "http://127.0.0.1:$QF_PORT" "$TOKEN" "$TENANT" "$POOL" 200 5 > "$OUT/budget.json"

python3 - "$OUT" "$ROUNDS" "$HZ" "$ROWS0" "$ROWS1" "$RSS" "$N2" "$N3" "$T2" "$T3" >> "$OUT/results.md" <<'PY'
import json, re, statistics, sys
out, rounds, hz, rows0, rows1, rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
n2, n3, t2, t3 = (int(x) for x in sys.argv[7:11])
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
ms_per = lambda ticks, n: ticks * 1000 / hz / n if n else 0
per_round = []
for i in range(1, rounds + 1):
    d_rps, d_total, _, _, _ = parse(f"direct-{i}.txt")
    q_rps, q_total, _, _, q_err = parse(f"through-{i}.txt")
    p_rps, p_total, _, _, _ = parse(f"proxied-{i}.txt")
    nt, qt, pt = (int(x) for x in open(f"{out}/ticks-{i}.txt").read().split())
    per_round.append(dict(d_rps=d_rps, q_rps=q_rps, q_total=q_total, q_err=q_err, q_cpu=ms_per(qt, q_total), n_cpu=ms_per(nt, d_total),
                          p_rps=p_rps, p_cpu=ms_per(pt, p_total)))
med = lambda k: statistics.median(r[k] for r in per_round)
d_rps, q_rps, q_cpu, n_cpu = med("d_rps"), med("q_rps"), med("q_cpu"), med("n_cpu")
p_rps, p_cpu = med("p_rps"), med("p_cpu")
q_total = sum(r["q_total"] for r in per_round)
q_err = sum(r["q_err"] for r in per_round)
rounds_text = "; ".join(f"{r['q_rps']:,.0f} req/s at {r['q_cpu']:.3f} ms (direct {r['d_rps']:,.0f})" for r in per_round)
_, _, pd50, pd99, _ = parse("paced-direct.txt")
_, _, pq50, pq99, pq_err = parse("paced-through.txt")
pd_total = parse("paced-direct.txt")[1]
pq_total = parse("paced-through.txt")[1]
split = json.load(open(f"{out}/paced-ledger.json"))
budget = json.load(open(f"{out}/budget.json"))
print("| measure | value | target |")
print("| --- | --- | --- |")
print(f"| mock hit directly (median of {rounds} rounds) | {d_rps:,.0f} req/s | baseline |")
print(f"| through Quotaflow (median of {rounds} rounds) | {q_rps:,.0f} req/s ({q_rps / d_rps:.1%} of direct, {q_err} non-2xx) | >= 10,000 req/s |")
print(f"| server CPU per request (median round) | {q_cpu:.3f} ms (nginx: {n_cpu:.4f} ms) | <= 0.1 ms |")
print(f"| nginx as a bare reverse proxy (median of {rounds} rounds) | {p_rps:,.0f} req/s ({p_rps / d_rps:.1%} of direct), {p_cpu:.4f} ms CPU per request | second baseline |")
print(f"| Quotaflow against the bare proxy | {q_rps / p_rps:.1%} of its throughput, {q_cpu / p_cpu:.1f}x its CPU per request | >= 25%, <= 6x |")
print(f"| each round | {rounds_text} | |")
print(f"| ledger rows written during the rounds | {rows1 - rows0:,} (wrk counted {q_total:,} completed) | every request |")
print(f"| peak RSS | {rss / 1024:.1f} MB | <= 64 MB |")
print(f"| p50 at 50 req/s | direct {pd50:.3f} ms, through {pq50:.3f} ms: added {pq50 - pd50:.3f} ms | <= 0.3 ms added |")
print(f"| p99 at 50 req/s | direct {pd99:.3f} ms, through {pq99:.3f} ms: added {pq99 - pd99:.3f} ms | <= 1 ms added |")
_, pp_total, pp50, pp99, _ = parse("paced-proxied.txt")
q_cs, p_cs, p_ticks = (int(x) for x in open(f"{out}/paced-switches.txt").read().split())
print(f"| at 50 req/s through the bare proxy | p50 {pp50:.3f} ms (added {pp50 - pd50:.3f}), p99 {pp99:.3f} ms (added {pp99 - pd99:.3f}), {ms_per(p_ticks, pp_total):.3f} ms CPU per request | baseline |")
print(f"| context switches per request at 50 req/s (all threads, /proc) | Quotaflow {q_cs / pq_total:.1f}, the bare proxy's worker {p_cs / pp_total:.1f} | <= 4 |")
print(f"| where low-load time goes: server CPU per request at 50 req/s | Quotaflow {ms_per(t3 - t2, pq_total):.3f} ms (vs {q_cpu:.3f} at saturation); nginx {ms_per(n3 - n2, pd_total):.3f} ms (vs {n_cpu:.4f}) | not a target |")
print(f"| where low-load time goes: inside the handler at 50 req/s (ledger, median of {split['rows']} rows) | {split['median_ttfb_us'] / 1000:.3f} ms to the upstream's answer, {split['median_latency_us'] / 1000:.3f} ms to the row | not a target |")
for size, label in ((0, "the chat benchmark's payload"), (32768, "a 32 KB payload, like a Codex turn")):
    cpu = {}
    for d in ("chat", "responses"):
        per = []
        for i in (1, 2):
            _, total, _, _, errs = parse(f"dialect-{d}-{size}-{i}.txt")
            per.append(ms_per(int(open(f"{out}/dialect-{d}-{size}-{i}.ticks").read()), total))
        cpu[d] = statistics.median(per)
    ratio = cpu["responses"] / cpu["chat"] if cpu["chat"] else 0
    print(f"| Responses vs Chat Completions, server CPU per request, {label} | {cpu['responses']:.3f} ms vs {cpu['chat']:.3f} ms ({ratio:.2f}x) | <= 1.10x |")
print(f"| budget overshoot ({len(budget['rounds'])} rounds x 2 x {budget['requests_per_round']} concurrent) | {budget['total_overshoot_micros']} micro-USD | 0 |")
print(f"| budget false refusals | {budget['total_false_refusals']} | 0 |")
print(f"| counters vs ledger drift | {len(budget['reconcile_drift'])} counters | 0 |")
PY
{
echo
echo "## Raw output"
for f in $(for i in $(seq "$ROUNDS"); do echo "direct-$i through-$i proxied-$i"; done) paced-direct paced-through paced-proxied $(cd "$OUT" && ls dialect-*.txt | sed 's/\.txt$//'); do echo; echo "### $f"; echo '```'; cat "$OUT/$f.txt"; echo '```'; done
echo; echo "### budget scenario"; echo '```json'; cat "$OUT/budget.json"; echo '```'
} >> "$OUT/results.md"
cat "$OUT/results.md" | sed -n '1,20p'
echo "full results: $OUT/results.md"
