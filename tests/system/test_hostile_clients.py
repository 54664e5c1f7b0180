"""One address flooding what costs a password hash (sign-in guesses; password changes of accounts
it registered): it meets the edge's limit, everyone else signs in.

The attacker runs in a container on the stack's edge network, so it has an address of its own (the
tests' own requests come from the host)."""

from __future__ import annotations

import json
import time
import uuid

import docker
import pytest
import requests

from contract import PASSWORD
from figures import record
from traffic import percentile

# A flood uses what the machine has, and the bystander's answers are bounded.
pytestmark = pytest.mark.load

# What each flood script (run in a container, as python's -c) starts with: for 12 s, each thread
# sends a JSON request to the edge over and over; each answer's status and time are kept, printed
# at the end as one line of JSON.
FLOOD = r"""
import json, ssl, sys, threading, time, urllib.error, urllib.request
context = ssl._create_unverified_context()  # the attacker does not care whose certificate it is
results, lock = [], threading.Lock()
def send(path, body, headers):
    request = urllib.request.Request("https://nginx:8443" + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **headers})
    started, answer = time.time(), None
    try:
        with urllib.request.urlopen(request, context=context, timeout=15) as response:
            status, answer = response.status, json.load(response)
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError:
        status = None
    with lock:
        results.append((status, time.time() - started))
    return status, answer
def for_12_seconds(step, arguments):
    def run(state):
        stop = time.time() + 12
        while time.time() < stop:
            state = step(*state)
    threads = [threading.Thread(target=run, args=(state,)) for state in arguments]
    [t.start() for t in threads]; [t.join() for t in threads]
    print(json.dumps(results))
"""
# Sixteen threads guessing passwords of made-up accounts.
GUESSES = (
    FLOOD
    + r"""
def guess(n):
    send("/api/auth/login", {"email": f"guess-{n}-{time.time()}@example.com", "password": "wrong password!"}, {})
    return (n,)
for_12_seconds(guess, [(n,) for n in range(16)])
"""
)
# Each of the attacker's accounts (argv: [[access token, password], ...]) changes its password over
# and over, with the right current password: two hashes each, had the edge let them through.
CHANGES = (
    FLOOD
    + r"""
def change(token, password):
    new = password[::-1]
    status, answer = send("/api/auth/password", {"current_password": password, "new_password": new},
                          {"Authorization": "Bearer " + token})
    return (answer["access_token"], new) if status == 200 else (token, password)
for_12_seconds(change, [tuple(account) for account in json.loads(sys.argv[1])])
"""
)


def flood_beside_a_bystander(stack, script: list[str]) -> tuple[list[tuple[int, float]], list, int]:
    """``script`` (python's argv) in a container on the edge network for its 12 s while a bystander
    signs in five times from the host: the bystander's (status, seconds), the flood's, and how
    often the bystander was asked to wait for a hashing slot."""
    api = stack.api()
    email = f"bystander-{uuid.uuid4().hex[:8]}@example.com"
    assert api.register(email).status_code == 201
    # By id: a tier running beside this one may have given the tag to an image of its own since.
    image = stack.container("web").image.id
    attacker = docker.from_env().containers.run(
        image, ["python", *script], network=f"{stack.project}_edge", detach=True, labels={"flask-stack.tests": "1"}
    )
    try:
        time.sleep(3)  # the flood is on
        answers = []
        waited_out = 0
        for _ in range(5):
            started = time.monotonic()
            response = api.login(email, PASSWORD)
            for _ in range(3):
                if response.status_code != 503 or not response.headers.get("Retry-After"):
                    break
                # The hashing slots were all busy for PASSWORD_HASH_WAIT_SECONDS: the answer says when
                # to come back, and a client that does so gets in (on a slow machine the flood's own
                # hashes can hold the slots past one wait, so a client may have to come back again).
                waited_out += 1
                time.sleep(float(response.headers["Retry-After"]))
                response = api.login(email, PASSWORD)
            answers.append((response.status_code, time.monotonic() - started))
            time.sleep(1)
        assert attacker.wait(timeout=60)["StatusCode"] == 0, attacker.logs().decode()[-2000:]
        flood = json.loads(attacker.logs(stderr=False).decode().strip().splitlines()[-1])
    finally:
        attacker.remove(force=True)
    return answers, flood, waited_out


def record_flood(name: str, answers: list, flood: list, waited_out: int) -> list:
    statuses = [status for status, _ in flood]
    record(
        "faults",
        name,
        {
            "flood_requests": len(flood),
            **{f"flood_{status}": statuses.count(status) for status in sorted(set(statuses), key=str)},
            "flood_p99_ms": round(percentile([seconds for _, seconds in flood], 0.99) * 1000),
            "bystander_sign_ins": [status for status, _ in answers],
            "bystander_waits_for_a_hashing_slot": waited_out,
            "bystander_slowest_ms": round(max(seconds for _, seconds in answers) * 1000),
        },
    )
    return statuses


