"""Creates the benchmark tenant through the admin API and prints the project key."""
import json
import sys
import time
import urllib.request

base, token, upstream = sys.argv[1], sys.argv[2], sys.argv[3]


def call(method, path, body=None):
    req = urllib.request.Request(base + "/admin/v1" + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"authorization": "Bearer " + token, "content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


t = call("POST", "/tenants", {"name": "bench-%d" % time.time_ns()})["id"]
pool = call("POST", "/tenants/%s/pools" % t, {"name": "p"})["id"]
att = {"by": "bench", "at": "2026-01-01T00:00:00Z"}
ids = []
for i in range(2):
    ids.append(call("POST", "/tenants/%s/resources" % t, {
        "pool_id": pool, "name": "r%d" % i, "kind": "api_key", "provider": "openai", "base_url": upstream + "/v1",
        "credential": "sk-benchmark-credential", "models": ["gpt-4.1-mini"], "attestation": att,
        "families": ["chat", "responses"]})["id"])
project = call("POST", "/tenants/%s/projects" % t, {"name": "bench", "pool_ids": [pool], "budget": {"monthly_cap_micros": 10 ** 15}})["id"]
key = call("POST", "/tenants/%s/projects/%s/keys" % (t, project), {"name": "bench"})["key"]
deadline = time.time() + 30
while any(call("GET", "/tenants/%s/resources/%s" % (t, r))["state"] != "active" for r in ids):
    if time.time() > deadline:
        sys.exit("resources were not admitted")
    time.sleep(0.1)
print(json.dumps({"tenant": t, "pool": pool, "key": key}))
