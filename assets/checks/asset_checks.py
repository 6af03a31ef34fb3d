"""The warehouse's asset checks, shown beside the ``persons`` asset in the Dagster UI.

- ``row_counts`` runs inside the warehouse step, before the rename (assets/warehouse/assets.py):
  a sudden drop blocks the publish (see row_counts.py);
- ``last_sync``: each system's last successful sync, from the published warehouse;
- ``notice_conformance``: does the notice still describe what the warehouse holds (conformance.py).
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue, asset_check

from contact_register.warehouse.checks.conformance import MappingError, check_conformance, read_landed
from contact_register.warehouse.checks.freshness import utcnow, warehouse_syncs
from contact_register.warehouse.checks.row_counts import RowCountReport
from assets.resources import StorageResource
from contact_register.requests.export.registry import EXPORTERS
from contact_register.description import load_description

CHECKED_ASSET = AssetKey("persons")
ROW_COUNTS = AssetCheckSpec(
    "row_counts", asset=CHECKED_ASSET, blocking=True,
    description="Raw rows per system against the published warehouse; a sudden drop blocks the publish.",
)


def row_count_result(report: RowCountReport) -> AssetCheckResult:
    per_system = report.per_system()
    return AssetCheckResult(
        check_name=ROW_COUNTS.name, asset_key=CHECKED_ASSET, passed=report.passed,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "report": MetadataValue.md(report.markdown()),
            "max_drop_share": report.max_drop_share,
            "tables_dropped": [d.table for d in report.drops],
            **{f"rows_{system}": cur for system, (_, cur) in per_system.items()},
        },
    )


def _published(storage: StorageResource) -> duckdb.DuckDBPyConnection:
    path = storage.warehouse_file()
    if not path.exists():
        raise FileNotFoundError(f"no published warehouse at {path}: run nightly_sync first")
    return duckdb.connect(str(path), read_only=True)


@asset_check(asset=CHECKED_ASSET, description="Each system's last successful sync; warns when older than "
             "FRESHNESS_MAX_AGE_HOURS (default 36).")
def last_sync(storage: StorageResource) -> AssetCheckResult:
    max_age: timedelta = storage.max_age()
    now = utcnow()
    con = _published(storage)
    try:
        syncs = warehouse_syncs(con)
    finally:
        con.close()
    stale = [s.system for s in syncs if s.is_stale(now, max_age)]
    table = ["| system | last successful sync | hours ago |", "|---|---|---:|"]
    for s in syncs:
        age = s.age(now)
        table.append(f"| {s.system} | {s.last_success.isoformat(timespec='minutes') if s.last_success else 'never'} | "
                     f"{f'{age.total_seconds() / 3600:.1f}' if age is not None else '-'} |")
    return AssetCheckResult(
        passed=not stale, severity=AssetCheckSeverity.WARN,
        metadata={
            "systems": MetadataValue.md("\n".join(table)),
            "stale_systems": stale,
            "max_age_hours": max_age.total_seconds() / 3600,
            **{f"last_sync_{s.system}": MetadataValue.timestamp(s.last_success) for s in syncs if s.last_success},
        },
    )


@asset_check(asset=CHECKED_ASSET, description="The privacy notice still tells the truth: systems holding data are "
             "declared processors, every landed field has a declared category, every processor answers in exports.")
def notice_conformance(storage: StorageResource) -> AssetCheckResult:
    con = _published(storage)
    try:
        landed = read_landed(con)
    finally:
        con.close()
    try:
        report = check_conformance(landed, load_description(), EXPORTERS)
    except MappingError as exc:
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.ERROR,
                                metadata={"report": MetadataValue.md(f"**The check cannot run:** {exc}.")})
    return AssetCheckResult(
        passed=report.passed, severity=AssetCheckSeverity.WARN,
        metadata={
            "report": MetadataValue.md(report.markdown()),
            "promises_at_risk": report.at_risk(),
            "undeclared_fields": report.undeclared_fields,
        },
    )
