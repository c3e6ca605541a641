#!/usr/bin/env python3
"""Context switches per thread of a process, from /proc/<pid>/task/*/status, grouped by thread name.

    python3 bench/threads.py snapshot PID > before.json
    python3 bench/threads.py diff before.json after.json REQUESTS

`diff` prints a table of voluntary and involuntary switches per request for each thread name (threads of one
name, such as NIO's event loops or the Swift concurrency pool, are summed), so a run shows where a request's
hand-offs happen.
"""
import json
import os
import re
import sys


def snapshot(pid):
    threads = {}
    for tid in os.listdir("/proc/%s/task" % pid):
        try:
            with open("/proc/%s/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            with open("/proc/%s/task/%s/status" % (pid, tid)) as f:
                status = f.read()
        except OSError:
            continue
        vol = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
        invol = int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
        threads[tid] = {"name": name, "voluntary": vol, "involuntary": invol}
    return threads


def group(name):
    # Numbered threads of one kind count together: NIO-ELT-0-#3 -> NIO-ELT-0-#*.
    return re.sub(r"\d+$", "*", name)


def diff(before, after, requests):
    rows = {}
    for tid, t in after.items():
        b = before.get(tid, {"voluntary": 0, "involuntary": 0})
        row = rows.setdefault(group(t["name"]), [0, 0, 0])
        row[0] += t["voluntary"] - b["voluntary"]
        row[1] += t["involuntary"] - b["involuntary"]
        row[2] += 1
    total_v = sum(r[0] for r in rows.values())
    total_i = sum(r[1] for r in rows.values())
    print("| thread | threads | voluntary per request | involuntary per request |")
    print("| --- | ---: | ---: | ---: |")
    for name, (v, i, n) in sorted(rows.items(), key=lambda kv: -(kv[1][0] + kv[1][1])):
        if v + i == 0:
            continue
        print("| %s | %d | %.2f | %.2f |" % (name, n, v / requests, i / requests))
    print("| all | %d | %.2f | %.2f |" % (sum(r[2] for r in rows.values()), total_v / requests, total_i / requests))


if __name__ == "__main__":
    if sys.argv[1] == "snapshot":
        json.dump(snapshot(sys.argv[2]), sys.stdout)
    else:
        with open(sys.argv[2]) as f:
            before = json.load(f)
        with open(sys.argv[3]) as f:
            after = json.load(f)
        diff(before, after, int(sys.argv[4]))
