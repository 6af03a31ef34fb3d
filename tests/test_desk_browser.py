"""The officer's desk in a real browser (Debian's Chromium driven by Playwright) against a real
Dagster (``dagster dev``: the webserver and the daemon that starts queued runs, with a temporary
DAGSTER_HOME, as tests/test_ui_browser.py starts it).

An officer logs in, opens an access case in the desk's form, launches ``subject_export`` from
the case page (the desk calls Dagster's GraphQL API with the case id only), waits for the run,
downloads the zip and finds its manifest. The screenshot is kept in test-artifacts/."""

import json
import os
import re
import threading
import time
import zipfile

import pytest

from contact_register.warehouse.build import build_warehouse
from tests.test_pipedrive_sync import run_sync
# The Dagster fixture and the browser settings are test_ui_browser's (it skips when Chromium or
# Playwright is missing, and so does this module).
from tests.test_ui_browser import CHROMIUM, CHROMIUM_ARGS, dagster_ui, free_port, sync_playwright  # noqa: F401

OFFICER, PASSWORD = "aino", "aino-salasana-pitka"


@pytest.fixture
def desk_url(dagster_ui):
    """The desk in a thread, on the register and export folder the Dagster runs use."""
    import uvicorn

    from contact_register.desk import create_app
    from contact_register.desk.accounts import create_account
    from contact_register.requests.cases import open_register

    with open_register(os.environ["REGISTER_URL"]) as reg:
        create_account(reg, OFFICER, PASSWORD)
    app = create_app(os.environ["REGISTER_URL"], export_dir=os.environ["EXPORT_DIR"], dagster_url=dagster_ui)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the desk did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_an_officer_answers_an_access_request_from_the_desk(desk_url, dagster_ui, sandbox, tmp_path, artifacts_dir):
    from contact_register.requests.cases import open_register

    run_sync(sandbox, os.environ["RAW_DIR"])
    build_warehouse(os.environ["RAW_DIR"], os.environ["WAREHOUSE_PATH"])
    pd = sandbox.pipedrive
    person = next(pd.get("persons", i) for i in sorted(pd.live_ids("persons"))
                  if (pd.get("persons", i).get("emails") or []))
    email = person["emails"][0]["value"]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        try:
            page.goto(f"{desk_url}/cases/new")
            assert page.url == f"{desk_url}/login"  # no session: the login page
            page.get_by_label("User name").fill(OFFICER)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{desk_url}/")
            page.get_by_role("link", name="New case").click()
            page.get_by_label("Kind").select_option("access")
            page.get_by_label("Emails, one per line").fill(email)
            page.get_by_label("Identity verified how (optional)").fill("test: identity document seen")
            page.get_by_role("button", name="Open the case").click()
            page.wait_for_url(re.compile(r".*/cases/ACC-\d{8}-[0-9a-f]{6}$"))
            case_id = page.url.rsplit("/", 1)[1]
            assert email in page.inner_text("body")

            page.get_by_role("button", name="subject_export").click()
            page.wait_for_url(f"{desk_url}/cases/{case_id}")
            run_link = page.locator(".actions, ul").get_by_role("link", name=re.compile(r"^[0-9a-f-]{36}$")).first
            run_id = run_link.inner_text()
            assert run_link.get_attribute("href") == f"{dagster_ui}/runs/{run_id}"
            # Wait for the run: the case page shows its status from Dagster and, once the export
            # is recorded in the case, the download link.
            download = page.get_by_role("link", name=re.compile("Download the export"))
            deadline = time.monotonic() + 240
            while True:
                status = page.locator(".run-status").first.inner_text()
                if status == "SUCCESS" and download.count():
                    break
                assert status not in ("FAILURE", "CANCELED"), f"the run ended {status}"
                assert time.monotonic() < deadline, f"the export did not finish (run {status})"
                time.sleep(2)
                page.reload()
            with page.expect_download() as info:
                download.click()
            saved = tmp_path / "downloaded.zip"
            info.value.save_as(saved)
        finally:
            page.screenshot(path=str(artifacts_dir / "desk_case_page.png"), full_page=True)
            browser.close()

    with zipfile.ZipFile(saved) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest  # a package with its manifest, not an error page
    with open_register(os.environ["REGISTER_URL"]) as reg:
        case = reg.get(case_id, with_audit=True)
    assert saved.read_bytes() == (tmp_path / "exports" / case.export_file).read_bytes()
    actions = [(r["action"], r["actor"]) for r in case.audit]
    assert ("case_created", OFFICER) in actions and ("desk_run_launched", OFFICER) in actions
    assert ("export_downloaded", OFFICER) in actions
    # Dagster's stored run config holds the case id and nothing of the person.
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        run = instance.get_run_by_id(run_id)
    assert run.run_config == {"ops": {"export_subject_data": {"config": {"case_id": case_id}}}}