def test_a_flood_of_sign_ins_from_one_address_leaves_everyone_else_signing_in(stack):
    answers, flood, waited_out = flood_beside_a_bystander(stack, ["-c", GUESSES])
    statuses = record_flood("a sign-in flood from one address", answers, flood, waited_out)
    assert [status for status, _ in answers] == [200] * 5
    # 401 for a guess that got through, 429 from the edge, 503 (with Retry-After) when the hashing
    # slots were all busy: never a wait, never another error.
    assert set(statuses) <= {401, 429, 503}, sorted(set(map(str, statuses)))
    assert statuses.count(429) > statuses.count(401), "the edge's per-address limit did not hold the flood back"


def test_a_flood_of_password_changes_from_one_address_leaves_everyone_else_signing_in(stack):
    """Password changes cost two hashes each: the edge holds them to the sign-in budget."""
    api = stack.api()
    accounts = []
    for _ in range(8):
        email = f"changer-{uuid.uuid4().hex[:8]}@example.com"
        accounts.append([api.tokens(email)["access_token"], PASSWORD])
    answers, flood, waited_out = flood_beside_a_bystander(stack, ["-c", CHANGES, json.dumps(accounts)])
    statuses = record_flood("a flood of password changes from one address", answers, flood, waited_out)
    assert [status for status, _ in answers] == [200] * 5
    assert set(statuses) <= {200, 429, 503}, sorted(set(map(str, statuses)))
    # Within the sign-in budget (2 a second, a burst of 5) over the flood's 12 s and its start, not
    # the looser one of the rest of /api/auth/ (10 a second, a burst of 20), where it used to be.
    assert statuses.count(200) <= 2 * 14 + 5, statuses.count(200)


# Uploads that never finish (argv: path, body size, how many at once): each sends all of its body
# but the last byte, then waits for what the edge makes of it. An answer that comes before the body
# is sent (a 429) is read first, and no body is sent before every connection has had its answer or
# its 2 s without one: a body the edge answered early (500 when its capped tmpfs is full) frees a
# connection slot, and a connection still to come would have had it (28 429s where 36 were due, on
# a machine so busy that half a second was not enough for the 429s to come).
SLOW_BODIES = r"""
import json, socket, ssl, sys, threading
context = ssl._create_unverified_context()
path, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
statuses, lock = [], threading.Lock()
every_connection_answered = threading.Barrier(count, timeout=120)
def status_of(answer):
    return int(answer.split()[1]) if answer.startswith(b"HTTP/") else None
def upload():
    status, tls = None, None
    try:
        tls = context.wrap_socket(socket.create_connection(("nginx", 8443), timeout=30), server_hostname="localhost")
        tls.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {size}\r\n\r\n".encode())
        tls.settimeout(2)
        try:
            status = status_of(tls.recv(200))
        except socket.timeout:
            pass
    except OSError:
        tls = None
    try:
        every_connection_answered.wait()
        if tls is not None and status is None:
            tls.settimeout(30)
            for start in range(0, size - 1, 65536):
                tls.sendall(b" " * min(65536, size - 1 - start))
            status = status_of(tls.recv(200))
    except (OSError, threading.BrokenBarrierError):
        pass
    with lock:
        statuses.append(status)
threads = [threading.Thread(target=upload) for _ in range(count)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps(statuses))
"""


def test_slow_uploads_from_one_address_cannot_starve_the_production_edge(production):
    """Uploads as big as the edge takes that never finish, to the hook (5 MiB) and the API (1 MiB),
    more than the edge's memory could hold: each address gets a few connections at once, a body
    that stops coming is dropped, bodies are kept in a capped tmpfs; the site answers throughout
    and nginx is never killed."""
    nginx = production.container("nginx")
    nginx.reload()
    restarts = nginx.attrs["RestartCount"]
    image = production.container("web").image.id
    # The API's path is under no request rate (a sign-in's would answer 429 before any body came).
    floods = [("/hooks/github", 5 * 2**20, 60), ("/api/healthz", 2**20 - 1, 100)]
    attackers = [
        docker.from_env().containers.run(
            image,
            ["python", "-c", SLOW_BODIES, path, str(size), str(count)],
            network=f"{production.project}_edge",
            detach=True,
            labels={"flask-stack.tests": "1"},
        )
        for path, size, count in floods
    ]
    answered = []
    try:
        while any(attacker.reload() or attacker.status == "running" for attacker in attackers):
            started = time.monotonic()
            try:
                answered.append((production.get("/api/healthz").status_code, time.monotonic() - started))
            except requests.RequestException as error:
                answered.append((type(error).__name__, time.monotonic() - started))
            time.sleep(0.2)
        results = [json.loads(a.logs(stderr=False).decode().strip().splitlines()[-1]) for a in attackers]
    finally:
        for attacker in attackers:
            attacker.remove(force=True)
    nginx.reload()
    figures = {
        f"{path} x{count}": {str(status): statuses.count(status) for status in sorted(set(statuses), key=str)}
        for (path, _, count), statuses in zip(floods, results, strict=True)
    }
    figures["healthz"] = {"asked": len(answered), "slowest_ms": round(max(s for _, s in answered) * 1000)}
    record("faults", "slow uploads from one address against the production edge", figures)
    assert [status for status, _ in answered if status != 200] == [], answered
    assert not nginx.attrs["State"]["OOMKilled"] and nginx.attrs["RestartCount"] == restarts
    hooks, api = results
    assert hooks.count(429) >= 60 - 4, figures  # four at once from one address, no more
    assert api.count(429) >= 100 - 64, figures
