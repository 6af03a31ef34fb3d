"""Shared fixtures: a sandbox over real HTTP on a free port, clients pointed at it, temp stores."""

import os
import shutil
from pathlib import Path

import pytest

from connectors.http import RetryPolicy
from connectors.pipedrive import PipedriveClient
from sandbox.server import Sandbox
from sandbox.world import World

# Small enough to keep the suite fast, large enough for several 500-row pages once the
# tests lower the page size.
SMALL_WORLD = dict(seed=7, persons=300, organizations=60)
# Request Tracker is real and slower to seed: 20 users, 30 tickets, about 75 messages.
RT_WORLD = dict(seed=7, persons=60, organizations=12)
FAST_RETRY = RetryPolicy(max_attempts=8, backoff_base_s=0.02, backoff_max_s=0.2)


@pytest.fixture(scope="session")
def small_world() -> World:
    return World.generate(**SMALL_WORLD)


@pytest.fixture
def sandbox(small_world):
    # A fresh world per test: tests change the sandbox's data.
    with Sandbox(World.generate(**SMALL_WORLD), systems=("pipedrive",)) as sb:
        yield sb


@pytest.fixture
def google_sandbox():
    """The Google Workspace imitation on its own port (a fresh world: tests change its data)."""
    with Sandbox(World.generate(**SMALL_WORLD), systems=("google",)) as sb:
        yield sb


@pytest.fixture(scope="session")
def request_tracker():
    """One real RT 5 for the session (installed if missing), seeded from a small world."""
    from sandbox.request_tracker import RequestTracker, seed

    with RequestTracker.start() as rt:
        seed(rt, World.generate(**RT_WORLD))
        yield rt


@pytest.fixture
def netvisor_sandbox():
    """The Netvisor imitation on its own port (a fresh world: tests change its data)."""
    with Sandbox(World.generate(**SMALL_WORLD), systems=("netvisor",)) as sb:
        yield sb


@pytest.fixture
def small_sandbox():
    """Trustmary, Matomo and Docue imitations, each on its own port (a fresh world)."""
    with Sandbox(World.generate(**SMALL_WORLD), systems=("trustmary", "matomo", "docue")) as sb:
        yield sb


@pytest.fixture
def pipedrive_env(sandbox, google_sandbox, request_tracker, netvisor_sandbox, small_sandbox, monkeypatch, tmp_path):
    """Point the environment (and so the Dagster resources) at the sandbox and temp stores."""
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    for key, value in google_sandbox.env().items():  # nightly_sync also reads Google Workspace
        monkeypatch.setenv(key, value)
    for key, value in request_tracker.env().items():  # ... and the real Request Tracker
        monkeypatch.setenv(key, value)
    for key, value in netvisor_sandbox.env().items():  # ... and Netvisor
        monkeypatch.setenv(key, value)
    for key, value in small_sandbox.env().items():  # ... and the data-subject jobs Trustmary, Matomo, Docue
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RAW_DIR", str(tmp_path / "raw"))
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    # nightly_sync reads the request register (the suppression list): keep it in tmp too.
    monkeypatch.setenv("REGISTER_URL", str(tmp_path / "register.sqlite"))
    # The erasure and ban jobs put people on the suppression list: a per-test generated key.
    monkeypatch.setenv("SUPPRESSION_KEY_FILE", str(tmp_path / "suppression.key"))
    return sandbox.env()


def make_client(sandbox, *, page_limit: int = 500, timeout=(2.0, 5.0), retry: RetryPolicy = FAST_RETRY) -> PipedriveClient:
    env = sandbox.env()
    return PipedriveClient(
        env["PIPEDRIVE_BASE_URL"], env["PIPEDRIVE_API_TOKEN"], page_limit=page_limit, timeout=timeout, retry=retry
    )


@pytest.fixture
def client(sandbox):
    c = make_client(sandbox, page_limit=100)
    yield c
    c.close()


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(os.environ.get("TEST_ARTIFACTS", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def demo_dagster_home(home: Path) -> Path:
    """A Dagster instance folder with the demo's instance settings, as the Makefile makes it."""
    home.mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "pipelines" / "dagster.yaml", home / "dagster.yaml")
    return home

