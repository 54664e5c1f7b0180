"""Serving the single-page app from Flask when no nginx stands in front (``make dev``).

Mirrors the edge: an existing file is sent as is, any other path outside ``/api`` gets
``index.html`` so client-side routes survive a reload; content-hashed assets are cached for a
year, ``index.html`` is revalidated on every load so a deploy reaches users at once.
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Blueprint, Flask, Response, send_from_directory
from werkzeug.routing import PathConverter

HASHED_ASSET = re.compile(r"\.[0-9a-f]{8,}\.[A-Za-z0-9]+$")
YEAR = 365 * 24 * 3600


class SpaPathConverter(PathConverter):
    """Any path outside ``/api``: an unknown API path stays an API 404, and an API route's
    ``Allow`` (and its OPTIONS answer) lists only the methods that route serves, not the SPA's GET."""

    regex = r"(?!api(?:/|$))[^/].*?"


def create_spa_blueprint(static_dir: str, template_dir: str) -> Blueprint:
    static_root = Path(static_dir).resolve()
    template_root = Path(template_dir).resolve()
    bp = Blueprint("spa", __name__)

    def index() -> Response:
        response = send_from_directory(template_root, "index.html", max_age=0)
        response.headers["Cache-Control"] = "no-cache"
        return response

    @bp.get("/", defaults={"path": ""})
    @bp.get("/<spa_path:path>")
    def serve(path: str) -> Response:
        candidate = (static_root / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(static_root):
            response = send_from_directory(static_root, path, max_age=0)
            if HASHED_ASSET.search(path):
                response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
            else:
                response.headers["Cache-Control"] = "no-cache"
            return response
        return index()

    return bp


def init_app(app: Flask) -> None:
    static_dir = app.config["SPA_STATIC_DIR"]
    if static_dir:
        app.url_map.converters["spa_path"] = SpaPathConverter
        app.register_blueprint(create_spa_blueprint(static_dir, app.config["SPA_TEMPLATE_DIR"]))
