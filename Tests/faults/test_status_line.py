"""The status-line script the README ships prints the holder's allowance from /v1/quotaflow/usage."""
import os
import subprocess

from harness import ROOT, Quotaflow, start_upstream

SCRIPT = os.path.join(ROOT, "contrib", "quotaflow-status.sh")


def run(env):
    out = subprocess.run(["sh", SCRIPT], input=b'{"session_id": "x"}', capture_output=True, timeout=30, env=dict(os.environ, **env))
    return out.stdout.decode().strip()


def test_status_line_shows_the_holders_spend_and_budget():
    server, upstream = start_upstream()
    q = Quotaflow(settings={"admission_spacing_ms": "0"}).start()
    try:
        s = q.setup_tenant(upstream)
        key = q.admin("POST", "/tenants/%s/projects/%s/keys" % (s["tenant"], s["project"]),
                      {"name": "dev", "budget_cap_micros": 5000000})["key"]
        for _ in range(3):
            assert q.chat(key)[0] == 200
        # 3 requests x (10 input at $1/M + 5 output at $2/M) = $0.00006: shown as cents.
        line = run({"QUOTAFLOW_URL": q.base, "QUOTAFLOW_KEY": key})
        assert line.startswith("QF $0.00 / $5.00 until "), line
        assert run({"QUOTAFLOW_URL": q.base, "QUOTAFLOW_KEY": "qf_sk_wrong"}) == "Quotaflow: unreachable"
        assert run({"QUOTAFLOW_URL": q.base, "QUOTAFLOW_KEY": ""}) == "Quotaflow: set QUOTAFLOW_KEY"
    finally:
        q.terminate()
        server.shutdown()
