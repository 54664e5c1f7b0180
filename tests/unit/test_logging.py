"""Request ids, log formats, and error e-mails through a real SMTP server."""

import json
import logging
import socket

import jwt
import pytest

from api.logs import MailFormatter, OncePerSignature
from contract import assert_error
from fake_clock import FakeClock
from harness.polling import until
from smtp_inbox import smtp_inbox


def test_a_plain_request_id_is_echoed(client):
    response = client.get("/api/healthz", headers={"X-Request-ID": "trace-123.abc"})
    assert response.headers["X-Request-ID"] == "trace-123.abc"


@pytest.mark.parametrize("incoming", ["", "bad id with spaces", "x" * 200, "<script>", "a;b"])
def test_an_unusable_request_id_is_replaced(client, incoming):
    response = client.get("/api/healthz", headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] != incoming
    assert len(response.headers["X-Request-ID"]) == 32


def test_production_logs_are_json_lines_with_the_request_id(production_app, capsys):
    app = production_app()

    @app.get("/api/test-logs")
    def logs_something():
        logging.getLogger("api.test").warning("something worth knowing")
        return {}

    capsys.readouterr()
    app.test_client().get("/api/test-logs", headers={"X-Request-ID": "req-42"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    entry = next(line for line in lines if line["message"] == "something worth knowing")
    assert entry["level"] == "WARNING"
    assert entry["request_id"] == "req-42"
    assert entry["logger"] == "api.test"


def test_development_logs_are_readable_text(app_factory, capsys):
    app = app_factory(APP_ENV="development", BLACKLIST_STORAGE_TYPE="database")

    @app.get("/api/test-logs")
    def logs_something():
        logging.getLogger("api.test").warning("plain words")
        return {}

    capsys.readouterr()
    app.test_client().get("/api/test-logs", headers={"X-Request-ID": "req-7"})
    out = capsys.readouterr().out
    assert "WARNING [req-7] api.test: plain words" in out


@pytest.fixture
def smtp_server():
    with smtp_inbox() as server:
        yield server


def test_production_errors_are_mailed_to_admins(smtp_server, production_app):
    controller, inbox = smtp_server
    app = production_app(
        MAIL_SERVER=controller.hostname,
        MAIL_PORT=controller.port,
        ADMINS="ops@example.org,cto@example.org",
        MAIL_SENDER="stack@example.org",
    )

    @app.get("/api/test-explodes")
    def explodes():
        raise ZeroDivisionError("mail me")

    response = app.test_client().get("/api/test-explodes")
    assert response.status_code == 500
    assert until(lambda: len(inbox.messages) == 1, timeout=10)
    mail = inbox.messages[0]
    assert mail["Subject"] == "[flask-stack] Application Error"
    assert mail["To"] == "ops@example.org,cto@example.org"
    assert mail["From"] == "stack@example.org"
    body = mail.get_payload()
    assert "ZeroDivisionError: mail me" in body
    assert "Traceback" in body


def mailing_app(production_app, controller, **overrides):
    return production_app(
        MAIL_SERVER=controller.hostname, MAIL_PORT=controller.port, ADMINS="ops@example.org", **overrides
    )


def test_a_flood_of_one_error_is_one_mail(smtp_server, production_app, caplog):
    controller, inbox = smtp_server
    app = mailing_app(production_app, controller)

    @app.get("/api/test-explodes")
    def explodes():
        raise ZeroDivisionError("again and again")

    client = app.test_client()
    with caplog.at_level(logging.ERROR, logger="api"):
        for _ in range(20):
            assert client.get("/api/test-explodes").status_code == 500
    # No queue in this tier: each mail is sent before its request is answered, so none is still to come.
    assert len(inbox.messages) == 1
    assert sum(r.levelno == logging.ERROR for r in caplog.records) == 20


def error_record(message: str) -> logging.LogRecord:
    return logging.LogRecord("api", logging.ERROR, __file__, 1, message, None, None)


def test_once_per_signature_on_a_fake_clock():
    clock = FakeClock()
    gate = OncePerSignature(300, clock=clock)
    assert gate.filter(error_record("database down")) and not gate.filter(error_record("database down"))
    assert gate.filter(error_record("another error"))
    clock.elapse(301)
    again = error_record("database down")
    assert gate.filter(again) and again.held_back == 1


def test_the_mail_after_a_flood_says_how_many_more_there_were():
    record = error_record("database down")
    record.held_back = 19
    body = MailFormatter("%(message)s").format(record)
    assert body == "database down\n\n(19 more like this were not mailed since the last one.)"


def test_a_mail_keeps_no_control_characters_from_a_message():
    body = MailFormatter("%(message)s").format(error_record("quoted \x1b[31mred\x00 and\nnext line"))
    assert body == "quoted  [31mred  and\nnext line"


def test_a_crafted_token_header_is_a_401_not_a_500_and_no_mail(smtp_server, production_app, caplog):
    """PyJWT quotes a token's `crit` header in its error; with a newline in it, the message once
    reached WWW-Authenticate, which Werkzeug refused: a 500 and an e-mail per request."""
    controller, inbox = smtp_server
    app = mailing_app(production_app, controller)
    key = "any key of thirty-two bytes or more"
    token = jwt.encode({"sub": "1"}, key, algorithm="HS256", headers={"crit": ["x\ny", "\r\nX-Evil: 1"]})
    client = app.test_client()
    for _ in range(5):
        response = client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
        error = assert_error(response, 401, "token_invalid")
        expected = 'Bearer realm="api", error="invalid_token", error_description="The access token is invalid"'
        assert response.headers["WWW-Authenticate"] == expected
        assert "\n" not in error["message"] and "Evil" not in error["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # nothing that could be mailed
    assert inbox.messages == []


def test_no_mail_without_mail_settings(smtp_server, production_app):
    _, inbox = smtp_server
    app = production_app()

    @app.get("/api/test-explodes")
    def explodes():
        raise ZeroDivisionError

    app.test_client().get("/api/test-explodes")
    assert inbox.messages == []


def test_syslog_receives_warnings(app_factory, tmp_path):
    received = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    received.bind(("127.0.0.1", 0))
    received.settimeout(5)
    port = received.getsockname()[1]
    app = app_factory(LOG_TO_SYSLOG="true", SYSLOG_ADDRESS=f"127.0.0.1:{port}")

    @app.get("/api/test-warns")
    def warns():
        logging.getLogger("api.test").warning("to syslog")
        return {}

    app.test_client().get("/api/test-warns", headers={"X-Request-ID": "sys-1"})
    datagram = received.recv(4096).decode()
    received.close()
    assert "flask-stack: WARNING [sys-1] api.test: to syslog" in datagram


def test_development_responses_carry_the_no_cache_headers(app_factory):
    response = app_factory(APP_ENV="development").test_client().get("/api/healthz")
    assert response.headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
    assert response.headers["Pragma"] == "no-cache"
    assert response.headers["Expires"] == "0"


def test_api_responses_are_not_stored_by_caches(client):
    assert client.get("/api/healthz").headers["Cache-Control"] == "no-store"


def test_a_stopping_worker_writes_every_access_line_still_queued():
    """The access log's writer thread may lag behind the requests; closing it writes the rest."""
    import time

    from gunicorn.config import Config

    from serving.access_log import JsonAccessLogger

    written: list[str] = []

    class SlowHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            time.sleep(0.01)  # a slow pipe
            written.append(record.getMessage())

    access = JsonAccessLogger(Config())
    access.access_log.handlers = [SlowHandler()]
    writer = access.writer()
    for n in range(30):
        writer.entries.put({"request_id": f"r{n}"})
    assert len(written) < 30  # still queued: the request threads did not wait for the writes
    access.close_access_log()
    assert [json.loads(line)["request_id"] for line in written] == [f"r{n}" for n in range(30)]
    assert not writer.thread.is_alive()
