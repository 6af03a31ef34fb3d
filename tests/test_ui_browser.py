"""The Dagster UI as an operator uses it: headless Chromium (Debian's) driven by Playwright.

Opens the UI served by `dagster dev`, launches `subject_export` from the Launchpad for a sandbox
person, waits for the run to succeed and checks the run page shows every system's answer.
The screenshot is kept in test-artifacts/. Skips (with the reason) only when Chromium or
Playwright is not installed; `make test` installs both.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from contact_register.warehouse.build import build_warehouse
from tests.test_pipedrive_sync import run_sync

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

sync_playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").sync_playwright
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dagster_ui(pipedrive_env, tmp_path, monkeypatch):
    home = tmp_path / "dagster"
    home.mkdir()
    # A fresh DAGSTER_HOME and a fresh browser profile make the UI open its "Join the Dagster
    # community" dialog over the page, after a delay; Dagster's documented instance setting
    # `nux: enabled: false` turns it off, so the test never races it.
    config = (REPO / "pipelines" / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text(config + "\nnux:\n  enabled: false\n")
    monkeypatch.setenv("REGISTER_URL", str(tmp_path / "register.sqlite"))
    monkeypatch.setenv("EXPORT_DIR", str(tmp_path / "exports"))
    port = free_port()
    env = dict(os.environ, DAGSTER_HOME=str(home))
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster")), "dev", "-m", "pipelines.definitions",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=open(tmp_path / "dagster-dev.log", "wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if requests.get(f"{url}/server_info", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail("dagster dev did not come up:\n" + (tmp_path / "dagster-dev.log").read_text()[-3000:])
        time.sleep(1)
    yield url
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def test_subject_export_from_the_launchpad(dagster_ui, sandbox, tmp_path, artifacts_dir):
    from contact_register.requests.cases import open_register, validate_identifiers

    # A synced warehouse and a verified access case for a sandbox person with deals and notes.
    run_sync(sandbox, os.environ["RAW_DIR"])
    build_warehouse(os.environ["RAW_DIR"], os.environ["WAREHOUSE_PATH"])
    pd = sandbox.pipedrive
    person = next(pd.get("persons", i) for i in sorted(pd.live_ids("persons"))
                  if (pd.get("persons", i).get("emails") or []))
    register = open_register(os.environ["REGISTER_URL"])
    try:
        ids = validate_identifiers([person["emails"][0]["value"]], [], None, None)
        case = register.new_case("access", ids, actor="ui-test", systems=["pipedrive"])
        register.verify(case.case_id, method="test: identity document seen", actor="ui-test")
    finally:
        register.close()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{dagster_ui}/locations/pipelines.definitions/jobs/subject_export/playground")
            # The config editor is CodeMirror; typing YAML key by key fights its auto-indent, so
            # the test sets the text through the editor's own API, as a paste would.
            page.locator(".CodeMirror").first.wait_for(timeout=60_000)
            config = f'ops:\n  export_subject_data:\n    config:\n      case_id: "{case.case_id}"\n'
            page.evaluate("(text) => document.querySelector('.CodeMirror').CodeMirror.setValue(text)", config)
            page.get_by_role("button", name="Launch Run").click()
            page.wait_for_url("**/runs/**", timeout=60_000)
            page.get_by_text("Success", exact=True).first.wait_for(timeout=240_000)
            page.get_by_text("pipedrive: found").first.wait_for(timeout=30_000)
            body = page.inner_text("body")
        finally:
            page.screenshot(path=str(artifacts_dir / "subject_export_run.png"), full_page=True)
            browser.close()
    assert "export_subject_data" in body
    # Every processor answered: found systems and manual tasks alike are on the run page.
    assert "pipedrive: found" in body
