"""API documentation: the OpenAPI security scheme and a Swagger UI page whose assets are served
from the installed ``swagger-ui-bundle`` package (no CDN) and which runs no inline script, so it
works under the edge's Content-Security-Policy."""

from flask import Blueprint, Response, send_from_directory
from flask_smorest import Api
from swagger_ui_bundle import swagger_ui_path

BEARER_AUTH: list[dict[str, list[str]]] = [{"bearerAuth": []}]
STATIC_DIR = __path__[0] + "/static"

bp = Blueprint("docs", __name__, url_prefix="/api/docs")


@bp.get("")
def docs_page() -> Response:
    return send_from_directory(STATIC_DIR, "index.html", max_age=0)


@bp.get("/init.js")
def docs_init_script() -> Response:
    return send_from_directory(STATIC_DIR, "init.js", max_age=0)


@bp.get("/assets/<path:filename>")
def swagger_ui_asset(filename: str) -> Response:
    return send_from_directory(swagger_ui_path, filename, max_age=86400)


def register_security_scheme(api: Api) -> None:
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
