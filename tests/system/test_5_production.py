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
    secrets_dir = home / "secrets"
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
    yield {
        "https": f"https://localhost:{https_port}",
        "http": f"http://localhost:{http_port}",
        "ca_file": str(ca_file),
        "secrets_dir": secrets_dir,
        "compose": command,
        "env": env,
    }
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


def redis_cli(*args: str) -> str:
    return container("redis").exec_run(["redis-cli", "--no-auth-warning", *args]).output.decode()


def app_redis_cli(*command: str) -> str:
    password = container("redis").exec_run(["cat", "/run/secrets/redis_app_password"]).output.decode()
    return redis_cli("--user", "app", "--pass", password, *command)


def test_redis_lets_nobody_in_without_a_user(production):
    assert "NOAUTH" in redis_cli("ping")


def test_the_apps_redis_user_runs_only_its_own_commands(production):
    assert app_redis_cli("ping").strip() == "PONG"
    assert app_redis_cli("set", "auth:probe", "1", "px", "1000").strip() == "OK"
    for command in (["flushall"], ["keys", "*"], ["config", "get", "requirepass"], ["get", "not-its-own-key"]):
        assert "NOPERM" in app_redis_cli(*command), command


def test_the_app_connects_to_postgres_as_its_own_role_that_is_no_superuser(production):
    db = container("db")
    rows = db.exec_run(
        [
            "psql",
            "-U",
            "postgres",
            "-d",
            "app",
            "-Atc",
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'app'",
        ]
    ).output.decode()
    assert rows.strip() == "f|f|f"
    owner = db.exec_run(
        ["psql", "-U", "postgres", "-d", "app", "-Atc", "SELECT tableowner FROM pg_tables WHERE tablename = 'users'"]
    )
    assert owner.output.decode().strip() == "app"
    denied = db.exec_run(["psql", "-U", "app", "-d", "app", "-c", "CREATE ROLE probe"]).output.decode()
    assert "permission denied to create role" in denied


def environment_of(service: str) -> dict:
    return dict(item.split("=", 1) for item in container(service).attrs["Config"]["Env"] if "=" in item)


def test_each_service_gets_only_its_own_secrets_and_none_in_its_environment(production):
    secrets_dir = production["secrets_dir"]
    values = {path.name: path.read_text() for path in secrets_dir.iterdir()}
    expected = {
        "web": {"flask_secret_key", "jwt_secret_key", "app_db_password", "redis_app_password"},
        "db": {"postgres_password", "app_db_password"},
        "redis": {"redis_app_password"},
        "nginx": set(),
    }
    for service, secrets in expected.items():
        mounted = {
            mount["Destination"].rsplit("/", 1)[1]
            for mount in container(service).attrs["Mounts"]
            if mount["Destination"].startswith("/run/secrets/")
        }
        assert mounted == secrets, service
        environment = "\n".join(f"{k}={v}" for k, v in environment_of(service).items())
        assert not [name for name, value in values.items() if value in environment], service
        assert "HOOK_SECRET" not in environment and "HOOK_STATUS_TOKEN" not in environment


def test_gunicorn_is_reachable_from_nginx_alone(production):
    """X-Forwarded-For is believed from the one hop in front: only nginx shares a network with web."""
    networks = set(container("web").attrs["NetworkSettings"]["Networks"])
    assert networks == {f"{PROJECT}_edge", f"{PROJECT}_backend"}
    members = {c.name for c in docker.from_env().networks.get(f"{PROJECT}_edge").containers}
    assert {name.split("-")[-2] for name in members} == {"nginx", "web"}, members
    assert docker.from_env().networks.get(f"{PROJECT}_backend").attrs["Internal"] is True


def test_the_hook_receiver_is_not_on_webs_network(production):
    config = subprocess.run(
        [*production["compose"], "--profile", "hook", "config", "--format", "json"],
        cwd=REPO_ROOT,
        env=production["env"],
        capture_output=True,
        text=True,
        check=True,
    )
    services = json.loads(config.stdout)["services"]
    assert set(services["hook"]["networks"]) == {"hooks"}
    assert "hooks" not in services["web"]["networks"]


def test_operations_commands_work_in_the_image_as_the_readme_shows(production):
    """`docker compose exec web flask …` needs no --app: the image says FLASK_APP."""
    created = container("web").exec_run(
        ["flask", "create-admin", "--email", "ops@example.org"], environment={"ADMIN_PASSWORD": "a long admin password"}
    )
    assert created.exit_code == 0, created.output.decode()
    assert b"created ops@example.org" in created.output


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
