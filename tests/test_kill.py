"""A sync killed with SIGKILL mid-way: the next run converges, the published warehouse never
changed under the kill, and nothing is duplicated."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from contact_register.sync.raw_store import raw_path
from contact_register.warehouse.build import build_warehouse
from tests.test_pipedrive_sync import assert_matches_sandbox, run_sync

REPO = Path(__file__).resolve().parents[1]


def test_sigkill_mid_sync_then_rerun_converges(sandbox, tmp_path, client):
    raw, wh = tmp_path / "raw", tmp_path / "wh.duckdb"
    run_sync(sandbox, raw)
    build_warehouse(raw, wh)
    published = wh.read_bytes()
    # Change a lot, so the next sync has many pages to fetch, and slow the sandbox down a little
    # so the kill lands in the middle.
    pd = sandbox.pipedrive
    for rid in sorted(pd.live_ids("activities"))[:400]:
        client.update("activities", rid, {"subject": "Muutettu aihe"})
    pd.slow_seconds = 0.05
    pd.set_faults(rate=1.0, kinds=("slow",))
    pd.reset_stats()
    env = dict(os.environ, **sandbox.env())
    worker = subprocess.Popen([sys.executable, "-m", "tests.sync_worker", str(raw), "10"], cwd=REPO, env=env)
    deadline = time.monotonic() + 60
    while pd.total_requests() < 15 and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.01)
    assert worker.poll() is None, "the sync finished before it could be killed"
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    pd.clear_faults()
    # The published file was never touched by the killed sync.
    assert wh.read_bytes() == published
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("SELECT count(*) FROM persons").fetchone()[0] > 0
    con.close()
    # The raw store is consistent (its last committed page) and the re-run finishes the job.
    run_sync(sandbox, raw)
    assert_matches_sandbox(sandbox, raw)
    con = duckdb.connect(str(raw_path(raw, "pipedrive")), read_only=True)
    n, distinct = con.execute("SELECT count(*), count(DISTINCT id) FROM activities").fetchone()
    con.close()
    assert n == distinct
    build_warehouse(raw, wh)
    con = duckdb.connect(str(wh), read_only=True)
    subjects = con.execute(
        "SELECT count(*) FROM raw_pipedrive.activities WHERE record->>'subject' = 'Muutettu aihe'"
    ).fetchone()[0]
    con.close()
    assert subjects == 400


def test_sigkill_with_two_entities_mid_walk_then_rerun_converges(sandbox, tmp_path):
    """Entities are read two at a time, so a kill can cut two walks at once: each must resume
    from its own committed cursor, and the re-run must land exactly the source."""
    raw = tmp_path / "raw"
    pd = sandbox.pipedrive
    pd.slow_seconds = 0.05
    pd.set_faults(rate=1.0, kinds=("slow",))
    pd.reset_stats()
    env = dict(os.environ, **sandbox.env())
    # 2 a page: 60 organizations are 30 pages, 300 persons 150. Pages fetched but not committed
    # are at most the reader queue (8) + a batch being gathered or written (8) + one held by
    # each reader (2): after 22 requests of each, both walks have committed pages, and
    # organizations are not done.
    worker = subprocess.Popen([sys.executable, "-m", "tests.sync_worker", str(raw), "2"], cwd=REPO, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and worker.poll() is None:
        routes = pd.requests_by_route()
        if min(routes.get("GET /api/v2/persons", 0), routes.get("GET /api/v2/organizations", 0)) >= 22:
            break
        time.sleep(0.005)
    assert worker.poll() is None, "the sync finished before it could be killed"
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    pd.clear_faults()
    con = duckdb.connect(str(raw_path(raw, "pipedrive")), read_only=True)
    cut = {r[0] for r in con.execute(
        "SELECT entity FROM _sync_state WHERE cursor IS NOT NULL AND last_success_at IS NULL").fetchall()}
    con.close()
    assert {"persons", "organizations"} <= cut, cut
    run_sync(sandbox, raw)
    assert_matches_sandbox(sandbox, raw)
    con = duckdb.connect(str(raw_path(raw, "pipedrive")), read_only=True)
    for entity in ("persons", "organizations", "deals", "activities", "notes"):
        n, distinct = con.execute(f"SELECT count(*), count(DISTINCT id) FROM {entity}").fetchone()
        assert n == distinct, entity
    con.close()


def test_sigkill_mid_build_leaves_the_published_file_whole(sandbox, tmp_path):
    raw, wh = tmp_path / "raw", tmp_path / "wh.duckdb"
    run_sync(sandbox, raw)
    build_warehouse(raw, wh)
    code = (
        "import sys, threading, os, signal\n"
        "from contact_register.warehouse.build import build_warehouse\n"
        "threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()\n"
        "while True: build_warehouse(sys.argv[1], sys.argv[2])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(raw), str(wh)], cwd=REPO)
    assert proc.returncode == -signal.SIGKILL
    # Either the old file or a complete new one; never a torn one.
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("SELECT count(*) FROM persons").fetchone()[0] > 0
    con.close()
    # A later build cleans up after the killed one and publishes.
    build_warehouse(raw, wh)
    assert not [p for p in tmp_path.iterdir() if ".building-" in p.name]
