"""Azure OpenAI deployments through Quotaflow, driven by the official openai SDK unchanged.

The stub is Azure as far as the wire goes: it checks the `api-key`, the deployment path and the
`api-version` on every call, serves the Responses API on the v1 path with the deployment as the model,
stops a stream with `finish_reason: content_filter` halfway, refuses a prompt with Azure's 400
content-filter error, and throttles one of two keys (429 with Azure's rate-limit headers).
"""
import json
import urllib.parse

import openai

from harness import JSONStub, Quotaflow, start_stub, wait_active

KEYS = {"azure-key-throttled", "azure-key-serving"}
API_VERSION = "2024-10-21"


class Azure(JSONStub):
    seen = []
    problems = []
    entra_tokens = set()
    minted = 0



    def check(self):
        auth = self.headers.get("authorization", "")
        if auth.startswith("Bearer ") and not self.headers.get("api-key"):
            # An Entra token, minted by the client-credentials flow below.
            if auth[7:] in Azure.entra_tokens:
                return "entra"
            Azure.problems.append("stale entra token on %s" % self.path)
            self.reply(401, {"error": {"code": "401", "message": "Access token is missing, invalid or expired."}})
            return None
        key = self.headers.get("api-key")
        if key not in KEYS or auth:
            Azure.problems.append("bad auth on %s" % self.path)
            self.reply(401, {"error": {"code": "401", "message": "Access denied due to invalid subscription key."}})
            return None
        return key

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if self.check() is None:
            return
        if url.path == "/openai/models" and urllib.parse.parse_qs(url.query).get("api-version") == [API_VERSION]:
            return self.reply(200, {"data": [{"id": "gpt-4o", "object": "model"}]})
        self.reply(404, {"error": {"code": "404", "message": "Resource not found"}})

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        if url.path == "/tenant-1/oauth2/v2.0/token":
            form = dict(urllib.parse.parse_qsl(raw.decode()))
            if (form.get("grant_type"), form.get("client_id"), form.get("client_secret"), form.get("scope")) != (
                    "client_credentials", "app-id", "app-secret", "https://cognitiveservices.azure.com/.default"):
                Azure.problems.append("bad token request %s" % sorted(form))
                return self.reply(400, {"error": "invalid_client"})
            Azure.minted += 1
            token = "entra-%d" % Azure.minted
            Azure.entra_tokens.add(token)
            return self.reply(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token})
        body = json.loads(raw or b"{}")
        key = self.check()
        if key is None:
            return
        if "model" not in body and "input" not in body and "messages" not in body:
            return self.reply(400, {"error": {"code": "invalid_request", "message": "missing fields"}})
        parts = url.path.split("/")
        Azure.seen.append({"key": key, "path": url.path, "query": url.query, "body": body})
        if key == "azure-key-throttled":
            return self.reply(429, {"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation have exceeded the rate limit."}},
                              [("retry-after", "30"), ("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-remaining-tokens", "0")])
        if url.path == "/openai/v1/responses":
            if body.get("model") != "gpt-4o-prod":
                Azure.problems.append("responses model %s" % body.get("model"))
            return self.reply(200, {"id": "resp_az_1", "object": "response", "status": "completed", "model": "gpt-4o",
                                    "output": [{"type": "message", "id": "m1", "role": "assistant", "status": "completed",
                                                "content": [{"type": "output_text", "text": "Hello from Azure", "annotations": []}]}],
                                    "usage": {"input_tokens": 12, "output_tokens": 4, "total_tokens": 16,
                                              "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}})
        if len(parts) < 5 or parts[1:3] != ["openai", "deployments"] or urllib.parse.parse_qs(url.query).get("api-version") != [API_VERSION]:
            Azure.problems.append("bad path %s" % self.path)
            return self.reply(404, {"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist."}})
        deployment, action = parts[3], "/".join(parts[4:])
        if action == "embeddings":
            assert deployment == "embed-prod", deployment
            return self.reply(200, {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                                    "model": "text-embedding-3-small", "usage": {"prompt_tokens": 5, "total_tokens": 5}})
        assert deployment == "gpt-4o-prod" and action == "chat/completions", (deployment, action)
        prompt = json.dumps(body["messages"])
        if "FILTER_PROMPT" in prompt:
            return self.reply(400, {"error": {"code": "content_filter", "status": 400, "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
                                              "innererror": {"code": "ResponsibleAIPolicyViolation",
                                                             "content_filter_result": {"violence": {"filtered": True, "severity": "high"}}}}})
        usage = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
        if not body.get("stream"):
            return self.reply(200, {"id": "chatcmpl-az", "object": "chat.completion", "model": "gpt-4o", "created": 1,
                                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from Azure"}, "finish_reason": "stop"}],
                                    "usage": usage, "prompt_filter_results": []})
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def send(obj):
            data = ("data: %s\n\n" % (obj if isinstance(obj, str) else json.dumps(obj))).encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        base = {"id": "chatcmpl-az", "object": "chat.completion.chunk", "model": "gpt-4o", "created": 1}
        send(dict(base, choices=[], prompt_filter_results=[{"prompt_index": 0, "content_filter_results": {}}]))
        send(dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": "Once upon"}, "finish_reason": None}]))
        stop = "content_filter" if "FILTER_OUTPUT" in prompt else "stop"
        send(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": stop,
                                  "content_filter_results": {"violence": {"filtered": stop == "content_filter", "severity": "medium"}}}]))
        send(dict(base, choices=[], usage=usage))
        send("[DONE]")
        self.wfile.write(b"0\r\n\r\n")


