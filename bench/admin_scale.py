#!/usr/bin/env python3
"""How admin-write latency grows with catalog size, and what admin writes do to the data plane.

    python3 bench/admin_scale.py --bin PATH [--objects 100000] [--tenants 1000] [--checkpoints 10] [--samples 200]
                                 [--json OUT.json] [--assert-flat FACTOR]

Starts its own `quotaflow serve` (verifier off, private egress on) and a small threaded mock upstream (OpenAI Chat
Completions) in a child process, so it needs nothing but python3 and the binary. It populates the catalog through
the admin API with a few concurrent workers (each tenant: a pool, a resource, then projects with project keys and
virtual seats), and at every checkpoint (0 objects, then every objects/checkpoints) pauses the population and times
`--samples` sequential admin writes, alternating "create a project" and "create a key in that project": three pairs
in four in a fresh measurement tenant (so per-tenant growth does not blur the catalog-size effect), one in four in a
random populated tenant. It records p50/p99 and the server's RSS at each checkpoint.

Objects are counted without tenants: pools, resources, projects, project keys and seats. `--objects` counts the
populated ones; the table's "objects" column is everything in the catalog at that checkpoint (tenants excluded),
including what earlier measurements and the data-plane setup created.

At the end it measures the data plane (`POST /v1/chat/completions` with a project key, through an active resource
against the mock) in interleaved rounds: A with no admin writes, B with a background thread creating projects and
keys back to back; it reports the median of the round p50s and p99s and the ratio B/A.

The populated resources stay `pending` (the verifier is off, and they need not serve); the one resource the data
plane uses is admitted by one manual `POST .../resources/{id}/verify` against the mock (`admission_probes=1`).

`--assert-flat FACTOR` exits 1 if the last checkpoint's write p50 exceeds FACTOR x max(first p50, 1 ms). Any
admin call answered with an unexpected status, or a data-plane request not answered 200, also exits 1.
"""
import argparse
import atexit
import http.client
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

T0 = time.monotonic()
KEYS_PER_PROJECT = 6
SEATS_PER_PROJECT = 3
MODEL = "gpt-4.1-mini"
MODELS = ["gpt-4.1-mini", "gpt-4.1"]
ATTESTATION = {"by": "bench@quotaflow.example", "at": "2026-01-01T00:00:00Z"}
SEAT_SECONDS = 30 * 86_400


