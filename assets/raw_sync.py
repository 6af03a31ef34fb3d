"""What every system's raw-sync asset shares: its run config and how it opens its raw store."""

from contextlib import contextmanager
from dataclasses import asdict
from typing import Iterator

from dagster import Config

from assets.raw_store import EntityResult, RawStore, open_raw_store
from assets.resources import StorageResource


class RawSyncConfig(Config):
    reconcile_every_hours: float = 20.0
    """Deletions are invisible to incremental polling: walk all ids when the last walk is older."""
    max_delete_share: float = 0.5
    """Refuse a reconciliation that would delete more than this share of a table."""
    full_refresh: bool = False
    """Forget the cursors and read everything again (also reconciles deletions)."""


@contextmanager
def raw_store_for(storage: StorageResource, system: str, config: RawSyncConfig) -> Iterator[RawStore]:
    """The system's raw store; with ``full_refresh`` its cursors are forgotten first."""
    with open_raw_store(storage.raw_dir_path(), system) as store:
        if config.full_refresh:
            store.con.execute("DELETE FROM _sync_state")
        yield store


def entity_metadata(system: str, table: str, result: EntityResult) -> dict:
    """Dagster metadata for one raw table after a sync: counts and the table name, never data."""
    counts = {k: v for k, v in asdict(result).items() if k != "entity"}
    return {**counts, "table": f"raw_{system}.{table}"}
