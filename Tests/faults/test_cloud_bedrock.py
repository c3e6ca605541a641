"""Claude on Amazon Bedrock through Quotaflow, driven by the official anthropic SDK unchanged.

The stub is Bedrock as far as the wire goes: it checks every request's SigV4 signature by recomputing
it with botocore (AWS's own implementation), checks the InvokeModel body (no model, no stream,
`anthropic_version: bedrock-2023-05-31`, betas in `anthropic_beta`), answers streams in AWS's binary
event-stream framing with CRCs, answers CountTokens, and throttles one of two access keys.
"""
import base64
import json
import struct
import urllib.parse
import zlib

import anthropic
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from harness import JSONStub, Quotaflow, start_stub, wait_active

SECRETS = {"AKIDTHROTTLED": "throttled-secret-key", "AKIDSERVING": "serving-secret-key", "AKIDQUOTA": "quota-secret-key"}
PROFILE = "us.anthropic.claude-sonnet-4-6-v1:0"


def frame(headers, payload):
    h = b""
    for name, value in headers:
        n, v = name.encode(), value.encode()
        h += bytes([len(n)]) + n + b"\x07" + struct.pack(">H", len(v)) + v
    total = 16 + len(h) + len(payload)
    prelude = struct.pack(">II", total, len(h))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + h + payload
    return message + struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF)


def chunk(event):
    body = json.dumps({"bytes": base64.b64encode(json.dumps(event).encode()).decode(), "p": "abcdefgh"}).encode()
    return frame([(":event-type", "chunk"), (":content-type", "application/json"), (":message-type", "event")], body)


