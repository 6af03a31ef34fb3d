"""Retention periods of the Finnish Accounting Act (Kirjanpitolaki 1336/1997) 2:10 §.

- Books (kirjanpito) and the financial statements are kept at least **10 years from the end
  of the financial year**.
- Vouchers (tositteet: invoices, receipts) and business correspondence are kept at least
  **6 years from the end of the calendar year in which the financial year ended**.
- 2:9 § forbids altering them, so a person named on an invoice cannot be erased from it before
  the period ends: the erasure becomes a restriction with a computable end date.

The financial year (tilikausi) is usually the calendar year but need not be: a company may
close its books on 30 June, and a first or changed financial year may be shorter or longer than
12 months, at most 18 months (KPL 4:3 §). :class:`FinancialYears` therefore takes a regular
start day (``MM-DD``) and explicit periods that override it, as the configuration gives them
(``FinancialYears.from_config("07-01", ["2024-01-01/2025-06-30"])``, ISO 8601 intervals). List
every financial year that did not follow the regular rule (a changed year and, after a change
of the start day, the years before it): a regular year that would overlap a listed one is cut
at it. The 18-month limit is calendar months (``dateutil.relativedelta``): a year starting
1.3.2023 may end on 31.8.2024 at the latest.

Dates here are calendar dates (``datetime.date``) in Finnish local time: an invoice date is a
date, not an instant. ``ends_on`` is the last day the data must still be kept; erasure may
happen from the next day on (``erase_from``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta

MAX_MONTHS = 18  # KPL 4:3 §: the longest first or changed financial year
VOUCHER = "voucher"  # 2:10 § 2 mom.: 6 years from the end of the calendar year the FY ended in
BOOKS = "books"  # 2:10 § 1 mom.: 10 years from the end of the financial year
RULES = (VOUCHER, BOOKS)


@dataclass(frozen=True)
class FinancialYears:
    """The company's financial years: regular years starting on ``start_month``/``start_day``,
    except where an explicit ``(first_day, last_day)`` period in ``periods`` covers the date."""

    start_month: int = 1
    start_day: int = 1
    periods: tuple[tuple[date, date], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not 1 <= self.start_month <= 12:
            raise ValueError("start_month must be 1..12")
        date(2001, self.start_month, self.start_day)  # raises ValueError for e.g. 31 April
        if self.start_month == 2 and self.start_day == 29:
            raise ValueError("a financial year cannot start on 29 February")
        ordered = sorted(self.periods)
        for first, last in ordered:
            if last < first:
                raise ValueError(f"the financial year {first.isoformat()}/{last.isoformat()} ends before it starts")
            if last >= first + relativedelta(months=MAX_MONTHS):
                raise ValueError(f"the financial year {first.isoformat()}/{last.isoformat()} is longer than "
                                 f"{MAX_MONTHS} months (KPL 4:3 §)")
        for (_f1, last1), (first2, _l2) in zip(ordered, ordered[1:]):
            if first2 <= last1:
                raise ValueError(f"financial years overlap on {first2.isoformat()}")
        object.__setattr__(self, "periods", tuple(ordered))

    @classmethod
    def parse(cls, text: str) -> "FinancialYears":
        """``"01-01"`` or ``"07-01"`` (month-day the year starts on), as given in settings."""
        try:
            month, day = (int(p) for p in text.strip().split("-"))
        except ValueError:
            raise ValueError(f"financial year start must be MM-DD, got {text!r}") from None
        return cls(month, day)

    @classmethod
    def from_config(cls, start: str = "01-01", periods: Iterable[str] = ()) -> "FinancialYears":
        """The regular start ``MM-DD`` plus explicit periods ``YYYY-MM-DD/YYYY-MM-DD`` (first and
        last day, ISO 8601 interval), e.g. ``("07-01", ["2024-01-01/2025-06-30"])``."""
        regular = cls.parse(start)
        parsed = []
        for text in periods:
            first, sep, last = str(text).strip().partition("/")
            try:
                if not sep:
                    raise ValueError
                parsed.append((date.fromisoformat(first.strip()), date.fromisoformat(last.strip())))
            except ValueError:
                raise ValueError(f"a financial year period must be YYYY-MM-DD/YYYY-MM-DD, got {text!r}") from None
        return cls(regular.start_month, regular.start_day, tuple(parsed))

    def period_of(self, day: date) -> tuple[date, date]:
        """(first day, last day) of the financial year that contains ``day``."""
        for first, last in self.periods:
            if first <= day <= last:
                return first, last
        start_this_year = date(day.year, self.start_month, self.start_day)
        first = start_this_year if day >= start_this_year else date(day.year - 1, self.start_month, self.start_day)
        last = date(first.year + 1, self.start_month, self.start_day) - timedelta(days=1)
        # A regular year overlapping a listed one is cut at it: it ends the day before the
        # listed year starts, or starts the day after it ends.
        for p_first, p_last in self.periods:
            if first <= p_last and p_first <= last:
                if p_first > day:
                    last = min(last, p_first - timedelta(days=1))
                else:
                    first = max(first, p_last + timedelta(days=1))
        return first, last

    def end_of(self, day: date) -> date:
        return self.period_of(day)[1]


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a non-leap target year
        return day.replace(year=day.year + years, day=28)


def retention_end(document_date: date, rule: str, years: FinancialYears) -> date:
    """Last day a record dated ``document_date`` must be kept under ``rule``."""
    fy_end = years.end_of(document_date)
    if rule == VOUCHER:
        return date(fy_end.year + 6, 12, 31)
    if rule == BOOKS:
        return _add_years(fy_end, 10)
    raise ValueError(f"unknown retention rule {rule!r}; choose from {RULES}")


@dataclass(frozen=True)
class LegalHold:
    """A record that must be kept until ``ends_on`` because of the documents in ``basis``.

    ``record_kind``/``record_id`` name the Netvisor record about the person (a contact person
    or a private customer); ``basis`` holds the invoice keys, numbers and dates that cause the
    hold (no personal data), ``rule`` the 2:10 § rule that gives the longest period."""

    system: str
    record_kind: str
    record_id: str
    rule: str
    ends_on: date
    basis: tuple[dict, ...]
    law: str = "Kirjanpitolaki 2:10 §"
    undetermined: bool = False  # a document had no readable date: ends_on is date.max

    @property
    def erase_from(self) -> date | None:
        return None if self.undetermined else self.ends_on + timedelta(days=1)

    def active(self, today: date) -> bool:
        return today <= self.ends_on


def hold_for(
    system: str,
    record_kind: str,
    record_id: str,
    documents: list[dict],
    years: FinancialYears,
    *,
    rule: str = VOUCHER,
) -> LegalHold | None:
    """The hold caused by ``documents`` (each with ``date`` as a ``date`` and any identifying,
    non-personal keys), or None when there are none. The latest-ending document decides."""
    if not documents:
        return None
    dated = [d for d in documents if isinstance(d.get("date"), date)]
    if len(dated) < len(documents):
        # A document without a readable date still binds: keep until someone looks at it.
        undated = tuple(dict(d, date=None, ends_on=None) for d in documents if not isinstance(d.get("date"), date))
        return LegalHold(system, record_kind, record_id, rule, date.max, undated, undetermined=True)
    ends = max(retention_end(d["date"], rule, years) for d in dated)
    basis = tuple(
        dict(d, date=d["date"].isoformat(), ends_on=retention_end(d["date"], rule, years).isoformat())
        for d in sorted(dated, key=lambda d: d["date"])
    )
    return LegalHold(system, record_kind, record_id, rule, ends, basis)
