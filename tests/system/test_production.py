"""docker-compose.prod.yml for real, on the shared production stack (tests/compose_stack.py):
secrets from `make-secrets.sh`, hardened containers, HTTPS, push-to-deploy's receiver (profile
hook), and Prometheus beside it all (`make monitoring`). Its own project and ports, so it runs
beside the dev stack."""

import json
import time

import docker
import pytest
import requests

from docker_env import base_image
from harness.paths import REPO_ROOT
from harness.polling import until
from harness.stacks import output


def get(production, path):
    return requests.get(production.https + path, verify=str(production.ca_file), timeout=10)


def test_serves_https_with_a_temporary_certificate_until_real_ones_are_mounted(production):
    assert b"serving a temporary self-signed one" in production.container("nginx").logs()
    response = get(production, "/api/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"]["status"] == "ok"
    assert response.headers["Cache-Control"] == "no-store"  # production: no development no-cache headers


def test_redirects_to_the_public_https_port(production):
    response = requests.get(production.http + "/x", allow_redirects=False, timeout=10)
    assert response.headers["Location"] == production.https + "/x"


@pytest.mark.parametrize(("service", "user"), [("web", "10001:10001"), ("nginx", "101:101")])
def test_app_containers_are_locked_down(production, service, user):
    attrs = production.container(service).attrs
    host = attrs["HostConfig"]
    assert attrs["Config"]["User"] == user  # by number, so "not root" can be checked without /etc/passwd
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert host["Memory"] > 0 and host["NanoCpus"] > 0
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "5", "max-size": "10m"}}
    assert attrs["Config"]["Healthcheck"]["Test"]


def test_the_web_process_cannot_write_its_code_or_run_as_root(production):
    web = production.container("web")
    assert web.exec_run(["id", "-u"]).output.strip() == b"10001"
    result = web.exec_run(["sh", "-c", "echo x > /app/api/injected.py"])
    assert result.exit_code != 0


def test_only_nginx_publishes_ports(production):
    for service in ["db", "redis", "web"]:
        assert not any(
            production.container(service).attrs["NetworkSettings"]["Ports"].get(port)
            for port in production.container(service).attrs["NetworkSettings"]["Ports"]
        ), service
    assert production.container("nginx").attrs["NetworkSettings"]["Ports"]["8443/tcp"]


def test_every_service_has_a_healthcheck_and_is_healthy(production):
    for service in ["db", "redis", "web", "nginx"]:
        assert production.container(service).attrs["State"]["Health"]["Status"] == "healthy", service


def test_production_logs_are_json(production):
    get(production, "/api/healthz")
    lines = [line for line in production.container("web").logs().decode().splitlines() if line.startswith("{")]
    assert lines, "no JSON log lines"
    for line in lines:
        json.loads(line)


def redis_cli(production, *args: str) -> str:
    return output(production.container("redis"), ["redis-cli", "--no-auth-warning", *args])


def app_redis_cli(production, *command: str) -> str:
    password = output(production.container("redis"), ["cat", "/run/secrets/redis_app_password"])
    return redis_cli(production, "--user", "app", "--pass", password, *command)


def test_redis_lets_nobody_in_without_a_user(production):
    assert "NOAUTH" in redis_cli(production, "ping")


def test_the_apps_redis_user_runs_only_its_own_commands(production):
    assert app_redis_cli(production, "ping").strip() == "PONG"
    assert app_redis_cli(production, "set", "auth:probe", "1", "px", "1000").strip() == "OK"
    for command in (["flushall"], ["keys", "*"], ["config", "get", "requirepass"], ["get", "not-its-own-key"]):
        assert "NOPERM" in app_redis_cli(production, *command), command


def test_the_app_connects_to_postgres_as_its_own_role_that_is_no_superuser(production):
    db = production.container("db")
    rows = output(
        db,
        [
            "psql",
            "-U",
            "postgres",
            "-d",
            "app",
            "-Atc",
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'app'",
        ],
    )
    assert rows.strip() == "f|f|f"
    owner = output(
        db,
        ["psql", "-U", "postgres", "-d", "app", "-Atc", "SELECT tableowner FROM pg_tables WHERE tablename = 'users'"],
    )
    assert owner.strip() == "app"
    denied = output(db, ["psql", "-U", "app", "-d", "app", "-c", "CREATE ROLE probe"])
    assert "permission denied to create role" in denied


def environment_of(production, service: str) -> dict:
    return dict(item.split("=", 1) for item in production.container(service).attrs["Config"]["Env"] if "=" in item)


def test_each_service_gets_only_its_own_secrets_and_none_in_its_environment(production):
    secrets_dir = production.secrets_dir
    values = {path.name: path.read_text() for path in secrets_dir.iterdir()}
    the_apps = frozenset(
        {"flask_secret_key", "jwt_secret_key", "app_db_password", "redis_app_password", "redis_jobs_password"}
    )
    expected = {
        **dict.fromkeys(("web", "worker", "scheduler"), the_apps),
        "db": {"postgres_password", "app_db_password"},
        "redis": {"redis_app_password", "redis_jobs_password"},
        "nginx": set(),
    }
    for service, secrets in expected.items():
        mounted = {
            mount["Destination"].rsplit("/", 1)[1]
            for mount in production.container(service).attrs["Mounts"]
            if mount["Destination"].startswith("/run/secrets/")
        }
        assert mounted == secrets, service
        environment = "\n".join(f"{k}={v}" for k, v in environment_of(production, service).items())
        assert not [name for name, value in values.items() if value in environment], service
        assert "HOOK_SECRET" not in environment and "HOOK_STATUS_TOKEN" not in environment


