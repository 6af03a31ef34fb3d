"""The published warehouse: built from every raw store and renamed into place in one step."""

from dagster import AssetExecutionContext, AssetKey, AssetSpec, Config, Failure, MaterializeResult, multi_asset

from assets.checks.asset_checks import ROW_COUNTS, row_count_result
from contact_register.warehouse.checks.row_counts import DEFAULT_MAX_DROP_SHARE, PublishBlocked, RowCountGuard
from assets.google.assets import RAW_GOOGLE_KEYS
from assets.netvisor.assets import RAW_NETVISOR_KEYS
from assets.pipedrive.assets import RAW_PIPEDRIVE_KEYS
from assets.request_tracker.assets import RAW_REQUEST_TRACKER_KEYS
from assets.resources import StorageResource, RegisterResource
from contact_register.warehouse.build import build_warehouse
from contact_register.requests.suppression.store import SuppressionList

WAREHOUSE_TABLES = {
    "person_identifiers": "Every identifier (email, phone, name, organisation) of every source record, raw and normalised.",
    "person_records": "person_id -> every record about that person in every system, with the rule that linked it.",
    "persons": "One row per human: best name, emails, phones, organisations, systems, marketing ban, last activity.",
    "marketing_bans": "Source records that carry a marketing ban, or whose identifiers are on the suppression list.",
}


class WarehouseConfig(Config):
    max_drop_share: float = DEFAULT_MAX_DROP_SHARE
    """Do not publish when a raw table lost more than this share of its rows since the published
    warehouse (an API returning nothing must not look like everyone was erased); 1.0 allows any drop."""


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
    check_specs=[ROW_COUNTS],
)
def warehouse(context: AssetExecutionContext, config: WarehouseConfig, storage: StorageResource,
              register: RegisterResource):
    # Compares the finished build with the published warehouse before the rename (row_counts check).
    guard = RowCountGuard(config.max_drop_share)
    # The suppression list (in the request register) marks banned and erased people in persons.
    reg = register.open()
    try:
        result = build_warehouse(storage.raw_dir_path(), storage.warehouse_file(), run_id=context.run.run_id,
                                 identity_state_path=storage.identity_state_file(),
                                 suppression=SuppressionList(reg), before_publish=guard)
    except PublishBlocked as blocked:
        # The check result shows why in the UI; the failed run alerts the operator.
        yield row_count_result(blocked.report)
        raise Failure(description=str(blocked)) from None
    finally:
        reg.close()
    context.log.info(f"published {result.path.name} after {result.link_iterations} linking rounds")
    for name in WAREHOUSE_TABLES:
        yield MaterializeResult(asset_key=AssetKey(name), metadata={"rows": result.tables[name]})
    yield row_count_result(guard.report)