def log(msg):
    print("[%7.1fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr, flush=True)


class Failure(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------------------
# The mock upstream (a child process, so it does not share this process's GIL with the timed clients)


class MockUpstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle and delayed ACKs add 40 ms.
    disable_nagle_algorithm = True
    models = json.dumps({"object": "list", "data": [{"id": m, "object": "model", "created": 1700000000, "owned_by": "bench"}
                                                    for m in MODELS]}).encode()
    completion = json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the mock."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}}).encode()
    bad_request = json.dumps({"error": {"message": "messages is required", "type": "invalid_request_error"}}).encode()
    not_found = json.dumps({"error": {"message": "not found", "type": "invalid_request_error"}}).encode()

    def log_message(self, *args):
        pass

    def reply(self, status, data):
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        if self.path.split("?")[0] == "/v1/models":
            return self.reply(200, self.models)
        self.reply(404, self.not_found)

    def do_POST(self):
        raw = self.body()
        # An empty body (the verifier's family probe) is a bad request, as a real provider answers.
        if self.path.split("?")[0] == "/v1/chat/completions" and b'"messages"' in raw:
            return self.reply(200, self.completion)
        self.reply(400, self.bad_request)


def _serve_mock(pipe):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops this process
    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", 0), MockUpstream)
    server.daemon_threads = True
    pipe.send(server.server_address[1])
    pipe.close()
    server.serve_forever()


def start_mock():
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve_mock, args=(child,), daemon=True, name="mock-upstream")
    proc.start()
    if not parent.poll(10):
        raise Failure("the mock upstream did not start")
    return proc, "http://127.0.0.1:%d" % parent.recv()


# ---------------------------------------------------------------------------------------------------------------------
# HTTP


class Client:
    """One persistent HTTP/1.1 connection; reconnects when the server has closed it."""

    def __init__(self, port, token):
        self.port, self.token, self.conn, self.last = port, token, None, 0.0

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, token=None):
        """Returns (status, body bytes, seconds). Retries once on a connection the server closed."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"authorization": "Bearer " + (token or self.token)}
        if data is not None:
            headers["content-type"] = "application/json"
        # The server closes idle connections (client_idle_timeout_ms, 30 s by default): open a fresh one after a pause.
        if self.conn and time.monotonic() - self.last > 20:
            self.close()
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                self.conn.connect()
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            started = time.perf_counter()
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                payload = r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, http.client.CannotSendRequest):
                self.close()
                if attempt:
                    raise
                continue
            elapsed = time.perf_counter() - started
            self.last = time.monotonic()
            if r.getheader("connection", "").lower() == "close":
                self.close()
            return r.status, payload, elapsed
        raise AssertionError("unreachable")


class Admin:
    """Admin calls with the operator token; unexpected statuses are recorded (and raised)."""

    errors = []
    errors_lock = threading.Lock()

    def __init__(self, port, token):
        self.client = Client(port, token)

    def call(self, method, path, body=None, expect=(200, 201)):
        status, payload, seconds = self.client.request(method, "/admin/v1" + path, body)
        if status not in expect:
            text = "%s %s -> %d %s" % (method, path, status, payload[:300].decode("utf-8", "replace"))
            with Admin.errors_lock:
                Admin.errors.append(text)
            raise Failure("unexpected admin status: " + text)
        return (json.loads(payload) if payload else None), seconds


def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    return v[min(len(v) - 1, max(0, math.ceil(p / 100 * len(v)) - 1))]


# ---------------------------------------------------------------------------------------------------------------------
# The server


def start_server(binary, directory, token):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    args = [binary, "serve", "--port", str(port), "--database", os.path.join(directory, "q.db"), "--log-level", "warning",
            "--set", "allow_private_egress=true", "--set", "verifier_enabled=false", "--set", "admission_probes=1"]
    log_file = open(os.path.join(directory, "server.log"), "ab")

    def die_with_parent():
        # Linux: the server gets SIGKILL if this script dies without cleaning up (prctl PR_SET_PDEATHSIG).
        try:
            import ctypes
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
        except Exception:
            pass

    proc = subprocess.Popen(args, env=dict(os.environ, QUOTAFLOW_OPERATOR_TOKEN=token), stdout=log_file, stderr=log_file,
                            stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    log_file.close()
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise Failure("quotaflow exited with %s:\n%s" % (proc.returncode, server_log_tail(directory)))
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                c.close()
                return proc, port
            c.close()
        except OSError:
            pass
        time.sleep(0.05)
    raise Failure("quotaflow did not become ready within 60 s:\n" + server_log_tail(directory))


def server_log_tail(directory, lines=30):
    try:
        with open(os.path.join(directory, "server.log"), "rb") as f:
            return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
    except OSError:
        return "(no server log)"


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# Population


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_kind = {k: 0 for k in ("tenant", "pool", "resource", "project", "key", "seat")}

    def add(self, kind, n=1):
        with self.lock:
            self.by_kind[kind] += n

    def objects(self):
        with self.lock:
            return sum(v for k, v in self.by_kind.items() if k != "tenant")

    def snapshot(self):
        with self.lock:
            return dict(self.by_kind)


class Gate:
    """Hands out one ticket per populated object, up to the current checkpoint's target."""

    def __init__(self):
        self.lock = threading.Lock()
        self.issued = 0
        self.target = 0
        self.abort = False

    def claim(self):
        with self.lock:
            if self.abort or self.issued >= self.target:
                return False
            self.issued += 1
            return True


class TenantState:
    def __init__(self, index, run_id):
        self.index, self.run_id = index, run_id
        self.id = self.pool = None
        self.projects = 0
        self.steps = self._steps()
        self.pending = None  # the step claimed next

    def _steps(self):
        yield "pool"
        yield "resource"
        while True:
            yield "project"
            for _ in range(KEYS_PER_PROJECT):
                yield "key"
            for _ in range(SEATS_PER_PROJECT):
                yield "seat"


