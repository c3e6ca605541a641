#!/bin/sh
# One line with your Quotaflow allowance: spend against your key's budget (or your project's), and
# for a passthrough seat your own plan's usage windows as your provider reported them.
#   QUOTAFLOW_URL  the gateway (default http://127.0.0.1:8080)
#   QUOTAFLOW_KEY  your Quotaflow key (project key or virtual seat)
# Claude Code: "statusLine": {"type": "command", "command": "/path/to/quotaflow-status.sh"} in settings.json
# (it pipes the session's JSON to stdin; this script does not need it). Codex: put it in your prompt.
[ -t 0 ] || cat >/dev/null
url="${QUOTAFLOW_URL:-http://127.0.0.1:8080}"
[ -n "$QUOTAFLOW_KEY" ] || { echo "Quotaflow: set QUOTAFLOW_KEY"; exit 0; }
curl -sf --max-time 3 -H "x-quotaflow-key: $QUOTAFLOW_KEY" "$url/v1/quotaflow/usage" | python3 -c '
import json, sys
try:
    u = json.load(sys.stdin)
except Exception:
    print("Quotaflow: unreachable"); sys.exit(0)
def usd(m): return "$%.2f" % (m / 1e6)
b = u["budget"] if u["budget"]["cap_micros"] is not None else u["project_budget"]
line = "QF " + usd(b["spent_micros"]) + (" / " + usd(b["cap_micros"]) if b["cap_micros"] is not None else "")
line += " until " + b["period_end"][:10]
for r in u.get("passthrough_windows", []):
    for w in r.get("windows", []):
        if not w.get("scope"):
            line += " | %s %d%%" % (w["window"], round(w["utilization"] * 100)) + (" LIMITED" if w.get("limited") else "")
print(line)
' || echo "Quotaflow: unreachable"
