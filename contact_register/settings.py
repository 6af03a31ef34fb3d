"""The operator's entry points (the ``contact-register`` CLI and its doctor) read their settings from the
environment here, one function per setting group; the core takes them as parameters. The Dagster
code location reads the same variables through its resources (``pipelines/resources.py``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_WAREHOUSE_PATH = "data/warehouse.duckdb"


def register_url() -> str:
    """``REGISTER_URL``: ``postgresql://...`` or a SQLite path; empty means ``data/register.sqlite``."""
    return os.environ.get("REGISTER_URL", "")


def register_actor() -> str:
    """``REGISTER_ACTOR``: who the audit trail names for CLI actions (empty: the login name)."""
    return os.environ.get("REGISTER_ACTOR", "").strip()


def warehouse_path() -> Path:
    """``WAREHOUSE_PATH`` (default ``data/warehouse.duckdb``)."""
    return Path(os.environ.get("WAREHOUSE_PATH") or DEFAULT_WAREHOUSE_PATH)


def identity_decisions_path() -> str:
    """``IDENTITY_DECISIONS_PATH``; empty means ``identity_decisions.duckdb`` beside the warehouse."""
    return os.environ.get("IDENTITY_DECISIONS_PATH", "").strip()


def environment() -> Mapping[str, str]:
    """The whole environment, for ``contact-register doctor``: it checks every system's
    variables (they are named in ``contact_register/doctor.py``) and starts RT's tools with them."""
    return os.environ
