"""docker-compose.yml cannot run here (no Docker): check its structure, and
that every command it runs is a real `ioc` command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ioc.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services(compose):
    services = compose["services"]
    assert {"kafka", "redis", "worker", "api", "simulator", "prometheus", "grafana"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka")
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, one node
    assert "container_name" not in services["worker"] and "ports" not in services["worker"], "scalable"


@pytest.mark.parametrize("name", ["worker", "api", "simulator"])
def test_commands_are_real_cli_commands(compose, name):
    svc = compose["services"][name]
    cmd = svc["command"]
    assert cmd[0] == "ioc"
    args = build_parser().parse_args(cmd[1:])
    assert args.command == name if name != "simulator" else args.command == "simulate"
    assert callable(args.func)
    env = svc["environment"]
    assert env["IOC_KAFKA_URL"].startswith("kafka://kafka:") and env["IOC_REDIS_URL"].startswith("redis://redis:")
    assert svc["build"]["dockerfile"] == "deploy/Dockerfile"


def test_prometheus_scrapes_api_and_every_worker(compose):
    prom = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    targets = {c["job_name"]: c["dns_sd_configs"][0] for c in prom["scrape_configs"]}
    worker_cmd = compose["services"]["worker"]["command"]
    assert targets["ioc-worker"]["names"] == ["worker"]
    assert targets["ioc-worker"]["port"] == int(worker_cmd[worker_cmd.index("--metrics-port") + 1])
    api_cmd = compose["services"]["api"]["command"]
    assert targets["ioc-api"]["names"] == ["api"]
    assert targets["ioc-api"]["port"] == int(api_cmd[api_cmd.index("--port") + 1])
    mounts = compose["services"]["prometheus"]["volumes"]
    assert any(m.startswith("./deploy/prometheus.yml:") for m in mounts)


def test_grafana_is_provisioned_from_dashboards(compose):
    mounts = [m.split(":")[0] for m in compose["services"]["grafana"]["volumes"]]
    for m in mounts:
        assert (ROOT / m).is_dir(), m
    assert (ROOT / "dashboards/grafana/provisioning/datasources").is_dir()
    assert any((ROOT / "dashboards/grafana/dashboards").glob("*.json"))


def test_dockerfile_copies_existing_paths():
    for line in (ROOT / "deploy/Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), src
