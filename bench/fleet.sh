#!/usr/bin/env bash
# The fleet's overhead: one SQLite node against replicas on PostgreSQL (scripts/fleet), with the same-run
# baselines (the nginx mock hit directly, nginx as a bare reverse proxy). Release builds, budgets on
# (the benchmark project has a cap, so every request holds and settles on the shared counters).
#
#   bench/fleet.sh [seconds per run, default 10]
#
# Configurations, measured in alternating rounds (the median round is reported):
#   sqlite      one node on SQLite, hit directly
#   pg1         one replica on PostgreSQL, hit directly
#   pg1-lb      one replica behind the fleet's nginx load balancer
#   pg2-lb      two replicas behind it
#   pg3-lb      three replicas behind it
# CPU per request counts every process of a configuration: Quotaflow, PostgreSQL (postmaster and backends)
# and the load balancer. On 2 shared cores this measures overhead, not scaling: every replica, PostgreSQL,
# wrk and the mock share the same two cores.
#
# Needs wrk, nginx, PostgreSQL (apt-get install wrk nginx-light postgresql) and python3. Writes bench/out/fleet-<time>/.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${1:-10}"
ROUNDS=3
OUT="$ROOT/bench/out/fleet-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
PATH="$PATH:/usr/sbin"
for tool in wrk nginx python3; do command -v "$tool" >/dev/null || { echo "missing $tool"; exit 1; }; done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOCK_PORT=$(free_port); PROXY_PORT=$(free_port); QF_PORT=$(free_port)
TOKEN="qf_op_benchmark-operator-token-$RANDOM$RANDOM"
export QUOTAFLOW_OPERATOR_TOKEN="$TOKEN"
export QUOTAFLOW_MASTER_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

echo "== building the release binary"
(cd "$ROOT" && swift build -c release --product quotaflow >/dev/null)
export QUOTAFLOW_BIN="$(cd "$ROOT" && swift build -c release --show-bin-path)/quotaflow"

sed -e "s#__DIR__#$OUT#g" -e "s#__PORT__#$MOCK_PORT#g" "$ROOT/bench/mock-nginx.conf.template" > "$OUT/nginx.conf"
nginx -c "$OUT/nginx.conf" & NGINX=$!
sed -e "s#__DIR__#$OUT#g" -e "s#__PORT__#$PROXY_PORT#g" -e "s#__MOCK_PORT__#$MOCK_PORT#g" "$ROOT/bench/proxy-nginx.conf.template" > "$OUT/proxy-nginx.conf"
nginx -c "$OUT/proxy-nginx.conf" & PROXY=$!
"$QUOTAFLOW_BIN" serve --port "$QF_PORT" --database "$OUT/quotaflow.db" --log-level warning \
    --set admission_spacing_ms=100 --set allow_private_egress=true > "$OUT/quotaflow.log" 2>&1 & QF=$!
