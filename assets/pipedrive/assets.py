"""Dagster assets for Pipedrive: the ``raw_pipedrive.*`` tables, written by one step."""

from datetime import timedelta

from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, multi_asset

from assets.pipedrive.extract import SPECS
from assets.pipedrive.sync import sync_pipedrive
from assets.raw_sync import RawSyncConfig, entity_metadata, raw_store_for
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
    client = pipedrive.client()
    try:
        with raw_store_for(storage, "pipedrive", config) as store:
            result = sync_pipedrive(
                client,
                store,
                reconcile_every=timedelta(hours=config.reconcile_every_hours),
                max_delete_share=config.max_delete_share,
            )
    finally:
        client.close()
    context.log.info(f"pipedrive sync: {result.requests} requests, {result.retries} retries")
    for entity, key in RAW_PIPEDRIVE_KEYS.items():
        r = result.entities[entity]
        yield MaterializeResult(asset_key=key, metadata=entity_metadata("pipedrive", SPECS[entity].name, r))
