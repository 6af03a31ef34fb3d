"""The published warehouse: built from every raw store and renamed into place in one step."""

from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, multi_asset

from assets.google.assets import RAW_GOOGLE_KEYS
from assets.netvisor.assets import RAW_NETVISOR_KEYS
from assets.pipedrive.assets import RAW_PIPEDRIVE_KEYS
from assets.request_tracker.assets import RAW_REQUEST_TRACKER_KEYS
from assets.resources import StorageResource
from assets.warehouse.build import build_warehouse

WAREHOUSE_TABLES = {
    "person_identifiers": "Every identifier (email, phone, name, organisation) of every source record, raw and normalised.",
    "person_records": "person_id -> every record about that person in every system, with the rule that linked it.",
    "persons": "One row per human: best name, emails, phones, organisations, systems, marketing ban, last activity.",
    "marketing_bans": "Source records that carry a marketing ban.",
}


@multi_asset(
    specs=[
        AssetSpec(
            AssetKey(name),
            group_name="warehouse",
            kinds={"duckdb"},
            description=text,
            deps=list(RAW_PIPEDRIVE_KEYS.values()) + list(RAW_GOOGLE_KEYS.values())
            + list(RAW_REQUEST_TRACKER_KEYS.values()) + list(RAW_NETVISOR_KEYS.values()),
        )
        for name, text in WAREHOUSE_TABLES.items()
    ],
)
def warehouse(context: AssetExecutionContext, storage: StorageResource):
    result = build_warehouse(storage.raw_dir_path(), storage.warehouse_file(), run_id=context.run.run_id)
    context.log.info(f"published {result.path.name} after {result.link_iterations} linking rounds")
    for name in WAREHOUSE_TABLES:
        yield MaterializeResult(asset_key=AssetKey(name), metadata={"rows": result.tables[name]})