def test_gunicorn_is_reachable_from_nginx_alone(production):
    """X-Forwarded-For is believed from the one hop in front: only nginx shares a network with web
    (and Prometheus, on one of its own, when the monitoring profile runs)."""
    networks = set(production.container("web").attrs["NetworkSettings"]["Networks"])
    assert networks == {f"{production.project}_{name}" for name in ("edge", "backend", "metrics-web")}
    members = {c.name for c in docker.from_env().networks.get(f"{production.project}_edge").containers}
    assert {name.split("-")[-2] for name in members} == {"nginx", "web"}, members
    assert docker.from_env().networks.get(f"{production.project}_backend").attrs["Internal"] is True


def test_the_hook_receiver_is_not_on_webs_network(production):
    config = production.compose("--profile", "hook", "config", "--format", "json", check=True)
    services = json.loads(config.stdout)["services"]
    assert set(services["hook"]["networks"]) == {"hooks", "metrics"}
    assert not set(services["hook"]["networks"]) & set(services["web"]["networks"])


def test_operations_commands_work_in_the_image_as_the_readme_shows(production):
    """`docker compose exec web flask …` needs no --app: the image says FLASK_APP."""
    created = production.container("web").exec_run(
        ["flask", "create-admin", "--email", "ops@example.org"], environment={"ADMIN_PASSWORD": "a long admin password"}
    )
    assert created.exit_code == 0, created.output.decode()
    assert b"created ops@example.org" in created.output


def test_production_refuses_example_secrets(production):
    image = production.container("web").image.id  # by id: the tag may have moved on since
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


# --- monitoring (`make monitoring`; docs/operations.md "Monitoring") ------------------------------------------


@pytest.fixture(scope="module")
def prometheus(production) -> str:
    started = production.make("monitoring")
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-3000:]
    # nginx-exporter depends on nginx, which `up` recreates when its image changed meanwhile (a lane
    # beside this one may have rebuilt the tag): a new nginx serves a certificate of a new CA.
    production.keep_ca()
    url = f"http://127.0.0.1:{production.prometheus_port}"
    assert f"Prometheus: {url}" in started.stdout
    return url


def query(prometheus: str, promql: str) -> list[dict]:
    response = requests.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10)
    response.raise_for_status()
    return list(response.json()["data"]["result"])


def scalar(prometheus: str, promql: str) -> float | None:
    result = query(prometheus, promql)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_every_service_and_sees_each_up(prometheus):
    expected = {"prometheus", "web", "worker", "hook", "nginx", "backup"}  # acme runs only with its profile

    def targets() -> dict[str, str]:
        active = requests.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        return {target["labels"]["job"]: target["health"] for target in active}

    def all_up() -> dict[str, str] | None:
        found = targets()
        return found if set(found) == expected and set(found.values()) == {"up"} else None

    assert until(all_up, 90, 2), targets()
    rules = requests.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert {rule["name"] for group in rules for rule in group["rules"]} >= {"HighErrorRatio", "BackupTooOld"}
    assert {rule["health"] for group in rules for rule in group["rules"]} == {"ok"}


def test_requests_readiness_deploys_and_backups_reach_prometheus(production, prometheus):
    healthz = 'sum(flask_stack_http_requests_total{route="/api/healthz", status="200"})'
    until(lambda: scalar(prometheus, healthz) is not None, 60, 2)
    before = scalar(prometheus, healthz) or 0.0
    for _ in range(20):
        assert get(production, "/api/healthz").status_code == 200
    assert until(lambda: (scalar(prometheus, healthz) or 0) >= before + 20, 60, 2), scalar(prometheus, healthz)
    assert scalar(prometheus, "min(flask_stack_ready)") == 1
    # nginx's exporter is scraped on its own schedule: wait for a scrape rather than assume one.
    assert until(lambda: (scalar(prometheus, "sum(nginx_connections_accepted)") or 0) > 0, 60, 2)
    assert scalar(prometheus, 'sum(flask_stack_deploys_total{outcome="failed"})') == 0

    taken = production.make("backup")
    assert taken.returncode == 0, taken.stderr[-2000:]
    newest = "max(flask_stack_backup_last_success_timestamp_seconds)"
    assert until(lambda: scalar(prometheus, newest), 60, 2), "the backup never reached Prometheus"
    assert abs((scalar(prometheus, newest) or 0) - time.time()) < 600


def test_metrics_ports_are_not_published_and_prometheus_only_on_loopback(production, prometheus):
    for service in ["web", "hook", "backup", "nginx-exporter"]:
        ports = production.container(service).attrs["NetworkSettings"]["Ports"] or {}
        assert not any(ports.values()), service
    published = production.container("prometheus").attrs["NetworkSettings"]["Ports"]["9090/tcp"]
    assert {binding["HostIp"] for binding in published} == {"127.0.0.1"}
    # Through the edge /metrics is the SPA's (a client route), never the app's metrics.
    assert "flask_stack_" not in get(production, "/metrics").text
    metrics_web = docker.from_env().networks.get(f"{production.project}_metrics-web")
    members = {c.name.split("-")[-2] for c in metrics_web.containers}
    assert members == {"web", "prometheus"}


def test_the_alert_rules_pass_their_tests(prometheus):
    """promtool (from the Prometheus image the profile runs) on compose/monitoring/alerts.test.yml."""
    result = docker.from_env().containers.run(
        base_image("PROMETHEUS_IMAGE"),
        ["test", "rules", "/rules/alerts.test.yml"],
        entrypoint="promtool",
        volumes={str(REPO_ROOT / "compose/monitoring"): {"bind": "/rules", "mode": "ro"}},
        remove=True,
    )
    assert b"SUCCESS" in result
