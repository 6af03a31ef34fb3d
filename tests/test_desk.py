"""The privacy officer's desk (contact_register/desk/) over real HTTP: uvicorn serves the app in
a thread on a free port against a temporary SQLite register; ``requests`` is the browser.

Checks what the issue asks of the desk: a visitor without a session only reaches the login
page, every form needs the session's CSRF token, a viewer reads only, an erasure is approved by
another officer than the one who opened it (the register refuses it for the command line too),
logout ends the session, and no identifier appears in a URL or a server log line."""

import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from contact_register.requests.cases import RegisterError, open_register, validate_identifiers

REPO = Path(__file__).resolve().parents[1]
EMAIL = "maija.meikalainen@esimerkki-oy.fi"
PHONE = "040 987 6543"
NAME = "Maija Meikäläinen"
PASSWORD = {"aino": "aino-salasana-pitka", "ville": "ville-salasana-pitka", "lukija": "lukija-salasana-pitka"}


def cli(*args, env=None, stdin=None):
    return subprocess.run([sys.executable, "-m", "contact_register.cli", *args], input=stdin, cwd=REPO,
                          env=env or os.environ.copy(), capture_output=True, text=True, timeout=120)


def test_erasure_approval_needs_a_second_officer_in_the_register_and_the_cli(tmp_path, monkeypatch):
    url = str(tmp_path / "register.sqlite")
    monkeypatch.setenv("REGISTER_URL", url)
    monkeypatch.delenv("REGISTER_FOUR_EYES", raising=False)
    with open_register(url) as reg:
        case = reg.new_case("erasure", validate_identifiers([EMAIL]), actor="aino")
        with pytest.raises(RegisterError, match="another officer"):
            reg.approve(case.case_id, action="erasure", actor="aino")
        assert reg.approvals_for(case.case_id, "erasure") == []
    refused = cli("request", "--actor", "aino", "approve", case.case_id, "--action", "erasure")
    assert refused.returncode == 2, refused.stderr
    assert "another officer" in refused.stderr
    done = cli("request", "--actor", "ville", "approve", case.case_id, "--action", "erasure")
    assert done.returncode == 0, done.stderr
    with open_register(url) as reg:
        assert reg.approvals_for(case.case_id, "erasure") == ["ville"]
        # Other approvals (an export, a rectification's values) are not four-eyes actions.
        access = reg.new_case("access", validate_identifiers([EMAIL]), actor="aino")
        reg.approve(access.case_id, action="export", actor="aino")
    # Configurable: REGISTER_FOUR_EYES=off lets the opener approve (a one-person office).
    other = None
    with open_register(url) as reg:
        other = reg.new_case("erasure", validate_identifiers([EMAIL]), actor="aino").case_id
    env = dict(os.environ, REGISTER_FOUR_EYES="off")
    assert cli("request", "--actor", "aino", "approve", other, "--action", "erasure", env=env).returncode == 0
