"""The console's files ship beside the binary: a binary copied without them refuses to start, says why, and
touches no database; with them it serves the console."""
import os
import shutil
import subprocess
import tempfile

from harness import Quotaflow, binary


def test_a_binary_without_its_console_files_stops_before_the_database(monkeypatch):
    here = tempfile.mkdtemp(prefix="qf-bundle-")
    built = os.path.dirname(binary())
    shutil.copy2(binary(), os.path.join(here, "quotaflow"))
    shutil.copytree(os.path.join(built, "quotaflow_QuotaflowStore.resources"), os.path.join(here, "quotaflow_QuotaflowStore.resources"))
    db = os.path.join(here, "q.db")
    env = dict(os.environ, QUOTAFLOW_OPERATOR_TOKEN="qf_op_bundle-test-operator-token")
    out = subprocess.run([os.path.join(here, "quotaflow"), "serve", "--port", "0", "--database", db], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "quotaflow_QuotaflowServer.resources" in out.stdout + out.stderr
    assert not os.path.exists(db)

    shutil.copytree(os.path.join(built, "quotaflow_QuotaflowServer.resources"), os.path.join(here, "quotaflow_QuotaflowServer.resources"))
    monkeypatch.setenv("QUOTAFLOW_BIN", os.path.join(here, "quotaflow"))
    q = Quotaflow().start()
    try:
        status, body, headers = q.get("/console/login")
        assert status == 200 and b"Sign in" in body
        assert "script-src 'self'" in headers.get("Content-Security-Policy", "")
    finally:
        q.terminate()
