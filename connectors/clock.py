"""The register's calendar day: Europe/Helsinki, whatever time zone the server runs in.

A request received at 00:30 in Helsinki is received that day, even if the server's clock (UTC
in containers) still says yesterday; deadlines and "overdue" count in the same days. This module
sits in ``connectors`` because everything imports from here (assets, pipelines, connectors) and
it imports nothing of the project.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

HELSINKI = ZoneInfo("Europe/Helsinki")


def today_helsinki(now: datetime | None = None) -> date:
    """Today's date in Helsinki; ``now`` (timezone-aware) is the moment to convert instead of
    the current one, for callers and tests that fix the clock."""
    if now is None:
        return datetime.now(HELSINKI).date()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (a naive time is ambiguous)")
    return now.astimezone(HELSINKI).date()
