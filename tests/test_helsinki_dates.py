"""Received, due and overdue count in Helsinki days, whatever time zone the server runs in
(containers run in UTC: at 22:30 UTC on 31 December it is already 1 January in Helsinki)."""

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.clock import today_helsinki
from contact_register.requests.cases import open_register, validate_identifiers

REPO = Path(__file__).resolve().parents[1]
HELSINKI = ZoneInfo("Europe/Helsinki")

# The clock fixed at 22:30 UTC on 31 December 2026 (00:30 on 1 January 2027 in Helsinki),
# in a process whose own time zone is UTC.
FIXED_CLOCK = """
import sys
from datetime import datetime, timezone
import connectors.clock as clock

class FixedClock(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 12, 31, 22, 30, tzinfo=timezone.utc).astimezone(tz)

clock.datetime = FixedClock
from contact_register.cli.request import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_helsinki_date_at_2230_utc_on_new_years_eve_is_1_january():
    utc_evening = datetime(2026, 12, 31, 22, 30, tzinfo=timezone.utc)
    assert today_helsinki(utc_evening) == date(2027, 1, 1)
    assert today_helsinki(datetime(2026, 12, 31, 21, 59, tzinfo=timezone.utc)) == date(2026, 12, 31)
    # Summer time (UTC+3): 21:00 UTC on 30 June is already 1 July.
    assert today_helsinki(datetime(2026, 6, 30, 21, 0, tzinfo=timezone.utc)) == date(2026, 7, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        today_helsinki(datetime(2026, 12, 31, 22, 30))


def _request(*args, register_path: Path, clock: str | None, tz: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, REGISTER_URL=str(register_path), REGISTER_ACTOR="tietosuojavastaava", TZ=tz)
    code = ["-c", clock, "request"] if clock else ["-m", "contact_register.cli", "request"]
    done = subprocess.run([sys.executable, *code, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def test_a_case_opened_at_2230_utc_on_31_december_is_received_on_1_january(tmp_path):
    path = tmp_path / "register.sqlite"
    made = _request("new", "--kind", "access", "--email", "uusivuosi@esimerkki.fi", "--json",
                    register_path=path, clock=FIXED_CLOCK, tz="UTC")
    case = json.loads(made.stdout)
    assert (case["received_on"], case["due_on"]) == ("2027-01-01", "2027-02-01")
    assert case["case_id"].startswith("ACC-20270101-")
    # Received 2026-11-30, due 2026-12-30: at 00:30 on 31 December in Helsinki (22:30 UTC on the
    # 30th) it is overdue, though the server's own date is still the due date.
    with open_register(str(path)) as reg:
        late = reg.new_case("access", validate_identifiers(["myohassa@esimerkki.fi"]), actor="dpo",
                            received_on="2026-11-30").case_id
    on_30th = FIXED_CLOCK.replace("datetime(2026, 12, 31, 22, 30", "datetime(2026, 12, 30, 22, 30")
    listed = json.loads(_request("list", "--due", "--json", register_path=path, clock=on_30th, tz="UTC").stdout)
    assert {c["case_id"]: c["due_state"] for c in listed} == {late: "overdue"}


def _one_month_before(due: date) -> date:
    """A received date whose one-month deadline is ``due`` (the same day a month later)."""
    for back in range(27, 32):
        received = due - timedelta(days=back)
        month, year = (received.month % 12) + 1, received.year + (received.month == 12)
        try:
            if date(year, month, received.day) == due:
                return received
        except ValueError:
            continue
    pytest.skip(f"no received date is exactly one month before {due}")  # only a clamped month end


def test_the_real_clock_in_a_time_zone_far_from_helsinki(tmp_path):
    """No fixed clock: the process runs in a zone whose date differs from Helsinki's right now."""
    now = datetime.now(timezone.utc)
    helsinki = now.astimezone(HELSINKI).date()
    tz, offset = ("Etc/GMT+12", -12) if (now + timedelta(hours=-12)).date() != helsinki else ("Etc/GMT-14", 14)
    assert (now + timedelta(hours=offset)).date() != helsinki
    path = tmp_path / "register.sqlite"
    case = json.loads(_request("new", "--kind", "access", "--email", "kaukana@esimerkki.fi", "--json",
                               register_path=path, clock=None, tz=tz).stdout)
    assert datetime.now(HELSINKI).date() == helsinki, "midnight in Helsinki passed during the test: run it again"
    assert case["received_on"] == helsinki.isoformat()
    with open_register(str(path)) as reg:
        due_today = reg.new_case("access", validate_identifiers(["tanaan@esimerkki.fi"]), actor="dpo",
                                 received_on=_one_month_before(helsinki)).case_id
        due_yesterday = reg.new_case("access", validate_identifiers(["eilen@esimerkki.fi"]), actor="dpo",
                                     received_on=_one_month_before(helsinki - timedelta(days=1))).case_id
    listed = json.loads(_request("list", "--due", "--soon-days", "0", "--json", register_path=path, clock=None,
                                 tz=tz).stdout)
    assert {c["case_id"]: c["due_state"] for c in listed} == {due_today: "due soon", due_yesterday: "overdue"}
