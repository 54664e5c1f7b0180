"""The receiver's honest answers, one by one, through its real Flask app and ledger."""

import json
import uuid

import pytest

from hook.ledger import Ledger
from hook.receiver import create_app
from hook.settings import HookSettings
from hook.signatures import sign

SECRET = "a-webhook-secret-of-some-length"
PREVIOUS = "the-previous-webhook-secret"
TOKEN = "status-token-for-the-tests-0123456789"
A, B = "a" * 40, "b" * 40


@pytest.fixture
def settings(tmp_path):
    return HookSettings.from_environ(
        {
            "HOOK_SECRET": SECRET,
            "HOOK_SECRET_PREVIOUS": PREVIOUS,
            "HOOK_REPOSITORY": "acme/shop",
            "HOOK_BRANCH": "main",
            "HOOK_STATUS_TOKEN": TOKEN,
            "HOOK_DB": str(tmp_path / "hook.sqlite"),
            "HOOK_MAX_BODY_BYTES": str(64 * 1024),
        }
    )


@pytest.fixture
def client(settings):
    return create_app(settings).test_client()


def push(sha=A, ref="refs/heads/main", repository="acme/shop", **extra):
    return {"ref": ref, "after": sha, "deleted": False, "repository": {"full_name": repository}, **extra}


def deliver(
    client, payload, event="push", secret=SECRET, delivery=None, content_type="application/json", signature=None
):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4())}
    headers["X-Hub-Signature-256"] = signature if signature is not None else sign(secret.encode(), body)
    return client.post("/hooks/github", data=body, headers=headers, content_type=content_type)


def status(client):
    return client.get("/hooks/status", headers={"Authorization": f"Bearer {TOKEN}"}).json


def test_ping_is_pong(client):
    response = deliver(client, {"zen": "Keep it logically awesome."}, event="ping")
    assert response.status_code == 200
    assert response.json["status"] == "pong" and response.json["zen"] == "Keep it logically awesome."


def test_a_push_to_the_branch_is_accepted_with_a_deploy_id(client):
    response = deliver(client, push())
    assert response.status_code == 202
    assert response.json["status"] == "accepted"
    assert response.json["sha"] == A
    assert status(client)["queue"][0]["id"] == response.json["deploy_id"]


def test_the_previous_secret_still_works_during_rotation(client):
    assert deliver(client, push(), secret=PREVIOUS).status_code == 202


@pytest.mark.parametrize(
    ("signature", "why"),
    [
        ("", "missing"),
        ("sha256=" + "0" * 64, "does not match"),
        (sign(b"wrong secret!!!!!!", b"{}"), "does not match"),
        ("0" * 64, "sha256="),
        ("sha256=" + "A" * 64, "64 lowercase hex digits"),
        ("sha256=" + "0" * 63, "64 lowercase hex digits"),
        ("sha256=" + "0" * 65, "64 lowercase hex digits"),
        ("sha1=" + "0" * 40, "sha256="),
        ("sha256=" + "\u00e9" * 64, "64 lowercase hex digits"),  # not ASCII: once a 500
    ],
    ids=["missing", "zeros", "wrong-secret", "no-prefix", "upper-case", "short", "long", "sha1", "non-ascii"],
)
def test_bad_malformed_or_missing_signature_is_401_and_nothing_happens(client, signature, why):
    response = deliver(client, push(), signature=signature)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_signature"
    assert why in response.json["error"]["message"]
    assert status(client)["queue"] == [] and status(client)["recent"] == []


