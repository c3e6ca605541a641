"""Budget concurrency scenario: N concurrent requests against a budget that fits exactly k at worst case.

The mock upstream always reports 7 output tokens; requests ask for max_tokens=7 and the model's input price is 0,
so every admitted request costs exactly what it reserved. Reports overshoot (spend beyond the cap) and false
refusals (requests refused while budget remained: k minus admitted), for a flat project and for a two-level
hierarchy. Both must be 0.
"""
import json
import sys
import threading
import urllib.error
import urllib.request

base, token, tenant, pool = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
N = int(sys.argv[5]) if len(sys.argv) > 5 else 200
ROUNDS = int(sys.argv[6]) if len(sys.argv) > 6 else 5


def call(method, path, body=None):
    req = urllib.request.Request(base + "/admin/v1" + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"authorization": "Bearer " + token, "content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


call("PUT", "/tenants/%s/pricing" % tenant, {"entries": [{"model": "gpt-4.1-mini", "input_per_mtok_micros": 0, "output_per_mtok_micros": 1000000}]})
WORST = 7


def burst(keys):
    results = []
    lock = threading.Lock()
    start = threading.Barrier(N)

    def one(i):
        body = json.dumps({"model": "gpt-4.1-mini", "max_tokens": 7, "messages": [{"role": "user", "content": "hi"}]}).encode()
        req = urllib.request.Request(base + "/v1/chat/completions", data=body, method="POST",
                                     headers={"authorization": "Bearer " + keys[i % len(keys)], "content-type": "application/json"})
        start.wait()
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status = r.status
        except urllib.error.HTTPError as e:
            status = e.code
        with lock:
            results.append(status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def spent(project):
    budgets = call("GET", "/tenants/%s/budgets" % tenant)["data"]
    return next(b for b in budgets if b["budget"] == "project:" + project)["spent_micros"]


report = {"requests_per_round": N, "rounds": []}
for r in range(ROUNDS):
    k = 37 + 11 * r
    flat = call("POST", "/tenants/%s/projects" % tenant, {"name": "flat-%d-%d" % (r, k), "pool_ids": [pool], "budget": {"monthly_cap_micros": k * WORST}})["id"]
    key = call("POST", "/tenants/%s/projects/%s/keys" % (tenant, flat), {"name": "k"})["key"]
    statuses = burst([key])
    admitted = statuses.count(200)
    s = spent(flat)
    division = call("POST", "/tenants/%s/projects" % tenant, {"name": "div-%d" % r, "pool_ids": [pool], "budget": {"monthly_cap_micros": k * WORST}})["id"]
    teams = [call("POST", "/tenants/%s/projects" % tenant, {"name": "team-%d-%d" % (r, i), "parent_id": division, "pool_ids": [pool],
                                                            "budget": {"monthly_cap_micros": (k * 2 // 3) * WORST}})["id"] for i in range(2)]
    team_keys = [call("POST", "/tenants/%s/projects/%s/keys" % (tenant, t), {"name": "k"})["key"] for t in teams]
    h_statuses = burst(team_keys)
    h_admitted = h_statuses.count(200)
    hs = spent(division)
    report["rounds"].append({
        "k": k, "flat": {"admitted": admitted, "spent_micros": s, "cap_micros": k * WORST, "overshoot_micros": max(0, s - k * WORST),
                         "false_refusals": max(0, k - admitted), "other_statuses": sorted(set(statuses) - {200, 429})},
        "hierarchy": {"admitted": h_admitted, "spent_micros": hs, "cap_micros": k * WORST, "overshoot_micros": max(0, hs - k * WORST),
                      "false_refusals": max(0, k - h_admitted), "other_statuses": sorted(set(h_statuses) - {200, 429})},
    })
drift = call("POST", "/tenants/%s/budgets/reconcile" % tenant)
report["total_overshoot_micros"] = sum(x["flat"]["overshoot_micros"] + x["hierarchy"]["overshoot_micros"] for x in report["rounds"])
report["total_false_refusals"] = sum(x["flat"]["false_refusals"] + x["hierarchy"]["false_refusals"] for x in report["rounds"])
report["reconcile_drift"] = drift["drift"]
print(json.dumps(report, indent=1))
