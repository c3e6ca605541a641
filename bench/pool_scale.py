#!/usr/bin/env python3
"""Serial data-plane latency against the number of resources in a project's pool.

    python3 bench/pool_scale.py --bin .build/release/quotaflow [--sizes 10,100,1000,10000] [--rounds 7] [--requests 300]

One tenant per size, each with one pool of N admitted resources (all serving the model, so every one is eligible)
and a project key. The rounds interleave the sizes (10, 100, ..., then 100, 1000, ..., 10: each round starts one size later) and send sequential chat
completions through each key against a mock upstream; the report gives, per size, the median over rounds of each
round's p50 and p99, and the difference from the smallest size. The server and the mock are started here
(python standard library only; the helpers are bench/admin_scale.py's).
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_scale as a  # noqa: E402


def admit(admin, tenant, pool, mock, count, run_id, workers=4):
    """Adds `count` resources to the pool and admits each with one manual probe (the verifier is off)."""
    ids = []
    lock = threading.Lock()
    errors = []

    def work(start):
        try:
            for i in range(start, count, workers):
                r = admin_for[start].call("POST", "/tenants/%s/resources" % tenant, {
                    "pool_id": pool, "name": "r%05d" % i, "kind": "api_key", "provider": "openai", "base_url": mock + "/v1",
                    "credential": "sk-bench-pool-%s-%05d" % (run_id, i), "models": a.MODELS, "families": ["chat"],
                    "owner": "bench", "attestation": a.ATTESTATION})[0]["id"]
                admin_for[start].call("POST", "/tenants/%s/resources/%s/verify" % (tenant, r), expect=(200,))
                with lock:
                    ids.append(r)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    admin_for = {w: a.Admin(admin.port, admin.token) for w in range(workers)}
    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise a.Failure("adding resources failed: %s" % errors[0])
    active = sum(1 for r in admin.call("GET", "/tenants/%s/resources?state=active&limit=1000" % tenant)[0]["data"])
    return ids, active


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--sizes", default="10,100,1000,10000")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    run_id = "%x" % (time.time_ns() // 1000 % (1 << 32))
    token = "qf_op_pool-scale-benchmark-%s-0123456789" % run_id
    directory = tempfile.mkdtemp(prefix="qf-pool-scale-")
    server = mock_proc = None
    try:
        mock_proc, mock = a.start_mock()
        server, port = a.start_server(os.path.abspath(args.bin), directory, token)
        admin = a.Admin(port, token)
        admin.port, admin.token = port, token
        keys = {}
        for n in sizes:
            started = time.monotonic()
            t = admin.call("POST", "/tenants", {"name": "pool-%d-%s" % (n, run_id)})[0]["id"]
            pool = admin.call("POST", "/tenants/%s/pools" % t, {"name": "main"})[0]["id"]
            ids, _ = admit(admin, t, pool, mock, n, run_id)
            p = admin.call("POST", "/tenants/%s/projects" % t, {"name": "p", "pool_ids": [pool], "budget": {"monthly_cap_micros": 10 ** 15}})[0]["id"]
            keys[n] = admin.call("POST", "/tenants/%s/projects/%s/keys" % (t, p), {"name": "k"})[0]["key"]
            a.log("pool of %d resources ready in %.1f s" % (len(ids), time.monotonic() - started))
        body = {"model": a.MODEL, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16}
        clients = {n: a.Client(port, keys[n]) for n in sizes}
        for n in sizes:  # warm-up
            for _ in range(50):
                clients[n].request("POST", "/v1/chat/completions", body)
        results = {n: [] for n in sizes}
        for r in range(args.rounds):
            # Each round starts at the next size, so no size always goes first (or last) in a round.
            order = sizes[r % len(sizes):] + sizes[:r % len(sizes)]
            for n in order:
                lat = []
                for _ in range(args.requests):
                    status, _, seconds = clients[n].request("POST", "/v1/chat/completions", body)
                    if status != 200:
                        raise a.Failure("a request through the %d-resource pool answered %d" % (n, status))
                    lat.append(seconds * 1000)
                results[n].append((a.percentile(lat, 50), a.percentile(lat, 99)))
            a.log("round %d: " % (r + 1) + ", ".join("%d: %.3f ms" % (n, results[n][-1][0]) for n in sizes))
        base = statistics.median(p for p, _ in results[sizes[0]])
        print("## Serial latency against pool size (%s, %d interleaved rounds of %d requests)" % (
            os.path.basename(args.bin), args.rounds, args.requests))
        print()
        print("| resources in the pool | p50 (median of rounds) | p99 (median of rounds) | p50 minus the %d-resource p50 |" % sizes[0])
        print("| ---: | ---: | ---: | ---: |")
        for n in sizes:
            p50 = statistics.median(p for p, _ in results[n])
            p99 = statistics.median(q for _, q in results[n])
            print("| %d | %.3f ms | %.3f ms | %+.1f µs (%+.1f%%) |" % (n, p50, p99, (p50 - base) * 1000, (p50 / base - 1) * 100))
        return 0
    finally:
        if server and server.poll() is None:
            server.terminate()
            server.wait(timeout=20)
        if mock_proc and mock_proc.is_alive():
            mock_proc.terminate()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
