"""Process-level test harness: a stub upstream, a real `quotaflow serve` process, and admin helpers."""
import atexit
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def binary():
    path = os.environ.get("QUOTAFLOW_BIN")
    if path:
        return path
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True)
    return os.path.join(out.stdout.strip(), "quotaflow")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Upstream(BaseHTTPRequestHandler):
    """Behaviour chosen by model name: fast, stream (slow events), stall (stops mid-stream), mute (never answers)."""

    protocol_version = "HTTP/1.1"
    credential = "sk-fault-upstream"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        return self.headers.get("authorization") == "Bearer " + self.credential

    def do_GET(self):
        if not self.authorized():
            return self.reply(401, {"error": {"message": "bad key"}})
        self.reply(200, {"object": "list", "data": [{"id": m} for m in ("fast-model", "stream-model", "stall-model", "mute-model")]})

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        model = body.get("model", "fast-model")
        if not self.authorized():
            return self.reply(401, {"error": {"message": "bad key"}})
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if model == "mute-model":
            time.sleep(60)
            return
        if model == "fast-model":
            return self.reply(200, {"id": "c", "object": "chat.completion", "model": model,
                                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                                    "usage": usage})
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def chunk(text):
            data = text.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        delta = 'data: {"choices":[{"index":0,"delta":{"content":"x"}}],"usage":null}\n\n'
        try:
            if model == "stall-model":
                chunk(delta)
                time.sleep(30)
                return
            for _ in range(int(body.get("max_tokens", 10))):
                chunk(delta)
                time.sleep(0.1)
            chunk('data: {"choices":[],"usage":%s}\n\n' % json.dumps(usage))
            chunk("data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass


def start_upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, "http://127.0.0.1:%d" % server.server_address[1]


_started = []


@atexit.register
def _stop_leftovers():
    """A failed assertion must not leave a server running after the test session."""
    for proc in _started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Quotaflow:
    """A `quotaflow serve` process on a free port with its own database directory."""

    def __init__(self, directory=None, token="qf_op_fault-tests-operator-token", settings=None, log_args=None):
        self.dir = directory or tempfile.mkdtemp(prefix="qf-fault-")
        self.token = token
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        # Stub upstreams and webhook receivers listen on loopback.
        self.settings = dict({"allow_private_egress": "true"}, **(settings or {}))
        self.log_args = log_args or ["--log-level", "warning"]
        self.proc = None
        self.log = open(os.path.join(self.dir, "server.log"), "ab")

    def start(self):
        env = dict(os.environ, QUOTAFLOW_OPERATOR_TOKEN=self.token)
        args = [binary(), "serve", "--port", str(self.port), "--database", os.path.join(self.dir, "q.db")] + self.log_args
        for k, v in self.settings.items():
            args += ["--set", "%s=%s" % (k, v)]
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=self.log)
        _started.append(self.proc)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if self.get("/readyz")[0] == 200:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("quotaflow exited with %s; see %s/server.log" % (self.proc.returncode, self.dir))
            time.sleep(0.05)
        raise RuntimeError("quotaflow did not become ready")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout=30):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def request(self, method, path, body=None, token=None, headers=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if token:
            req.add_header("authorization", "Bearer " + token)
        if data is not None:
            req.add_header("content-type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def get(self, path, token=None):
        return self.request("GET", path, token=token, timeout=2)

    def admin(self, method, path, body=None):
        status, data, _ = self.request(method, "/admin/v1" + path, body, token=self.token)
        assert 200 <= status < 300, "%s %s -> %s %s" % (method, path, status, data[:300])
        return json.loads(data) if data else None

    def setup_tenant(self, upstream, name="fault", project_extra=None, resource_extra=None):
        t = self.admin("POST", "/tenants", {"name": name})["id"]
        self.admin("PUT", "/tenants/%s/pricing" % t, {"entries": [
            {"model": m, "input_per_mtok_micros": 1000000, "output_per_mtok_micros": 2000000}
            for m in ("fast-model", "stream-model", "stall-model", "mute-model")]})
        pool = self.admin("POST", "/tenants/%s/pools" % t, {"name": "main"})["id"]
        resource = {"pool_id": pool, "name": "upstream", "kind": "api_key", "provider": "openai_compatible",
                    "base_url": upstream + "/v1", "credential": Upstream.credential,
                    "models": ["fast-model", "stream-model", "stall-model", "mute-model"],
                    "attestation": {"by": "tests", "at": "2026-01-01T00:00:00Z"}}
        resource.update(resource_extra or {})
        r = self.admin("POST", "/tenants/%s/resources" % t, resource)["id"]
        project = {"name": "p", "pool_ids": [pool]}
        project.update(project_extra or {})
        p = self.admin("POST", "/tenants/%s/projects" % t, project)["id"]
        key = self.admin("POST", "/tenants/%s/projects/%s/keys" % (t, p), {"name": "k"})["key"]
        deadline = time.time() + 20
        while self.admin("GET", "/tenants/%s/resources/%s" % (t, r))["state"] != "active":
            assert time.time() < deadline, "the resource was not admitted"
            time.sleep(0.05)
        return {"tenant": t, "pool": pool, "resource": r, "project": p, "key": key}

    def chat(self, key, model="fast-model", timeout=30, **extra):
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        body.update(extra)
        return self.request("POST", "/v1/chat/completions", body, token=key, timeout=timeout)


class JSONStub(BaseHTTPRequestHandler):
    """A stub upstream's plumbing: HTTP/1.1, quiet, JSON answers."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=(), ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def start_stub(handler):
    """Serves `handler` on a free loopback port; returns the server and its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, "http://127.0.0.1:%d" % server.server_address[1]


def wait_active(q, tenant, resource, timeout=20):
    """Waits until the verifier admits a resource; fails with its health otherwise."""
    deadline = time.time() + timeout
    while q.admin("GET", "/tenants/%s/resources/%s" % (tenant, resource))["state"] != "active":
        assert time.time() < deadline, q.admin("GET", "/tenants/%s/resources/%s/health" % (tenant, resource))
        time.sleep(0.05)
