"""The internet-facing receiver: verifies GitHub webhooks, answers honestly, queues deploys.

It never builds, never touches Docker, and answers at once; the deployer does the work. The
signature is checked before anything else looks at the body. Answers: 401 missing, malformed or
bad signature; 415 not JSON; 413 too large; 400 unparsable; 200 ``pong`` for ping; 202 with a reason
for ignored events; 202 with a deploy id for accepted pushes; 409 ``refused`` for a push of a commit
older than the live one; 200 ``duplicate`` for a delivery seen before. Every decision is logged
with its reason.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec, cast

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from .hooks import Hook
from .ledger import COMMIT_ID, Decision, Ledger
from .logs import configure_logging
from .settings import HookSettings
from .signatures import signature_problem

DELIVERY = re.compile(r"[A-Za-z0-9-]{1,64}")
ZERO_SHA = "0" * 40
# HTTP status for each decision on a push.
DECISION_STATUS = {"accepted": 202, "skipped": 202, "refused": 409, "duplicate": 200}

log = logging.getLogger("hook.receiver")
bp = Blueprint("hooks", __name__, url_prefix="/hooks")
P = ParamSpec("P")


@dataclass(frozen=True)
class Receiver:
    """What the views share: the settings read at start, and the ledger."""

    settings: HookSettings
    ledger: Ledger


def create_app(settings: HookSettings | None = None) -> Flask:
    settings = settings or HookSettings.from_environ()
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # the default provider has it
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    ledger = Ledger(settings.ledger_path)
    ledger.create()
    app.extensions["hook"] = Receiver(settings, ledger)
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
    log.info("receiver ready: hooks %s", ", ".join(f"/hooks/{hook_id}" for hook_id in settings.hooks))
    return app


def receiver() -> Receiver:
    return cast(Receiver, current_app.extensions["hook"])


def settings() -> HookSettings:
    return receiver().settings


def ledger() -> Ledger:
    return receiver().ledger


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def answer(http_status: int, **body: Any) -> Response:
    response = jsonify(body)
    response.status_code = http_status
    return response


def http_error(exc: HTTPException) -> Response:
    codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
    allowed = getattr(exc, "valid_methods", None)  # a 405's
    headers = {"Allow": ", ".join(allowed)} if allowed else {}
    status = exc.code or 500
    return error(status, codes.get(status, "bad_request"), exc.description or exc.name, headers)


def unexpected_error(_exc: Exception) -> Response:  # HTTPExceptions go to the more specific handler above
    log.exception("unhandled error")
    return error(500, "internal_error", "Internal error; the delivery was not recorded")


def status_token_required(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    """The status endpoints: ``Authorization: Bearer $HOOK_STATUS_TOKEN``, compared in
    constant time; closed when no token is configured."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        token = settings().status_token
        supplied = request.headers.get("Authorization", "").encode("latin-1", "replace")
        if not (token and hmac.compare_digest(supplied, f"Bearer {token}".encode())):
            return error(
                401, "unauthorized", "A valid status token is required", {"WWW-Authenticate": 'Bearer realm="hooks"'}
            )
        return view(*args, **kwargs)

    return wrapper


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return {"status": "ok"}


@bp.get("/status")
@status_token_required
def status() -> ResponseReturnValue:
    return ledger().status()


@bp.get("/deploys/<int:deploy_id>")
@status_token_required
def deploy(deploy_id: int) -> ResponseReturnValue:
    found = ledger().deploy(deploy_id)
    return found if found else error(404, "not_found", f"No deploy {deploy_id}")


@bp.post("/rollback")
def rollback() -> ResponseReturnValue:
    """Deploy an earlier commit by the same path as a push (`make rollback SHA=…` does the same).
    Changing what is live takes what a push takes: the body signed with the hook's secret
    (X-Hub-Signature-256, as GitHub signs), checked before the body is read. The status token,
    which may sit in a dashboard, only reads."""
    hook_id = request.args.get("hook", "github")
    hook = settings().hooks.get(hook_id)
    if hook is None:
        return error(404, "not_found", f"No hook {hook_id!r}")
    raw = request.get_data(cache=True)
    problem = signature_problem(request.headers.get("X-Hub-Signature-256"), raw, hook.secrets)
    if problem:
        log.warning("rollback through hook=%s refused: %s", hook.id, problem)
        return error(401, "invalid_signature", problem)
    body = request.get_json(silent=True)
    sha = body.get("sha") if isinstance(body, dict) else None
    if not (isinstance(sha, str) and COMMIT_ID.fullmatch(sha)):
        return error(400, "bad_request", 'Send {"sha": "<the full 40-hex commit id>"}')
    decision = ledger().enqueue(hook.id, sha, hook.ref, kind="rollback")
    log.info("rollback to %s requested through the receiver -> %s: %s", sha, decision.outcome, decision.reason)
    return answer(
        DECISION_STATUS[decision.outcome],
        status=decision.outcome,
        reason=decision.reason,
        deploy_id=decision.deploy_id,
        sha=sha,
    )


