"""The edit-reload loop: change a file of the app and the next requests answer with the change, in
the compose dev stack (source bind-mounted) and under `make dev`. gunicorn's master imports none of
the app (services/web/runtime, serving), so the workers it starts after an edit import it afresh."""

from __future__ import annotations

import contextlib
from pathlib import Path

import requests

from harness.polling import until

ROUTES = "api/health/routes.py"
# The one place the liveness answer's status is written (a formatter may reflow the dict around it).
ORIGINAL = '"status": "ok",'


@contextlib.contextmanager
def edited_healthz(source: Path, status: str):
    """The liveness answer of the app in ``source`` (the tests' copy, web_source) says ``status``
    instead of ok, until the block ends."""
    routes = source / ROUTES
    text = routes.read_text()
    assert text.count(ORIGINAL) == 1
    routes.write_text(text.replace(ORIGINAL, f'"status": "{status}",'))
    try:
        yield
    finally:
        routes.write_text(text)


def status_of(get) -> str | None:
    try:
        return get("/api/healthz").json()["status"]
    except (requests.RequestException, ValueError, KeyError):
        return None  # a worker restarting


def test_an_edit_shows_on_the_next_requests_in_the_dev_stack(stack, web_source):
    with edited_healthz(web_source, "edited in the stack"):
        assert until(lambda: status_of(stack.get) == "edited in the stack", timeout=60), "the edit never showed"
    assert until(lambda: status_of(stack.get) == "ok", timeout=60), "the original never came back"


def test_an_edit_shows_on_the_next_requests_under_make_dev(dev_server, web_source, stack):
    def get(path):
        return requests.get(dev_server["base_url"] + path, timeout=5)

    with edited_healthz(web_source, "edited under make dev"):
        assert until(lambda: status_of(get) == "edited under make dev", timeout=60), "the edit never showed"
    assert until(lambda: status_of(get) == "ok", timeout=60), "the original never came back"
    # The dev stack serves the same source and reloads too (web, and the job worker): the next test
    # on it should not find it mid-reload.
    assert until(lambda: status_of(stack.get) == "ok", timeout=60), "the dev stack never came back"