class Worker:
    def __init__(self, port, token, tenants, mock, counts):
        self.admin = Admin(port, token)
        self.tenants, self.mock, self.counts = tenants, mock, counts
        self.cursor = 0
        self.project_of = {}
        self.seq = 0
        self.error = None

    def run(self, gate):
        try:
            while self.tenants and gate.claim():
                t = self.tenants[self.cursor % len(self.tenants)]
                self.cursor += 1
                self.step(t, next(t.steps))
        except Exception as e:  # noqa: BLE001 - recorded and reported by the main thread
            gate.abort = True
            self.error = e

    def step(self, t, kind):
        self.seq += 1
        n = self.seq
        if kind == "pool":
            if t.id is None:
                t.id = self.admin.call("POST", "/tenants", {"name": "bench-%s-t%05d" % (t.run_id, t.index)})[0]["id"]
                self.counts.add("tenant")
            t.pool = self.admin.call("POST", "/tenants/%s/pools" % t.id, {"name": "pool-%d" % t.index})[0]["id"]
        elif kind == "resource":
            self.admin.call("POST", "/tenants/%s/resources" % t.id, {
                "pool_id": t.pool, "name": "key-%d" % t.index, "kind": "api_key", "provider": "openai",
                "base_url": self.mock + "/v1", "credential": "sk-bench-%s-%012d" % (t.run_id, t.index * 1000 + n % 1000),
                "models": MODELS, "families": ["chat"], "owner": "bench", "attestation": ATTESTATION,
                "limits": {"max_concurrency": 8, "rpm": 500}})
        elif kind == "project":
            t.projects += 1
            self.project_of[t.index] = self.admin.call("POST", "/tenants/%s/projects" % t.id, {
                "name": "project-%d" % t.projects, "pool_ids": [t.pool], "budget": {"monthly_cap_micros": 10 ** 12},
                "attributes": {"cost_center": "CC-%d" % (n % 97)}})[0]["id"]
        elif kind == "key":
            self.admin.call("POST", "/tenants/%s/projects/%s/keys" % (t.id, self.project_of[t.index]), {"name": "key-%d" % n})
        elif kind == "seat":
            self.admin.call("POST", "/tenants/%s/projects/%s/seats" % (t.id, self.project_of[t.index]), {
                "holder": "contractor %d" % n, "contact": "c%d@example.com" % n, "duration_seconds": SEAT_SECONDS,
                "budget_cap_micros": 40_000_000, "allowed_models": [MODEL], "note": "bench"})
        self.counts.add(kind)


def populate_to(target, gate, workers, counts):
    """Lets the workers create objects until `target` populated objects exist; returns the seconds it took."""
    started = time.monotonic()
    gate.target = target
    before = gate.issued
    if before >= target:
        return 0.0
    threads = [threading.Thread(target=w.run, args=(gate,), daemon=True) for w in workers]
    for th in threads:
        th.start()
    last = time.monotonic()
    while any(th.is_alive() for th in threads):
        for th in threads:
            th.join(timeout=0.5)
        if time.monotonic() - last >= 5:
            last = time.monotonic()
            done = gate.issued - before
            log("  populating: %d/%d objects (%.0f/s)" % (gate.issued, target, done / max(1e-9, last - started)))
    for w in workers:
        if w.error:
            raise Failure("population failed: %s" % w.error)
    seconds = time.monotonic() - started
    log("  populated %d objects in %.1f s (%.0f/s)" % (target - before, seconds, (target - before) / max(1e-9, seconds)))
    return seconds


# ---------------------------------------------------------------------------------------------------------------------
# Measurements


def measure_writes(admin, counts, samples, checkpoint, populated_tenants, run_id, rng):
    """`samples` sequential timed writes: create a project, then a key in it, alternately. Three pairs in four go to a
    fresh measurement tenant for this checkpoint, one in four to a random populated tenant that has a pool."""
    t = admin.call("POST", "/tenants", {"name": "bench-%s-measure-%d" % (run_id, checkpoint)})[0]["id"]
    counts.add("tenant")
    pool = admin.call("POST", "/tenants/%s/pools" % t, {"name": "measure"})[0]["id"]
    counts.add("pool")
    # One untimed pair first, so connection set-up and first-touch costs do not land in the samples.
    p = admin.call("POST", "/tenants/%s/projects" % t, {"name": "warm-up", "pool_ids": [pool]})[0]["id"]
    admin.call("POST", "/tenants/%s/projects/%s/keys" % (t, p), {"name": "warm-up"})
    counts.add("project")
    counts.add("key")
    by_kind = {"project": [], "key": []}
    where = {"measure": [], "populated": []}
    all_ms = []
    project = None
    tenant = None
    for i in range(samples):
        pair = i // 2
        if i % 2 == 0:
            candidates = [x for x in populated_tenants if x.pool]
            if pair % 4 == 3 and candidates:
                pt = rng.choice(candidates)
                tenant, tpool, place = pt.id, pt.pool, "populated"
            else:
                tenant, tpool, place = t, pool, "measure"
            body, seconds = admin.call("POST", "/tenants/%s/projects" % tenant, {
                "name": "measured-%d-%d" % (checkpoint, pair), "pool_ids": [tpool], "budget": {"monthly_cap_micros": 10 ** 12}})
            project = body["id"]
            kind = "project"
        else:
            _, seconds = admin.call("POST", "/tenants/%s/projects/%s/keys" % (tenant, project), {"name": "measured-%d" % i})
            kind = "key"
        counts.add(kind)
        ms = seconds * 1000
        by_kind[kind].append(ms)
        where[place].append(ms)
        all_ms.append(ms)
    return {
        "p50_ms": percentile(all_ms, 50), "p99_ms": percentile(all_ms, 99), "mean_ms": statistics.fmean(all_ms),
        "max_ms": max(all_ms),
        "project_p50_ms": percentile(by_kind["project"], 50), "key_p50_ms": percentile(by_kind["key"], 50),
        "measure_tenant_p50_ms": percentile(where["measure"], 50),
        "populated_tenant_p50_ms": percentile(where["populated"], 50) if where["populated"] else None,
        "samples": len(all_ms),
    }


