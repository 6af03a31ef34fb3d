"""What every system's raw-sync asset shares: its run config, how it opens its raw store, and the
sync step itself (run the system's sync into the store, report each table to Dagster)."""

from contextlib import contextmanager
from dataclasses import asdict
from datetime import timedelta
from typing import Any, Callable, Iterator, Mapping

from dagster import AssetExecutionContext, AssetKey, Config, MaterializeResult

from contact_register.sync.raw_store import EntityResult, RawStore, open_raw_store
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


def run_raw_sync(context: AssetExecutionContext, system: str, client: Any, storage: StorageResource,
                 config: RawSyncConfig, sync: Callable[..., Any], keys: Mapping[str, AssetKey],
                 specs: Mapping[str, Any]) -> Iterator[MaterializeResult]:
    """Run ``sync(client, store, reconcile_every=..., max_delete_share=...)`` into the system's raw
    store, close the client, and yield one materialization per table of ``keys``. A table the
    sync reports no entity result for (a child table such as RT's ``ticket_people``) gets its
    row count."""
    try:
        with raw_store_for(storage, system, config) as store:
            result = sync(client, store, reconcile_every=timedelta(hours=config.reconcile_every_hours),
                          max_delete_share=config.max_delete_share)
            # Table names are the constants of ``keys``, never data.
            rows = {t: store.con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                    for t in keys if t not in result.entities}
    finally:
        client.close()
    context.log.info(f"{system} sync: {result.requests} requests, {result.retries} retries")
    for name, key in keys.items():
        if name in result.entities:
            metadata = entity_metadata(system, specs[name].name, result.entities[name])
        else:
            metadata = {"rows": rows[name], "table": f"raw_{system}.{name}"}
        yield MaterializeResult(asset_key=key, metadata=metadata)
