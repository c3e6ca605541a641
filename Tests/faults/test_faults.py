"""Fault and abuse tests against a real `quotaflow serve` process (run by scripts/test)."""
import json
import os
import signal
import socket
import sqlite3
import threading
import time
import urllib.request

from harness import Quotaflow, binary, start_upstream

FAST = {"admission_spacing_ms": "0", "first_byte_timeout_ms": "1500", "stall_timeout_ms": "1000",
        "client_idle_timeout_ms": "1000", "body_timeout_ms": "2000", "default_cooldown_ms": "1000", "max_attempts": "1"}


def ledger_ids(directory):
    conn = sqlite3.connect(os.path.join(directory, "q.db"))
    try:
        return {row[0] for row in conn.execute("SELECT request_id FROM ledger")}
    finally:
        conn.close()


def test_kill9_under_load_loses_nothing():
    upstream, url = start_upstream()
    server = Quotaflow(settings=FAST).start()
    fx = server.setup_tenant(url, project_extra={"budget": {"monthly_cap_micros": 10_000_000_000}})
    completed = []
    lock = threading.Lock()
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                status, _, headers = server.chat(fx["key"], timeout=5)
            except OSError:
                continue
            if status == 200:
                with lock:
                    completed.append(headers.get("x-request-id") or headers.get("X-Request-Id"))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    server.kill9()
    stop.set()
    for t in threads:
        t.join()
    assert len(completed) > 100, "the load did not run (%d)" % len(completed)
    # Every request the client saw complete is in the ledger.
    missing = set(completed) - ledger_ids(server.dir)
    assert not missing, "%d completed requests missing from the ledger" % len(missing)
    # Restart on the same database: counters agree with the ledger, and it serves again.
    server.start()
    report = server.admin("POST", "/tenants/%s/budgets/reconcile" % fx["tenant"])
    assert report["drift"] == [], report
    assert server.chat(fx["key"])[0] == 200
    assert server.terminate() == 0
    upstream.shutdown()


def test_an_outside_reader_does_not_cost_committed_rows():
    """An operator's sqlite3 (or any other process) opening the live database must not make the
    server lose rows: every answered request is visible to a fresh outside reader at once, and
    survives kill -9. (Closing a stray descriptor on the database file once dropped the server's
    POSIX locks, so an outside reader deleted the WAL under it.)"""
    upstream, url = start_upstream()
    server = Quotaflow(settings=FAST).start()
    fx = server.setup_tenant(url, project_extra={"budget": {"monthly_cap_micros": 10_000_000_000}})
    answered = []
    for round_ in range(5):
        for _ in range(20):
            status, _, headers = server.chat(fx["key"])
            assert status == 200
            answered.append(headers.get("x-request-id") or headers.get("X-Request-Id"))
        # A fresh outside connection, opened and closed, sees every answered row.
        missing = set(answered) - ledger_ids(server.dir)
        assert not missing, "round %d: %d answered requests not visible outside" % (round_, len(missing))
        assert os.path.exists(os.path.join(server.dir, "q.db-wal")), "the WAL was deleted under the running server"
    server.kill9()
    missing = set(answered) - ledger_ids(server.dir)
    assert not missing, "%d answered requests lost to kill -9 after outside reads" % len(missing)
    server.start()
    assert server.chat(fx["key"])[0] == 200
    assert server.terminate() == 0
    upstream.shutdown()


