"""`quotaflow plan`, `apply` and `export` as an admin runs them: the CLI is a client of a running server, resolves
secret references on its own machine, prints a diff, writes issued keys once, and places errors at line and column."""
import json
import os
import stat
import subprocess
import tempfile
import time

from harness import Quotaflow, binary, start_upstream

CREDENTIAL = "sk-policy-cli-upstream-credential-0123456789"
EXPIRES = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86400))
HOOK = "https://hooks.slack.com/services/T000/B000/cli-test-secret-path"

POLICY = """\
tenant: cli-co
pricing:
  fast-model: {input_per_mtok_usd: "1.00", output_per_mtok_usd: 2.000000}
pools:
  main:
    resources:
      upstream:
        kind: api_key
        provider: openai_compatible
        base_url: %(upstream)s/v1
        credential: {credential_file: upstream.key}
        models: [fast-model]
        attestation: {by: tests, at: "2026-01-01T00:00:00Z"}
workspaces:
  research:
    display_name: Research
    pools: [main]
    allowed_models: [fast-model]
    budget:
      monthly_limit_usd: 1234.56
      alert_thresholds: [50, 90]
      alert_channels:
        - type: slack
          webhook: ${RESEARCH_SLACK}
    keys:
      notebook: {budget_usd: 10.00}
    seats:
      temp@contractor.example: {expires: "%(expires)s", budget_usd: 5}
"""


def run(args, env, cwd):
    return subprocess.run([binary()] + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_plan_apply_export_round_trip_from_the_command_line():
    _, upstream = start_upstream()
    q = Quotaflow(settings={"verifier_enabled": "false"}).start()
    tenant = q.admin("POST", "/tenants", {"name": "cli-co"})["id"]
    # A tenant admin key is enough: the CLI needs no database and no operator token.
    admin_key = q.admin("POST", "/tenants/%s/admin-keys" % tenant, {"name": "policy-ci"})["key"]
    work = tempfile.mkdtemp(prefix="qf-policy-cli-")
    path = os.path.join(work, "policy.yaml")
    with open(path, "w") as f:
        f.write(POLICY % {"upstream": upstream, "expires": EXPIRES})
    with open(os.path.join(work, "upstream.key"), "w") as f:
        f.write(CREDENTIAL + "\n")
    env = dict(os.environ, QUOTAFLOW_URL=q.base, QUOTAFLOW_ADMIN_TOKEN=admin_key, QUOTAFLOW_TENANT=tenant, RESEARCH_SLACK=HOOK)
    outputs = []

    plan = run(["plan", "-f", path], env, work)
    outputs += [plan.stdout, plan.stderr]
    assert plan.returncode == 0, plan.stderr
    assert "+ create project research" in plan.stdout
    assert "budget.monthly_cap_micros: (none) → $1234.56" in plan.stdout
    assert "credential: (secret, changed)" in plan.stdout
    assert plan.stdout.strip().splitlines()[-1].startswith("Plan: ")
    assert q.admin("GET", "/tenants/%s/projects" % tenant)["data"] == [], "plan changed something"

    keys_out = os.path.join(work, "issued.jsonl")
    apply = run(["apply", "-f", path, "--keys-out", keys_out], env, work)
    outputs += [apply.stdout, apply.stderr]
    assert apply.returncode == 0, apply.stderr
    assert "Applied." in apply.stdout
    assert stat.S_IMODE(os.stat(keys_out).st_mode) == 0o600
    issued = [json.loads(line) for line in open(keys_out)]
    assert sorted(i["kind"] for i in issued) == ["key", "seat"]
    project = q.admin("GET", "/tenants/%s/projects" % tenant)["data"][0]
    assert project["budget"]["monthly_cap_micros"] == 1234560000
    assert project["attributes"] == {"display_name": "Research"}
    # The issued key is live at once (no capacity yet, since the verifier is off, but not unknown).
    status, body, _ = q.chat(issued[0]["key"])
    assert status != 401, body

    again = run(["plan", "-f", path], env, work)
    assert again.returncode == 0 and "No changes" in again.stdout, again.stdout + again.stderr

    exported = os.path.join(work, "exported.yaml")
    export = run(["export", "-o", exported], env, work)
    outputs += [export.stdout, export.stderr]
    assert export.returncode == 0, export.stderr
    text = open(exported).read()
    assert "${QF_MAIN_UPSTREAM_CREDENTIAL}" in text and "${QF_RESEARCH_ALERT_1}" in text
    env_round = dict(env, QF_MAIN_UPSTREAM_CREDENTIAL=CREDENTIAL, QF_RESEARCH_ALERT_1=HOOK)
    round_trip = run(["plan", "-f", exported], env_round, work)
    assert round_trip.returncode == 0 and "No changes" in round_trip.stdout, round_trip.stdout + round_trip.stderr
    outputs += [text]

    # A mistake the server finds is placed in the file: an undefined pool.
    with open(path, "w") as f:
        f.write((POLICY % {"upstream": upstream, "expires": EXPIRES}).replace("    pools: [main]", "    pools: [mian]"))
    bad = run(["plan", "-f", path], env, work)
    assert bad.returncode != 0
    assert "policy.yaml:17:13: workspaces.research.pools[0]: no pool 'mian'" in bad.stderr, bad.stderr
    # And one the CLI finds: an unset variable.
    bad_env = dict(env)
    del bad_env["RESEARCH_SLACK"]
    unset = run(["plan", "-f", path], bad_env, work)
    assert unset.returncode != 0 and "RESEARCH_SLACK is not set" in unset.stderr, unset.stderr

    for out in outputs + [bad.stderr, unset.stderr]:
        assert CREDENTIAL not in out and "cli-test-secret-path" not in out
        for i in issued:
            assert i["key"] not in out
    assert q.get("/healthz")[0] == 200
