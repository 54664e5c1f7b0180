"""Request ids, log formats, and error e-mails through a real SMTP server."""

import json
import logging
import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from ports import free_port


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


class Inbox(Message):
    def __init__(self):
        super().__init__()
        self.messages = []

    def handle_message(self, message):
        self.messages.append(message)


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


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
    assert len(inbox.messages) == 1
    mail = inbox.messages[0]
    assert mail["Subject"] == "[flask-stack] Application Error"
    assert mail["To"] == "ops@example.org,cto@example.org"
    assert mail["From"] == "stack@example.org"
    body = mail.get_payload()
    assert "ZeroDivisionError: mail me" in body
    assert "Traceback" in body


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
