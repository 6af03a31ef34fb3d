"""Dagster assets for Google Workspace: the ``raw_google.*`` tables, written by one step."""


from dagster import AssetExecutionContext, AssetKey, AssetSpec, Config, MaterializeResult, multi_asset

from contact_register.sync.google.sync import ALL_SPECS, sync_google
from contact_register.sync.raw_store import open_raw_store
from assets.resources import GoogleWorkspaceResource, StorageResource

RAW_GOOGLE_KEYS = {spec.name: AssetKey(["raw_google", spec.name]) for spec in ALL_SPECS}


class GoogleSyncConfig(Config):
    full_refresh: bool = False
    """Forget every user's history ids, sync tokens and page tokens and read everything again."""


@multi_asset(
    specs=[
        AssetSpec(key, group_name="google", kinds={"google", "duckdb"},
                  description=f"Google Workspace {name}: records as the APIs gave them plus extracted keys.")
        for name, key in RAW_GOOGLE_KEYS.items()
    ],
    op_tags={"register/system": "google"},
)
def raw_google(context: AssetExecutionContext, config: GoogleSyncConfig, google: GoogleWorkspaceResource,
               storage: StorageResource):
    client = google.client()
    try:
        with open_raw_store(storage.raw_dir_path(), "google") as store:
            if config.full_refresh:
                store.con.execute("DROP TABLE IF EXISTS _google_state")
            result = sync_google(client, store)
    finally:
        client.close()
    context.log.info(f"google sync: {result.users} users, {result.requests} requests, {result.retries} retries")
    per_api = {a: {"full_users": r.full_users, "incremental_users": r.incremental_users, "resyncs": r.resyncs,
                   "upserted": r.upserted, "deleted": r.deleted, "issues": r.issues} for a, r in result.apis.items()}
    for name, key in RAW_GOOGLE_KEYS.items():
        yield MaterializeResult(asset_key=key, metadata={"rows": result.rows.get(name, 0),
                                                         "table": f"raw_google.{name}", "sync": per_api})
