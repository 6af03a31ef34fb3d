"""Dagster assets for Netvisor: the ``raw_netvisor.*`` tables, written by one step, and the
resource that configures the client from the environment."""

import os
from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, AssetSpec, ConfigurableResource, multi_asset

from assets.netvisor.extract import ENTITIES, SPECS
from assets.netvisor.sync import sync_netvisor
from assets.raw_sync import RawSyncConfig, run_raw_sync
from assets.resources import DEFAULT_RAW_DIR, StorageResource
from connectors.legal_hold import FinancialYears
from connectors.netvisor import NetvisorClient

RAW_NETVISOR_KEYS = {entity: AssetKey(["raw_netvisor", entity]) for entity in ENTITIES}


class NetvisorResource(ConfigurableResource):
    """Netvisor: base URL (``https://integration.netvisor.fi``), the integration's sender name,
    customer and partner ids and keys, and the company's organisation id (its Y-tunnus).

    ``lock_dir`` holds the per-customer lock file that keeps every process on this machine
    to one request in flight (empty: ``RAW_DIR``). ``financial_year_start`` (MM-DD) is the
    first day of the company's financial year, for legal-hold end dates, and
    ``financial_year_periods`` lists every financial year that did not follow it (a first or
    changed year of up to 18 months) as ``YYYY-MM-DD/YYYY-MM-DD``."""

    base_url: str
    sender: str
    customer_id: str
    partner_id: str
    customer_key: str
    partner_key: str
    organisation_id: str
    language: str = "FI"
    lock_dir: str = ""
    financial_year_start: str = "01-01"
    financial_year_periods: list[str] = []
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0

    def client(self) -> NetvisorClient:
        lock_dir = self.lock_dir or os.environ.get("RAW_DIR") or DEFAULT_RAW_DIR
        return NetvisorClient(
            self.base_url, sender=self.sender, customer_id=self.customer_id, partner_id=self.partner_id,
            customer_key=self.customer_key, partner_key=self.partner_key, organisation_id=self.organisation_id,
            language=self.language, timeout=(self.connect_timeout_s, self.read_timeout_s),
            lock_dir=Path(lock_dir), financial_years=self.financial_years(),
        )

    def financial_years(self) -> FinancialYears:
        return FinancialYears.from_config(self.financial_year_start, self.financial_year_periods)


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
