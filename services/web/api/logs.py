"""Logging: stdout (JSON in production, readable in development), request ids, e-mail and syslog."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from logging.handlers import SysLogHandler

from flask import Flask, Response, g, has_request_context, request
from flask.logging import default_handler

from .mail import Mail, Mailer

REQUEST_ID_HEADER = "X-Request-ID"
# A client-supplied id is kept only when it is short and plain, so it cannot forge log lines.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
ROLE = "flask_stack_role"  # the attribute that says which of our handlers one is (stdout, mail, syslog)
TEXT_FORMAT = "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _replace_handler(logger: logging.Logger, role: str, handler: logging.Handler | None) -> None:
    """Install ``handler`` as the one handler of its role (None: none), so a second app in the same
    process neither logs twice nor keeps the first one's mail or syslog settings."""
    for existing in list(logger.handlers):
        if getattr(existing, ROLE, None) == role:
            logger.removeHandler(existing)
            existing.close()
    if handler is None:
        return
    setattr(handler, ROLE, role)
    handler.addFilter(RequestIdFilter())
    logger.addHandler(handler)


def configure_logging(app: Flask) -> None:
    logger = logging.getLogger(app.import_name)
    logger.removeHandler(default_handler)
    logger.setLevel(app.config["LOG_LEVEL"])
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(JsonFormatter() if app.config["LOG_FORMAT"] == "json" else logging.Formatter(TEXT_FORMAT))
    _replace_handler(logger, "stdout", stream)
    if app.config["LOG_TO_SYSLOG"]:
        add_syslog_handler(app)
    else:
        _replace_handler(logger, "syslog", None)
    add_mail_handler(app)

    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        # 32 random hex digits, as uuid4().hex was, without building a UUID on every request.
        g.request_id = incoming if REQUEST_ID_PATTERN.match(incoming) else os.urandom(16).hex()

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers[REQUEST_ID_HEADER] = g.request_id
        return response


# What makes two error records "the same error": logger, exception type and where it was raised
# (file, line), or logger and message template.
Signature = tuple[str | int, ...]


class OncePerSignature(logging.Filter):
    """At most one record per error signature (where it was raised, and what) every ``interval``
    seconds; the next one that passes says how many were held back. A flood of one error (a crafted
    request sent a thousand times) is one e-mail, not a thousand."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval = interval
        self.clock = clock
        self.lock = threading.Lock()
        self.last_sent: dict[Signature, float] = {}
        self.held_back: dict[Signature, int] = {}

    @staticmethod
    def signature(record: logging.LogRecord) -> Signature:
        if record.exc_info and record.exc_info[1] is not None:
            traceback = record.exc_info[2]
            while traceback is not None and traceback.tb_next is not None:
                traceback = traceback.tb_next
            where = (traceback.tb_frame.f_code.co_filename, traceback.tb_lineno) if traceback else ()
            return (record.name, type(record.exc_info[1]).__name__, *where)
        return (record.name, record.msg if isinstance(record.msg, str) else type(record.msg).__name__)

    def filter(self, record: logging.LogRecord) -> bool:
        key = self.signature(record)
        now = self.clock()
        with self.lock:
            last = self.last_sent.get(key)
            if last is not None and now - last < self.interval:
                self.held_back[key] = self.held_back.get(key, 0) + 1
                return False
            self.last_sent[key] = now
            record.held_back = self.held_back.pop(key, 0)
        return True


class MailFormatter(logging.Formatter):
    """An error e-mail's body: control characters a client may have smuggled into a message become
    spaces (newlines and tabs stay), long lines are cut, and it says how many like it were held back."""

    LINE_LIMIT = 2000

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        lines = ["".join(c if c.isprintable() or c == "\t" else " " for c in line) for line in text.splitlines()]
        body = "\n".join(line[: self.LINE_LIMIT] for line in lines)
        held_back = getattr(record, "held_back", 0)
        if held_back:
            body += f"\n\n({held_back} more like this were not mailed since the last one.)"
        return body


class MailHandler(logging.Handler):
    """Error records as mails to ADMINS, through the job queue (api/mail.py): a request never waits
    on SMTP."""

    def __init__(self, mailer: Mailer, admins: Sequence[str]):
        super().__init__()
        self.mailer = mailer
        self.admins = tuple(admins)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.mailer.send(Mail(self.admins, "Application Error", self.format(record)))
        except Exception:  # noqa: BLE001 - logging must never raise into the code that logged
            self.handleError(record)


def add_mail_handler(app: Flask) -> None:
    """In production, e-mail errors to ADMINS when mail is configured (MAIL_SERVER and ADMINS):
    through the app's mail sender, at most one per kind of error every MAIL_ERROR_INTERVAL seconds."""
    config = app.config
    if not (config["MODE"] == "production" and config["MAIL_SERVER"] and config["ADMINS"]):
        _replace_handler(logging.getLogger(app.import_name), "mail", None)
        return
    handler = MailHandler(app.extensions["mailer"], config["ADMINS"])
    handler.setFormatter(MailFormatter(TEXT_FORMAT))
    handler.setLevel(logging.ERROR)
    handler.addFilter(OncePerSignature(config["MAIL_ERROR_INTERVAL"]))
    _replace_handler(logging.getLogger(app.import_name), "mail", handler)


def add_syslog_handler(app: Flask) -> None:
    address = app.config["SYSLOG_ADDRESS"]
    if not address.startswith("/") and ":" in address:
        host, port = address.rsplit(":", 1)
        address = (host, int(port))
    handler = SysLogHandler(address=address)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("flask-stack: %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    _replace_handler(logging.getLogger(app.import_name), "syslog", handler)
