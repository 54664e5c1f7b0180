"""Docker for the tiers that need it: availability (skip, or fail under REQUIRE_DOCKER=1), the base
images selected in .env, cleanup of containers earlier runs left behind, and a container cut off
the network."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import NoReturn

import pytest
from dotenv import dotenv_values

from harness.paths import REPO_ROOT

# Ryuk, the reaper container, would have to be pulled; leftovers are removed by our label instead.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
TEST_LABEL = "flask-stack.tests"
LABELS = {TEST_LABEL: "1"}


def base_image(name: str) -> str:
    """POSTGRES_IMAGE etc.: the environment, then .env (local-env.sh), then the official default."""
    for source in (
        os.environ,
        dotenv_values(REPO_ROOT / ".env"),
        dotenv_values(REPO_ROOT / "compose" / "official-images.env"),
    ):
        if source.get(name):
            return source[name]
    raise KeyError(name)


def missing(message: str) -> NoReturn:
    """Something a Docker-backed test needs is not here: a skip, or under REQUIRE_DOCKER=1 (CI) a failure."""
    if os.environ.get("REQUIRE_DOCKER") == "1":
        pytest.fail(f"REQUIRE_DOCKER=1 but {message}", pytrace=False)
    pytest.skip(message)


def docker_client_or_skip():
    """A live Docker client; without an engine, skip (or fail when REQUIRE_DOCKER=1)."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as error:  # noqa: BLE001 - any failure to reach the engine means the same thing here
        missing(f"no Docker engine reachable ({type(error).__name__}: {error})")
    return client


def ensure_image(client, image: str) -> None:
    import docker

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        missing(f"image {image} is not here; `make images` builds local stand-ins where nothing can be pulled")


def remove_leftovers(client) -> None:
    """Containers an earlier run left behind: those made before this run began (FLASK_STACK_TESTS_STARTED,
    set by tests/lanes.py, whose other lanes run beside this one), or all of them when it is unset."""
    started = float(os.environ.get("FLASK_STACK_TESTS_STARTED", "inf"))
    for container in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}=1"}):
        created = datetime.fromisoformat(container.attrs["Created"][:19]).replace(tzinfo=UTC).timestamp()
        if created < started:
            container.remove(force=True, v=True)


@contextmanager
def cut_off(container) -> Iterator[None]:
    """Every packet into or out of ``container`` (but its own loopback) dropped, from the host, in
    the container's network namespace: connections stay open and nothing answers."""
    container.reload()
    namespace = ["nsenter", "-t", str(container.attrs["State"]["Pid"]), "-n", "iptables"]
    rules = [["INPUT", "!", "-i", "lo", "-j", "DROP"], ["OUTPUT", "!", "-o", "lo", "-j", "DROP"]]
    for rule in rules:
        subprocess.run([*namespace, "-I", *rule], check=True, capture_output=True)
    try:
        yield
    finally:
        for rule in rules:
            subprocess.run([*namespace, "-D", *rule], check=True, capture_output=True)
