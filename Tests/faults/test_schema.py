"""Fuzz the admin API from openapi.yaml with schemathesis: no 5xx and no response that contradicts the spec."""
import os
import shutil
import subprocess

from harness import ROOT, Quotaflow, start_upstream

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"


def test_admin_api_conforms_to_openapi():
    exe = shutil.which("schemathesis") or shutil.which("st")
    assert exe, "schemathesis is missing: pip install -r Tests/requirements.txt"
    upstream, url = start_upstream()
    server = Quotaflow(settings={"admission_spacing_ms": "0"}).start()
    fx = server.setup_tenant(url)
    t = fx["tenant"]
    seat = server.admin("POST", "/tenants/%s/projects/%s/seats" % (t, fx["project"]), {"holder": "fuzz", "duration_seconds": 86400})
    hook = server.admin("POST", "/tenants/%s/webhooks" % t, {"url": "http://127.0.0.1:9/hook"})
    grant = server.admin("POST", "/tenants/%s/approvals" % t, {"project_id": fx["project"], "grant_micros": 5, "duration_seconds": 3600})
    offer = server.admin("POST", "/overflow-offers", {"name": "fuzz-offer", "provider": "openai", "base_url": url + "/v1",
                                                      "credential": "sk-fault-upstream", "models": ["fast-model"],
                                                      "price": {"input_per_mtok_micros": 1, "output_per_mtok_micros": 1}})
    keys = server.admin("GET", "/tenants/%s/projects/%s/keys" % (t, fx["project"]))["data"]
    # Real ids, so the fuzzer reaches the handlers and not only 404s.
    config = os.path.join(server.dir, "schemathesis.toml")
    with open(config, "w") as f:
        f.write('[parameters]\n')
        for name, value in {"tenant_id": t, "pool_id": fx["pool"], "resource_id": fx["resource"], "project_id": fx["project"],
                            "key_id": keys[0]["id"], "seat_id": seat["id"], "webhook_id": hook["id"], "approval_id": grant["id"],
                            "offer_id": offer["id"]}.items():
            f.write('"path.%s" = "%s"\n' % (name, value))
    result = subprocess.run(
        [exe, "--config-file", config, "run", os.path.join(ROOT, "openapi.yaml"), "--url", server.base,
         "-H", "Authorization: Bearer " + server.token, "--checks", CHECKS, "--max-examples", os.environ.get("FUZZ_EXAMPLES", "25"),
         "--workers", "2", "--no-color", "--suppress-health-check", "all", "--seed", "20261121",
         "--exclude-path-regex", "^/v1/"],
        capture_output=True, text=True, timeout=900)
    # The server is still up afterwards.
    assert server.get("/healthz")[0] == 200
    assert server.terminate() == 0
    upstream.shutdown()
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
