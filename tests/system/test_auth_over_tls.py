"""The full auth flow through nginx over TLS, and revocation seen by every gunicorn worker."""

import re
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from contract import assert_error, bearer, json_of
from harness.paths import REPO_ROOT
from harness.polling import until


def test_register_login_me_refresh_reuse_logout(stack):
    api = stack.api()
    email = f"flow-{uuid.uuid4().hex[:8]}@example.com"
    registered = api.register(email)
    assert registered.status_code == 201, registered.text
    tokens = api.tokens(email)
    me = api.me(tokens["access_token"])
    assert me.status_code == 200 and json_of(me)["email"] == email

    rotated = json_of(api.refresh(tokens["refresh_token"]))
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert_error(api.refresh(tokens["refresh_token"]), 401, "token_revoked")  # reuse
    assert_error(api.me(rotated["access_token"]), 401, "token_revoked")  # the family is gone

    fresh = api.tokens(email)
    assert api.logout(fresh["access_token"]).status_code == 204
    assert_error(api.me(fresh["access_token"]), 401, "token_revoked")
    assert_error(api.refresh(fresh["refresh_token"]), 401, "token_revoked")


def worker_pids(stack) -> set[str]:
    """gunicorn worker processes in the web container (children of the master, pid 1)."""
    script = (
        "import os\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    stat = open(f'/proc/{pid}/stat').read().split()\n"
        "    cmd = open(f'/proc/{pid}/cmdline').read()\n"
        "    if stat[3] == '1' and 'gunicorn' in cmd: print(pid)\n"
    )
    output, _, _ = stack.compose.exec_in_container(["python", "-c", script], service_name="web")
    return set(output.split())


def test_a_revoked_token_is_refused_by_every_worker(stack):
    api = stack.api()
    tokens = api.tokens(f"workers-{uuid.uuid4().hex[:8]}@example.com")
    assert api.logout(tokens["access_token"]).status_code == 204
    workers = worker_pids(stack)
    assert len(workers) >= 2, workers
    marker = uuid.uuid4().hex[:12]
    url = stack.https + "/api/users/me"

    def probe(n):
        # A new TLS connection each time, many at once: nginx opens several upstream connections,
        # which the gunicorn workers accept in turn.
        return requests.get(
            url,
            headers={**bearer(tokens["access_token"]), "X-Request-ID": f"{marker}-{n}"},
            verify=str(stack.ca_file),
            timeout=10,
        )

    seen: set[str] = set()
    responses = []

    def round_robin():
        with ThreadPoolExecutor(max_workers=32) as pool:
            batch = list(pool.map(probe, range(len(responses), len(responses) + 64)))
        responses.extend(batch)
        logs = stack.compose_run("logs", "--no-log-prefix", "web").stdout
        seen.update(re.findall(rf"pid=<(\d+)> \[{marker}-\d+\]", logs))
        return seen >= workers

    assert until(round_robin, timeout=60, interval=0), f"workers {workers}, served by {seen}"
    for response in responses:
        assert_error(response, 401, "token_revoked")


def link_token(mail: dict) -> str:
    match = re.search(r"#token=([A-Za-z0-9._-]+)", mail["text"])
    assert match, mail["text"]
    return match.group(1)


def test_accounts_by_mail_through_the_development_mail_sink(stack):
    """Verify the address, then a forgotten password, from the mails in the dev stack's sink."""
    api = stack.api()
    email = f"mail-{uuid.uuid4().hex[:8]}@example.com"
    tokens = api.tokens(email)
    verification = until(lambda: stack.mails(email), timeout=30)
    assert verification and verification[0]["subject"] == "[flask-stack] Verify your e-mail address"
    # The link leads to this stack's edge, and its HTML part is there too.
    assert f"https://localhost:{stack.https_port}/verify-email#token=" in verification[0]["html"]
    assert api.post("/api/auth/verify", json={"token": link_token(verification[0])}).status_code == 204
    assert json_of(api.me(tokens["access_token"]))["email_verified"] is True

    asked = api.post("/api/auth/password-reset", json={"email": email})
    assert asked.status_code == 202, asked.text
    resets = until(lambda: [m for m in stack.mails(email) if "Reset" in m["subject"]], timeout=30)
    assert resets, stack.mails(email)
    new_password = "a brand new passphrase"
    confirmed = api.post(
        "/api/auth/password-reset/confirm", json={"token": link_token(resets[-1]), "new_password": new_password}
    )
    assert confirmed.status_code == 204, confirmed.text
    assert_error(api.me(tokens["access_token"]), 401, "token_revoked")
    assert api.patiently(lambda: api.login(email, new_password)).status_code == 200
    # `make mail` shows them.
    shown = subprocess.run(["make", "--no-print-directory", "mail"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert shown.returncode == 0 and f"to {email}: [flask-stack] Reset your password" in shown.stdout, shown.stderr
