"""A fleet of three replicas on PostgreSQL behind nginx, started by scripts/fleet (the tested artifact):
exact shared budgets, changes on every replica within a second, kill -9 of a replica under load, and of the leader."""
import json
import os
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import ROOT, JSONStub, Quotaflow, binary, start_stub, wait_active

FLEET = os.path.join(ROOT, "scripts", "fleet")
pytestmark = pytest.mark.skipif(
    not any(os.path.exists("/usr/lib/postgresql/%s/bin/initdb" % v) for v in os.listdir("/usr/lib/postgresql"))
    if os.path.isdir("/usr/lib/postgresql") else True, reason="PostgreSQL is not installed")


class Node(Quotaflow):
    """A replica (or the load balancer) already running: the harness's HTTP helpers without a process."""

    def __init__(self, base, token):
        self.base = base
        self.token = token


class Fleet:
    def __init__(self, n=3, settings=()):
        self.dir = tempfile.mkdtemp(prefix="qf-fleet-")
        env = dict(os.environ, QUOTAFLOW_BIN=binary(), FLEET_SET=" ".join(settings))
        self.env = env
        out = subprocess.run([FLEET, "start", self.dir, str(n)], env=env, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            self.stop()
            raise RuntimeError("scripts/fleet start failed: %s" % out.stderr[-2000:])
        values = dict(line.split("=", 1) for line in out.stdout.split())
        token = open(os.path.join(self.dir, "operator-token")).read()
        self.database = values["DATABASE_URL"]
        self.lb = Node(values["FLEET_URL"], token)
        self.replicas = [Node(values["REPLICA_%d_URL" % i], token) for i in range(1, n + 1)]

    def kill(self, i):
        subprocess.run([FLEET, "kill", self.dir, str(i + 1)], check=True)

    def stop(self):
        subprocess.run([FLEET, "stop", self.dir], env=self.env, capture_output=True, timeout=120)

    def sql(self, query):
        out = subprocess.run(["psql", self.database, "-At", "-c", query], capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def leader(self, alive=None):
        for i, r in enumerate(self.replicas):
            if alive is not None and i not in alive:
                continue
            try:
                status, body, _ = r.get("/readyz")
            except OSError:
                continue
            if status == 200 and json.loads(body)["fleet"]["leader"]:
                return i
        return None


@pytest.fixture
def fleet():
    f = Fleet(settings=["fleet_lease_ms=3000", "allow_private_egress=true", "admission_probes=1", "admission_spacing_ms=0"])
    yield f
    f.stop()


class Exact(JSONStub):
    """Answers with exactly max_tokens output tokens (the test's price: 1 micro-USD per output token, input free),
    after `gate` opens; `delay` seconds first."""

    gate = threading.Event()
    delay = 0.0

    def do_GET(self):
        self.reply(200, {"object": "list", "data": [{"id": "exact-model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
        Exact.gate.wait(60)
        time.sleep(Exact.delay)
        out = int(body.get("max_tokens", 1))
        self.reply(200, {"id": "c", "object": "chat.completion", "model": "exact-model",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 7, "completion_tokens": out, "total_tokens": out + 7}})


def tenant(node, upstream, projects):
    """A tenant with exact pricing, one resource on `upstream` (admitted by the leader's verifier), and `projects`:
    [(name, cap, parent name or None)] -> {name: (project id, key)}."""
    t = node.admin("POST", "/tenants", {"name": "fleet-%d" % time.time_ns()})["id"]
    node.admin("PUT", "/tenants/%s/pricing" % t, {"entries": [
        {"model": "exact-model", "input_per_mtok_micros": 0, "output_per_mtok_micros": 1000000}]})
    pool = node.admin("POST", "/tenants/%s/pools" % t, {"name": "main"})["id"]
    r = node.admin("POST", "/tenants/%s/resources" % t, {
        "pool_id": pool, "name": "upstream", "kind": "api_key", "provider": "openai_compatible", "base_url": upstream + "/v1",
        "credential": "sk-fleet", "models": ["exact-model"], "attestation": {"by": "tests", "at": "2026-01-01T00:00:00Z"}})["id"]
    wait_active(node, t, r)
    out = {}
    for name, cap, parent in projects:
        body = {"name": name, "pool_ids": [pool], "budget": {"monthly_cap_micros": cap}}
        if parent:
            body["parent_id"] = out[parent][0]
        p = node.admin("POST", "/tenants/%s/projects" % t, body)["id"]
        out[name] = (p, node.admin("POST", "/tenants/%s/projects/%s/keys" % (t, p), {"name": "k"})["key"])
    return t, r, pool, out


def test_a_two_level_budget_admits_exactly_k_across_three_replicas(fleet):
    Exact.gate.set()
    server, url = start_stub(Exact)
    try:
        k = 17
        t, _, _, projects = tenant(fleet.replicas[0], url, [("division", k * 100, None), ("a", 1200, "division"),
                                                            ("b", 1200, "division")])
        # From now on, answers wait until every refusal is in.
        Exact.gate.clear()
        keys = [projects["a"][1], projects["b"][1]]
        # Each replica knows the keys (a model with no price is refused before anything is held).
        for node in fleet.replicas:
            for key in keys:
                deadline = time.time() + 2
                while node.chat(key, model="no-such-model")[0] == 401:
                    assert time.time() < deadline
                    time.sleep(0.02)
        n = 60
        answered = []
        lock = threading.Lock()

        def ask(i):
            node = fleet.replicas[i % 3]
            status, body, headers = node.chat(keys[i % 2], model="exact-model", max_tokens=100, timeout=90)
            with lock:
                answered.append(status)
            return status

        with ThreadPoolExecutor(max_workers=n) as pool:
            futures = [pool.submit(ask, i) for i in range(n)]
            deadline = time.time() + 60
            while len(answered) < n - k and time.time() < deadline:
                time.sleep(0.05)
            # Every refusal came while the admitted requests were still held upstream.
            assert len(answered) == n - k and all(s == 429 for s in answered), answered
            Exact.gate.set()
            statuses = [f.result() for f in futures]
        assert statuses.count(200) == k, statuses
        assert sorted(set(statuses)) == [200, 429]
        spent = int(fleet.sql("SELECT coalesce(sum(cost_micros), 0) FROM ledger WHERE tenant_id = '%s' AND status = 200" % t))
        assert spent == k * 100
        assert fleet.sql("SELECT count(*) FROM fleet_reservations") == "0"
        # Once all settled: the division is full on every replica, and the counters equal the ledger everywhere.
        for node in fleet.replicas:
            assert node.chat(keys[0], model="exact-model", max_tokens=1)[0] == 429
            report = node.admin("POST", "/tenants/%s/budgets/reconcile" % t)
            assert report["drift"] == [] and report["checked"] > 0, report
    finally:
        Exact.gate.set()
        server.shutdown()


def test_a_revoke_on_one_replica_is_refused_on_the_others_within_a_second(fleet):
    Exact.gate.set()
    server, url = start_stub(Exact)
    try:
        t, _, _, projects = tenant(fleet.replicas[0], url, [("p", 10_000_000, None)])
        p, key = projects["p"]
        key_id = fleet.replicas[0].admin("GET", "/tenants/%s/projects/%s/keys" % (t, p))["data"][0]["id"]
        for node in fleet.replicas:
            deadline = time.time() + 1
            while node.chat(key, model="exact-model", max_tokens=1)[0] != 200:
                assert time.time() < deadline, "a new key did not reach %s within a second" % node.base
                time.sleep(0.02)
        fleet.replicas[0].admin("POST", "/tenants/%s/projects/%s/keys/%s/revoke" % (t, p, key_id))
        revoked = time.time()
        assert fleet.replicas[0].chat(key, model="exact-model", max_tokens=1)[0] == 401
        for node in fleet.replicas[1:]:
            while node.chat(key, model="exact-model", max_tokens=1)[0] != 401:
                assert time.time() - revoked < 1.0, "the revoke did not reach %s within a second" % node.base
                time.sleep(0.02)
    finally:
        server.shutdown()


def test_kill9_of_a_replica_under_load_loses_nothing_and_the_others_keep_serving(fleet):
    Exact.gate.set()
    Exact.delay = 0.2
    server, url = start_stub(Exact)
    try:
        t, _, _, projects = tenant(fleet.lb, url, [("p", 10_000_000, None)])
        key = projects["p"][1]
        completed, failed, after_kill = [], [], []
        lock = threading.Lock()
        stop = time.time() + 6
        killed = threading.Event()

        def client():
            while time.time() < stop:
                was_killed = killed.is_set()
                try:
                    status, _, headers = fleet.lb.chat(key, model="exact-model", max_tokens=10, timeout=30)
                except OSError:
                    status, headers = 0, {}
                with lock:
                    if status == 200:
                        completed.append(headers.get("x-request-id") or headers.get("X-Request-Id"))
                    else:
                        failed.append(status)
                    if was_killed:
                        after_kill.append(status)

        threads = [threading.Thread(target=client) for _ in range(12)]
        for th in threads:
            th.start()
        time.sleep(2)
        victim = 2 if fleet.leader() != 2 else 1
        fleet.kill(victim)
        killed.set()
        for th in threads:
            th.join()
        assert len(completed) > 50
        # The survivors kept serving: requests that started after the kill succeeded.
        assert after_kill and after_kill.count(200) >= len(after_kill) - 1, after_kill
        # Every request the client saw complete is in the ledger.
        ids = set(fleet.sql("SELECT request_id FROM ledger WHERE tenant_id = '%s'" % t).split())
        missing = set(completed) - ids
        assert not missing, "%d completed requests missing from the ledger" % len(missing)
        # The dead replica's reservations are settled at their worst case by the leader, flagged.
        deadline = time.time() + 20
        while fleet.sql("SELECT count(*) FROM fleet_reservations") != "0":
            assert time.time() < deadline, fleet.sql("SELECT id, replica FROM fleet_reservations")
            time.sleep(0.2)
        recovered = int(fleet.sql("SELECT count(*) FROM ledger WHERE flags LIKE '%%reservation_recovered%%' AND tenant_id = '%s'" % t))
        assert recovered <= len(failed)
        for i, node in enumerate(fleet.replicas):
            if i != victim:
                report = node.admin("POST", "/tenants/%s/budgets/reconcile" % t)
                assert report["drift"] == [], report
    finally:
        Exact.delay = 0.0
        server.shutdown()


def test_when_the_leader_dies_another_replica_runs_the_verifier(fleet):
    Exact.gate.set()
    server, url = start_stub(Exact)
    try:
        t, _, pool, _ = tenant(fleet.replicas[0], url, [("p", 1_000_000, None)])
        leader = fleet.leader()
        assert leader is not None
        fleet.kill(leader)
        alive = [i for i in range(3) if i != leader]
        deadline = time.time() + 10
        while fleet.leader(alive) is None:
            assert time.time() < deadline, "no replica took over"
            time.sleep(0.1)
        # A new resource is admitted by the new leader's verifier.
        node = fleet.replicas[alive[0]]
        r = node.admin("POST", "/tenants/%s/resources" % t, {
            "pool_id": pool, "name": "second", "kind": "api_key", "provider": "openai_compatible", "base_url": url + "/v1",
            "credential": "sk-fleet-2", "models": ["exact-model"], "attestation": {"by": "tests", "at": "2026-01-01T00:00:00Z"}})["id"]
        wait_active(node, t, r, timeout=20)
    finally:
        server.shutdown()


def test_replicas_refuse_while_the_database_is_away_and_serve_again_when_it_returns(fleet):
    Exact.gate.set()
    server, url = start_stub(Exact)
    try:
        t, _, _, projects = tenant(fleet.replicas[0], url, [("p", 10_000_000, None)])
        key = projects["p"][1]
        for node in fleet.replicas:
            deadline = time.time() + 2
            while node.chat(key, model="exact-model", max_tokens=1)[0] != 200:
                assert time.time() < deadline
                time.sleep(0.02)
        pg = os.path.join(fleet.dir, "pg")
        port = fleet.database.rsplit(":", 1)[1].split("/")[0]
        subprocess.run([os.path.join(ROOT, "scripts", "postgres"), "stop", pg], check=True)
        # Nothing can be proven: every replica says so and refuses, none crashes.
        for node in fleet.replicas:
            deadline = time.time() + 10
            while node.get("/readyz")[0] != 503:
                assert time.time() < deadline, "%s still ready without its database" % node.base
                time.sleep(0.1)
            status, _, headers = node.chat(key, model="exact-model", max_tokens=1)
            assert status == 503 and headers.get("Retry-After", headers.get("retry-after")) == "1"
        subprocess.run([os.path.join(ROOT, "scripts", "postgres"), "start", pg, port], check=True, capture_output=True)
        for node in fleet.replicas:
            deadline = time.time() + 20
            while node.chat(key, model="exact-model", max_tokens=1)[0] != 200:
                assert time.time() < deadline, "%s did not serve again" % node.base
                time.sleep(0.1)
        # Every replica lost its link, so each lets the others lead first for a few seconds; then one leads.
        deadline = time.time() + 15
        while fleet.leader() is None:
            assert time.time() < deadline, "no replica leads again"
            time.sleep(0.2)
        for node in fleet.replicas:
            assert node.admin("POST", "/tenants/%s/budgets/reconcile" % t)["drift"] == []
    finally:
        server.shutdown()
