"""The tests' stacks wait less than production does (compose/test-timing.yml, and Swarm's update
monitor as a setting), and that is all they change: production keeps its own waits."""

from typing import Any

import yaml

from compose_stack import PROMETHEUS_CONFIG, QUICK_SWARM, QUICK_WAITS, quick_prometheus_config
from harness.paths import REPO_ROOT

# What production waits, as its files give it: healthcheck settings per service.
PRODUCTION_HEALTHCHECKS = {
    "db": {"interval": "5s", "retries": 30},
    "redis": {"interval": "5s", "retries": 30},
    "web": {"interval": "5s", "start_period": "30s", "retries": 3},
    "nginx": {"interval": "5s", "retries": 20},
}
SHORTENED = {"healthcheck": {"interval", "start_period"}, "environment": {"DEPLOY_VERIFY_SECONDS"}}


class ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it: `!reset` (compose/swarm.yml) clears a value; here it is just a value."""


ComposeLoader.add_constructor("!reset", lambda loader, node: None)


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load((REPO_ROOT / name).read_text(), Loader=ComposeLoader)  # noqa: S506
    return loaded


def seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


def own_healthcheck(service: str) -> dict[str, str]:
    """The healthcheck production gives ``service``: its compose definition's (following
    `extends`), or else its image's (the HEALTHCHECK line of the Dockerfile it is built from)."""
    file = REPO_ROOT / "docker-compose.prod.yml"
    definition = load(str(file.relative_to(REPO_ROOT)))["services"][service]
    while "healthcheck" not in definition and "build" not in definition:
        file = file.parent / definition["extends"]["file"]
        definition = load(str(file.relative_to(REPO_ROOT)))["services"][definition["extends"]["service"]]
    if "healthcheck" in definition:
        return dict(definition["healthcheck"])
    dockerfile = file.parent / definition["build"]["context"] / "Dockerfile"
    (line,) = [line for line in dockerfile.read_text().splitlines() if line.startswith("HEALTHCHECK ")]
    options = [word[2:].split("=", 1) for word in line.split() if word.startswith("--")]
    return {name.replace("-", "_"): value for name, value in options}


def test_the_overlay_shortens_waits_and_changes_nothing_else():
    for service, changes in load(QUICK_WAITS)["services"].items():
        assert set(changes) <= set(SHORTENED), (service, changes)
        for part, values in changes.items():
            assert set(values) <= SHORTENED[part], (service, part, values)
        own = own_healthcheck(service) if "healthcheck" in changes else {}
        for name, value in changes.get("healthcheck", {}).items():
            assert seconds(value) < seconds(own[name]), (service, name, value, own[name])
    assert set(QUICK_SWARM) == {"WEB_UPDATE_MONITOR"}


def test_production_keeps_its_own_waits():
    production = load("docker-compose.prod.yml")["services"]
    for service, healthcheck in PRODUCTION_HEALTHCHECKS.items():
        assert production[service]["healthcheck"].items() >= healthcheck.items(), service
    assert load("compose/hook.yml")["services"]["deployer"]["healthcheck"]["interval"] == "10s"
    # The images' own: a check each 30 s (backup, acme) or 10 s (the hook's receiver).
    assert [own_healthcheck(service)["interval"] for service in ("backup", "acme", "hook")] == ["30s", "30s", "10s"]
    verify = production["deployer"]["environment"]["DEPLOY_VERIFY_SECONDS"]
    assert verify == "${DEPLOY_VERIFY_SECONDS:-30}"
    update = load("compose/swarm.yml")["services"]["web"]["deploy"]["update_config"]
    assert update["monitor"] == "${WEB_UPDATE_MONITOR:-20s}"


def intervals_apart(config: Any) -> tuple[Any, set[str]]:
    """``config`` without its intervals, and the intervals' values."""
    if isinstance(config, list):
        parts = [intervals_apart(item) for item in config]
        return [rest for rest, _ in parts], {value for _, values in parts for value in values}
    if isinstance(config, dict):
        rest, values = {}, set()
        for key, value in config.items():
            if key.endswith("_interval"):
                values.add(value)
            else:
                rest[key], inner = intervals_apart(value)
                values |= inner
        return rest, values
    return config, set()


def test_the_tests_prometheus_scrapes_every_second_and_is_production_s_otherwise(tmp_path):
    production, production_intervals = intervals_apart(yaml.safe_load(PROMETHEUS_CONFIG.read_text()))
    quick, quick_intervals = intervals_apart(yaml.safe_load(quick_prometheus_config(tmp_path).read_text()))
    assert (production_intervals, quick_intervals) == ({"15s"}, {"1s"})
    assert quick == production
