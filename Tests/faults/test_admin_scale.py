"""Admin writes stay flat as the catalog grows: bench/admin_scale.py in its short form.

The script starts its own server and mock upstream, populates 10,000 objects (pools, resources, projects, project keys
and seats) over 100 tenants through the admin API, and times 100 create-project / create-key writes at 0, 2,500, 5,000,
7,500 and 10,000 objects. It fails if the last p50 exceeds 4x max(first p50, 1 ms): a server that rebuilds its catalog
on every write grows linearly and fails this; absolute times do not matter. It also fails on any unexpected admin
status or a data-plane request not answered 200.
"""
import os
import signal
import subprocess
import sys

from harness import ROOT, binary

SCRIPT = os.path.join(ROOT, "bench", "admin_scale.py")
ARGS = ["--objects", "10000", "--tenants", "100", "--checkpoints", "4", "--samples", "100", "--assert-flat", "4"]
TIMEOUT = 600


def test_admin_write_latency_does_not_grow_with_catalog_size():
    """Write p50 at 10,000 objects is within 4x of the p50 on an empty catalog (the shape, not absolute times)."""
    cmd = [sys.executable, SCRIPT, "--bin", binary()] + ARGS
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM lets the script stop its server and mock; the server also dies with it (PR_SET_PDEATHSIG).
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        raise AssertionError("admin_scale.py did not finish within %d s\n%s\n--- stdout\n%s\n--- stderr\n%s" % (
            TIMEOUT, " ".join(cmd), out, err))
    assert proc.returncode == 0, "admin_scale.py exited %d\n%s\n--- stdout\n%s\n--- stderr\n%s" % (
        proc.returncode, " ".join(cmd), out, err)