def test_a_signed_body_that_is_not_json_is_415(client):
    response = deliver(client, b"payload=%7B%7D", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json["error"]["code"] == "unsupported_media_type"


def test_an_unsigned_body_that_is_not_json_is_401_the_signature_comes_first(client):
    response = deliver(client, b"payload=%7B%7D", content_type="text/plain", signature="")
    assert response.status_code == 401 and response.json["error"]["code"] == "invalid_signature"


def test_a_replayed_push_of_an_older_commit_is_refused(client, settings):
    ledger = Ledger(settings.ledger_path)
    ledger.set_live(B)
    ledger.set_live_ancestry([B, A])  # what the deployer recorded when B went live
    response = deliver(client, push(A), delivery=str(uuid.uuid4()))  # a new delivery id: not a redelivery
    assert response.status_code == 409
    assert response.json["status"] == "refused"
    assert "older than the live commit" in response.json["reason"] and "make rollback" in response.json["reason"]
    assert status(client)["queue"] == []


def signed_rollback(client, body: dict, secret=SECRET, **headers):
    data = json.dumps(body).encode()
    headers["X-Hub-Signature-256"] = sign(secret.encode(), data)
    return client.post("/hooks/rollback", data=data, headers=headers, content_type="application/json")


def test_a_rollback_signed_with_the_hooks_secret_is_queued_like_a_push(client):
    # The status token reads; it does not change what is live.
    status_token = {"Authorization": f"Bearer {TOKEN}"}
    refused = client.post("/hooks/rollback", json={"sha": A}, headers=status_token)
    assert refused.status_code == 401 and refused.json["error"]["code"] == "invalid_signature"
    assert signed_rollback(client, {"sha": A}, secret="not-the-secret-at-all").status_code == 401
    assert signed_rollback(client, {"sha": "abc123"}).status_code == 400
    response = signed_rollback(client, {"sha": A})
    assert response.status_code == 202 and response.json["status"] == "accepted"
    (queued,) = status(client)["queue"]
    assert (queued["sha"], queued["kind"]) == (A, "rollback")


def test_a_wrong_method_is_405_with_allow(client):
    response = client.get("/hooks/github")
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_unparsable_json_is_400(client):
    response = deliver(client, b"{not json")
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_json"


def test_oversized_body_is_413(client):
    response = deliver(client, push(padding="x" * 70_000))
    assert response.status_code == 413 and response.json["error"]["code"] == "payload_too_large"


def test_missing_github_headers_is_400(client):
    body = json.dumps(push()).encode()
    response = client.post(
        "/hooks/github",
        data=body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": sign(SECRET.encode(), body)},
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("event", "payload", "reason"),
    [
        ("issues", {"action": "opened"}, "event 'issues' is not handled"),
        ("push", push(ref="refs/heads/feature"), "is not the deploy branch"),
        ("push", push(ref="refs/tags/v1.0"), "is not the deploy branch"),
        ("push", push(repository="mallory/shop"), "repository 'mallory/shop' is not 'acme/shop'"),
        ("push", push(sha="0" * 40, deleted=True), "was deleted"),
    ],
)
def test_ignored_events_are_202_with_the_reason(client, event, payload, reason):
    response = deliver(client, payload, event=event)
    assert response.status_code == 202
    assert response.json["status"] == "ignored"
    assert reason in response.json["reason"]
    assert status(client)["queue"] == []


def test_a_replayed_delivery_is_a_no_op_that_says_so(client):
    first = deliver(client, push(), delivery="delivery-1")
    again = deliver(client, push(sha=B), delivery="delivery-1")
    assert again.status_code == 200
    assert again.json["status"] == "duplicate"
    assert "delivery-1 was handled already" in again.json["reason"]
    assert again.json["deploy_id"] == first.json["deploy_id"]
    assert [d["sha"] for d in status(client)["queue"]] == [A]


def test_a_replayed_ping_is_a_duplicate_too(client):
    deliver(client, {}, event="ping", delivery="ping-1")
    assert deliver(client, {}, event="ping", delivery="ping-1").json["status"] == "duplicate"


def test_two_quick_pushes_leave_one_deploy_of_the_newer_commit(client):
    first = deliver(client, push(A)).json
    second = deliver(client, push(B)).json
    queue = status(client)["queue"]
    assert [d["sha"] for d in queue] == [B]
    assert queue[0]["id"] == second["deploy_id"]
    recent = {d["id"]: d for d in status(client)["recent"]}
    assert recent[first["deploy_id"]]["status"] == "skipped"


def test_unknown_hook_is_404(client):
    body = json.dumps(push()).encode()
    response = client.post("/hooks/elsewhere", data=body, content_type="application/json")
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"


def test_status_needs_the_token(client):
    assert client.get("/hooks/status").status_code == 401
    assert client.get("/hooks/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = client.get("/hooks/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert set(response.json) == {"live", "running", "queue", "recent"}


def test_deploy_details_need_the_token_and_show_steps(client):
    deploy_id = deliver(client, push()).json["deploy_id"]
    assert client.get(f"/hooks/deploys/{deploy_id}").status_code == 401
    detail = client.get(f"/hooks/deploys/{deploy_id}", headers={"Authorization": f"Bearer {TOKEN}"}).json
    assert detail["sha"] == A and detail["status"] == "queued" and detail["steps"] == []
    missing = client.get("/hooks/deploys/999", headers={"Authorization": f"Bearer {TOKEN}"})
    assert missing.status_code == 404


def test_status_is_closed_when_no_token_is_configured(tmp_path):
    app = create_app(HookSettings.from_environ({"HOOK_SECRET": SECRET, "HOOK_DB": str(tmp_path / "h.sqlite")}))
    assert app.test_client().get("/hooks/status", headers={"Authorization": "Bearer "}).status_code == 401


def test_healthz(client):
    assert client.get("/hooks/healthz").json == {"status": "ok"}


def test_every_decision_is_logged_with_its_reason(client, caplog):
    with caplog.at_level("INFO", logger="hook.receiver"):
        deliver(client, push(ref="refs/heads/feature"), delivery="log-me")
    assert any("delivery=log-me" in r.message and "is not the deploy branch" in r.message for r in caplog.records)
