"""Claude and Gemini on Google Vertex AI through Quotaflow, driven by the official anthropic and
google-genai SDKs unchanged.

The stub is Vertex as far as the wire goes: its token endpoint checks each JWT-bearer assertion's
RS256 signature against the test service account's public key (and its claims), and issues tokens
that expire after two seconds of the refresh margin; the API accepts only live tokens on the Vertex
paths (rawPredict / streamRawPredict / count-tokens:rawPredict for Claude, generateContent /
streamGenerateContent / countTokens for Gemini), checks `anthropic_version: vertex-2023-10-16` and
no model in Claude's body, and answers one project's generation calls with 429 RESOURCE_EXHAUSTED.
"""
import base64
import json
import time
import urllib.parse

import anthropic
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from google import genai
from google.genai import types

from harness import JSONStub, Quotaflow, start_stub, wait_active

def make_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


KEY, PEM = make_key()
ROTATED_KEY, ROTATED_PEM = make_key()
ACCOUNTS = {"quotaflow@test-project.iam.gserviceaccount.com": ("key-1", KEY),
            "rotated@test-project.iam.gserviceaccount.com": ("key-2", ROTATED_KEY)}


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Vertex(JSONStub):
    token_uri = None
    tokens = {}
    minted = 0
    issuers = []
    problems = []
    seen = []



    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/token":
            form = dict(urllib.parse.parse_qsl(raw.decode()))
            assertion = form.get("assertion", "")
            try:
                header, claims, signature = assertion.split(".")
                h, c = json.loads(b64url_decode(header)), json.loads(b64url_decode(claims))
                kid, key = ACCOUNTS[c["iss"]]
                key.public_key().verify(b64url_decode(signature), ("%s.%s" % (header, claims)).encode(), padding.PKCS1v15(), hashes.SHA256())
                assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
                assert h["alg"] == "RS256" and h["kid"] == kid and c["aud"] == Vertex.token_uri
                Vertex.issuers.append(c["iss"])
                assert c["scope"] == "https://www.googleapis.com/auth/cloud-platform" and 0 < c["exp"] - c["iat"] <= 3600
            except Exception as e:  # noqa: BLE001 - any flaw is a refusal, as at Google
                Vertex.problems.append("bad assertion: %r" % e)
                return self.reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
            Vertex.minted += 1
            token = "ya29.test-%d" % Vertex.minted
            Vertex.tokens[token] = time.time() + 2.5
            return self.reply(200, {"access_token": token, "expires_in": 302, "token_type": "Bearer"})
        auth = self.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or Vertex.tokens.get(auth[7:], 0) < time.time():
            return self.reply(401, {"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}})
        body = json.loads(raw or b"{}")
        parts = url.path.split("/")
        # /v1/projects/{p}/locations/{r}/publishers/{publisher}/models/{model}:{method}
        project, region, publisher, target = parts[3], parts[5], parts[7], parts[9]
        model, _, method = urllib.parse.unquote(target).partition(":")
        Vertex.seen.append({"project": project, "region": region, "publisher": publisher, "model": model, "method": method, "body": body})
        if project == "exhausted-project" and model != "count-tokens":
            return self.reply(429, {"error": {"code": 429, "message": "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model.",
                                              "status": "RESOURCE_EXHAUSTED"}})
        if publisher == "anthropic":
            if body.get("anthropic_version") != "vertex-2023-10-16":
                Vertex.problems.append("anthropic_version %s" % body.get("anthropic_version"))
            if method == "rawPredict" and model == "count-tokens":
                return self.reply(200, {"input_tokens": 17})
            if "model" in body:
                Vertex.problems.append("model in the body")
            usage = {"input_tokens": 20, "output_tokens": 6}
            if method == "rawPredict":
                return self.reply(200, {"id": "msg_vrtx_1", "type": "message", "role": "assistant", "model": model,
                                        "content": [{"type": "text", "text": "Hello from Vertex"}], "stop_reason": "end_turn",
                                        "stop_sequence": None, "usage": usage})
            events = [
                ("message_start", {"type": "message_start", "message": {"id": "msg_vrtx_2", "type": "message", "role": "assistant", "model": model,
                                                                        "content": [], "stop_reason": None, "stop_sequence": None,
                                                                        "usage": dict(usage, output_tokens=1)}}),
                ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello from Vertex"}}),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 6}}),
                ("message_stop", {"type": "message_stop"}),
            ]
            data = "".join("event: %s\ndata: %s\n\n" % (e, json.dumps(d)) for e, d in events).encode()
            return self.reply(200, data, ctype="text/event-stream")
        usage = {"promptTokenCount": 8, "candidatesTokenCount": 4, "totalTokenCount": 12}
        if method == "countTokens":
            return self.reply(200, {"totalTokens": 8})
        answer = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello from Gemini on Vertex"}]}, "finishReason": "STOP"}],
                  "usageMetadata": usage, "modelVersion": model}
        if method == "generateContent":
            return self.reply(200, answer)
        return self.reply(200, ("data: %s\r\n\r\n" % json.dumps(answer)).encode(), ctype="text/event-stream")


def test_anthropic_and_google_sdks_reach_claude_and_gemini_on_vertex():
    server, stub = start_stub(Vertex)
    Vertex.token_uri = stub + "/token"
    account = json.dumps({"type": "service_account", "project_id": "test-project", "private_key_id": "key-1", "private_key": PEM,
                          "client_email": "quotaflow@test-project.iam.gserviceaccount.com", "token_uri": Vertex.token_uri})
    q = Quotaflow(settings={"admission_spacing_ms": "0", "oauth_refresh_margin_ms": "300000"}).start()
    try:
        t = q.admin("POST", "/tenants", {"name": "vertex"})["id"]
        q.admin("PUT", "/tenants/%s/pricing" % t, {"entries": [
            {"model": "claude-sonnet-4-6", "input_per_mtok_micros": 3000000, "output_per_mtok_micros": 15000000},
            {"model": "gemini-2.5-pro", "input_per_mtok_micros": 1250000, "output_per_mtok_micros": 10000000}]})
        pool = q.admin("POST", "/tenants/%s/pools" % t, {"name": "vertex"})["id"]
        ids = {}
        specs = [("claude-exhausted", "anthropic", "claude-sonnet-4-6", "exhausted-project"),
                 ("claude", "anthropic", "claude-sonnet-4-6", "test-project"),
                 ("gemini", "gemini", "gemini-2.5-pro", "test-project")]
        for name, wire, model, project in specs:
            r = q.admin("POST", "/tenants/%s/resources" % t, {
                "pool_id": pool, "name": name, "kind": "api_key", "provider": "vertex", "wire_format": wire, "base_url": stub,
                "credential": account, "models": [model],
                "cloud": {"project": project, "region": "us-east5", "model_map": {"claude-sonnet-4-6": "claude-sonnet-4-6@20260115"}},
                "cost_basis": {"type": "per_token", "input_per_mtok_micros": 0, "output_per_mtok_micros": 0},
                "attestation": {"by": "tests", "at": "2026-01-01T00:00:00Z"}})
            text = json.dumps(r)
            assert "PRIVATE KEY" not in text and r["oauth"]["grant"] == "jwt_bearer", text
            ids[name] = r["id"]
        for rid in ids.values():
            wait_active(q, t, rid)
        p = q.admin("POST", "/tenants/%s/projects" % t, {"name": "p", "pool_ids": [pool]})["id"]
        key = q.admin("POST", "/tenants/%s/projects/%s/keys" % (t, p), {"name": "k"})["key"]

        claude = anthropic.Anthropic(base_url=q.base, api_key=key, max_retries=0)
        # Tokens live 2.5 s past the margin: after a pause every resource needs a new one.
        time.sleep(3)
        msg = claude.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
        assert msg.content[0].text == "Hello from Vertex" and msg.usage.input_tokens == 20
        with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == "Hello from Vertex" and final.usage.output_tokens == 6
        assert claude.messages.count_tokens(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Hi"}]).input_tokens == 17

        gem = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=q.base, api_version="v1beta"))
        answer = gem.models.generate_content(model="gemini-2.5-pro", contents="Hello")
        assert answer.text == "Hello from Gemini on Vertex" and answer.usage_metadata.prompt_token_count == 8
        streamed = "".join(c.text or "" for c in gem.models.generate_content_stream(model="gemini-2.5-pro", contents="Hello"))
        assert streamed == "Hello from Gemini on Vertex"

        assert Vertex.problems == [], Vertex.problems
        claude_calls = [s for s in Vertex.seen if s["publisher"] == "anthropic" and s["project"] == "test-project"]
        assert {s["model"] for s in claude_calls} >= {"claude-sonnet-4-6@20260115", "count-tokens"}
        assert {s["region"] for s in Vertex.seen} == {"us-east5"}
        assert any(s["project"] == "exhausted-project" for s in Vertex.seen)
        assert Vertex.minted >= 6, "tokens were minted for each resource and again after they expired: %d" % Vertex.minted
        rows = q.admin("GET", "/tenants/%s/ledger?limit=100" % t)["data"]
        messages = [r for r in rows if r["endpoint"] == "messages" and r["status"] == 200]
        assert len(messages) == 2 and all(r["resource_id"] == ids["claude"] for r in messages), messages
        assert all(r["cost_micros"] == 60 + 90 and r["upstream_cost_micros"] == 0 for r in messages)
        gemini_rows = [r for r in rows if r["resource_id"] == ids["gemini"] and r["status"] == 200]
        assert len(gemini_rows) == 2 and all(r["cost_micros"] == 10 + 40 for r in gemini_rows), gemini_rows
        # A new key for another account: its account and token endpoint take over, and it serves.
        rotated = json.dumps({"type": "service_account", "private_key_id": "key-2", "private_key": ROTATED_PEM,
                              "client_email": "rotated@test-project.iam.gserviceaccount.com", "token_uri": Vertex.token_uri})
        r = q.admin("POST", "/tenants/%s/resources/%s/rotate-credential" % (t, ids["claude"]), {"credential": rotated})
        assert r["oauth"]["client_id"] == "rotated@test-project.iam.gserviceaccount.com" and "PRIVATE" not in json.dumps(r)
        wait_active(q, t, ids["claude"])
        assert claude.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=[{"role": "user", "content": "Hi"}]).content[0].text
        assert Vertex.issuers[-1] == "rotated@test-project.iam.gserviceaccount.com"
        with open("%s/server.log" % q.dir) as log:
            assert "PRIVATE KEY" not in log.read()
    finally:
        q.terminate()
        server.shutdown()
