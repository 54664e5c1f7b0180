"""Mail: one sender per app, off the request thread. Views and the error log hand it a ``Mail``
and return at once; a thread of the sender's own (started by the first mail in each process, so
each forked gunicorn worker has its own, and ended when idle) talks SMTP to ``MAIL_SERVER``.
Without ``MAIL_SERVER`` a mail is logged (its subject and recipients, never its body: reset links
are secrets) and dropped."""

from __future__ import annotations

import logging
import os
import queue
import smtplib
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, cast

from flask import Flask, current_app, render_template

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None


class Mailer:
    # A sending thread with nothing to do for this long ends; the next mail starts another.
    IDLE_SECONDS = 5.0

    def __init__(self, config: dict[str, Any]):
        self.server = config["MAIL_SERVER"]
        self.port = config["MAIL_PORT"]
        self.use_tls = config["MAIL_USE_TLS"]
        self.username = config["MAIL_USERNAME"]
        self.password = config["MAIL_PASSWORD"] or ""
        self.sender = config["MAIL_SENDER"]
        self.subject_prefix = config["MAIL_SUBJECT_PREFIX"]
        self.queue: queue.SimpleQueue[Mail] = queue.SimpleQueue()
        self.lock = threading.Condition()
        self.pending = 0
        self.thread: threading.Thread | None = None
        self.thread_pid: int | None = None

    @property
    def configured(self) -> bool:
        return bool(self.server)

    def send(self, mail: Mail) -> None:
        if not self.configured:
            log.info("mail not sent (no MAIL_SERVER): %r to %s", mail.subject, ", ".join(mail.to))
            return
        with self.lock:
            if self.thread_pid != os.getpid():  # the first mail in this process (or after a fork)
                self.queue, self.pending, self.thread = queue.SimpleQueue(), 0, None
                self.thread_pid = os.getpid()
            self.pending += 1
            self.queue.put(mail)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="mailer", daemon=True)
                self.thread.start()

    def flush(self, timeout: float = 30) -> bool:
        """Wait until every mail handed over has been sent or given up on; False at timeout."""
        with self.lock:
            return self.lock.wait_for(lambda: self.pending == 0, timeout=timeout)

    def _run(self) -> None:
        while True:
            try:
                mail = self.queue.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with self.lock:
                    if self.queue.empty():
                        self.thread = None
                        return
                continue
            try:
                self.deliver(mail)
            except (OSError, smtplib.SMTPException) as error:
                # Not log.error: the error log mails, and this mail just failed.
                log.warning("mail %r to %s not sent: %s", mail.subject, ", ".join(mail.to), error)
            finally:
                with self.lock:
                    self.pending -= 1
                    self.lock.notify_all()

    def message(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ",".join(mail.to)
        message["Subject"] = f"{self.subject_prefix} {mail.subject}".strip()
        message.set_content(mail.text)
        if mail.html is not None:
            message.add_alternative(mail.html, subtype="html")
        return message

    def deliver(self, mail: Mail) -> None:
        with smtplib.SMTP(self.server, self.port, timeout=10) as smtp:
            if self.use_tls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(self.message(mail))


def init_app(app: Flask) -> Mailer:
    mailer = Mailer(app.config)
    app.extensions["mailer"] = mailer
    return mailer


def current_mailer() -> Mailer:
    return cast(Mailer, current_app.extensions["mailer"])


def send_templated(to: str, subject: str, template: str, **context: Any) -> None:
    """Render ``mail/<template>.txt`` and ``.html`` (api/templates) here, send them off the thread."""
    text = render_template(f"mail/{template}.txt", **context)
    html = render_template(f"mail/{template}.html", **context)
    current_mailer().send(Mail((to,), subject, text, html))
