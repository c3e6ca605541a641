"""Two `quotaflow serve` processes on one database never both spend an OAuth refresh token.

The stub token endpoint rotates refresh tokens and counts any that is presented twice (real
endpoints answer that with invalid_grant and may revoke the whole grant). Tokens live 302 seconds
and are refreshed 300 seconds before they expire, so under steady traffic to both processes each
one keeps wanting a new token every two seconds.
"""
import json
import threading
import time
import urllib.parse

from harness import JSONStub, Quotaflow, start_stub, wait_active


class Provider(JSONStub):
    lock = threading.Lock()
    refresh = "rt-1"
    issued = 0
    valid = set()
    presented = []
    reused = []



    def authorized(self):
        auth = self.headers.get("authorization", "")
        with Provider.lock:
            return auth.startswith("Bearer ") and auth[7:] in Provider.valid

    def do_GET(self):
        if not self.authorized():
            return self.reply(401, {"error": {"message": "invalid token"}})
        self.reply(200, {"object": "list", "data": [{"id": "fast-model"}]})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/oauth/token":
            form = dict(urllib.parse.parse_qsl(body.decode()))
            with Provider.lock:
                token = form.get("refresh_token", "")
                if token in Provider.presented:
                    Provider.reused.append(token)
                Provider.presented.append(token)
                if token != Provider.refresh:
                    return self.reply(400, {"error": "invalid_grant"})
                Provider.issued += 1
                access = "at-%d" % Provider.issued
                Provider.refresh = "rt-%d" % (Provider.issued + 1)
                Provider.valid.add(access)
                answer = {"access_token": access, "token_type": "Bearer", "expires_in": 302, "refresh_token": Provider.refresh}
            # A slow endpoint widens the window in which the other process would also refresh.
            time.sleep(0.2)
            return self.reply(200, answer)
        if not self.authorized():
            return self.reply(401, {"error": {"message": "invalid token"}})
        request = json.loads(body or b"{}")
        if "model" not in request:
            return self.reply(400, {"error": {"message": "model is required"}})
        self.reply(200, {"id": "c", "object": "chat.completion", "model": "fast-model",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})


def test_two_processes_never_both_spend_a_refresh_token():
    server, base = start_stub(Provider)
    settings = {"oauth_refresh_margin_ms": "300000", "admission_spacing_ms": "0"}
    a = Quotaflow(settings=settings).start()
    b = None
    try:
        t = a.admin("POST", "/tenants", {"name": "oauth"})["id"]
        a.admin("PUT", "/tenants/%s/pricing" % t, {"entries": [
            {"model": "fast-model", "input_per_mtok_micros": 1000000, "output_per_mtok_micros": 2000000}]})
        pool = a.admin("POST", "/tenants/%s/pools" % t, {"name": "main"})["id"]
        r = a.admin("POST", "/tenants/%s/resources" % t, {
            "pool_id": pool, "name": "org", "kind": "api_key", "provider": "openai_compatible", "base_url": base + "/v1",
            "models": ["fast-model"], "attestation": {"by": "tests", "at": "2026-01-01T00:00:00Z"},
            "oauth": {"token_url": base + "/oauth/token", "client_id": "qf-client", "refresh_token": "rt-1"}})["id"]
        p = a.admin("POST", "/tenants/%s/projects" % t, {"name": "p", "pool_ids": [pool]})["id"]
        key = a.admin("POST", "/tenants/%s/projects/%s/keys" % (t, p), {"name": "k"})["key"]
        wait_active(a, t, r)
        # The second process starts on the same database and sees the resource and its token.
        b = Quotaflow(directory=a.dir, token=a.token, settings=settings).start()
        statuses = []
        lock = threading.Lock()
        stop = time.time() + 10

        def drive(q):
            while time.time() < stop:
                status, _, _ = q.chat(key, timeout=30)
                with lock:
                    statuses.append(status)
                time.sleep(0.02)

        threads = [threading.Thread(target=drive, args=(q,)) for q in (a, b, a, b)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert Provider.reused == [], "refresh tokens spent twice: %s" % Provider.reused
        assert Provider.issued >= 4, "expected several refreshes in ten seconds, got %d" % Provider.issued
        assert len(statuses) > 50 and all(s == 200 for s in statuses), "non-200 answers: %s" % sorted(set(statuses))
        health = a.admin("GET", "/tenants/%s/resources/%s/health" % (t, r))
        assert health["oauth"]["refresh_count"] == Provider.issued
        assert health["oauth"]["failures"] == 0
    finally:
        if b is not None:
            b.terminate()
        a.terminate()
        server.shutdown()
