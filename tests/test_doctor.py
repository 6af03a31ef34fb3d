"""`contact-register doctor` and the `connections_check` job against the imitations and a real RT:
every configured system passes as configured by the sandbox, and each injected misconfiguration
fails naming the system and the setting (or console page) that fixes it."""

import json
import os
import socket

import pytest

from contact_register.cli import main
from contact_register.doctor import FAIL, OK, run_checks

ALL = ("pipedrive", "google", "netvisor", "request_tracker", "trustmary", "matomo", "docue")


@pytest.fixture
def doctor_env(sandbox, google_sandbox, netvisor_sandbox, small_sandbox, request_tracker, monkeypatch, tmp_path):
    """Only the sandbox's and RT's settings: every other system setting is removed."""
    for name in ("PIPEDRIVE_", "GOOGLE_", "NETVISOR_", "RT_", "TRUSTMARY_", "MATOMO_", "DOCUE_"):
        for key in [k for k in os.environ if k.startswith(name)]:
            monkeypatch.delenv(key)
    for source in (sandbox, google_sandbox, netvisor_sandbox, small_sandbox, request_tracker):
        for key, value in source.env().items():
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("RAW_DIR", str(tmp_path / "raw"))
    return {"pipedrive": sandbox, "google": google_sandbox, "netvisor": netvisor_sandbox, "small": small_sandbox}


def _lines(out: str, system: str, status: str) -> list[str]:
    return [line for line in out.splitlines() if line.split()[:1] == [system] and f"  {status}  " in line]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_doctor_passes_every_system_of_the_demo_setup(doctor_env, capsys, small_world):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for system in ALL:
        assert _lines(out, system, OK), f"{system} has no passing check:\n{out}"
        assert not _lines(out, system, FAIL), out
    # The table carries statuses and counts, never the people the systems hold.
    for person in small_world.humans[:50]:
        assert person.email not in out and person.last_name not in out


@pytest.mark.parametrize("injection, system, expected", [
    ("pipedrive_token", "pipedrive", "PIPEDRIVE_API_TOKEN"),
    ("pipedrive_url", "pipedrive", "PIPEDRIVE_BASE_URL"),
    ("pipedrive_clock", "pipedrive", "NTP"),
    ("google_scope", "google", "gmail.readonly to client id"),
    ("netvisor_key", "netvisor", "NETVISOR_CUSTOMER_ID/_KEY"),
    ("netvisor_algorithm", "netvisor", "HMAC-SHA256"),
    ("rt_token", "request_tracker", "RT_TOKEN"),
    ("trustmary_key", "trustmary", "TRUSTMARY_API_KEY"),
    ("matomo_token", "matomo", "MATOMO_TOKEN_AUTH"),
    ("docue_token", "docue", "DOCUE_API_TOKEN"),
])
def test_doctor_names_the_system_and_the_fix(doctor_env, monkeypatch, capsys, injection, system, expected):
    if injection == "pipedrive_token":
        monkeypatch.setenv("PIPEDRIVE_API_TOKEN", "not-the-token")
    elif injection == "pipedrive_url":
        monkeypatch.setenv("PIPEDRIVE_BASE_URL", f"http://127.0.0.1:{_free_port()}")
    elif injection == "pipedrive_clock":
        doctor_env["pipedrive"].pipedrive.clock_skew_s = 600
    elif injection == "google_scope":
        from sandbox.google import all_scopes

        doctor_env["google"].google.delegated_scopes = frozenset(
            s for s in all_scopes() if not s.endswith("/gmail.readonly"))
    elif injection == "netvisor_key":
        monkeypatch.setenv("NETVISOR_CUSTOMER_KEY", "wrong-key")
    elif injection == "netvisor_algorithm":
        doctor_env["netvisor"].netvisor.mac_algorithms = {"SHA256"}  # a server that knows only the legacy mode
    elif injection == "rt_token":
        monkeypatch.setenv("RT_TOKEN", "1-99-0123456789abcdef0123456789abcdef")
        monkeypatch.delenv("RT_USER", raising=False)
        monkeypatch.delenv("RT_PASSWORD", raising=False)
    elif injection == "trustmary_key":
        monkeypatch.setenv("TRUSTMARY_API_KEY", "wrong")
    elif injection == "matomo_token":
        monkeypatch.setenv("MATOMO_TOKEN_AUTH", "0" * 32)
    elif injection == "docue_token":
        monkeypatch.setenv("DOCUE_API_TOKEN", "wrong")
    assert main(["doctor", "--system", system]) == 1
    failing = _lines(capsys.readouterr().out, system, FAIL)
    assert failing and any(expected in line for line in failing), failing


def test_shapes_are_written_without_values_and_compared(doctor_env, tmp_path, capsys, small_world):
    shapes = tmp_path / "shapes"
    assert main(["doctor", "--system", "pipedrive", "--system", "trustmary", "--shapes", str(shapes)]) == 0
    files = sorted(shapes.glob("*.json"))
    assert {f.name for f in files} >= {"pipedrive__persons.list.json", "pipedrive__notes.list.json", "trustmary__test.json"}
    text = "".join(f.read_text(encoding="utf-8") for f in files)
    assert "data[].emails[].value" in text  # a path, with its type ...
    for person in small_world.humans:  # ... and no value of any record
        assert person.email not in text and person.last_name not in text
    capsys.readouterr()

    assert main(["doctor", "--system", "pipedrive", "--compare-shapes", str(shapes)]) == 0
    assert "shape differences: 0" in capsys.readouterr().out

    # What an operator's live Pipedrive might send and the imitation does not.
    persons = shapes / "pipedrive__persons.list.json"
    shape = json.loads(persons.read_text(encoding="utf-8"))
    shape["data[].live_only_field"] = ["integer"]
    shape["data[].name"] = ["integer"]
    persons.write_text(json.dumps(shape), encoding="utf-8")
    assert main(["doctor", "--system", "pipedrive", "--compare-shapes", str(shapes)]) == 1
    out = capsys.readouterr().out
    assert "pipedrive/persons.list: data[].live_only_field only live (integer)" in out
    assert "pipedrive/persons.list: data[].name is integer live, string here" in out


def test_connections_check_job_fails_naming_the_setting(doctor_env, monkeypatch):
    from pipelines.definitions import defs

    for name in ("GOOGLE_ADMIN_SUBJECT", "NETVISOR_BASE_URL", "RT_URL", "TRUSTMARY_API_KEY", "MATOMO_BASE_URL",
                 "DOCUE_API_TOKEN"):
        monkeypatch.delenv(name)
    job = defs.get_job_def("connections_check")
    assert job.execute_in_process().success
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", "not-the-token")
    result = job.execute_in_process(raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("check_connections")
    assert "PIPEDRIVE_API_TOKEN" in failure.error.message or "PIPEDRIVE_API_TOKEN" in str(failure.user_failure_data)


def test_report_counts_unconfigured_systems_as_not_failing(monkeypatch):
    for name in ("PIPEDRIVE_BASE_URL", "GOOGLE_ADMIN_SUBJECT", "NETVISOR_BASE_URL", "RT_URL", "TRUSTMARY_API_KEY",
                 "MATOMO_BASE_URL", "DOCUE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    report = run_checks()
    assert report.ok and {f.status for f in report.findings} == {"not configured"}
