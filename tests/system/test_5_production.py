"""docker-compose.prod.yml for real: secrets from `make-secrets.sh`, hardened containers, HTTPS.
Its own project and ports, so it runs beside the dev stack."""

import json
import os
import subprocess

import docker
import pytest
import requests
from paths import REPO_ROOT
from ports import free_port

PROJECT = "flask-stack-prodtest"


def remove_project():
    subprocess.run([str(REPO_ROOT / "compose/scripts/remove-project.sh"), "--volumes", PROJECT], capture_output=True)


@pytest.fixture(scope="module")
def production(compose_ready, tmp_path_factory):
    home = tmp_path_factory.mktemp("prod")
    env_file = home / "env.production"
    subprocess.run([str(REPO_ROOT / "compose/scripts/make-secrets.sh"), str(env_file)], check=True, capture_output=True)
    https_port, http_port = free_port(), free_port()
    (home / "certs").mkdir()
    (home / "acme").mkdir()
    with env_file.open("a") as extra:
        extra.write(f"TLS_CERTS_DIR={home / 'certs'}\nACME_WEBROOT={home / 'acme'}\n")
    env_files = [arg for path in (REPO_ROOT / ".env", env_file) if path.exists() for arg in ("--env-file", str(path))]
    command = ["docker", "compose", *env_files, "-f", "docker-compose.prod.yml", "-p", PROJECT]
    # The shell environment wins over --env-file: set what the dev stack's fixture may have set.
    env = {**os.environ, "PROD_ENV_FILE": str(env_file), "HTTP_PORT": str(http_port), "HTTPS_PORT": str(https_port)}
    env.pop("COMPOSE_PROJECT_NAME", None)
    remove_project()
    up = subprocess.run(
        [*command, "up", "-d", "--build", "--wait"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    if up.returncode != 0:
        logs = subprocess.run([*command, "logs", "--tail=40"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
        remove_project()
        raise AssertionError(f"production stack failed: {up.stderr[-3000:]}\n{logs.stdout[-4000:]}")
    ca_file = home / "ca.pem"
    ca_file.write_bytes(container("nginx").exec_run(["cat", "/run/nginx/tls/ca.pem"]).output)
    yield {"https": f"https://localhost:{https_port}", "http": f"http://localhost:{http_port}", "ca_file": str(ca_file)}
    remove_project()


def get(production, path):
    return requests.get(production["https"] + path, verify=production["ca_file"], timeout=10)


def container(service):
    client = docker.from_env()
    (found,) = client.containers.list(
        filters={"label": [f"com.docker.compose.project={PROJECT}", f"com.docker.compose.service={service}"]}
    )
    return found


def test_serves_https_with_a_temporary_certificate_until_real_ones_are_mounted(production):
    assert b"serving a temporary self-signed one" in container("nginx").logs()
    response = get(production, "/api/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"]["status"] == "ok"
    assert response.headers["Cache-Control"] == "no-store"  # production: no development no-cache headers


def test_redirects_to_the_public_https_port(production):
    response = requests.get(production["http"] + "/x", allow_redirects=False, timeout=10)
    assert response.headers["Location"] == production["https"] + "/x"


@pytest.mark.parametrize("service", ["web", "nginx"])
def test_app_containers_are_locked_down(production, service):
    attrs = container(service).attrs
    host = attrs["HostConfig"]
    assert attrs["Config"]["User"] in {"web", "nginx"}
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert host["Memory"] > 0 and host["NanoCpus"] > 0
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "5", "max-size": "10m"}}
    assert attrs["Config"]["Healthcheck"]["Test"]


def test_the_web_process_cannot_write_its_code_or_run_as_root(production):
    web = container("web")
    assert web.exec_run(["id", "-u"]).output.strip() == b"10001"
    result = web.exec_run(["sh", "-c", "echo x > /app/api/injected.py"])
    assert result.exit_code != 0


def test_only_nginx_publishes_ports(production):
    for service in ["db", "redis", "web"]:
        assert not any(
            container(service).attrs["NetworkSettings"]["Ports"].get(port)
            for port in container(service).attrs["NetworkSettings"]["Ports"]
        ), service
    assert container("nginx").attrs["NetworkSettings"]["Ports"]["8443/tcp"]


def test_every_service_has_a_healthcheck_and_is_healthy(production):
    for service in ["db", "redis", "web", "nginx"]:
        assert container(service).attrs["State"]["Health"]["Status"] == "healthy", service


def test_production_logs_are_json(production):
    get(production, "/api/healthz")
    lines = [line for line in container("web").logs().decode().splitlines() if line.startswith("{")]
    assert lines, "no JSON log lines"
    for line in lines:
        json.loads(line)


def test_redis_requires_its_password(production):
    redis = container("redis")
    denied = redis.exec_run(["sh", "-c", "REDISCLI_AUTH= redis-cli ping"]).output
    assert b"NOAUTH" in denied


def test_production_refuses_example_secrets(production):
    image = container("web").image.tags[0]
    run = docker.from_env().containers.run(
        image,
        environment={
            "APP_ENV": "production",
            "FLASK_SECRET_KEY": "CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME",
            "JWT_SECRET_KEY": "short",
            "DATABASE_URL": "postgresql://app@db/app",
        },
        detach=True,
    )
    try:
        assert run.wait(timeout=60)["StatusCode"] != 0
        output = run.logs().decode()
    finally:
        run.remove(force=True)
    assert "FLASK_SECRET_KEY is an example value" in output
    assert "JWT_SECRET_KEY is shorter than 32 bytes" in output
    assert "POSTGRES_PASSWORD is missing" in output