def test_slow_clients_and_slow_upstreams_do_not_hold_capacity():
    upstream, url = start_upstream()
    server = Quotaflow(settings=FAST).start()
    a = server.setup_tenant(url, name="slow-tenant", resource_extra={"limits": {"max_concurrency": 4}})
    b = server.setup_tenant(url, name="busy-tenant")
    # Slowloris: headers a byte at a time, and a body that trickles in.
    lorises = []
    for i in range(40):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        lorises.append(s)
    trickle = socket.create_connection(("127.0.0.1", server.port))
    trickle.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{" % a["key"]).encode())
    # Meanwhile another tenant's requests keep flowing.
    started = time.time()
    for _ in range(20):
        assert server.chat(b["key"])[0] == 200
    assert time.time() - started < 10
    # The trickling body is cut off by the body deadline, the silent headers by the idle timeout.
    for _ in range(4):
        time.sleep(0.6)
        try:
            trickle.sendall(b" ")
        except OSError:
            break
    time.sleep(1.5)
    closed = 0
    for s in lorises + [trickle]:
        s.settimeout(2)
        try:
            data = s.recv(1024)
            closed += 1 if data == b"" or b"408" in data or data.startswith(b"HTTP/1.1 4") else 0
        except OSError:
            closed += 1
        s.close()
    assert closed == len(lorises) + 1, "only %d of %d slow connections were closed" % (closed, len(lorises) + 1)
    # An upstream that never answers: the first-byte limit holds and the slot is freed.
    t0 = time.time()
    status, body, _ = server.chat(a["key"], model="mute-model")
    assert status == 504 and json.loads(body)["error"]["code"] == "upstream_timeout", (status, body)
    assert time.time() - t0 < 5
    # An upstream that stalls mid-stream: the stall limit holds. (Wait out the cooldown the timeout caused.)
    time.sleep(2.0)
    req = urllib.request.Request(server.base + "/v1/chat/completions", method="POST",
                                 data=json.dumps({"model": "stall-model", "stream": True, "messages": []}).encode(),
                                 headers={"authorization": "Bearer " + a["key"], "content-type": "application/json"})
    t0 = time.time()
    status = None
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status = r.status
            r.read()
    except Exception:
        pass
    assert status == 200, status
    assert time.time() - t0 < 6
    # Capacity came back: four concurrent requests fit the resource's limit of four again.
    time.sleep(1.2)
    metrics = server.request("GET", "/metrics", token=server.token)[1].decode()
    inflight = [l for l in metrics.splitlines() if l.startswith("quotaflow_resource_inflight") and a["resource"] in l]
    assert inflight and inflight[0].endswith(" 0"), inflight
    assert server.terminate() == 0
    upstream.shutdown()


def test_sigterm_finishes_streams_flushes_and_exits_zero():
    upstream, url = start_upstream()
    server = Quotaflow(settings=dict(FAST, shutdown_grace_ms="10000", stall_timeout_ms="5000")).start()
    fx = server.setup_tenant(url)
    result = {}

    def stream():
        req = urllib.request.Request(server.base + "/v1/chat/completions", method="POST",
                                     data=json.dumps({"model": "stream-model", "stream": True, "max_tokens": 15,
                                                      "messages": []}).encode(),
                                     headers={"authorization": "Bearer " + fx["key"], "content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=20) as r:
            result["text"] = r.read().decode()
            result["id"] = r.headers.get("x-request-id")

    t = threading.Thread(target=stream)
    t.start()
    time.sleep(0.5)
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    # New connections are refused while the stream drains.
    try:
        server.get("/healthz")
        accepted = True
    except OSError:
        accepted = False
    t.join()
    code = server.proc.wait(timeout=30)
    assert code == 0, code
    assert not accepted, "the server still accepted connections after SIGTERM"
    assert result["text"].endswith("data: [DONE]\n\n") and result["text"].count('"content":"x"') == 15
    assert result["id"] in ledger_ids(server.dir)
    upstream.shutdown()


def test_online_backup_is_consistent_while_serving():
    upstream, url = start_upstream()
    server = Quotaflow(settings=FAST).start()
    fx = server.setup_tenant(url)
    stop = threading.Event()

    def load():
        while not stop.is_set():
            server.chat(fx["key"], timeout=5)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    target = os.path.join(server.dir, "backup.db")
    import subprocess
    out = subprocess.run([binary(), "backup", "--database", os.path.join(server.dir, "q.db"), "--to", target],
                         capture_output=True, text=True)
    stop.set()
    for t in threads:
        t.join()
    assert out.returncode == 0, out.stderr
    conn = sqlite3.connect(target)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
    assert rows > 0
    conn.close()
    assert server.terminate() == 0
    # The copy starts as a server of its own (with the same key file beside it).
    restored = Quotaflow(settings=FAST)
    os.replace(target, os.path.join(restored.dir, "q.db"))
    import shutil
    shutil.copy(os.path.join(server.dir, "q.db.key"), os.path.join(restored.dir, "q.db.key"))
    restored.start()
    assert restored.admin("GET", "/tenants/%s" % fx["tenant"])["name"] == "fault"
    assert restored.terminate() == 0
    upstream.shutdown()
