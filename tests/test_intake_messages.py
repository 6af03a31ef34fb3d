"""What the operator reads when `contact-register request new` refuses an identifier."""

import json
import os
import subprocess
import sys
from pathlib import Path

from connectors.errors import describe
from contact_register.requests.cases import InvalidIdentifier, validate_identifiers

REPO = Path(__file__).resolve().parents[1]
RESERVED = "matti.meikalainen@esimerkki.invalid"


def new_case(tmp_path, identifiers: dict):
    env = dict(os.environ, REGISTER_URL=str(tmp_path / "register.sqlite"))
    return subprocess.run([sys.executable, "-m", "contact_register.cli", "request", "new", "--kind", "access", "--stdin"],
                          input=json.dumps(identifiers), cwd=REPO, env=env, capture_output=True, text=True)


def test_a_reserved_test_domain_is_refused_naming_the_address_and_why_once(tmp_path):
    done = new_case(tmp_path, {"emails": ["oikea@firma.fi", RESERVED], "name": "Matti Meikäläinen"})
    assert done.returncode == 2 and done.stdout == ""
    err = done.stderr
    # Which address (the operator typed it on their own terminal), and why, said once.
    assert err.count(RESERVED) == 1, err
    assert "email #2" in err
    assert "esimerkki.invalid" in err and "reserved" in err and "no real mailbox" in err, err
    assert err.count("error:") == 1 and err.count("reserved") == 1, err
    assert "no case was created" in err


def test_the_exception_itself_keeps_the_address_out_of_logs():
    try:
        validate_identifiers(emails=[RESERVED])
    except InvalidIdentifier as exc:
        assert "esimerkki" not in str(exc) and "esimerkki" not in describe(exc)
        assert "reserved" in str(exc)
    else:
        raise AssertionError("a reserved domain was accepted")
