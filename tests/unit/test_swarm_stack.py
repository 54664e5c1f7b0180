"""What `make swarm` hands to `docker stack deploy` (compose/scripts/swarm-stack.py), and the
compose overlays as `docker compose config` merges them."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from docker_env import missing
from harness.paths import REPO_ROOT

spec = importlib.util.spec_from_file_location("swarm_stack", REPO_ROOT / "compose/scripts/swarm-stack.py")
assert spec and spec.loader
swarm_stack = importlib.util.module_from_spec(spec)
spec.loader.exec_module(swarm_stack)


@pytest.fixture
def compose_config(tmp_path: Path) -> dict:
    """The shape `docker compose config --format json` gives, for one service of each kind."""
    (tmp_path / "jwt").write_text("first secret")
    (tmp_path / "init.sh").write_text("echo init")
    return {
        "name": "flask-stack-prod",
        "services": {
            "nginx": {
                "image": "flask-stack/nginx:abc",
                "build": {"context": "services/nginx"},
                "restart": "unless-stopped",
                "security_opt": ["no-new-privileges:true"],
                "depends_on": {"web": {"condition": "service_healthy"}},
                "command": None,
                "ports": [{"mode": "ingress", "host_ip": "127.0.0.1", "target": 8443, "published": "443"}],
                "tmpfs": ["/run/nginx:uid=101,gid=101"],
                "volumes": [{"type": "bind", "source": str(tmp_path), "target": "/etc/nginx/certs", "read_only": True}],
                "deploy": {"resources": {"limits": {"cpus": 1.5, "memory": "268435456"}}},
            },
            "db": {
                "image": "postgres:15",
                "volumes": [
                    {"type": "volume", "source": "pgdata", "target": "/var/lib/postgresql/data"},
                    {"type": "bind", "source": str(tmp_path / "init.sh"), "target": "/init/10.sh", "read_only": True},
                ],
                "secrets": [{"source": "jwt"}],
            },
        },
        "networks": {"backend": {"name": "flask-stack-prod_backend", "internal": True}, "edge": {"name": "x"}},
        "volumes": {"pgdata": {"name": "flask-stack-prod_pgdata"}},
        "secrets": {"jwt": {"name": "flask-stack-prod_jwt", "file": str(tmp_path / "jwt")}},
    }


def test_compose_only_keys_go_and_ports_are_published_on_the_node(compose_config):
    nginx = swarm_stack.swarm_stack("prod", compose_config)["services"]["nginx"]
    assert not {"build", "restart", "security_opt", "depends_on", "command", "tmpfs"} & nginx.keys()
    assert nginx["ports"] == [{"mode": "host", "target": 8443, "published": 443, "protocol": "tcp"}]
    assert nginx["deploy"]["resources"]["limits"]["cpus"] == "1.5"


def test_a_tmpfs_becomes_a_volume_filled_from_the_image_and_folders_stay_bind_mounts(compose_config):
    nginx = swarm_stack.swarm_stack("prod", compose_config)["services"]["nginx"]
    assert {"type": "volume", "target": "/run/nginx"} in nginx["volumes"]
    assert any(v["type"] == "bind" and v["target"] == "/etc/nginx/certs" for v in nginx["volumes"])


def test_a_file_mounted_from_the_repository_becomes_a_config_every_node_gets(compose_config):
    stack = swarm_stack.swarm_stack("prod", compose_config)
    db = stack["services"]["db"]
    assert [v["target"] for v in db["volumes"]] == ["/var/lib/postgresql/data"]
    (config,) = db["configs"]
    assert config["target"] == "/init/10.sh"
    assert stack["configs"][config["source"]]["name"].startswith("prod_init_sh_")


def test_a_changed_secret_is_a_new_secret_so_the_stack_can_be_deployed_again(compose_config, tmp_path):
    before = swarm_stack.swarm_stack("prod", compose_config)["secrets"]["jwt"]["name"]
    assert before == swarm_stack.swarm_stack("prod", compose_config)["secrets"]["jwt"]["name"]
    (tmp_path / "jwt").write_text("rotated secret")
    after = swarm_stack.swarm_stack("prod", compose_config)["secrets"]["jwt"]["name"]
    assert before != after and after.startswith("prod_jwt_")


def test_networks_are_overlays_and_names_come_from_the_stack(compose_config):
    stack = swarm_stack.swarm_stack("prod", compose_config)
    assert stack["networks"] == {"backend": {"driver": "overlay", "internal": True}, "edge": {"driver": "overlay"}}
    assert stack["volumes"] == {"pgdata": {}}
    assert "name" not in stack


def test_with_a_registry_every_image_is_named_as_pushed_there(compose_config):
    services = swarm_stack.swarm_stack("prod", compose_config, "10.0.0.5:5000")["services"]
    assert {s["image"] for s in services.values()} == {
        "10.0.0.5:5000/flask-stack/nginx:abc",
        "10.0.0.5:5000/postgres:15",
    }


def merged(*files: str, **settings: str) -> dict:
    if (
        shutil.which("docker") is None
        or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode
    ):
        missing("docker compose is needed to merge the compose files")
    example = REPO_ROOT / ".env.d/.env.production.example"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")} | {"PROD_ENV_FILE": str(example)}
    env |= settings
    argv = ["docker", "compose", "-p", "t", "--env-file", str(example)]
    result = subprocess.run(
        [*argv, *(a for f in files for a in ("-f", f)), "config", "--format", "json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_with_external_data_the_bundled_postgres_and_redis_stay_off_and_the_app_can_reach_out():
    config = merged("docker-compose.prod.yml", "compose/external-data.yml")
    assert {"db", "redis"}.isdisjoint(config["services"])
    assert not config["networks"]["backend"].get("internal")
    assert set(config["services"]["web"]["depends_on"]) == {"migrate"}
    backup = config["services"]["backup"]
    assert not backup.get("depends_on") and backup["environment"]["PGUSER"] == "app"
    assert [s["source"] for s in backup["secrets"]] == ["app_db_password"]


def test_on_swarm_web_migrates_itself_and_waits_for_nothing():
    config = merged("docker-compose.prod.yml", "compose/external-data.yml", "compose/swarm.yml")
    assert "migrate" not in config["services"]
    web = config["services"]["web"]
    assert not web.get("depends_on")
    assert web["command"][-1].startswith("flask deploy && exec gunicorn")
    assert web["deploy"]["update_config"]["order"] == "start-first"
    assert web["deploy"]["update_config"]["failure_action"] == "rollback"


def test_with_push_to_deploy_the_stack_file_is_one_docker_accepts_and_the_deployer_gets_its_groups(tmp_path):
    config = merged(
        "docker-compose.prod.yml",
        "compose/swarm.yml",
        COMPOSE_PROFILES="hook",
        SWARM_ENV_FILES="/srv/app/.env /srv/app/.env.d/.env.production",
        REGISTRY="10.0.0.5:5000",
        DOCKER_GID="998",
    )
    # Secret files need not exist for the stack file's shape: name them after a stand-in.
    for secret in config.get("secrets", {}).values():
        secret["file"] = __file__
    stack = swarm_stack.swarm_stack("prod", config, "10.0.0.5:5000")
    deployer = stack["services"]["deployer"]
    assert "group_add" not in deployer
    assert deployer["environment"]["DEPLOY_ENV_FILES"] == "/srv/app/.env /srv/app/.env.d/.env.production"
    assert deployer["environment"]["DEPLOY_REGISTRY"] == "10.0.0.5:5000"
    assert swarm_stack.group_additions(config) == {"deployer": ["10002", "998"]}
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps(stack))
    checked = subprocess.run(["docker", "stack", "config", "-c", str(stack_file)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
