"""Liveness, readiness, and an OpenAPI spec generated from the schemas that validate requests."""

import hashlib
import re
import socket

from api import __version__


def test_healthz_reports_version_and_touches_nothing(app_factory, tmp_path):
    # Even with the database gone, liveness answers: the process is alive.
    client = app_factory(DATABASE_URL=f"sqlite:///{tmp_path}/gone/db.sqlite").test_client()
    response = client.get("/api/healthz")
    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "version": __version__,
        "revision": "unknown",
        "instance": hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12],
    }


def test_healthz_reports_the_build_revision(app_factory):
    body = app_factory(APP_REVISION="abc1234", APP_VERSION="9.9.9").test_client().get("/api/healthz").json
    assert (body["version"], body["revision"]) == ("9.9.9", "abc1234")


def test_readyz_reports_each_dependency(client, backend):
    response = client.get("/api/readyz")
    assert response.status_code == 200
    assert response.json["status"] == "ready"
    assert response.json["checks"]["database"]["status"] == "ok"
    assert "redis" not in response.json["checks"]  # not a dependency unless it holds the token state


def test_openapi_spec_comes_from_the_validating_schemas(client):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    for path in [
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/auth/logout",
        "/api/auth/logout-all",
        "/api/users/me",
        "/api/users",
        "/api/healthz",
        "/api/readyz",
    ]:
        assert path in spec["paths"], path
    register = spec["components"]["schemas"]["Register"]
    assert register["properties"]["password"]["minLength"] == 12
    assert register["properties"]["password"]["maxLength"] == 1024
    assert set(register["required"]) == {"email", "password"}
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["paths"]["/api/users/me"]["get"]["security"] == [{"bearerAuth": []}]
    error = spec["components"]["schemas"]["Error"]
    assert "error" in error["properties"]


def test_docs_page_uses_local_assets_and_no_inline_script(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(source.startswith("/api/docs/") for source in sources), sources
    assert not re.search(r"<script>(?!</script>)", html), "inline script would need 'unsafe-inline'"
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200, source
        assert len(asset.get_data()) > 100, source
