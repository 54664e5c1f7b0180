import hashlib
import logging
import socket
import time
from collections.abc import Callable

from flask import Response, current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from .. import database
from ..errors import error_response
from ..token_store import current_token_store

blp = Blueprint("health", __name__, url_prefix="/api", description="Liveness and readiness")
log = logging.getLogger(__name__)
# Which container answered, for telling replicas apart: a digest of its host name (the container's
# id under Docker), so nothing about the host is given away.
INSTANCE = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12]


class LivenessSchema(Schema):
    status = fields.String(metadata={"example": "ok"})
    version = fields.String()
    revision = fields.String()
    instance = fields.String(metadata={"description": "which container answered (a digest of its host name)"})


class ReadinessSchema(Schema):
    status = fields.String(metadata={"example": "ready"})
    checks = fields.Dict(metadata={"description": "Per dependency: status (ok or error) and latency_ms"})


@blp.route("/healthz")
@blp.response(200, LivenessSchema)
def healthz() -> dict[str, str]:
    """Liveness: the process answers. Touches nothing else."""
    config = current_app.config
    return {
        "status": "ok",
        "version": config["APP_VERSION"],
        "revision": config["APP_REVISION"],
        "instance": INSTANCE,
    }


def _check(name: str, probe: Callable[[], object]) -> dict[str, object]:
    """ok or error, and how long it took. What went wrong (host names, user names, driver text) is
    for the log, with the request id, not for whoever can reach the load balancer's probe."""
    started = time.perf_counter()
    try:
        probe()
        status = "ok"
    except Exception as error:  # noqa: BLE001 - any failure means "not ready", reported per dependency
        log.warning("readiness: %s failed: %s: %s", name, type(error).__name__, error)
        status = "error"
    return {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


@blp.route("/readyz")
@blp.response(200, ReadinessSchema)
@blp.alt_response(503, description="service_unavailable, with the failing dependency in details")
def readyz() -> Response | dict[str, object]:
    """Readiness: the database, and Redis when it holds the token state, answer; Redis runs every
    command the token store sends (a ping alone would pass an ACL that refuses one of them)."""
    checks = {"database": _check("database", database.check_ready)}
    store = current_token_store()
    if store.kind == "redis":
        checks["redis"] = _check("redis", store.check)
    failing = sorted(name for name, check in checks.items() if check["status"] != "ok")
    if failing:
        return error_response(
            503,
            "service_unavailable",
            f"Not ready: {', '.join(failing)}",
            details=checks,
            headers={"Retry-After": "1"},
        )
    return {"status": "ready", "checks": checks}
