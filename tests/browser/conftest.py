"""Headless Chromium from Debian's packages, driven by Playwright, against the dev stack through
nginx over TLS. Chromium verifies the stack's certificate: the generated CA goes into the NSS
database of a throwaway home directory, as a user would add it to theirs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from docker_env import missing
from harness.paths import REPO_ROOT

SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def compose_files() -> list[str]:
    return ["docker-compose.yml", "compose/test-browser.yml"]


@pytest.fixture(scope="session")
def browser(stack, tmp_path_factory):
    chromium = shutil.which("chromium")
    if not chromium or not shutil.which("certutil"):
        missing("Debian's chromium and libnss3-tools are needed (`make browser-tools` installs them)")
    home = tmp_path_factory.mktemp("browser-home")
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run(
        [
            "certutil",
            "-d",
            f"sql:{nssdb}",
            "-A",
            "-t",
            "C,,",
            "-n",
            "flask-stack development CA",
            "-i",
            str(stack.ca_file),
        ],
        check=True,
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium,
            env={**os.environ, "HOME": str(home)},
            # Root in a container or CI cannot use Chromium's sandbox.
            args=["--no-sandbox"] if os.geteuid() == 0 else [],
        )
        yield launched
        launched.close()


class Tab:
    """A page in its own browser context (its own cookies: a separate device), with every console
    error and failed request it saw."""

    def __init__(self, browser, stack, viewport=None):
        self.stack = stack
        self.context = browser.new_context(viewport=viewport or {"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.problems.append(message.text))
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("request", lambda request: self.requests.append(f"{request.method} {request.url}"))

    def open(self, path: str):
        self.page.goto(self.stack.https + path)
        return self.page

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def tab(browser, stack):
    opened = []

    def open_tab(viewport=None) -> Tab:
        new = Tab(browser, stack, viewport)
        opened.append(new)
        return new

    yield open_tab
    for each in opened:
        each.context.close()
    problems = [problem for each in opened for problem in each.problems]
    # The API's 4xx answers (a wrong password, an ended session) show as failed loads in the console
    # and are part of the tests; anything else (a CSP violation, a script error, a 5xx) is a defect.
    unexpected = [p for p in problems if not re.search(r"responded with a status of 4\d\d", p)]
    assert unexpected == [], unexpected


@pytest.fixture(scope="session")
def stack_project() -> str:
    return "flask-stack-browser"
