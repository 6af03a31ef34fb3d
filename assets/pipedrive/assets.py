"""Dagster assets for Pipedrive: the ``raw_pipedrive.*`` tables, written by one step."""


from dagster import AssetExecutionContext, AssetKey, AssetSpec, multi_asset

from contact_register.sync.pipedrive.extract import SPECS
from contact_register.sync.pipedrive.sync import sync_pipedrive
from assets.raw_sync import RawSyncConfig, run_raw_sync
from assets.resources import PipedriveResource, StorageResource
from connectors.pipedrive import ENTITIES

RAW_PIPEDRIVE_KEYS = {entity: AssetKey(["raw_pipedrive", entity]) for entity in ENTITIES}


@multi_asset(
    specs=[
        AssetSpec(
            key,
            group_name="pipedrive",
            kinds={"pipedrive", "duckdb"},
            description=f"Pipedrive {entity}: each record as the API gave it plus extracted keys.",
        )
        for entity, key in RAW_PIPEDRIVE_KEYS.items()
    ],
    op_tags={"register/system": "pipedrive"},
)
def raw_pipedrive(
    context: AssetExecutionContext,
    config: RawSyncConfig,
    pipedrive: PipedriveResource,
    storage: StorageResource,
):
    yield from run_raw_sync(context, "pipedrive", pipedrive.client(), storage, config, sync_pipedrive,
                            RAW_PIPEDRIVE_KEYS, SPECS)
