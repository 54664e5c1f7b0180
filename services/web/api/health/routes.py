import time

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from ..errors import error_response
from ..extensions import db
from ..state import state_store

blp = Blueprint("health", __name__, url_prefix="/api", description="Liveness and readiness")


class LivenessSchema(Schema):
    status = fields.String(metadata={"example": "ok"})
    version = fields.String()
    revision = fields.String()


class ReadinessSchema(Schema):
    status = fields.String(metadata={"example": "ready"})
    checks = fields.Dict(metadata={"description": "Per dependency: status, latency_ms, error"})


@blp.route("/healthz")
@blp.response(200, LivenessSchema)
def healthz():
    """Liveness: the process answers. Touches nothing else."""
    config = current_app.config
    return {"status": "ok", "version": config["APP_VERSION"], "revision": config["APP_REVISION"]}


def _check(probe) -> dict:
    started = time.perf_counter()
    try:
        probe()
    except Exception as error:  # noqa: BLE001 - any failure means "not ready", reported per dependency
        return {"status": "error", "error": f"{type(error).__name__}: {error}".splitlines()[0][:300]}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _ping_database() -> None:
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


@blp.route("/readyz")
@blp.response(200, ReadinessSchema)
@blp.alt_response(503, description="service_unavailable, with the failing dependency in details")
def readyz():
    """Readiness: the database, and Redis when it holds the token state, answer."""
    checks = {"database": _check(_ping_database)}
    store = state_store()
    if store.kind == "redis":
        checks["redis"] = _check(store.ping)
    failing = sorted(name for name, check in checks.items() if check["status"] != "ok")
    if failing:
        return error_response(503, "service_unavailable", f"Not ready: {', '.join(failing)}", details=checks)
    return {"status": "ready", "checks": checks}
