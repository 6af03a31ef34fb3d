"""Security review, the parts a test can hold us to:

- a demo run (sandbox/demo.py's own steps, headless, in a temp folder: the sandbox, a real RT,
  `dagster job execute` of nightly_sync and of subject_export) leaves no sandbox email, phone or
  secret in any log or stored file of Dagster (run and event storage, compute logs), of the
  sandbox, or in the captured stdout/stderr; the export, which is meant to hold personal
  data, is readable by its owner only (0600);
- the Dagster UI binds to 127.0.0.1 by default (demo and Makefile);
- XML from Netvisor is parsed with defusedxml: a billion-laughs answer is refused with a clear
  error, without expanding it and without retrying.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from connectors.errors import BadPayloadError
from netvisor_support import netvisor_client
from sandbox import demo, request_tracker_world
from sandbox.server import SYSTEMS, Sandbox
from sandbox.world import World
from tests.conftest import RT_WORLD, demo_dagster_home

REPO = Path(__file__).resolve().parents[1]
EMAIL = re.compile(rb"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+")
SECRET_KEYS = re.compile(r"(TOKEN|PASSWORD|_KEY|SECRET|SERVICE_ACCOUNT_JSON)$")
# Paths the demo keeps relative to its folder (sandbox/demo.py, the Makefile's DAGSTER_HOME).
PATH_SETTINGS = ("RAW_DIR", "WAREHOUSE_PATH", "IDENTITY_DECISIONS_PATH", "REGISTER_URL", "EXPORT_DIR", "DAGSTER_HOME")


def personal_needles(world: World) -> set[bytes]:
    """Every email and phone the sandbox serves (what its imitations hold, not only the world's
    canonical spellings), lower-cased, plus each phone's national and E.164 digits."""
    found: set[bytes] = set()
    for human in world.humans:
        found.add(human.email.lower().encode())
        found.add(human.phone_e164.encode())
        found.add(("0" + human.phone_e164[4:]).encode())
    sb = Sandbox(world, systems=list(SYSTEMS))  # built, not started: only its data is read
    held = [value for name in sb.systems for value in vars(sb.system(name)).values() if isinstance(value, (dict, list))]
    held.append(request_tracker_world.derive(world))  # what the seeded RT holds
    for value in held:
        found |= set(EMAIL.findall(repr(value).lower().encode()))
    return {n for n in found if len(n) >= 8}


def scan(paths: list[Path], needles: set[bytes]) -> dict[str, int]:
    """file -> how many needles it holds (names only: the report must not repeat the data)."""
    hits: dict[str, int] = {}
    for path in paths:
        data = path.read_bytes().lower()
        squeezed = re.sub(rb"[ \-]", b"", data)  # "040 123 4567" and "040-1234567" too
        n = sum(1 for needle in needles if needle in data or needle in squeezed)
        if n:
            hits[str(path)] = n
    return hits


@pytest.fixture
def demo_folder(tmp_path, monkeypatch):
    """A clean folder to run the demo's steps in, as `make demo` would in a fresh clone."""
    for key in PATH_SETTINGS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    home = demo_dagster_home(tmp_path / "data" / "dagster")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return tmp_path


