#!/usr/bin/env python3
"""How the console's pages grow with the number of projects a tenant has.

    python3 bench/console_scale.py --bin PATH [--sizes 10,100,1000] [--samples 40]

Starts `quotaflow serve` (the process harness of Tests/faults), makes a tenant with N projects (one in five a parent,
the rest its children, each with a cap), signs in to the console with an admin key as a browser would (login form,
CSRF token, session cookie), and times sequential GETs of the overview's live part, the projects page, the usage
page and the audit log. Prints p50/p95 and the body size per page and size. The overview and the projects page show
every project, so they grow with N; the others should not.
"""
import argparse
import http.cookiejar
import os
import re
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Tests", "faults"))
from harness import Quotaflow  # noqa: E402

PAGES = ("/console/overview/live", "/console/projects", "/console/usage", "/console/audit")


def measure(n, samples):
    q = Quotaflow().start()
    try:
        t = q.admin("POST", "/tenants", {"name": "bench"})["id"]
        key = q.admin("POST", "/tenants/%s/admin-keys" % t, {"name": "finance"})["key"]
        parents = []
        for i in range(n):
            body = {"name": "p%d" % i, "budget": {"monthly_cap_micros": 1000000 * (i + 1)}}
            if i % 5 and parents:
                body["parent_id"] = parents[-1]
            pid = q.admin("POST", "/tenants/%s/projects" % t, body)["id"]
            if i % 5 == 0:
                parents.append(pid)
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = browser.open(q.base + "/console/login").read().decode()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        browser.open(q.base + "/console/login", data=("csrf=%s&key=%s" % (csrf, key)).encode()).read()
        out = {}
        for path in PAGES:
            times, size = [], 0
            for _ in range(samples):
                start = time.perf_counter()
                size = len(browser.open(q.base + path).read())
                times.append((time.perf_counter() - start) * 1000)
            times.sort()
            out[path] = (statistics.median(times), times[int(len(times) * 0.95)], size)
        return out
    finally:
        q.terminate()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--sizes", default="10,100,1000")
    ap.add_argument("--samples", type=int, default=40)
    args = ap.parse_args()
    os.environ["QUOTAFLOW_BIN"] = args.bin
    print("%8s  %-24s %10s %10s %10s" % ("projects", "page", "p50 ms", "p95 ms", "bytes"))
    for n in [int(s) for s in args.sizes.split(",")]:
        for path, (p50, p95, size) in measure(n, args.samples).items():
            print("%8d  %-24s %10.2f %10.2f %10d" % (n, path, p50, p95, size))


if __name__ == "__main__":
    main()
