"""Dagster assets for Request Tracker: the ``raw_request_tracker.*`` tables, written by one step."""


from dagster import AssetExecutionContext, AssetKey, AssetSpec, multi_asset

from assets.raw_sync import RawSyncConfig, run_raw_sync
from contact_register.sync.request_tracker.sync import SPECS, TABLES, sync_request_tracker
from assets.resources import RequestTrackerResource, StorageResource

RAW_REQUEST_TRACKER_KEYS = {table: AssetKey(["raw_request_tracker", table]) for table in TABLES}


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
