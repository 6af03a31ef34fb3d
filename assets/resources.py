"""Dagster resources: configuration of the connectors and stores, read from the environment.

Secrets and endpoints are given with ``dagster.EnvVar`` in ``pipelines/definitions.py`` so
that Dagster stores the variable's name, never its value. Paths have defaults that keep
everything under ``data/``; they are read from the environment when a step runs.
"""


import os
from pathlib import Path

from dagster import ConfigurableResource

from connectors.pipedrive import PipedriveClient

DEFAULT_RAW_DIR = "data/raw"
DEFAULT_WAREHOUSE_PATH = "data/warehouse.duckdb"


class PipedriveResource(ConfigurableResource):
    """Pipedrive company API: base URL (``https://<company>.pipedrive.com``) and API token."""

    base_url: str
    api_token: str
    page_limit: int = 500
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    include_marketing_status: bool = True

    def client(self) -> PipedriveClient:
        return PipedriveClient(
            self.base_url,
            self.api_token,
            page_limit=self.page_limit,
            timeout=(self.connect_timeout_s, self.read_timeout_s),
            include_marketing_status=self.include_marketing_status,
        )


class StorageResource(ConfigurableResource):
    """Where the raw stores (one DuckDB file per system) and the published warehouse live.
    Empty values fall back to ``RAW_DIR`` / ``WAREHOUSE_PATH`` and then to the defaults."""

    raw_dir: str = ""
    warehouse_path: str = ""

    def raw_dir_path(self) -> Path:
        return Path(self.raw_dir or os.environ.get("RAW_DIR") or DEFAULT_RAW_DIR)

    def warehouse_file(self) -> Path:
        return Path(self.warehouse_path or os.environ.get("WAREHOUSE_PATH") or DEFAULT_WAREHOUSE_PATH)