class BackgroundWriter(threading.Thread):
    """Creates projects and keys back to back until stopped (round B of the data-plane measurement)."""

    def __init__(self, port, token, counts, tag, rate):
        super().__init__(daemon=True)
        self.admin = Admin(port, token)
        self.rate = rate
        self.counts, self.tag = counts, tag
        # Its own fresh tenant, so the writes do not pile up in the data-plane tenant round after round.
        self.tenant = self.admin.call("POST", "/tenants", {"name": "bench-background-%s" % tag})[0]["id"]
        counts.add("tenant")
        self.pool = self.admin.call("POST", "/tenants/%s/pools" % self.tenant, {"name": "background"})[0]["id"]
        counts.add("pool")
        self.stop_event = threading.Event()
        self.latencies = []
        self.error = None

    def run(self):
        i = 0
        project = None
        next_at = time.monotonic()
        try:
            while not self.stop_event.is_set():
                if self.rate > 0:
                    next_at += 1.0 / self.rate
                    delay = next_at - time.monotonic()
                    if delay > 0 and self.stop_event.wait(delay):
                        break
                if i % 2 == 0:
                    body, seconds = self.admin.call("POST", "/tenants/%s/projects" % self.tenant,
                                                    {"name": "bg-%s-%d" % (self.tag, i), "pool_ids": [self.pool]})
                    project = body["id"]
                    self.counts.add("project")
                else:
                    _, seconds = self.admin.call("POST", "/tenants/%s/projects/%s/keys" % (self.tenant, project), {"name": "bg-%d" % i})
                    self.counts.add("key")
                self.latencies.append(seconds * 1000)
                i += 1
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            self.error = e
        finally:
            self.admin.client.close()


def measure_dataplane(port, token, dp, counts, rounds, requests, tag, rate):
    """Interleaved rounds A (quiet) and B (admin writes streaming in the background) of sequential chat requests."""
    client = Client(port, dp["key"])
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16}
    bad = []

    def one():
        status, payload, seconds = client.request("POST", "/v1/chat/completions", body, token=dp["key"])
        if status != 200:
            bad.append("%d %s" % (status, payload[:200].decode("utf-8", "replace")))
        return seconds * 1000

    for _ in range(min(100, requests)):  # warm-up: connections to the upstream, first-touch costs
        one()
    per_round = []
    writes = []
    for r in range(rounds):
        mode = "A" if r % 2 == 0 else "B"
        bg = None
        if mode == "B":
            bg = BackgroundWriter(port, token, counts, "%s-%s-%d" % (dp["run_id"], tag, r), rate)
            bg.start()
            time.sleep(0.05)
        started = time.monotonic()
        lat = [one() for _ in range(requests)]
        seconds = time.monotonic() - started
        if bg:
            bg.stop_event.set()
            bg.join(timeout=120)
            if bg.error:
                raise Failure("background admin writes failed: %s" % bg.error)
            writes += bg.latencies
        row = {"round": r + 1, "mode": mode, "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
               "requests": len(lat), "seconds": seconds, "admin_writes": len(bg.latencies) if bg else 0}
        per_round.append(row)
        log("  data plane round %d (%s): p50 %.2f ms, p99 %.2f ms%s" % (
            r + 1, mode, row["p50_ms"], row["p99_ms"],
            ", %d admin writes alongside (%.0f/s)" % (row["admin_writes"], row["admin_writes"] / seconds) if bg else ""))
    client.close()
    a = [x for x in per_round if x["mode"] == "A"]
    b = [x for x in per_round if x["mode"] == "B"]
    out = {
        "rounds": per_round,
        "a_p50_ms": statistics.median(x["p50_ms"] for x in a), "a_p99_ms": statistics.median(x["p99_ms"] for x in a),
        "b_p50_ms": statistics.median(x["p50_ms"] for x in b) if b else None,
        "b_p99_ms": statistics.median(x["p99_ms"] for x in b) if b else None,
        "b_admin_writes": len(writes), "b_admin_write_p50_ms": percentile(writes, 50) if writes else None,
        "b_admin_write_p99_ms": percentile(writes, 99) if writes else None,
        "errors": bad,
    }
    if b:
        out["p50_ratio"] = out["b_p50_ms"] / out["a_p50_ms"] if out["a_p50_ms"] else None
        out["p99_ratio"] = out["b_p99_ms"] / out["a_p99_ms"] if out["a_p99_ms"] else None
    return out