def test_the_openai_sdk_reaches_azure_deployments_unchanged():
    server, stub = start_stub(Azure)
    q = Quotaflow(settings={"admission_spacing_ms": "0"}).start()
    try:
        t = q.admin("POST", "/tenants", {"name": "azure"})["id"]
        q.admin("PUT", "/tenants/%s/pricing" % t, {"entries": [
            {"model": "gpt-4o", "input_per_mtok_micros": 2500000, "output_per_mtok_micros": 10000000},
            {"model": "text-embedding-3-small", "input_per_mtok_micros": 20000, "output_per_mtok_micros": 0}]})
        pool = q.admin("POST", "/tenants/%s/pools" % t, {"name": "azure"})["id"]
        ids = {}
        for name in ("throttled", "serving"):
            r = q.admin("POST", "/tenants/%s/resources" % t, {
                "pool_id": pool, "name": name, "kind": "api_key", "provider": "azure", "base_url": stub,
                "credential": "azure-key-%s" % name, "models": ["gpt-4o", "text-embedding-3-small"],
                "cloud": {"model_map": {"gpt-4o": "gpt-4o-prod", "text-embedding-3-small": "embed-prod"}},
                "attestation": {"by": "tests", "at": "2026-01-01T00:00:00Z"}})
            assert r["families"] == ["chat", "responses", "embeddings"] and r["cloud"]["api_version"] == API_VERSION
            assert "azure-key" not in json.dumps(r)
            ids[name] = r["id"]
        for rid in ids.values():
            wait_active(q, t, rid)
        p = q.admin("POST", "/tenants/%s/projects" % t, {"name": "p", "pool_ids": [pool]})["id"]
        key = q.admin("POST", "/tenants/%s/projects/%s/keys" % (t, p), {"name": "k"})["key"]
        client = openai.OpenAI(base_url=q.base + "/v1", api_key=key, max_retries=0)

        # An Entra application's tokens serve a deployment too (client credentials, refreshed like any OAuth token).
        entra = q.admin("POST", "/tenants/%s/resources" % t, {
            "pool_id": pool, "name": "entra", "kind": "api_key", "provider": "azure", "base_url": stub,
            "oauth": {"token_url": stub + "/tenant-1/oauth2/v2.0/token", "client_id": "app-id", "client_secret": "app-secret",
                      "grant": "client_credentials", "scope": "https://cognitiveservices.azure.com/.default"},
            "models": ["gpt-4o"], "cloud": {"model_map": {"gpt-4o": "gpt-4o-prod"}},
            "attestation": {"by": "tests", "at": "2026-01-01T00:00:00Z"}})
        assert "app-secret" not in json.dumps(entra)
        wait_active(q, t, entra["id"])
        q.admin("POST", "/tenants/%s/resources/%s/suspend" % (t, ids["serving"]), {"reason": "test the Entra resource alone"})
        q.admin("POST", "/tenants/%s/resources/%s/suspend" % (t, ids["throttled"]), {"reason": "test the Entra resource alone"})
        r = client.chat.completions.create(model="gpt-4o", max_tokens=16, messages=[{"role": "user", "content": "Hi"}])
        assert r.choices[0].message.content == "Hello from Azure" and Azure.seen[-1]["key"] == "entra" and Azure.minted >= 1
        q.admin("POST", "/tenants/%s/resources/%s/suspend" % (t, entra["id"]), {"reason": "done"})
        for name in ("serving", "throttled"):
            q.admin("POST", "/tenants/%s/resources/%s/resume" % (t, ids[name]), {})
            wait_active(q, t, ids[name])

        # Two calls: whichever key is met first, a throttled one is cooled and the other serves.
        for _ in range(2):
            r = client.chat.completions.create(model="gpt-4o", max_tokens=16, messages=[{"role": "user", "content": "Hi"}])
            assert r.choices[0].message.content == "Hello from Azure" and r.usage.prompt_tokens == 11
        stream = client.chat.completions.create(model="gpt-4o", max_tokens=16, stream=True,
                                                stream_options={"include_usage": True},
                                                messages=[{"role": "user", "content": "Tell me a story FILTER_OUTPUT"}])
        finishes = [c.choices[0].finish_reason for c in stream if c.choices and c.choices[0].finish_reason]
        assert finishes == ["content_filter"]
        try:
            client.chat.completions.create(model="gpt-4o", max_tokens=16, messages=[{"role": "user", "content": "FILTER_PROMPT"}])
            assert False, "a filtered prompt was answered"
        except openai.BadRequestError as e:
            assert e.body["code"] == "content_filter", e.body
        emb = client.embeddings.create(model="text-embedding-3-small", input="hello")
        assert emb.data[0].embedding == [0.1, 0.2]
        resp = client.responses.create(model="gpt-4o", input="Hi", max_output_tokens=32)
        assert resp.output_text == "Hello from Azure" and resp.usage.input_tokens == 12

        assert Azure.problems == [], Azure.problems
        assert any(s["key"] == "azure-key-throttled" for s in Azure.seen)
        assert q.admin("GET", "/tenants/%s/resources/%s" % (t, ids["throttled"]))["state"] == "cooling"
        rows = q.admin("GET", "/tenants/%s/ledger?limit=100" % t)["data"]
        served = [r for r in rows if r["resource_id"] == ids["serving"]]
        by_endpoint = {}
        for r in served:
            by_endpoint.setdefault(r["endpoint"], []).append(r)
        assert len(by_endpoint["chat.completions"]) == 4, by_endpoint["chat.completions"]
        filtered = [r for r in by_endpoint["chat.completions"] if "content_filtered" in r["flags"]]
        # The stopped stream and the refused prompt are flagged; neither was retried elsewhere.
        assert len(filtered) == 2 and all(r["attempts"] == 1 for r in filtered), filtered
        assert {r["status"] for r in filtered} == {200, 400}
        ok = [r for r in by_endpoint["chat.completions"] if r["status"] == 200 and "content_filtered" not in r["flags"]]
        # 11 input tokens at $2.50/M (27.5, rounded up) + 3 output at $10/M.
        assert all(r["cost_micros"] == 28 + 30 for r in ok), ok
        assert by_endpoint["responses"][0]["status"] == 200 and by_endpoint["embeddings"][0]["status"] == 200
    finally:
        q.terminate()
        server.shutdown()
