"""The app serving the SPA itself (``make dev``): files, deep links, caching, API 404s stay JSON."""

import pytest

from contract import assert_error

ASSET = "assets/app.3f2a9c1b7d.js"


@pytest.fixture
def spa_client(app_factory, tmp_path):
    root = tmp_path / "spa"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>spa</title>")
    (root / ASSET).write_text("console.log('hi')")
    (root / "robots.txt").write_text("User-agent: *")
    (tmp_path / "secret.txt").write_text("outside the SPA")
    return app_factory(FLASK_STATIC_DIR=str(root)).test_client()


def test_root_serves_index_revalidated(spa_client):
    response = spa_client.get("/")
    assert b"<title>spa</title>" in response.data
    assert response.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("deep_link", ["/login", "/profile", "/admin/users/3"])
def test_deep_links_serve_index(spa_client, deep_link):
    response = spa_client.get(deep_link)
    assert response.status_code == 200
    assert b"<title>spa</title>" in response.data


def test_hashed_assets_are_immutable(spa_client):
    response = spa_client.get("/" + ASSET)
    assert response.data == b"console.log('hi')"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_unhashed_files_are_revalidated(spa_client):
    assert spa_client.get("/robots.txt").headers["Cache-Control"] == "no-cache"


def test_api_paths_never_fall_back_to_the_spa(spa_client):
    assert_error(spa_client.get("/api/nope"), 404, "not_found")
    assert_error(spa_client.get("/api"), 404, "not_found")


def test_no_escape_from_the_spa_directory(spa_client):
    response = spa_client.get("/../secret.txt")
    assert b"outside the SPA" not in response.data
    response = spa_client.get("/%2e%2e/secret.txt")
    assert b"outside the SPA" not in response.data
