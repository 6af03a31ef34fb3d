"""Dagster assets for Netvisor: the ``raw_netvisor.*`` tables, written by one step, and the
resource that configures the client from the environment."""


from dagster import AssetExecutionContext, AssetKey, AssetSpec, multi_asset

from contact_register.sync.netvisor.extract import ENTITIES, SPECS
from contact_register.sync.netvisor.sync import sync_netvisor
from assets.raw_sync import RawSyncConfig, run_raw_sync
from assets.resources import NetvisorResource, StorageResource

RAW_NETVISOR_KEYS = {entity: AssetKey(["raw_netvisor", entity]) for entity in ENTITIES}


@multi_asset(
    specs=[
        AssetSpec(
            key,
            group_name="netvisor",
            kinds={"netvisor", "duckdb"},
            description=f"Netvisor {entity.replace('_', ' ')}: the fields the register needs plus the parsed record.",
        )
        for entity, key in RAW_NETVISOR_KEYS.items()
    ],
    # Netvisor allows one call at a time per customer: the client's file lock enforces it
    # across processes, and this tag lets the run queue limit Netvisor steps as well.
    op_tags={"register/system": "netvisor"},
)
def raw_netvisor(
    context: AssetExecutionContext,
    config: RawSyncConfig,
    netvisor: NetvisorResource,
    storage: StorageResource,
):
    yield from run_raw_sync(context, "netvisor", netvisor.client(), storage, config, sync_netvisor,
                            RAW_NETVISOR_KEYS, SPECS)
