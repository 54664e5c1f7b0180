"""Mail: views and the error log hand a ``Mail`` to the job queue (api/jobs.py) and return at once;
a worker talks SMTP to ``MAIL_SERVER`` (the ``deliver`` job). A server that does not take a mail
(down, or a 4xx) is tried again after 1, 2, 4... seconds, at most MAIL_RETRY_MAX_DELAY apart, for
MAIL_RETRY_SECONDS; a refusal (5xx) is final at once. Either way the mail becomes a dead letter:
logged and kept without its body (reset links are secrets). A link mail that could only arrive after
its link expired is not sent. Without ``MAIL_SERVER`` a mail is logged (its subject and recipients,
never its body) and dropped."""

from __future__ import annotations

import logging
import smtplib
import time
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import Any, cast

from celery import Task, shared_task
from flask import Flask, current_app, render_template

from . import jobs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None


class Mailer:
    def __init__(self, config: dict[str, Any]):
        self.server = config["MAIL_SERVER"]
        self.port = config["MAIL_PORT"]
        self.use_tls = config["MAIL_USE_TLS"]
        self.username = config["MAIL_USERNAME"]
        self.password = config["MAIL_PASSWORD"] or ""
        self.sender = config["MAIL_SENDER"]
        self.subject_prefix = config["MAIL_SUBJECT_PREFIX"]

    @property
    def configured(self) -> bool:
        return bool(self.server)

    def send(self, mail: Mail, not_after: float | None = None) -> None:
        """Queue the mail (JobsUnavailable when the queue cannot take it); ``not_after``: the time
        (epoch seconds) after which it is no use (its link has expired), and is not sent."""
        if not self.configured:
            log.info("mail not sent (no MAIL_SERVER): %r to %s", mail.subject, ", ".join(mail.to))
            return
        jobs.enqueue(deliver, asdict(mail), time.time(), not_after)

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


def send_templated(to: str, subject: str, template: str, not_after: float | None = None, **context: Any) -> None:
    """Render ``mail/<template>.txt`` and ``.html`` (api/templates) here, and queue them."""
    text = render_template(f"mail/{template}.txt", **context)
    html = render_template(f"mail/{template}.html", **context)
    current_mailer().send(Mail((to,), subject, text, html), not_after)


def refused_for_good(error: Exception) -> bool:
    """A 5xx answer: the server will not take this mail, however often it is asked."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    return isinstance(error, smtplib.SMTPResponseException) and error.smtp_code >= 500


@shared_task(bind=True, name="mail.deliver", max_retries=None)
def deliver(task: Task[Any, Any], mail: dict[str, Any], queued_at: float, not_after: float | None = None) -> None:
    """Send one mail over SMTP, or try again later, or give it up (a dead letter)."""
    config = current_app.config
    letter = Mail(tuple(mail["to"]), mail["subject"], mail["text"], mail.get("html"))
    description = {"to": list(letter.to), "subject": letter.subject, "tries": task.request.retries + 1}
    if not current_mailer().configured:  # the worker names no server: nowhere to send it
        log.info("mail not sent (no MAIL_SERVER in the worker): %r to %s", letter.subject, ", ".join(letter.to))
        return
    if not_after is not None and time.time() > not_after:
        jobs.dead_letter(task.name, description, "not sent: its link expired before it could be")
        return
    try:
        current_mailer().deliver(letter)
    except (OSError, smtplib.SMTPException) as error:
        waited = time.time() - queued_at
        if task.request.is_eager or refused_for_good(error) or waited >= config["MAIL_RETRY_SECONDS"]:
            jobs.dead_letter(task.name, description, f"{type(error).__name__}: {error}")
            return
        delay = min(2**task.request.retries, config["MAIL_RETRY_MAX_DELAY"])
        log.info("mail %r not sent (%s); trying again in %s s", letter.subject, error, delay)
        raise task.retry(countdown=delay, exc=error) from error