class Bedrock(JSONStub):
    seen = []
    bad_signatures = []



    def verify(self, body):
        """Recomputes the signature with botocore from the signed headers only; returns the access key id."""
        auth = self.headers.get("authorization", "")
        fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        akid, date, region, service, _ = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        headers = {name: self.headers.get(name) for name in signed}
        request = AWSRequest(method=self.command, url="http://%s%s" % (self.headers["host"], self.path), data=body, headers=headers)
        request.context["timestamp"] = self.headers["x-amz-date"]
        signer = SigV4Auth(Credentials(akid, SECRETS.get(akid, "unknown")), service, region)
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        ok = auth.startswith("AWS4-HMAC-SHA256 ") and fields["Signature"] == expected and service == "bedrock" and region == "us-west-2"
        if not ok:
            Bedrock.bad_signatures.append(self.path)
        return akid if ok else None

    def do_GET(self):
        if self.verify(b"") is None:
            return self.reply(403, {"message": "The request signature we calculated does not match the signature you provided."})
        self.reply(200, {"modelSummaries": [{"modelId": "anthropic.claude-sonnet-4-6-v1:0", "providerName": "Anthropic"}]})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        akid = self.verify(body)
        if akid is None:
            return self.reply(403, {"message": "The request signature we calculated does not match the signature you provided."})
        parts = self.path.split("/")
        model, action = urllib.parse.unquote(parts[2]), parts[3]
        request = json.loads(body)
        Bedrock.seen.append({"akid": akid, "model": model, "action": action, "body": request})
        if akid == "AKIDQUOTA":
            # Bedrock says "over quota" with a 400.
            return self.reply(400, {"message": "Your account has reached its quota for this model."},
                              [("x-amzn-ErrorType", "ServiceQuotaExceededException:http://internal.amazon.com/coral/com.amazon.bedrock/")])
        if akid == "AKIDTHROTTLED":
            return self.reply(429, {"message": "Too many requests, please wait before trying again."},
                              [("x-amzn-ErrorType", "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/")])
        if action == "count-tokens":
            inner = json.loads(base64.b64decode(request["input"]["invokeModel"]["body"]))
            assert "model" not in inner and inner["anthropic_version"] == "bedrock-2023-05-31"
            return self.reply(200, {"inputTokens": 21})
        assert "model" not in request and "stream" not in request, request
        assert request["anthropic_version"] == "bedrock-2023-05-31"
        usage = {"input_tokens": 30, "output_tokens": 9, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
        if action == "invoke":
            return self.reply(200, {"id": "msg_bdrk_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
                                    "content": [{"type": "text", "text": "Hello from Bedrock"}], "stop_reason": "end_turn",
                                    "stop_sequence": None, "usage": usage})
        events = [
            {"type": "message_start", "message": {"id": "msg_bdrk_2", "type": "message", "role": "assistant",
                                                  "model": "claude-sonnet-4-6", "content": [], "stop_reason": None,
                                                  "stop_sequence": None, "usage": dict(usage, output_tokens=1)}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello "}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "from Bedrock"}},
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 9}},
            {"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 30, "outputTokenCount": 9}},
        ]
        data = b"".join(chunk(e) for e in events)
        self.send_response(200)
        self.send_header("content-type", "application/vnd.amazon.eventstream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        # Frames split at awkward places, as TCP delivers them.
        for i in range(0, len(data), 37):
            piece = data[i:i + 37]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


def test_the_anthropic_sdk_reaches_claude_on_bedrock_unchanged():
    server, stub = start_stub(Bedrock)
    q = Quotaflow(settings={"admission_spacing_ms": "0"}).start()
    try:
        t = q.admin("POST", "/tenants", {"name": "cloud"})["id"]
        q.admin("PUT", "/tenants/%s/pricing" % t, {"entries": [
            {"model": "claude-sonnet-4-6", "input_per_mtok_micros": 3000000, "output_per_mtok_micros": 15000000}]})
        pool = q.admin("POST", "/tenants/%s/pools" % t, {"name": "cloud"})["id"]
        ids = {}
        for name, akid in (("throttled", "AKIDTHROTTLED"), ("quota", "AKIDQUOTA"), ("serving", "AKIDSERVING")):
            r = q.admin("POST", "/tenants/%s/resources" % t, {
                "pool_id": pool, "name": name, "kind": "api_key", "provider": "bedrock", "base_url": stub,
                "credential": "%s:%s" % (akid, SECRETS[akid]), "models": ["claude-sonnet-4-6"],
                "cloud": {"region": "us-west-2", "model_map": {"claude-sonnet-4-6": PROFILE}},
                "cost_basis": {"type": "per_token", "input_per_mtok_micros": 0, "output_per_mtok_micros": 0},
                "attestation": {"by": "tests", "at": "2026-01-01T00:00:00Z"}})
            assert r["families"] == ["messages"] and "credential" not in r and SECRETS[akid] not in json.dumps(r)
            assert r["credential_hint"] == "…" + akid[-min(4, len(akid) // 4):], r["credential_hint"]
            ids[name] = r["id"]
        for rid in ids.values():
            wait_active(q, t, rid)
        p = q.admin("POST", "/tenants/%s/projects" % t, {"name": "p", "pool_ids": [pool]})["id"]
        key = q.admin("POST", "/tenants/%s/projects/%s/keys" % (t, p), {"name": "k"})["key"]
        client = anthropic.Anthropic(base_url=q.base, api_key=key, max_retries=0)

        msg = client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
        assert msg.content[0].text == "Hello from Bedrock" and msg.usage.input_tokens == 30 and msg.usage.output_tokens == 9
        # The first call met the throttled key, was cooled and went to the other: no 429 reached the SDK.
        with client.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "Hi"}],
                                    extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"}) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == "Hello from Bedrock" and final.usage.output_tokens == 9
        counted = client.messages.count_tokens(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Hi"}])
        assert counted.input_tokens == 21
        # A beta Bedrock does not offer is refused clearly, never dropped silently.
        try:
            client.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=[{"role": "user", "content": "Hi"}],
                                   extra_headers={"anthropic-beta": "files-api-2025-04-14"})
            assert False, "an unsupported beta was accepted"
        except anthropic.APIStatusError as e:
            assert e.status_code == 503 and "files-api-2025-04-14" in str(e), str(e)

        assert Bedrock.bad_signatures == [], Bedrock.bad_signatures
        served = [s for s in Bedrock.seen if s["akid"] == "AKIDSERVING"]
        assert {s["model"] for s in served} == {PROFILE}
        assert [s["action"] for s in served] == ["invoke", "invoke-with-response-stream", "count-tokens"]
        assert served[1]["body"]["anthropic_beta"] == ["interleaved-thinking-2025-05-14"]
        assert any(s["akid"] == "AKIDTHROTTLED" for s in Bedrock.seen)
        # Both limits (429 ThrottlingException, 400 ServiceQuotaExceededException) cooled their resource and failed over.
        assert any(s["akid"] == "AKIDQUOTA" for s in Bedrock.seen)
        for name in ("throttled", "quota"):
            limited = q.admin("GET", "/tenants/%s/resources/%s" % (t, ids[name]))
            assert limited["state"] == "cooling", limited
        rows = q.admin("GET", "/tenants/%s/ledger?limit=100" % t)["data"]
        ok = [r for r in rows if r["status"] == 200 and r["endpoint"] == "messages"]
        assert len(ok) == 2 and all(r["resource_id"] == ids["serving"] for r in ok), ok
        # List price in the budget (30 in at $3/M + 9 out at $15/M), prepaid capacity at 0 marginal cost.
        assert all(r["cost_micros"] == 90 + 135 and r["upstream_cost_micros"] == 0 for r in ok), ok
        with open("%s/server.log" % q.dir) as log:
            text = log.read()
        for secret in SECRETS.values():
            assert secret not in text
    finally:
        q.terminate()
        server.shutdown()