def setup_dataplane(admin, counts, mock, run_id):
    """A tenant whose one resource is admitted (a manual verify against the mock) and a project key for the data plane."""
    t = admin.call("POST", "/tenants", {"name": "bench-%s-dataplane" % run_id})[0]["id"]
    counts.add("tenant")
    pool = admin.call("POST", "/tenants/%s/pools" % t, {"name": "dataplane"})[0]["id"]
    counts.add("pool")
    r = admin.call("POST", "/tenants/%s/resources" % t, {
        "pool_id": pool, "name": "mock", "kind": "api_key", "provider": "openai", "base_url": mock + "/v1",
        "credential": "sk-bench-dataplane-credential-%s" % run_id, "models": MODELS, "families": ["chat"], "owner": "bench",
        "attestation": ATTESTATION})[0]["id"]
    counts.add("resource")
    p = admin.call("POST", "/tenants/%s/projects" % t, {"name": "dataplane", "pool_ids": [pool],
                                                         "budget": {"monthly_cap_micros": 10 ** 15}})[0]["id"]
    counts.add("project")
    key = admin.call("POST", "/tenants/%s/projects/%s/keys" % (t, p), {"name": "dataplane"})[0]["key"]
    counts.add("key")
    # The verifier is off: one manual probe (admission_probes=1) admits the resource.
    deadline = time.time() + 30
    state = None
    while time.time() < deadline:
        admin.call("POST", "/tenants/%s/resources/%s/verify" % (t, r), expect=(200, 429))
        state = admin.call("GET", "/tenants/%s/resources/%s" % (t, r))[0]["state"]
        if state == "active":
            return {"tenant": t, "pool": pool, "resource": r, "project": p, "key": key, "run_id": run_id}
        if state == "rejected":
            break
        time.sleep(1.1)
    health = admin.call("GET", "/tenants/%s/resources/%s/health" % (t, r))[0]
    raise Failure("the data-plane resource was not admitted (state %s): %s" % (state, json.dumps(health)[:1500]))


# ---------------------------------------------------------------------------------------------------------------------