@bp.post("/<hook_id>")
def receive(hook_id: str) -> ResponseReturnValue:
    hook = settings().hooks.get(hook_id)
    if hook is None:
        return error(404, "not_found", f"No hook {hook_id!r}")
    delivery = request.headers.get("X-GitHub-Delivery", "")
    event = request.headers.get("X-GitHub-Event", "")
    body = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH

    problem = signature_problem(request.headers.get("X-Hub-Signature-256"), body, hook.secrets)
    if problem:
        log.warning("hook=%s delivery=%r refused: %s", hook.id, delivery[:64] or "-", problem)
        return error(401, "invalid_signature", problem)
    # Signed by GitHub (or whoever holds the secret): now the rest may be looked at.
    if request.mimetype != "application/json":
        log.info("hook=%s delivery=%s refused: content type %r", hook.id, delivery or "-", request.mimetype)
        return error(
            415,
            "unsupported_media_type",
            "Send the payload as application/json (GitHub: Content type application/json)",
        )
    if not DELIVERY.fullmatch(delivery) or not event:
        return error(400, "bad_request", "X-GitHub-Delivery and X-GitHub-Event are required")
    try:
        payload = json.loads(body)
    except ValueError:
        return error(400, "invalid_json", "The payload is not valid JSON")
    if not isinstance(payload, dict):
        return error(400, "invalid_json", "The payload is not a JSON object")
    return decide(hook, delivery, event, payload)


def decide(hook: Hook, delivery: str, event: str, payload: dict[str, Any]) -> Response:
    """What a correctly signed delivery leads to."""

    def decided(http_status: int, outcome: str, reason: str, **extra: Any) -> Response:
        log.info("hook=%s delivery=%s event=%s -> %s: %s", hook.id, delivery, event, outcome, reason)
        return answer(http_status, status=outcome, reason=reason, **extra)

    seen = ledger().seen_delivery(delivery)
    if seen is not None:
        reason = f"delivery {delivery} was handled already: {seen['reason']}"
        return decided(200, "duplicate", reason, deploy_id=seen["deploy_id"])
    if event == "ping":
        ledger().record_delivery(delivery, hook.id, event, Decision("pong", "ping"))
        return decided(200, "pong", "ping", zen=payload.get("zen"))
    ignored = ignore_reason(hook, event, payload)
    if ignored:
        ledger().record_delivery(delivery, hook.id, event, Decision("ignored", ignored))
        return decided(202, "ignored", ignored)
    sha = payload["after"]
    decision = ledger().enqueue(
        hook.id, sha, payload["ref"], delivery_id=delivery, forced=payload.get("forced") is True
    )
    return decided(
        DECISION_STATUS[decision.outcome], decision.outcome, decision.reason, deploy_id=decision.deploy_id, sha=sha
    )


def ignore_reason(hook: Hook, event: str, payload: dict[str, Any]) -> str | None:
    """Why a correctly signed delivery leads to no deploy, or None when it should deploy."""
    if event != "push":
        return f"event {event!r} is not handled (only push deploys)"
    repository = (payload.get("repository") or {}).get("full_name")
    if hook.repository and repository != hook.repository:
        return f"repository {repository!r} is not {hook.repository!r}"
    ref = payload.get("ref")
    if ref != hook.ref:
        return f"ref {ref!r} is not the deploy branch {hook.ref!r}"
    if payload.get("deleted") or payload.get("after") == ZERO_SHA:
        return f"branch {hook.branch!r} was deleted"
    if not isinstance(payload.get("after"), str) or not COMMIT_ID.fullmatch(payload["after"]):
        return "the push has no commit id in 'after'"
    return None
