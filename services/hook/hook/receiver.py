"""The internet-facing receiver: verifies GitHub webhooks, answers honestly, queues deploys.

It never builds, never touches Docker, and answers at once; the deployer does the work. Answers:
401 missing or bad signature, 415 not JSON, 413 too large, 400 unparsable, 200 ``pong`` for ping,
202 with a reason for ignored events, 202 with a deploy id for accepted pushes, 200 ``duplicate``
for a delivery seen before. Every decision is logged with its reason.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from .config import Hook, load_hooks
from .deploys import COMMIT_ID, Decision, Ledger
from .signatures import signature_problem

DELIVERY = re.compile(r"^[A-Za-z0-9-]{1,64}$")
ZERO_SHA = "0" * 40

log = logging.getLogger("hook.receiver")


def error(status: int, code: str, message: str, headers: dict | None = None):
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def answer(http_status: int, **body):
    response = jsonify(body)
    response.status_code = http_status
    return response


def create_app(environ=None) -> Flask:
    environ = os.environ if environ is None else environ
    app = Flask(__name__)
    app.json.sort_keys = False
    app.config["MAX_CONTENT_LENGTH"] = int(environ.get("HOOK_MAX_BODY_BYTES", 5 * 1024 * 1024))
    hooks = load_hooks(environ)
    ledger = Ledger.from_environ(environ)
    ledger.create()
    status_token = environ.get("HOOK_STATUS_TOKEN", "")
    logging.basicConfig(
        level=environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log.info("receiver ready: hooks %s", ", ".join(f"/hooks/{h}" for h in hooks))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        return error(exc.code, codes.get(exc.code, "bad_request"), exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):  # HTTPExceptions go to the more specific handler above
        log.exception("unhandled error")
        return error(500, "internal_error", "Internal error; the delivery was not recorded")

    @app.get("/hooks/healthz")
    def healthz():
        return {"status": "ok"}

    def authorized() -> bool:
        supplied = request.headers.get("Authorization", "")
        expected = f"Bearer {status_token}"
        return bool(status_token) and hmac.compare_digest(supplied.encode(), expected.encode())

    def unauthorized():
        return error(
            401, "unauthorized", "A valid status token is required", {"WWW-Authenticate": 'Bearer realm="hooks"'}
        )

    @app.get("/hooks/status")
    def status():
        if not authorized():
            return unauthorized()
        return ledger.status()

    @app.get("/hooks/deploys/<int:deploy_id>")
    def deploy(deploy_id: int):
        if not authorized():
            return unauthorized()
        found = ledger.deploy(deploy_id)
        return found if found else error(404, "not_found", f"No deploy {deploy_id}")

    @app.post("/hooks/<hook_id>")
    def receive(hook_id: str):
        hook = hooks.get(hook_id)
        if hook is None:
            return error(404, "not_found", f"No hook {hook_id!r}")
        delivery = request.headers.get("X-GitHub-Delivery", "")
        event = request.headers.get("X-GitHub-Event", "")
        body = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH

        def decide(status: int, outcome: str, reason: str, **extra):
            log.info("hook=%s delivery=%s event=%s -> %s: %s", hook.id, delivery or "-", event or "-", outcome, reason)
            return answer(status, status=outcome, reason=reason, **extra)

        if request.mimetype != "application/json":
            log.info("hook=%s delivery=%s refused: content type %r", hook.id, delivery or "-", request.mimetype)
            return error(
                415,
                "unsupported_media_type",
                "Send the payload as application/json (GitHub: Content type application/json)",
            )
        problem = signature_problem(request.headers.get("X-Hub-Signature-256"), body, hook.secrets)
        if problem:
            log.warning("hook=%s delivery=%s refused: %s", hook.id, delivery or "-", problem)
            return error(401, "invalid_signature", problem)
        if not DELIVERY.match(delivery) or not event:
            return error(400, "bad_request", "X-GitHub-Delivery and X-GitHub-Event are required")
        try:
            payload = json.loads(body)
        except ValueError:
            return error(400, "invalid_json", "The payload is not valid JSON")
        if not isinstance(payload, dict):
            return error(400, "invalid_json", "The payload is not a JSON object")

        seen = ledger.seen_delivery(delivery)
        if seen is not None:
            return decide(
                200,
                "duplicate",
                f"delivery {delivery} was handled already: {seen['reason']}",
                deploy_id=seen["deploy_id"],
            )
        if event == "ping":
            ledger.record_delivery(delivery, hook.id, event, Decision("pong", "ping"))
            return decide(200, "pong", "ping", zen=payload.get("zen"))

        ignored = ignore_reason(hook, event, payload)
        if ignored:
            ledger.record_delivery(delivery, hook.id, event, Decision("ignored", ignored))
            return decide(202, "ignored", ignored)

        sha = payload["after"]
        decision = ledger.enqueue(hook.id, sha, payload["ref"], delivery_id=delivery)
        status_code = 200 if decision.outcome == "duplicate" else 202
        return decide(status_code, decision.outcome, decision.reason, deploy_id=decision.deploy_id, sha=sha)

    return app


def ignore_reason(hook: Hook, event: str, payload: dict) -> str | None:
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
    if not isinstance(payload.get("after"), str) or not COMMIT_ID.match(payload["after"]):
        return "the push has no commit id in 'after'"
    return None
