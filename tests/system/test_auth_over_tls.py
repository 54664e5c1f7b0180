"""The account flows through nginx over TLS, on the dev stack and on the production stack alike
(its ACL'd Redis, its database role, its secrets, its read-only containers): one test function
each, run on both. tests/system/test_swarm.py runs some of them on a Swarm stack too."""

import json
import re
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from contract import PASSWORD, assert_error, bearer, json_of
from harness.paths import REPO_ROOT
from harness.polling import until


def new_email(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:8]}@example.com"


def test_register_login_me_refresh_reuse_logout(any_stack):
    api = any_stack.api()
    email = new_email("flow")
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


def test_a_wrong_password_and_an_unknown_user_are_the_same_401(any_stack):
    """Each failure is counted by the sign-in throttle (a counter in the token store)."""
    api = any_stack.api()
    email = new_email("wrong")
    api.tokens(email)
    wrong = api.patiently(lambda: api.login(email, "not the password at all"))
    unknown = api.patiently(lambda: api.login(new_email("nobody"), PASSWORD))
    assert assert_error(wrong, 401, "invalid_credentials") == assert_error(unknown, 401, "invalid_credentials")
    assert api.patiently(lambda: api.login(email)).status_code == 200


def test_logout_all_ends_every_session_of_the_user(any_stack):
    api = any_stack.api()
    email = new_email("everywhere")
    first, second = api.tokens(email), api.tokens(email)
    assert api.logout_all(first["access_token"]).status_code == 204
    for pair in (first, second):
        assert_error(api.me(pair["access_token"]), 401, "token_revoked")
        assert_error(api.refresh(pair["refresh_token"]), 401, "token_revoked")
    assert api.me(api.tokens(email)["access_token"]).status_code == 200


def test_a_password_change_ends_the_other_sessions_and_keeps_this_client(any_stack):
    api = any_stack.api()
    email, new_password = new_email("change"), "another long passphrase"
    other, this = api.tokens(email), api.tokens(email)
    wrong = api.change_password(this["access_token"], "not it at all", new_password)
    assert_error(wrong, 403, "wrong_password")
    changed = api.change_password(this["access_token"], PASSWORD, new_password)
    assert changed.status_code == 200, changed.text
    assert_error(api.me(other["access_token"]), 401, "token_revoked")
    assert_error(api.me(this["access_token"]), 401, "token_revoked")
    assert api.me(json_of(changed)["access_token"]).status_code == 200
    assert_error(api.patiently(lambda: api.login(email)), 401, "invalid_credentials")
    assert api.patiently(lambda: api.login(email, new_password)).status_code == 200


def test_an_admin_disables_then_deletes_a_user(any_stack):
    api = any_stack.api()
    admin = api.tokens(any_stack.create_admin())["access_token"]
    email = new_email("disabled")
    user = api.tokens(email)
    user_id = json_of(api.me(user["access_token"]))["id"]
    disabled = api.update_user(admin, user_id, active=False)
    assert disabled.status_code == 200 and json_of(disabled)["active"] is False, disabled.text
    assert api.me(user["access_token"]).status_code == 401
    assert_error(api.refresh(user["refresh_token"]), 401, "token_revoked")
    assert_error(api.patiently(lambda: api.login(email)), 401, "invalid_credentials")
    assert api.delete_user(admin, user_id).status_code == 204
    assert api.register(email).status_code == 201  # the address is free again


def worker_pids(stack) -> set[str]:
    """gunicorn worker processes in the web container (children of the master, pid 1)."""
    script = (
        "import os\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    stat = open(f'/proc/{pid}/stat').read().split()\n"
        "    cmd = open(f'/proc/{pid}/cmdline').read()\n"
        "    if stat[3] == '1' and 'gunicorn' in cmd: print(pid)\n"
    )
    found = stack.exec_web("python", "-c", script)
    assert found.returncode == 0, found.stderr
    return set(found.stdout.split())


def served_by(logs: str, marker: str) -> set[str]:
    """The workers whose access log lines carry a request id starting with ``marker``: the text
    format (development) or one JSON object per line (production)."""
    pids = set(re.findall(rf"pid=<(\d+)> \[{marker}-\d+\]", logs))
    for line in logs.splitlines():
        if line.startswith("{") and f'"{marker}-' in line:
            pids.add(str(json.loads(line)["pid"]))
    return pids


def test_a_revoked_token_is_refused_by_every_worker(any_stack):
    api = any_stack.api()
    tokens = api.tokens(new_email("workers"))
    assert api.logout(tokens["access_token"]).status_code == 204
    workers = worker_pids(any_stack)
    assert len(workers) >= 2, workers
    marker = uuid.uuid4().hex[:12]
    url = any_stack.https + "/api/users/me"

    def probe(n):
        # A new TLS connection each time, many at once: nginx opens several upstream connections,
        # which the gunicorn workers accept in turn.
        return requests.get(
            url,
            headers={**bearer(tokens["access_token"]), "X-Request-ID": f"{marker}-{n}"},
            verify=str(any_stack.ca_file),
            timeout=10,
        )

    seen: set[str] = set()
    responses = []

    def round_robin():
        with ThreadPoolExecutor(max_workers=32) as pool:
            batch = list(pool.map(probe, range(len(responses), len(responses) + 64)))
        responses.extend(batch)
        seen.update(served_by(any_stack.logs("web"), marker))
        return seen >= workers

    assert until(round_robin, timeout=60, interval=0), f"workers {workers}, served by {seen}"
    for response in responses:
        assert_error(response, 401, "token_revoked")


def link_token(mail: dict) -> str:
    match = re.search(r"#token=([A-Za-z0-9._-]+)", mail["text"])
    assert match, mail["text"]
    return match.group(1)


def test_accounts_by_mail_verify_then_reset_a_forgotten_password(any_stack):
    """Verify the address, then a forgotten password, from the mails the stack sent to its sink."""
    api = any_stack.api()
    email = new_email("mail")
    tokens = api.tokens(email)
    verification = until(lambda: any_stack.mails(email), timeout=30)
    assert verification and verification[0]["subject"] == "[flask-stack] Verify your e-mail address"
    # The link leads to this stack's edge, and its HTML part is there too.
    assert f"https://localhost:{any_stack.https_port}/verify-email#token=" in verification[0]["html"]
    assert api.post("/api/auth/verify", json={"token": link_token(verification[0])}).status_code == 204
    assert json_of(api.me(tokens["access_token"]))["email_verified"] is True

    asked = api.post("/api/auth/password-reset", json={"email": email})
    assert asked.status_code == 202, asked.text
    resets = until(lambda: [m for m in any_stack.mails(email) if "Reset" in m["subject"]], timeout=30)
    assert resets, any_stack.mails(email)
    new_password = "a brand new passphrase"
    confirmed = api.post(
        "/api/auth/password-reset/confirm", json={"token": link_token(resets[-1]), "new_password": new_password}
    )
    assert confirmed.status_code == 204, confirmed.text
    assert_error(api.me(tokens["access_token"]), 401, "token_revoked")
    assert api.patiently(lambda: api.login(email, new_password)).status_code == 200


def test_make_mail_shows_what_the_dev_stack_sent(stack):
    api = stack.api()
    email = new_email("shown")
    api.tokens(email)
    assert until(lambda: stack.mails(email), timeout=30)
    shown = subprocess.run(["make", "--no-print-directory", "mail"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert shown.returncode == 0 and f"to {email}: [flask-stack] Verify your e-mail address" in shown.stdout, (
        shown.stdout[-2000:] + shown.stderr
    )
