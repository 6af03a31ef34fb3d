"""Dagster assets for Google Workspace: the ``raw_google.*`` tables, written by one step."""

import dataclasses
import json
import os

from dagster import AssetExecutionContext, AssetKey, AssetSpec, ConfigurableResource, Config, MaterializeResult, multi_asset

from assets.google.sync import ALL_SPECS, sync_google
from assets.raw_store import open_raw_store
from assets.resources import StorageResource
from connectors.google_workspace import SCOPES_WRITE, GoogleSettings, GoogleWorkspaceClient

RAW_GOOGLE_KEYS = {spec.name: AssetKey(["raw_google", spec.name]) for spec in ALL_SPECS}


class GoogleWorkspaceResource(ConfigurableResource):
    """Service account with domain-wide delegation. The key itself is read from
    ``GOOGLE_SERVICE_ACCOUNT_JSON`` or the file named by ``GOOGLE_SERVICE_ACCOUNT_FILE`` when the
    step runs, so no secret value ever enters Dagster's config or event log. Empty endpoint
    settings fall back to ``GOOGLE_API_ENDPOINT`` / ``GOOGLE_TOKEN_URI`` (the sandbox sets them),
    then to Google's own endpoints."""

    admin_subject: str
    domain: str = ""
    api_endpoint: str = ""
    token_uri: str = ""
    timeout_s: float = 60.0
    batch_size: int = 50
    max_attempts: int = 6

    def settings(self) -> GoogleSettings:
        if os.environ.get("GOOGLE_SERVICE_ACCOUNT_FILE"):
            with open(os.environ["GOOGLE_SERVICE_ACCOUNT_FILE"], encoding="utf-8") as f:
                info = json.load(f)
        else:
            info = json.loads(os.environ["GOOGLE_SERVICE_ACCOUNT_JSON"])
        return GoogleSettings(
            service_account_info=info,
            admin_subject=self.admin_subject,
            domain=self.domain or os.environ.get("GOOGLE_DOMAIN", ""),
            api_endpoint=self.api_endpoint or os.environ.get("GOOGLE_API_ENDPOINT") or None,
            token_uri=self.token_uri or os.environ.get("GOOGLE_TOKEN_URI") or None,
            timeout_s=self.timeout_s,
            batch_size=self.batch_size,
            max_attempts=self.max_attempts,
        )

    def client(self) -> GoogleWorkspaceClient:
        return GoogleWorkspaceClient(self.settings())

    def write_client(self) -> GoogleWorkspaceClient:
        """For the write-back jobs: the sync reads with read-only scopes; deleting mail, events
        and contacts and changing group membership needs the write ones."""
        return GoogleWorkspaceClient(dataclasses.replace(self.settings(), scopes=SCOPES_WRITE))


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
