"""Dagster assets for Request Tracker: the ``raw_request_tracker.*`` tables, written by one step."""

import os

from dagster import AssetExecutionContext, AssetKey, AssetSpec, ConfigurableResource, multi_asset

from assets.raw_sync import RawSyncConfig, run_raw_sync
from assets.request_tracker.sync import SPECS, TABLES, sync_request_tracker
from assets.resources import StorageResource
from connectors.request_tracker import RequestTrackerClient, RtAdminTools

RAW_REQUEST_TRACKER_KEYS = {table: AssetKey(["raw_request_tracker", table]) for table in TABLES}


class RequestTrackerResource(ConfigurableResource):
    """RT 5 REST2: base URL (``https://rt.example.fi``) and a token, or a user and password.
    ``admin_command_prefix`` runs RT's admin tools (rt-shredder) on the RT host for erasure,
    e.g. ``ssh rt-host sudo -u www-data``; empty runs them locally."""

    url: str
    token: str = ""
    user: str = ""
    password: str = ""
    page_size: int = 100
    timeout_s: float = 30.0
    admin_command_prefix: str = ""

    def client(self) -> RequestTrackerClient:
        env = {k: v for k, v in os.environ.items() if k in ("RT_SITE_CONFIG", "RT_SITE_CONFIG_DIR")}
        return RequestTrackerClient(
            self.url, token=self.token, user=self.user, password=self.password,
            page_size=self.page_size, timeout_s=self.timeout_s,
            admin=RtAdminTools(command_prefix=self.admin_command_prefix.split(), env=env),
        )


@multi_asset(
    specs=[
        AssetSpec(
            key,
            group_name="request_tracker",
            kinds={"duckdb"},
            description=f"Request Tracker {table}: metadata as REST2 gave it plus extracted keys (no message content).",
        )
        for table, key in RAW_REQUEST_TRACKER_KEYS.items()
    ],
    op_tags={"register/system": "request_tracker"},
)
def raw_request_tracker(
    context: AssetExecutionContext,
    config: RawSyncConfig,
    request_tracker: RequestTrackerResource,
    storage: StorageResource,
):
    yield from run_raw_sync(context, "request_tracker", request_tracker.client(), storage, config,
                            sync_request_tracker, RAW_REQUEST_TRACKER_KEYS, SPECS)
