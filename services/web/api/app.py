"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Request, Response, request
from flask.sessions import SessionInterface
from sqlalchemy.engine import make_url
from werkzeug.middleware.proxy_fix import ProxyFix

from . import cli, database, jobs, mail, metrics, spa, telemetry, token_store
from .auth import passwords, principal
from .auth.jwt_callbacks import register_jwt_callbacks
from .auth.routes import blp as auth_blueprint
from .config import load_config
from .docs import bp as docs_blueprint
from .docs import register_security_scheme
from .errors import JsonErrorApi, register_error_handlers
from .extensions import db, jwt, migrate
from .health.routes import blp as health_blueprint
from .json_body import check_json_body
from .logs import configure_logging
from .users.routes import blp as users_blueprint

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")
# In development nothing is cached: edited CSS/JS shows without a hard reload.
DEVELOPMENT_NO_CACHE = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache", "Expires": "0"}

log = logging.getLogger(__name__)


class NoCookieSession(SessionInterface):
    """Nothing here keeps state in Flask's signed cookie (tokens are the state): opening one would
    build a signing serializer for every request. Flask then gives each request a null session,
    which refuses to be written."""

    def open_session(self, app: Flask, request: Request) -> None:
        return None

    def save_session(self, app: Flask, session: object, response: Response) -> None:
        return None


class ApiFlask(Flask):
    """Flask for this JSON API: no cookie session; a view whose transaction the database rolled back
    for a conflict runs once more; and each hook and view asked only once whether it is a coroutine
    (Flask asks again on every request, for every one of them)."""

    session_interface = NoCookieSession()

    def dispatch_request(self) -> Any:
        return database.once_more_on_conflict(super().dispatch_request)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._sync[func]
        except KeyError:
            sync = self._sync[func] = super().ensure_sync(func)
            return sync
        except TypeError:  # an unhashable callable: not remembered
            return super().ensure_sync(func)


def create_app(overrides: Mapping[str, str] | None = None) -> Flask:
    """Build the app for the mode the environment names; ``overrides`` win over the environment."""
    config = load_config(overrides)
    app = ApiFlask(__name__.split(".")[0], static_folder=None)
    app.config.from_object(config)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep "code" before "message", as the contract does
    jobs.init_app(app)
    mail.init_app(app)  # before logging: error e-mails go through it
    configure_logging(app)
    telemetry.init_app(app)

    db.init_app(app)
    database.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    jwt.init_app(app)
    register_jwt_callbacks(jwt)
    token_store.init_app(app)
    passwords.init_app(app)
    principal.init_app(app)

    api = JsonErrorApi(app)
    register_security_scheme(api)
    for blueprint in (health_blueprint, auth_blueprint, users_blueprint):
        api.register_blueprint(blueprint)
    app.register_blueprint(docs_blueprint)
    spa.init_app(app)
    register_error_handlers(app)
    metrics.init_app(app)
    app.before_request(check_json_body)
    register_response_headers(app)
    cli.init_app(app)

    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # Flask's documented way to add WSGI middleware
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )

    warn_about_memory_store(app)
    warn_about_mail_without_queue(app)
    log.info(
        "app ready: mode=%s database=%s token-store=%s",
        config.MODE,
        make_url(config.SQLALCHEMY_DATABASE_URI).render_as_string(hide_password=True),
        app.extensions["token_store"].describe(),
    )
    return app


def register_response_headers(app: Flask) -> None:
    development = app.config["MODE"] == "development"

    @app.after_request
    def cache_headers(response: Response) -> Response:
        if development:
            response.headers.update(DEVELOPMENT_NO_CACHE)
        elif request.path.startswith("/api/") and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"  # tokens and profiles stay out of caches
        return response


def warn_about_mail_without_queue(app: Flask) -> None:
    if app.config["MODE"] == "production" and app.config["MAIL_SERVER"] and not app.config["JOBS_REDIS_URL"]:
        log.warning(
            "no job queue (JOBS_REDIS_URL, or JOBS_REDIS_DB with REDIS_HOST): each mail is sent in the request "
            "that asks for it, tried once; with a queue and a worker it is sent apart and tried again (docs/jobs.md)"
        )


def warn_about_memory_store(app: Flask) -> None:
    if app.config["BLACKLIST_STORAGE_TYPE"] != "memory":
        return
    if app.config["MODE"] == "production" or app.config["GUNICORN_WORKERS"] > 1:
        log.warning(
            "BLACKLIST_STORAGE_TYPE=memory: revocations live in one process and vanish on restart; "
            "with %s workers a revoked token still works in the others. Use redis or database.",
            app.config["GUNICORN_WORKERS"],
        )
