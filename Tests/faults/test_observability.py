"""Observability of a real process: JSON log lines carry the request id the client saw, secrets never reach
the log, and /metrics covers every family an operator relies on."""
import json
import os
import re

from harness import Quotaflow, Upstream, start_upstream


def test_json_logs_carry_the_request_id_returned_to_the_client():
    upstream, url = start_upstream()
    server = Quotaflow(log_args=["--log-format", "json", "--log-level", "info"]).start()
    fx = server.setup_tenant(url)
    status, _, headers = server.chat(fx["key"])
    assert status == 200
    ok_id = headers.get("x-request-id") or headers.get("X-Request-Id")
    status, body, headers = server.chat("qf_sk_not-a-real-key-000000000000")
    assert status == 401, body
    refused_id = headers.get("x-request-id") or headers.get("X-Request-Id")
    status, _, headers = server.request("GET", "/admin/v1/tenants/ten_unknown", token=server.token)
    assert status == 404
    assert ok_id and refused_id and ok_id != refused_id
    assert server.terminate() == 0
    upstream.shutdown()

    text = open(os.path.join(server.dir, "server.log")).read()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is one JSON object
    assert lines and all({"time", "level", "message"} <= set(line) for line in lines)
    served = [line for line in lines if line.get("request_id") == ok_id]
    assert len(served) == 1, served
    line = served[0]
    assert line["message"] == "request" and line["status"] == "200" and line["project"] == fx["project"]
    assert line["resource"] == fx["resource"] and line["tokens_in"] == "10" and line["tokens_out"] == "5"
    assert float(line["latency_ms"]) > 0
    refused = [line for line in lines if line.get("request_id") == refused_id]
    assert len(refused) == 1 and refused[0]["message"] == "refused" and refused[0]["reason"] == "invalid_key", refused
    # Neither the project key, the operator token nor the upstream credential is ever written.
    for secret in (fx["key"], server.token, Upstream.credential):
        assert secret not in text


def test_keys_sent_in_the_query_string_never_reach_the_log():
    """The Gemini API lets clients send the key as ?key=...: it must not be written anywhere, at the most
    verbose log level, whether the key is good, wrong, or the route unknown."""
    upstream, url = start_upstream()
    server = Quotaflow(log_args=["--log-format", "text", "--log-level", "trace"]).start()
    fx = server.setup_tenant(url)
    wrong = "qf_pk_wrong-key-in-the-query-0000000000"
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    for key in (fx["key"], wrong):
        for path in ("/v1beta/models/fast-model:generateContent?key=%s" % key, "/v1beta/models?key=%s" % key,
                     "/v1beta/models/fast-model:nothing?alt=sse&key=%s" % key, "/v1beta/unknown?key=%s" % key):
            status, _, _ = server.request("POST" if ":" in path else "GET", path, body if ":" in path else None)
            assert status != 500, (path, status)
    assert server.terminate() == 0
    upstream.shutdown()
    text = open(os.path.join(server.dir, "server.log")).read()
    assert text.strip(), "the trace log is empty"
    for secret in (fx["key"], wrong):
        assert secret not in text


def test_metrics_cover_requests_routing_resources_ledger_probes_and_webhooks():
    upstream, url = start_upstream()
    server = Quotaflow().start()
    fx = server.setup_tenant(url)
    for _ in range(3):
        assert server.chat(fx["key"])[0] == 200
    assert server.chat(fx["key"], model="unknown-model")[0] == 403
    assert server.chat("qf_sk_not-a-real-key-000000000000")[0] == 401
    status, body, headers = server.request("GET", "/metrics", token=server.token)
    assert status == 200 and headers.get("Content-Type", headers.get("content-type", "")).startswith("text/plain")
    text = body.decode()
    assert server.terminate() == 0
    upstream.shutdown()

    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r'^([a-z_]+)(\{[^}]*\})? (\S+)$', line)
        assert m, "not a Prometheus sample line: %r" % line
        samples[(m.group(1), m.group(2) or "")] = float(m.group(3))

    def value(name, **labels):
        hits = [v for (n, l), v in samples.items() if n == name and all('%s="%s"' % kv in l for kv in labels.items())]
        assert hits, "no %s with %s in /metrics" % (name, labels)
        return sum(hits)

    assert value("quotaflow_requests_total", route="chat.completions", status="200") == 3
    assert value("quotaflow_requests_total", route="chat.completions", status="403") == 1
    assert value("quotaflow_refused_unauthenticated_total", reason="invalid_key") == 1
    assert value("quotaflow_upstream_latency_seconds_count", provider="openai_compatible") == 3
    assert value("quotaflow_routing_decisions_total", decision="owned") == 3
    assert value("quotaflow_resource_inflight", resource=fx["resource"]) == 0
    assert value("quotaflow_resource_state", resource=fx["resource"], state="active") == 1
    assert value("quotaflow_resource_load", resource=fx["resource"]) >= 0
    assert value("quotaflow_reservations_held") == 0
    assert value("quotaflow_ledger_batch_size_count") >= 1
    assert value("quotaflow_ledger_commit_seconds_count") >= 1
    assert value("quotaflow_ledger_rows_total") >= 4
    assert value("quotaflow_probes_total") >= 1  # the admission probe that proved the resource
    for family in ("quotaflow_webhook_deliveries_total", "quotaflow_cooldowns_total", "quotaflow_upstream_failures_total"):
        assert "# TYPE %s " % family in text
