"""Row counts per raw table against the published warehouse, checked before a new build is
renamed into place.

An API that suddenly returns nothing (an expired token answering with empty pages, a wrong
filter, a vendor incident) must not look like everyone was erased: analysts, exports and erasure
jobs would act on the empty warehouse. So a build whose raw table shrank by more than
``max_drop_share`` since the published warehouse is not published; the previous file stays in
place and the run fails (the run-failure sensor tells the operator). The guard keeps refusing
until the source recovers or an operator allows the drop (``max_drop_share: 1.0`` for one run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from contact_register.warehouse.build import BuildResult
from connectors.errors import SafeMessage

DEFAULT_MAX_DROP_SHARE = 0.5
# Small tables swing by a handful of rows in normal use; below this many lost rows a drop is noise.
MIN_DROP_ROWS = 10


@dataclass(frozen=True)
class TableCount:
    table: str  # raw_<system>.<table>
    previous: int | None
    current: int | None

    @property
    def system(self) -> str:
        return self.table.split(".", 1)[0].removeprefix("raw_")

    @property
    def lost(self) -> int:
        return max((self.previous or 0) - (self.current or 0), 0)


@dataclass
class RowCountReport:
    max_drop_share: float
    counts: list[TableCount] = field(default_factory=list)
    drops: list[TableCount] = field(default_factory=list)
    note: str = ""  # why there was nothing to compare with, if so

    @property
    def passed(self) -> bool:
        return not self.drops

    def summary(self) -> str:
        if self.passed:
            return f"row counts checked: {len(self.counts)} raw tables, no drop above {self.max_drop_share:.0%}"
        worst = ", ".join(f"{d.table} {d.previous} -> {d.current or 0}" for d in self.drops)
        return (f"warehouse not published: rows dropped by more than {self.max_drop_share:.0%} since the published "
                f"warehouse ({worst}); the previous warehouse stays published")

    def per_system(self) -> dict[str, tuple[int, int]]:
        """system -> (previous rows, current rows) over its raw tables."""
        out: dict[str, tuple[int, int]] = {}
        for c in self.counts:
            prev, cur = out.get(c.system, (0, 0))
            out[c.system] = (prev + (c.previous or 0), cur + (c.current or 0))
        return out

    def markdown(self) -> str:
        lines = [self.summary() + ".", ""]
        if self.note:
            lines += [self.note, ""]
        lines += ["| system | rows before | rows now |", "|---|---:|---:|"]
        lines += [f"| {s} | {p} | {c} |" for s, (p, c) in sorted(self.per_system().items())]
        if self.drops:
            lines += ["", "| table that dropped | before | now |", "|---|---:|---:|"]
            lines += [f"| {d.table} | {d.previous} | {d.current or 0} |" for d in self.drops]
            lines += ["", "If the source really lost these rows, re-run `nightly_sync` with the warehouse step's "
                      "`max_drop_share: 1.0`."]
        return "\n".join(lines)


def raw_table_counts(tables: dict[str, int]) -> dict[str, int]:
    """The data tables of the raw schemas (bookkeeping tables start with ``_``)."""
    return {name: n for name, n in tables.items()
            if name.startswith("raw_") and "." in name and not name.split(".", 1)[1].startswith("_")}


def published_counts(path: str | Path) -> dict[str, int] | None:
    """Row counts of the raw data tables in the published warehouse; None if there is none yet."""
    if not Path(path).exists():
        return None
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE schema_name LIKE 'raw\\_%' ESCAPE '\\' AND table_name NOT LIKE '\\_%' ESCAPE '\\'"
        ).fetchall()
        return {f"{s}.{t}": con.execute(f'SELECT count(*) FROM "{s}"."{t}"').fetchone()[0] for s, t in tables}
    finally:
        con.close()


def _valid_share(share: float) -> float:
    if not 0 <= share <= 1:
        raise ValueError("max_drop_share must be between 0 and 1")
    return share


def compare(previous: dict[str, int] | None, current: dict[str, int], *,
            max_drop_share: float = DEFAULT_MAX_DROP_SHARE, min_drop_rows: int = MIN_DROP_ROWS) -> RowCountReport:
    report = RowCountReport(_valid_share(max_drop_share))
    if previous is None:
        report.note = "No published warehouse yet: nothing to compare with."
        previous = {}
    for table in sorted(set(previous) | set(current)):
        count = TableCount(table, previous.get(table), current.get(table))
        report.counts.append(count)
        if count.previous and count.lost >= min_drop_rows and count.lost > max_drop_share * count.previous:
            report.drops.append(count)
    return report


class PublishBlocked(SafeMessage, RuntimeError):
    """The new build lost too many rows: it was not published. The message names tables and
    counts only."""

    def __init__(self, report: RowCountReport) -> None:
        super().__init__(report.summary())
        self.report = report


class RowCountGuard:
    """Pass as ``build_warehouse(..., before_publish=RowCountGuard(0.5))``: compares the finished
    build with the published warehouse and raises :class:`PublishBlocked` to keep the old one.
    The report of the last call stays in ``report`` for the asset check."""

    def __init__(self, max_drop_share: float = DEFAULT_MAX_DROP_SHARE, min_drop_rows: int = MIN_DROP_ROWS) -> None:
        self.max_drop_share = _valid_share(max_drop_share)
        self.min_drop_rows = min_drop_rows
        self.report: RowCountReport | None = None

    def __call__(self, result: BuildResult) -> None:
        try:
            previous = published_counts(result.path)
            note = ""
        except duckdb.Error as exc:
            # An unreadable published file is no reason to keep it: the new build replaces it.
            previous, note = None, f"The published warehouse could not be read ({type(exc).__name__}): not compared."
        self.report = compare(previous, raw_table_counts(result.tables),
                              max_drop_share=self.max_drop_share, min_drop_rows=self.min_drop_rows)
        self.report.note = note or self.report.note
        if not self.report.passed:
            raise PublishBlocked(self.report)
