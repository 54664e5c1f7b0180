"""Promises the repository's files make to each other, checked without running anything."""

import hashlib
import re
import subprocess

import pytest

from build_spa import build
from harness.paths import REPO_ROOT

SPA_DIR = REPO_ROOT / "services/nginx/spa"


def official_images() -> dict:
    lines = (REPO_ROOT / "compose/official-images.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_hashed_asset_names_match_their_content():
    """nginx caches hashed names for a year: a changed file must get a new name."""
    hashed = 0
    for asset in (SPA_DIR / "assets").rglob("*"):
        match = re.search(r"\.([0-9a-f]{8,})\.[a-z0-9]+$", asset.name)
        if match:
            hashed += 1
            assert hashlib.sha256(asset.read_bytes()).hexdigest().startswith(match.group(1)), asset.name
    assert hashed


def test_compose_files_and_dockerfiles_default_to_the_official_images():
    """official-images.env names the defaults; every file that names a base image agrees with it."""
    official = official_images()
    services = ["POSTGRES_IMAGE", "REDIS_IMAGE", "PYTHON_IMAGE", "NGINX_IMAGE"]
    for compose_file, names in [
        ("docker-compose.yml", [*services, "DEBIAN_IMAGE"]),
        ("docker-compose.prod.yml", [*services, "DEBIAN_IMAGE"]),
        ("compose/hook.yml", ["PYTHON_IMAGE"]),
    ]:
        text = (REPO_ROOT / compose_file).read_text()
        for name in names:
            assert f"${{{name}:-{official[name]}}}" in text, (compose_file, name)
    for dockerfile, name in [
        ("services/web/Dockerfile", "PYTHON_IMAGE"),
        ("services/hook/Dockerfile", "PYTHON_IMAGE"),
        ("services/nginx/Dockerfile", "NGINX_IMAGE"),
        ("services/backup/Dockerfile", "POSTGRES_IMAGE"),
        ("services/acme/Dockerfile", "DEBIAN_IMAGE"),
    ]:
        assert f"ARG {name}={official[name]}" in (REPO_ROOT / dockerfile).read_text(), dockerfile


def test_the_monitoring_profile_defaults_to_the_images_its_script_chooses_first():
    """compose/scripts/optional-images.sh tries the official images before building stand-ins."""
    script = (REPO_ROOT / "compose/scripts/optional-images.sh").read_text()
    chosen = dict(re.findall(r'"([A-Z_]+_IMAGE) (\S+) \S+"', script))
    assert set(chosen) == {"PROMETHEUS_IMAGE", "NGINX_EXPORTER_IMAGE", "MARIADB_IMAGE"}
    text = (REPO_ROOT / "docker-compose.prod.yml").read_text()
    for name in ("PROMETHEUS_IMAGE", "NGINX_EXPORTER_IMAGE"):
        assert f"${{{name}:-{chosen[name]}}}" in text, name
    assert (REPO_ROOT / "compose/local-images/mariadb/Dockerfile").is_file()


def test_no_dockerfile_pulls_a_syntax_frontend():
    for dockerfile in REPO_ROOT.glob("**/Dockerfile"):
        assert not re.search(r"^\s*#\s*syntax=", dockerfile.read_text(), re.MULTILINE | re.IGNORECASE), dockerfile


@pytest.mark.parametrize(
    "path",
    [".env.d/.env.production", ".env.d/secrets/flask_secret_key", ".env.d/secrets/hook_secret", ".env"],
)
def test_production_settings_and_secrets_are_ignored_by_git(path):
    """Asked of git itself, for the real paths `make secrets` and `make up` write."""
    checked = subprocess.run(["git", "check-ignore", "--quiet", path], cwd=REPO_ROOT)
    assert checked.returncode == 0, f"{path} would be committed"


def test_the_committed_settings_hold_no_secret():
    for path in (REPO_ROOT / ".env.d").glob(".env.*"):
        text = path.read_text()
        assert "CHANGE-ME" not in text or path.name.endswith(".example"), path
    template = (REPO_ROOT / ".env.d/.env.production.example").read_text()
    assert not re.search(r"^(FLASK_SECRET_KEY|JWT_SECRET_KEY|POSTGRES_PASSWORD|HOOK_SECRET)=", template, re.M)


def test_the_committed_spa_is_the_build_of_its_sources(tmp_path):
    """`make spa` output is committed (no build step to run the stack); it must match the sources."""
    build(REPO_ROOT / "services/nginx/spa-src", tmp_path / "spa")
    built = {p.relative_to(tmp_path / "spa"): p.read_bytes() for p in (tmp_path / "spa").rglob("*") if p.is_file()}
    committed = {p.relative_to(SPA_DIR): p.read_bytes() for p in SPA_DIR.rglob("*") if p.is_file()}
    assert sorted(built) == sorted(committed), "run `make spa`"
    assert built == committed, "run `make spa`"
