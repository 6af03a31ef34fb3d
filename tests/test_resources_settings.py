"""Settings reach the Dagster runs through the resources declared in pipelines/resources.py, and
are read when a run uses them: a variable set after the code location was loaded counts, an
unset optional one means its documented default. The core takes them as parameters."""

from datetime import timedelta
from pathlib import Path

import pytest
from dagster import Failure

from contact_register import settings
from contact_register.warehouse import identity_state
from pipelines.definitions import defs

OPTIONAL = ("RAW_DIR", "WAREHOUSE_PATH", "IDENTITY_DECISIONS_PATH", "FRESHNESS_MAX_AGE_HOURS", "EXPORT_DIR",
            "EXPORT_EXPIRE_DAYS", "MATOMO_USER_ID_FORMAT", "MATOMO_SITE_IDS", "NOTIFY_DAGSTER_URL")


@pytest.fixture
def clean(monkeypatch):
    for name in OPTIONAL:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_unset_optional_settings_mean_the_defaults(clean):
    storage, register = defs.resources["storage"], defs.resources["register"]
    assert storage.raw_dir_path() == Path("data/raw")
    assert storage.warehouse_file() == Path("data/warehouse.duckdb")
    assert storage.identity_state_file() == Path("data/identity_decisions.duckdb")
    assert storage.max_age() == timedelta(hours=36)
    assert register.export_path() == Path("data/exports")
    assert register.expire_days() == 30
    assert defs.resources["notifier"].setting("dagster_url") == ""


def test_settings_set_after_loading_are_read_when_used(clean, tmp_path):
    clean.setenv("RAW_DIR", str(tmp_path / "raw"))
    clean.setenv("WAREHOUSE_PATH", str(tmp_path / "wh" / "warehouse.duckdb"))
    clean.setenv("FRESHNESS_MAX_AGE_HOURS", "5")
    clean.setenv("EXPORT_DIR", str(tmp_path / "exports"))
    clean.setenv("EXPORT_EXPIRE_DAYS", "7")
    clean.setenv("NOTIFY_DAGSTER_URL", "https://dagster.example.fi")
    storage, register = defs.resources["storage"], defs.resources["register"]
    assert storage.raw_dir_path() == tmp_path / "raw"
    assert storage.identity_state_file() == tmp_path / "wh" / "identity_decisions.duckdb"
    clean.setenv("IDENTITY_DECISIONS_PATH", str(tmp_path / "ids.duckdb"))
    assert storage.identity_state_file() == tmp_path / "ids.duckdb"
    assert storage.max_age() == timedelta(hours=5)
    assert register.export_path() == tmp_path / "exports"
    assert register.expire_days() == 7
    assert defs.resources["notifier"].setting("dagster_url") == "https://dagster.example.fi"


def test_bad_settings_give_clear_errors(clean):
    clean.setenv("EXPORT_EXPIRE_DAYS", "thirty")
    with pytest.raises(Failure, match="EXPORT_EXPIRE_DAYS must be a whole number of days"):
        defs.resources["register"].expire_days()
    clean.setenv("FRESHNESS_MAX_AGE_HOURS", "-1")
    with pytest.raises(ValueError, match="FRESHNESS_MAX_AGE_HOURS must be positive"):
        defs.resources["storage"].max_age()


def test_the_core_takes_the_identity_store_path_as_a_parameter(clean, tmp_path):
    clean.setenv("IDENTITY_DECISIONS_PATH", str(tmp_path / "elsewhere.duckdb"))
    assert identity_state.default_path(tmp_path / "warehouse.duckdb") == tmp_path / "identity_decisions.duckdb"
    assert identity_state.default_path(tmp_path / "warehouse.duckdb", configured=tmp_path / "x.duckdb") == \
        tmp_path / "x.duckdb"


def test_the_cli_reads_its_settings_through_one_module(clean, tmp_path):
    clean.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    clean.setenv("IDENTITY_DECISIONS_PATH", str(tmp_path / "ids.duckdb"))
    assert settings.warehouse_path() == tmp_path / "warehouse.duckdb"
    assert settings.identity_decisions_path() == str(tmp_path / "ids.duckdb")