def policy_apply(binary, port, token, admin, mock, directory, seats, run_id):
    """Applies a policy file with `seats` virtual seats through the CLI (a client of the running server), then plans it again."""
    name = "policy-bench-%s" % run_id
    tenant = admin.call("POST", "/tenants", {"name": name})[0]["id"]
    expires = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86400))
    lines = ["tenant: %s" % name, "pricing:", "  %s: {input_per_mtok_usd: 0.40, output_per_mtok_usd: 1.60}" % MODEL,
             "pools:", "  main:", "    resources:", "      upstream:", "        kind: api_key", "        provider: openai",
             "        base_url: %s/v1" % mock, "        credential: ${BENCH_CREDENTIAL}", "        models: [%s]" % MODEL,
             "        attestation: {by: bench, at: \"2026-01-01T00:00:00Z\"}",
             "workspaces:", "  contractors:", "    pools: [main]", "    budget: {monthly_limit_usd: 100000.00}", "    seats:"]
    for i in range(seats):
        lines.append("      seat-%06d@contractor.example: {expires: \"%s\", budget_usd: 25.00}" % (i, expires))
    path = os.path.join(directory, "policy-seats.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    env = dict(os.environ, QUOTAFLOW_URL="http://127.0.0.1:%d" % port, QUOTAFLOW_ADMIN_TOKEN=token, QUOTAFLOW_TENANT=tenant,
               BENCH_CREDENTIAL="sk-bench-policy-credential-0000000000")
    errors = []
    log("policy: applying %d seats with `quotaflow apply`" % seats)
    started = time.monotonic()
    apply = subprocess.run([binary, "apply", "-f", path, "--keys-out", os.path.join(directory, "issued.jsonl")], env=env,
                           capture_output=True, text=True)
    apply_s = time.monotonic() - started
    if apply.returncode != 0:
        errors.append("quotaflow apply exited %d: %s" % (apply.returncode, apply.stderr[-500:]))
    summary = [l for l in apply.stdout.splitlines() if l.startswith("Plan: ")]
    changes = sum(int(w) for w in re.findall(r"(\d+) to", summary[0])) if summary else 0
    started = time.monotonic()
    plan = subprocess.run([binary, "plan", "-f", path], env=env, capture_output=True, text=True)
    plan_s = time.monotonic() - started
    plan_result = (plan.stdout.strip().splitlines() or ["?"])[-1]
    if plan.returncode != 0 or "No changes" not in plan_result:
        errors.append("the plan after the apply was not empty: %s %s" % (plan_result, plan.stderr[-300:]))
    log("policy: apply %.1f s, plan %.1f s" % (apply_s, plan_s))
    return {"seats": seats, "apply_s": apply_s, "plan_s": plan_s, "changes": changes, "plan_result": plan_result, "errors": errors}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the quotaflow binary")
    ap.add_argument("--objects", type=int, default=100_000, help="populated objects, tenants excluded (default 100000)")
    ap.add_argument("--tenants", type=int, default=1000, help="tenants the objects are spread over (default 1000)")
    ap.add_argument("--checkpoints", type=int, default=10, help="measurements after 0 objects (default 10)")
    ap.add_argument("--samples", type=int, default=200, help="timed admin writes per checkpoint (default 200)")
    ap.add_argument("--workers", type=int, default=4, help="concurrent population workers (default 4)")
    ap.add_argument("--dataplane-rounds", type=int, default=6, help="interleaved A/B rounds (default 6)")
    ap.add_argument("--dataplane-requests", type=int, default=300, help="sequential requests per round (default 300)")
    ap.add_argument("--write-rate", type=float, default=50,
                    help="admin writes per second streamed during data-plane rounds B (default 50; 0 = back to back)")
    ap.add_argument("--dataplane-first", action="store_true", help="also measure the data plane at the first checkpoint")
    ap.add_argument("--json", help="write every figure to this file")
    ap.add_argument("--assert-flat", type=float, metavar="FACTOR",
                    help="exit 1 if the last write p50 exceeds FACTOR x max(first write p50, 1 ms)")
    ap.add_argument("--policy-seats", type=int, default=0,
                    help="then time `quotaflow apply` of a policy file with this many virtual seats, and the plan after it")
    ap.add_argument("--keep", action="store_true", help="keep the server's directory (database and log)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.objects < 0 or args.tenants < 1 or args.checkpoints < 1 or args.samples < 2 or args.workers < 1:
        ap.error("need objects >= 0, tenants >= 1, checkpoints >= 1, samples >= 2, workers >= 1")
    if args.dataplane_rounds < 2:
        ap.error("need at least 2 data-plane rounds (one A, one B)")
    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        ap.error("not an executable: %s" % binary)

    # SIGTERM/SIGHUP unwind like Ctrl-C, so the finally block stops the server and the mock.
    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    rng = random.Random(args.seed)
    run_id = "%x" % (time.time_ns() // 1000 % (1 << 32))
    token = "qf_op_admin-scale-benchmark-%s%s" % (run_id, rng.getrandbits(64))
    directory = tempfile.mkdtemp(prefix="qf-admin-scale-")
    phases = {}
    result = {"config": {k: v for k, v in vars(args).items()}, "checkpoints": [], "phases_s": phases,
              "objects_counted": "pools, resources, projects, project keys and seats; tenants excluded",
              "per_project": {"keys": KEYS_PER_PROJECT, "seats": SEATS_PER_PROJECT}}
    server = mock_proc = None
    ok = True
    failures = []

    def stop_all():
        nonlocal server, mock_proc
        if server and server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        server = None
        if mock_proc and mock_proc.is_alive():
            mock_proc.terminate()
            mock_proc.join(5)
        mock_proc = None

    atexit.register(stop_all)
    try:
        started = time.monotonic()
        mock_proc, mock = start_mock()
        server, port = start_server(binary, directory, token)
        phases["start"] = time.monotonic() - started
        log("quotaflow pid %d on port %d (%s), mock upstream %s, directory %s" % (server.pid, port, binary, mock, directory))
        counts = Counts()
        admin = Admin(port, token)

        started = time.monotonic()
        dp = setup_dataplane(admin, counts, mock, run_id)
        phases["dataplane_setup"] = time.monotonic() - started
        log("data-plane tenant ready (resource admitted by a manual verify)")
        setup_objects = counts.objects()

        tenants = [TenantState(i, run_id) for i in range(args.tenants)]
        workers = [Worker(port, token, tenants[w::args.workers], mock, counts) for w in range(args.workers)]
        gate = Gate()
        first_rss = None
        phases["populate"] = phases["measure_writes"] = 0.0
        for c in range(args.checkpoints + 1):
            target = args.objects * c // args.checkpoints
            log("checkpoint %d/%d: populating to %d objects" % (c, args.checkpoints, target))
            phases["populate"] += populate_to(target, gate, workers, counts)
            if server.poll() is not None:
                raise Failure("quotaflow exited with %s:\n%s" % (server.returncode, server_log_tail(directory)))
            snap = counts.snapshot()
            catalog = counts.objects()
            rss = rss_kib(server.pid)
            started = time.monotonic()
            m = measure_writes(admin, counts, args.samples, c, tenants, run_id, rng)
            seconds = time.monotonic() - started
            phases["measure_writes"] += seconds
            row = dict(checkpoint=c, populated=target, catalog_objects=catalog, counts=snap, rss_kib=rss,
                       measure_seconds=seconds, **m)
            result["checkpoints"].append(row)
            log("  checkpoint %d: %d objects in the catalog, write p50 %.2f ms, p99 %.2f ms (project %.2f, key %.2f), "
                "RSS %.1f MiB, %.1f s" % (c, catalog, m["p50_ms"], m["p99_ms"], m["project_p50_ms"], m["key_p50_ms"],
                                          rss / 1024, seconds))
            if c == 0 and args.dataplane_first:
                started = time.monotonic()
                log("data plane at the first checkpoint")
                result["dataplane_first"] = measure_dataplane(port, token, dp, counts, args.dataplane_rounds,
                                                              args.dataplane_requests, "first", args.write_rate)
                phases["dataplane_first"] = time.monotonic() - started
            if first_rss is None:
                first_rss = (rss, snap)
        for w in workers:
            w.admin.client.close()

        started = time.monotonic()
        log("data plane at the end (%d objects in the catalog)" % counts.objects())
        result["dataplane"] = measure_dataplane(port, token, dp, counts, args.dataplane_rounds, args.dataplane_requests, "end",
                                               args.write_rate)
        result["dataplane"]["catalog_objects"] = counts.objects()
        phases["dataplane"] = time.monotonic() - started

        last = result["checkpoints"][-1]
        rss0, snap0 = first_rss
        credentials = (last["counts"]["key"] + last["counts"]["seat"]) - (snap0["key"] + snap0["seat"])
        result["memory"] = {
            "rss_first_kib": rss0, "rss_last_kib": last["rss_kib"], "keys_and_seats_added": credentials,
            "objects_added": last["catalog_objects"] - result["checkpoints"][0]["catalog_objects"],
            "rss_hwm_kib": None,
            "mib_per_10k_keys": ((last["rss_kib"] - rss0) / 1024 / credentials * 10_000) if credentials > 0 else None,
            "note": "estimate: RSS growth between the first and last checkpoints over the keys and seats created in "
                    "between; it also carries the pools, resources and projects created alongside, and allocator slack",
        }
        try:
            with open("/proc/%d/status" % server.pid) as f:
                result["memory"]["rss_hwm_kib"] = next(int(x.split()[1]) for x in f if x.startswith("VmHWM:"))
        except (OSError, StopIteration):
            pass
        result["setup_objects"] = setup_objects
        if args.policy_seats > 0:
            started = time.monotonic()
            result["policy"] = policy_apply(binary, port, token, admin, mock, directory, args.policy_seats, run_id)
            phases["policy"] = time.monotonic() - started
            if result["policy"]["errors"]:
                failures.extend(result["policy"]["errors"])
        for key in ("errors",):
            if result["dataplane"][key]:
                failures.append("%d data-plane request(s) not answered 200, e.g. %s" % (
                    len(result["dataplane"][key]), result["dataplane"][key][0]))
    except KeyboardInterrupt as e:
        log("interrupted (%s)" % e)
        failures.append("interrupted")
    except Failure as e:
        log("FAILED: %s" % e)
        ok = False
        failures.append(str(e))
    finally:
        stopped = time.monotonic()
        stop_all()
        phases["stop"] = time.monotonic() - stopped
        if args.keep or not ok:  # a failed run keeps the server's log and database
            log("server directory kept: %s" % directory)
        else:
            shutil.rmtree(directory, ignore_errors=True)

    if Admin.errors:
        failures.append("%d admin call(s) answered an unexpected status, e.g. %s" % (len(Admin.errors), Admin.errors[0]))
    result["admin_errors"] = Admin.errors

    # The report.
    if result["checkpoints"]:
        print("## Admin writes against catalog size (%s)" % os.path.basename(binary))
        print()
        print("objects = pools, resources, projects, project keys and seats in the catalog at the checkpoint (tenants "
              "excluded); %d timed writes each, sequential, alternating create-project / create-key" % args.samples)
        print()
        print("| objects | write p50 ms | write p99 ms | RSS MiB |")
        print("| ---: | ---: | ---: | ---: |")
        for row in result["checkpoints"]:
            print("| %d | %.2f | %.2f | %.1f |" % (row["catalog_objects"], row["p50_ms"], row["p99_ms"], row["rss_kib"] / 1024))
        print()
        first, last = result["checkpoints"][0], result["checkpoints"][-1]
        if len(result["checkpoints"]) > 1:
            growth = last["p50_ms"] / max(first["p50_ms"], 1.0)
            result["p50_growth"] = growth
            print("write p50 growth, last / max(first, 1 ms): %.2fx" % growth)
    for label, key in (("data plane at the first checkpoint", "dataplane_first"), ("data plane at the end", "dataplane")):
        d = result.get(key)
        if not d:
            continue
        n_a = sum(1 for r in d["rounds"] if r["mode"] == "A")
        print("%s (%d rounds of %d sequential chat completions, A quiet / B with admin writes streaming):" % (
            label, len(d["rounds"]), d["rounds"][0]["requests"]))
        print("- A (no admin writes): p50 %.2f ms, p99 %.2f ms (median of %d rounds)" % (d["a_p50_ms"], d["a_p99_ms"], n_a))
        print("- B (admin writes):    p50 %.2f ms, p99 %.2f ms (median of %d rounds; %d writes alongside, write p50 %.2f ms)" % (
            d["b_p50_ms"], d["b_p99_ms"], len(d["rounds"]) - n_a, d["b_admin_writes"], d["b_admin_write_p50_ms"] or 0))
        print("- B/A: p50 %.2fx, p99 %.2fx" % (d["p50_ratio"], d["p99_ratio"]))
    pol = result.get("policy")
    if pol:
        print("policy file with %d virtual seats (one project, one resource): `quotaflow apply` %.1f s (%d changes), "
              "then `quotaflow plan` %.1f s (%s)" % (pol["seats"], pol["apply_s"], pol["changes"], pol["plan_s"], pol["plan_result"]))
    mem = result.get("memory")
    if mem and mem["mib_per_10k_keys"] is not None:
        print("memory per 10,000 keys (estimate): %.1f MiB (RSS %.1f -> %.1f MiB over %d keys and seats added; "
              "also carries the pools, resources and projects created with them)" % (
                  mem["mib_per_10k_keys"], mem["rss_first_kib"] / 1024, mem["rss_last_kib"] / 1024, mem["keys_and_seats_added"]))
    print("phases: " + ", ".join("%s %.1f s" % (k, v) for k, v in phases.items()))
    print("total: %.1f s" % (time.monotonic() - T0))

    if not failures and args.assert_flat is not None and result["checkpoints"]:
        first, last = result["checkpoints"][0], result["checkpoints"][-1]
        limit = args.assert_flat * max(first["p50_ms"], 1.0)
        verdict = last["p50_ms"] <= limit
        result["assert_flat"] = {"factor": args.assert_flat, "limit_ms": limit, "last_p50_ms": last["p50_ms"], "passed": verdict}
        print("assert-flat %.1f: last p50 %.2f ms vs limit %.2f ms (%.1f x max(first p50 %.2f ms, 1 ms)): %s" % (
            args.assert_flat, last["p50_ms"], limit, args.assert_flat, first["p50_ms"], "PASS" if verdict else "FAIL"))
        if not verdict:
            failures.append("write p50 grew from %.2f ms to %.2f ms (limit %.2f ms)" % (first["p50_ms"], last["p50_ms"], limit))
    result["failures"] = failures
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    for f in failures:
        print("FAIL: " + f)
    sys.stdout.flush()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
