"""Logging: stdout (JSON in production, readable in development), request ids, e-mail and syslog."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from logging.handlers import SMTPHandler, SysLogHandler

from flask import Flask, g, has_request_context, request
from flask.logging import default_handler

REQUEST_ID_HEADER = "X-Request-ID"
# A client-supplied id is kept only when it is short and plain, so it cannot forge log lines.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
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


def _replace_handler(logger: logging.Logger, role: str, handler: logging.Handler) -> None:
    """Install ``handler`` as the one handler of its role, so a second app does not log twice."""
    for existing in list(logger.handlers):
        if getattr(existing, "flask_stack_role", None) == role:
            logger.removeHandler(existing)
    handler.flask_stack_role = role
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

    @app.before_request
    def assign_request_id():
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if REQUEST_ID_PATTERN.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def echo_request_id(response):
        if "request_id" in g:
            response.headers[REQUEST_ID_HEADER] = g.request_id
        return response


def add_mail_handler(app: Flask) -> None:
    """E-mail errors to ADMINS when mail is configured (the seeds' ProductionConfig)."""
    config = app.config
    if not (config["MAIL_SERVER"] and config["ADMINS"]):
        return
    credentials = None
    secure = None
    if config["MAIL_USERNAME"]:
        credentials = (config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
        if config["MAIL_USE_TLS"]:
            secure = ()
    handler = SMTPHandler(
        mailhost=(config["MAIL_SERVER"], config["MAIL_PORT"]),
        fromaddr=config["MAIL_SENDER"],
        toaddrs=config["ADMINS"],
        subject=f"{config['MAIL_SUBJECT_PREFIX']} Application Error",
        credentials=credentials,
        secure=secure,
        timeout=5.0,
    )
    handler.setLevel(logging.ERROR)
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
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