@pytest.mark.timeout(600)
def test_demo_run_leaves_no_personal_data_or_secret_in_logs(demo_folder, request_tracker):
    sandbox = demo.start_sandbox()
    try:
        env = dict(os.environ, **demo.sandbox_env(), **request_tracker.env())
        out, err = demo_folder / "stdout.log", demo_folder / "stderr.log"
        with out.open("ab") as stdout, err.open("ab") as stderr:
            def run(*argv: str) -> subprocess.CompletedProcess:
                return subprocess.run(argv, env=env, stdout=stdout, stderr=stderr, check=True, timeout=400)

            run(demo._bin("dagster"), "job", "execute", "-m", "pipelines.definitions", "-j", "nightly_sync")
            # An access request for a sandbox person, answered by subject_export: the job that
            # handles the most personal data.
            human = World.generate().humans[0]
            made = subprocess.run(
                [sys.executable, "-m", "contact_register.cli", "request", "new", "--kind", "access", "--stdin", "--json"],
                input=json.dumps({"emails": [human.email], "name": f"{human.first_name} {human.last_name}"}),
                env=env, capture_output=True, text=True, check=True, timeout=120)
            case_id = json.loads(made.stdout)["case_id"]
            run(sys.executable, "-m", "contact_register.cli", "request", "verify", case_id, "--method", "signed letter")
            config = demo_folder / "export.yaml"
            config.write_text(json.dumps({"ops": {"export_subject_data": {"config": {"case_id": case_id}}}}))
            run(demo._bin("dagster"), "job", "execute", "-m", "pipelines.definitions", "-j", "subject_export",
                "-c", str(config))
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)

    data = demo_folder / "data"
    exports = sorted((data / "exports").glob("*"))
    assert exports, "subject_export wrote no package"
    for path in exports:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path.name} is readable by others"

    logs = [p for p in (data / "dagster").rglob("*") if p.is_file()]
    logs += [p for p in (data / "sandbox").rglob("*") if p.is_file()]
    logs += [demo_folder / "stdout.log", demo_folder / "stderr.log"]
    # Not scanned: data/sandbox.env, the settings file the demo writes (API keys, the Google admin
    # account), which is configuration like .env, and the raw stores, warehouse and export,
    # which hold the personal data by design.
    assert any("compute_logs" in str(p) for p in logs), "no compute logs were captured"
    assert any(p.suffix == ".db" for p in logs), "no Dagster run/event storage was found"
    needles = personal_needles(World.generate()) | personal_needles(World.generate(**RT_WORLD))
    # And the spellings the pipeline really handled: every email of the warehouse. (The session's
    # RT also holds people other tests planted, whom the worlds do not know.)
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    handled = {r[0].lower().encode() for r in con.execute("SELECT DISTINCT unnest(emails) FROM persons").fetchall()}
    con.close()
    assert len(handled) > 100, "the demo sync handled too few emails for the check to mean anything"
    needles |= handled
    assert scan(logs, needles) == {}, "personal data in logs or Dagster storage"
    secrets = {v.lower().encode() for k, v in env.items() if SECRET_KEYS.search(k) and len(v) >= 8}
    # The service account's private key would leak in pieces, not as the whole JSON: look for
    # each line of its body.
    key = json.loads(env["GOOGLE_SERVICE_ACCOUNT_JSON"])["private_key"]
    secrets |= {line.lower().encode() for line in key.splitlines() if len(line) >= 32}
    assert secrets, "the sandbox settings carry no secrets to look for"
    assert scan(logs, secrets) == {}, "secrets in logs or Dagster storage"


def test_the_dagster_ui_binds_to_localhost_by_default():
    assert demo.UI_HOST == "127.0.0.1"
    makefile = (REPO / "Makefile").read_text()
    for line in makefile.splitlines():
        if re.search(r"dagster(-webserver| dev)\b", line) and not line.lstrip().startswith("#"):
            # dagster dev / dagster-webserver bind to 127.0.0.1 unless told otherwise (-h/--host).
            host = re.search(r"(?:-h|--host)[ =](\S+)", line)
            assert host is None or host.group(1) in ("127.0.0.1", "localhost"), line
    assert "0.0.0.0" not in makefile and "0.0.0.0" not in Path(demo.__file__).read_text()


BILLION_LAUGHS = (
    b'<?xml version="1.0" encoding="ISO-8859-15"?>\n'
    b'<!DOCTYPE Root [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&%s;" % bytes([97 + i])) * 10) for i in range(9))
    + b']>\n<Root><ResponseStatus><Status>OK</Status></ResponseStatus><Customerlist>&j;</Customerlist></Root>'
)


def test_a_billion_laughs_answer_from_netvisor_is_refused(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    nv.next_answer = BILLION_LAUGHS
    client = netvisor_client(netvisor_sandbox, tmp_path)
    nv.reset_stats()
    try:
        with pytest.raises(BadPayloadError, match="DTD or entity declarations are not allowed"):
            client.customer_list()
    finally:
        client.close()
    assert nv.total_requests() == 1  # refused at once: a hostile answer is not worth a retry
    assert nv.next_answer is None
