"""Links mailed to an account's owner, through a real SMTP server: resetting a forgotten password
and verifying the address. Single use, short-lived, enumeration-safe, budgeted."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from api.extensions import db
from api.models import User
from contract import PASSWORD, Api, assert_error, bearer, json_of
from harness.polling import until
from smtp_inbox import Inbox, link_token, part, smtp_inbox

NEW_PASSWORD = "a brand new passphrase"
SOMEONE = "someone@example.com"


class Mailing:
    """An app whose mail goes to a real SMTP server on loopback, its client and that server's inbox."""

    def __init__(self, app, inbox: Inbox):
        self.app = app
        self.api = Api(app.test_client())
        self.inbox = inbox

    def mail(self, to: str, subject: str):
        """The newest mail to ``to`` with ``subject``, waiting for it."""

        def newest():
            found = [m for m in self.inbox.to(to) if m["Subject"] == f"[flask-stack] {subject}"]
            return found[-1] if found else None

        message = until(newest, timeout=10, interval=0.05)
        assert message is not None, [m["Subject"] for m in self.inbox.messages]
        return message

    def ask_reset(self, email: str = SOMEONE):
        return self.api.post("/api/auth/password-reset", json={"email": email})

    def confirm(self, token: str, password: str = NEW_PASSWORD):
        return self.api.post("/api/auth/password-reset/confirm", json={"token": token, "new_password": password})

    def verify(self, token: str):
        return self.api.post("/api/auth/verify", json={"token": token})


@pytest.fixture
def mailing(app_factory, backend) -> Iterator[Mailing]:
    def make(**overrides) -> Mailing:
        app = app_factory(
            BLACKLIST_STORAGE_TYPE=backend, MAIL_SERVER=controller.hostname, MAIL_PORT=controller.port, **overrides
        )
        return Mailing(app, inbox)

    with smtp_inbox() as (controller, inbox):
        yield make


def test_a_forgotten_password_is_reset_from_the_mailed_link_once(mailing):
    m = mailing()
    elsewhere = m.api.tokens(SOMEONE)
    asked = m.ask_reset()
    assert asked.status_code == 202
    assert json_of(asked) == {"message": "If an account has this address, a link is on its way to it"}
    mail = m.mail(SOMEONE, "Reset your password")
    link = f"https://localhost:8443/reset-password#token={link_token(mail)}"
    assert link in part(mail, "text/plain") and link in part(mail, "text/html")
    assert m.confirm(link_token(mail)).status_code == 204
    # Every session ended; the new password signs in, the old does not; the link is spent.
    assert_error(m.api.me(elsewhere["access_token"]), 401, "token_revoked")
    assert_error(m.api.refresh(elsewhere["refresh_token"]), 401, "token_revoked")
    assert_error(m.api.login(SOMEONE, PASSWORD), 401, "invalid_credentials")
    signed_in = m.api.login(SOMEONE, NEW_PASSWORD)
    assert signed_in.status_code == 200
    assert_error(m.confirm(link_token(mail), "yet another passphrase"), 403, "link_invalid")
    # Following the link proved the address.
    assert json_of(m.api.me(json_of(signed_in)["access_token"]))["email_verified"] is True


def test_asking_for_an_unknown_or_disabled_account_looks_the_same_and_mails_nothing(mailing):
    m = mailing()
    m.api.register(SOMEONE)
    m.api.register("disabled@example.com")
    with m.app.app_context():
        User.by_email("disabled@example.com").is_active = False
        db.session.commit()
    before = len(m.inbox.messages)
    unknown = m.ask_reset("nobody@example.com")
    disabled = m.ask_reset("disabled@example.com")
    assert unknown.status_code == disabled.status_code == 202
    assert json_of(unknown) == json_of(disabled) == json_of(m.ask_reset(SOMEONE))
    assert [message["To"] for message in m.inbox.messages[before:]] == [SOMEONE]


def test_a_reset_link_dies_when_the_password_changes(mailing):
    m = mailing()
    tokens = m.api.tokens(SOMEONE)
    m.ask_reset()
    token = link_token(m.mail(SOMEONE, "Reset your password"))
    changed = m.api.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(tokens["access_token"]),
    )
    assert changed.status_code == 200
    assert_error(m.confirm(token, "yet another passphrase"), 403, "link_invalid")
    assert m.api.login(SOMEONE, NEW_PASSWORD).status_code == 200


def test_an_old_link_has_expired_and_a_forged_or_borrowed_one_is_invalid(mailing):
    m = mailing(PASSWORD_RESET_SECONDS=1)
    m.api.register(SOMEONE)
    verification = link_token(m.mail(SOMEONE, "Verify your e-mail address"))
    m.ask_reset()
    token = link_token(m.mail(SOMEONE, "Reset your password"))
    time.sleep(2.1)  # itsdangerous counts whole seconds
    assert_error(m.confirm(token), 403, "link_expired")
    assert_error(m.confirm(token[:-2] + ("AA" if not token.endswith("AA") else "BB")), 403, "link_invalid")
    assert_error(m.confirm("not-a-token"), 403, "link_invalid")
    # A verification token is not a reset token (each purpose signs apart).
    assert_error(m.confirm(verification), 403, "link_invalid")
    assert m.api.login(SOMEONE, PASSWORD).status_code == 200


