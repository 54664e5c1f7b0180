"""Development's mail sink: an SMTP server (aiosmtpd) that accepts every message and keeps the
newest MAILSINK_KEEP (200) in memory, and an HTTP server that shows them:

    GET /               a page listing them, newest first (plain HTML, no script)
    GET /messages       JSON: [{"id", "from", "to", "subject", "date", "text", "html"}], oldest first
    GET /messages.txt   the same as text (`make mail`)
    DELETE /messages    forget them all

Nothing is relayed anywhere: mail sent in development stays here."""

from __future__ import annotations

import email
import email.policy
import html
import json
import os
import signal
import sys
import threading
from collections import deque
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from aiosmtpd.controller import Controller

KEEP = int(os.environ.get("MAILSINK_KEEP", "200"))
messages: deque[dict[str, Any]] = deque(maxlen=KEEP)
lock = threading.Lock()
counter = 0


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    return part.get_content() if part is not None else ""


class Sink:
    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        global counter
        # With the default policy the parser makes EmailMessage objects (get_body, get_content).
        message = cast(EmailMessage, email.message_from_bytes(envelope.content, policy=email.policy.default))
        with lock:
            counter += 1
            messages.append(
                {
                    "id": counter,
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "subject": str(message.get("Subject", "")),
                    "date": str(message.get("Date", "")),
                    "text": body(message, "plain"),
                    "html": body(message, "html"),
                }
            )
        return "250 Message accepted"


def as_text(kept: list[dict[str, Any]]) -> str:
    if not kept:
        return "no mail yet\n"
    return (
        "\n".join(f"#{m['id']} to {', '.join(m['to'])}: {m['subject']}\n{m['text'].strip()}\n{'-' * 72}" for m in kept)
        + "\n"
    )


def as_page(kept: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<article><h2>#{m['id']} {html.escape(m['subject'])}</h2><p>to {html.escape(', '.join(m['to']))}</p>"
        f"<pre>{html.escape(m['text'])}</pre></article>"
        for m in reversed(kept)
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Development mail</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'></head>"
        f"<body><h1>Development mail ({len(kept)})</h1>{rows or '<p>No mail yet.</p>'}</body></html>"
    )


class Pages(BaseHTTPRequestHandler):
    def answer(self, status: int, content_type: str, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        with lock:
            kept = list(messages)
        if self.path == "/messages":
            self.answer(200, "application/json", json.dumps(kept))
        elif self.path == "/messages.txt":
            self.answer(200, "text/plain; charset=utf-8", as_text(kept))
        elif self.path == "/":
            self.answer(200, "text/html; charset=utf-8", as_page(kept))
        else:
            self.answer(
                404, "application/json", json.dumps({"error": {"code": "not_found", "message": "No such page"}})
            )

    def do_DELETE(self) -> None:
        if self.path != "/messages":
            self.answer(
                404, "application/json", json.dumps({"error": {"code": "not_found", "message": "No such page"}})
            )
            return
        with lock:
            messages.clear()
        self.answer(204, "text/plain", "")

    def log_message(self, *_args: Any) -> None:
        pass  # the healthcheck would fill the log


def main() -> None:
    # PID 1 in its container: with no handler of its own it would ignore SIGTERM, and every stop
    # would wait out the engine's grace period (10 s) for a SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    smtp = Controller(Sink(), hostname="0.0.0.0", port=1025)  # noqa: S104 - inside its container
    smtp.start()
    print("mail sink: SMTP on 1025, messages on http://0.0.0.0:8025", flush=True)
    try:
        ThreadingHTTPServer(("0.0.0.0", 8025), Pages).serve_forever()  # noqa: S104 - inside its container
    finally:
        smtp.stop()


if __name__ == "__main__":
    main()
