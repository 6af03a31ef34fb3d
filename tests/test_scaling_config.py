"""The Kubernetes example instance config (docs/scaling.md) is one Dagster accepts: the instance
schema, the K8sRunLauncher's own config schema, and the same run limits as one machine."""

from pathlib import Path

import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster_k8s import K8sRunLauncher

from pipelines.concurrency import tag_concurrency_limits

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = "dagster.k8s.example.yaml"


def test_k8s_example_passes_dagsters_instance_validation(monkeypatch):
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://dagster@db.example:5432/dagster")
    config, custom_class = dagster_instance_config(str(REPO / "pipelines"), EXAMPLE)
    assert custom_class is None
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    # The instance schema takes any launcher config; the launcher's own schema checks each field.
    result = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, [e.message for e in result.errors]
    assert result.value["instance_config_map"] and result.value["env_secrets"]


def test_k8s_example_keeps_the_run_limits_of_one_machine():
    example = yaml.safe_load((REPO / "pipelines" / EXAMPLE).read_text())
    production = yaml.safe_load((REPO / "pipelines" / "dagster.production.yaml").read_text())
    limits = example["concurrency"]["runs"]["tag_concurrency_limits"]
    assert [limit for limit in limits if limit["key"] != "register/job"] == tag_concurrency_limits()
    assert example["concurrency"] == production["concurrency"]
    assert example["run_retries"] == production["run_retries"]
    assert example["storage"] == production["storage"]


def test_a_wrong_field_in_the_launcher_config_is_refused():
    # The validation above can fail: a misspelt field is reported by name.
    config = yaml.safe_load((REPO / "pipelines" / EXAMPLE).read_text())["run_launcher"]["config"]
    result = process_config(K8sRunLauncher.config_type(), dict(config, job_namspace="x"))
    assert not result.success and "job_namspace" in " ".join(e.message for e in result.errors)