def test_links_are_budgeted_per_account_quietly_and_per_address_loudly(mailing):
    m = mailing(MAIL_LINKS_PER_ACCOUNT=2, MAIL_LINKS_PER_ADDRESS=4)
    m.api.register(SOMEONE)
    answers = [m.ask_reset().status_code for _ in range(4)]
    assert answers == [202, 202, 202, 202]
    assert len([x for x in m.inbox.to(SOMEONE) if "Reset" in x["Subject"]]) == 2
    refused = m.ask_reset("other@example.com")
    assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) > 0
    # Whoever spent the account's budget from their address did not spend its owner's.
    owner = m.api.post("/api/auth/password-reset", json={"email": SOMEONE}, environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert owner.status_code == 202
    assert len([x for x in m.inbox.to(SOMEONE) if "Reset" in x["Subject"]]) == 3


def test_a_new_account_verifies_its_address_from_the_mailed_link(mailing):
    m = mailing()
    registered = m.api.register(SOMEONE)
    assert json_of(registered)["email_verified"] is False
    tokens = m.api.tokens(SOMEONE)
    assert json_of(m.api.me(tokens["access_token"]))["email_verified"] is False  # the profile is now cached
    mail = m.mail(SOMEONE, "Verify your e-mail address")
    assert "https://localhost:8443/verify-email#token=" in part(mail, "text/html")
    assert m.verify(link_token(mail)).status_code == 204
    assert json_of(m.api.me(tokens["access_token"]))["email_verified"] is True
    assert m.verify(link_token(mail)).status_code == 204  # again: nothing more to do
    assert_error(m.verify("forged"), 403, "link_invalid")


def test_required_verification_refuses_sign_in_until_the_link_is_followed(mailing):
    m = mailing(REQUIRE_VERIFIED_EMAIL=1)
    m.api.register(SOMEONE)
    first = m.mail(SOMEONE, "Verify your e-mail address")
    assert_error(m.api.login(SOMEONE, PASSWORD), 403, "email_not_verified")
    # A wrong password says nothing about verification.
    assert_error(m.api.login(SOMEONE, "not the password"), 401, "invalid_credentials")
    resent = m.api.post("/api/auth/verify/resend", json={"email": SOMEONE})
    assert resent.status_code == 202
    assert len(m.inbox.to(SOMEONE)) == 2
    assert m.verify(link_token(first)).status_code == 204  # the first link still works
    assert m.api.login(SOMEONE, PASSWORD).status_code == 200
    # Verified: a resend mails nothing, and answers the same.
    assert m.api.post("/api/auth/verify/resend", json={"email": SOMEONE}).status_code == 202
    assert len(m.inbox.to(SOMEONE)) == 2


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/auth/password-reset", {"email": "not an address"}, "email"),
        ("/api/auth/password-reset", {}, "email"),
        ("/api/auth/password-reset/confirm", {"token": "x", "new_password": "short"}, "new_password"),
        ("/api/auth/password-reset/confirm", {"new_password": NEW_PASSWORD}, "token"),
        ("/api/auth/verify", {"token": ""}, "token"),
        ("/api/auth/verify/resend", {"email": 7}, "email"),
    ],
)
def test_a_link_request_that_is_not_one_is_a_422(api, path, body, field):
    assert field in assert_error(api.post(path, json=body), 422, "validation_error")["details"]


def test_without_a_queue_a_mail_server_that_is_down_fails_no_request_and_is_logged(app_factory, caplog):
    """No queue (the unit tier, `make dev`): the mail is tried once, in the request, and given up
    on; with one, tests/integration/test_jobs.py shows it tried again until the server is back."""
    from harness.ports import free_port

    app = app_factory(MAIL_SERVER="127.0.0.1", MAIL_PORT=str(free_port()))  # nothing listens there
    api = Api(app.test_client())
    with caplog.at_level("WARNING", logger="api.jobs"):
        assert api.register(SOMEONE).status_code == 201
    assert any("mail.deliver given up on" in record.getMessage() for record in caplog.records)


def test_a_queue_that_cannot_take_the_mail_is_a_503_for_a_link_and_no_failure_for_a_registration(app_factory):
    """The queue's Redis refuses connections (nothing listens on its port): asking for a link
    answers 503 with Retry-After (the promised mail cannot be queued); a registration is made all
    the same, as its owner can ask for the link again."""
    from harness.ports import free_port

    app = app_factory(MAIL_SERVER="127.0.0.1", JOBS_REDIS_URL=f"redis://127.0.0.1:{free_port()}/1")
    api = Api(app.test_client())
    assert api.register(SOMEONE).status_code == 201
    asked = api.post("/api/auth/password-reset", json={"email": SOMEONE})
    assert assert_error(asked, 503, "service_unavailable")["details"] == {"dependency": "job queue"}
    assert asked.headers["Retry-After"] == "5"
