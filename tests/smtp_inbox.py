"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for tests of mail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message as EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from harness.ports import free_port


class Inbox(Message):
    def __init__(self):
        super().__init__()
        self.messages: list[EmailMessage] = []

    def handle_message(self, message):
        self.messages.append(message)

    def to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages if message["To"] == address]


@contextmanager
def smtp_inbox(inbox: Inbox | None = None) -> Iterator[tuple[Controller, Inbox]]:
    inbox = inbox or Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


def part(message: EmailMessage, content_type: str) -> str:
    """The text of one part (text/plain, text/html) of a mail."""
    for piece in message.walk():
        if piece.get_content_type() == content_type:
            return piece.get_payload(decode=True).decode()
    raise AssertionError(f"no {content_type} part")


def link_token(message: EmailMessage) -> str:
    """The token of the link a mail carries (in its fragment: #token=...)."""
    match = re.search(r"#token=([A-Za-z0-9._-]+)", part(message, "text/plain"))
    assert match, part(message, "text/plain")
    return match.group(1)