cleanup() {
    kill "$QF" "$NGINX" "$PROXY" 2>/dev/null || true
    for n in 1 2 3; do "$ROOT/scripts/fleet" stop "$OUT/fleet-$n" >/dev/null 2>&1 || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
export FLEET_SET="admission_spacing_ms=100 allow_private_egress=true"
for n in 1 2 3; do "$ROOT/scripts/fleet" start "$OUT/fleet-$n" "$n" > "$OUT/fleet-$n.env"; done
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$QF_PORT/readyz" >/dev/null && curl -sf "http://127.0.0.1:$MOCK_PORT/v1/models" >/dev/null && break; sleep 0.1; done

url() { grep "^$2=" "$OUT/fleet-$1.env" | cut -d= -f2; }
key_for() { python3 "$ROOT/bench/setup.py" "$1" "$TOKEN" "http://127.0.0.1:$MOCK_PORT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'; }
declare -A TARGET KEY
TARGET[sqlite]="http://127.0.0.1:$QF_PORT"; KEY[sqlite]=$(key_for "${TARGET[sqlite]}")
TARGET[pg1]=$(url 1 REPLICA_1_URL); KEY[pg1]=$(key_for "${TARGET[pg1]}")
TARGET[pg1-lb]=$(url 1 FLEET_URL); KEY[pg1-lb]=${KEY[pg1]}
TARGET[pg2-lb]=$(url 2 FLEET_URL); KEY[pg2-lb]=$(key_for "${TARGET[pg2-lb]}")
TARGET[pg3-lb]=$(url 3 FLEET_URL); KEY[pg3-lb]=$(key_for "${TARGET[pg3-lb]}")
CONFIGS="sqlite pg1 pg1-lb pg2-lb pg3-lb"

# The processes of a configuration: Quotaflow, PostgreSQL's postmaster and backends, the load balancer.
pids() {
    case "$1" in
    sqlite) echo "$QF" ;;
    pg1) pids_fleet 1 no ;;
    pg*-lb) pids_fleet "${1:2:1}" yes ;;
    esac
}
pids_fleet() {
    local dir="$OUT/fleet-$1" pm
    cat "$dir"/replica-*.pid
    pm=$(head -1 "$dir/pg/data/postmaster.pid")
    echo "$pm"; pgrep -P "$pm" || true
    if [ "$2" = yes ]; then pgrep -P "$(cat "$dir/nginx.pid")" || true; fi
}
ticks() { local s=0 p; for p in $(pids "$1"); do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$s"; }

echo "== warm-up"
for c in $CONFIGS; do QF_KEY=${KEY[$c]} wrk -t1 -c32 -d3s -s "$ROOT/bench/post.lua" "${TARGET[$c]}/v1/chat/completions" > /dev/null; done
for i in $(seq "$ROUNDS"); do
    echo "== round $i"
    QF_KEY= wrk -t1 -c64 -d"${DURATION}s" -s "$ROOT/bench/post.lua" "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" > "$OUT/direct-$i.txt"
    QF_KEY= wrk -t1 -c64 -d"${DURATION}s" -s "$ROOT/bench/post.lua" "http://127.0.0.1:$PROXY_PORT/v1/chat/completions" > "$OUT/proxied-$i.txt"
    for c in $CONFIGS; do
        t0=$(ticks "$c")
        QF_KEY=${KEY[$c]} wrk -t1 -c64 -d"${DURATION}s" --latency -s "$ROOT/bench/post.lua" "${TARGET[$c]}/v1/chat/completions" > "$OUT/$c-$i.txt"
        echo $(( $(ticks "$c") - t0 )) > "$OUT/$c-$i.ticks"
    done
done

python3 - "$OUT" "$ROUNDS" "$(getconf CLK_TCK)" "$CONFIGS" > "$OUT/results.md" <<'PY'
import re, statistics, sys
out, rounds, hz, configs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split()
def rps(name):
    text = open(f"{out}/{name}").read()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)), int(re.search(r"(\d+) requests in", text).group(1)), int(errors.group(1)) if errors else 0
def p99(name):
    m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", open(f"{out}/{name}").read())
    v = float(m.group(1)); return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
direct = statistics.median(rps(f"direct-{i}.txt")[0] for i in range(1, rounds + 1))
proxied = statistics.median(rps(f"proxied-{i}.txt")[0] for i in range(1, rounds + 1))
print(f"mock hit directly: {direct:.0f} req/s; nginx as a bare reverse proxy: {proxied:.0f} req/s (medians of {rounds} rounds)\n")
print("| configuration | req/s (median) | vs mock | vs nginx proxy | vs SQLite node | p99 ms | CPU ms per request (all processes) | non-2xx |")
print("|---|---|---|---|---|---|---|---|")
base = None
for c in configs:
    runs = []
    for i in range(1, rounds + 1):
        r, total, errors = rps(f"{c}-{i}.txt")
        ticks = int(open(f"{out}/{c}-{i}.ticks").read())
        runs.append((r, ticks * 1000 / hz / max(total, 1), p99(f"{c}-{i}.txt"), errors))
    runs.sort()
    r, cpu, p, errors = runs[len(runs) // 2]
    base = base or r
    print(f"| {c} | {r:.0f} | {r / direct:.2f}x | {r / proxied:.2f}x | {r / base:.2f}x | {p:.1f} | {cpu:.3f} | {errors} |")
PY
cat "$OUT/results.md"
