"""One address flooding sign-in with guesses: it meets the edge's limit, everyone else signs in.

The attacker runs in a container on the stack's edge network, so it has an address of its own (the
tests' own requests come from the host)."""

from __future__ import annotations

import json
import time
import uuid

import docker

from contract import PASSWORD
from figures import record
from traffic import percentile

FLOOD = r"""
import json, ssl, sys, threading, time, urllib.error, urllib.request
context = ssl._create_unverified_context()  # the attacker does not care whose certificate it is
results, lock = [], threading.Lock()
def guess(n):
    stop = time.time() + 12
    while time.time() < stop:
        body = json.dumps({"email": f"guess-{n}-{time.time()}@example.com", "password": "wrong password!"}).encode()
        request = urllib.request.Request("https://nginx:8443/api/auth/login", data=body,
                                         headers={"Content-Type": "application/json"})
        started = time.time()
        try:
            status = urllib.request.urlopen(request, context=context, timeout=15).status
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError:
            status = None
        with lock:
            results.append((status, time.time() - started))
threads = [threading.Thread(target=guess, args=(n,)) for n in range(16)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps(results))
"""


def test_a_flood_of_sign_ins_from_one_address_leaves_everyone_else_signing_in(stack):
    api = stack.api()
    email = f"bystander-{uuid.uuid4().hex[:8]}@example.com"
    assert api.register(email).status_code == 201
    # By id: a tier running beside this one may have given the tag to an image of its own since.
    image = stack.container("web").image.id
    attacker = docker.from_env().containers.run(
        image, ["python", "-c", FLOOD], network=f"{stack.project}_edge", detach=True, labels={"flask-stack.tests": "1"}
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
    statuses = [status for status, _ in flood]
    record(
        "faults",
        "a sign-in flood from one address",
        {
            "flood_requests": len(flood),
            "flood_429": statuses.count(429),
            "flood_401": statuses.count(401),
            "flood_503": statuses.count(503),
            "flood_p99_ms": round(percentile([seconds for _, seconds in flood], 0.99) * 1000),
            "bystander_sign_ins": [status for status, _ in answers],
            "bystander_waits_for_a_hashing_slot": waited_out,
            "bystander_slowest_ms": round(max(seconds for _, seconds in answers) * 1000),
        },
    )
    assert [status for status, _ in answers] == [200] * 5
    # 401 for a guess that got through, 429 from the edge, 503 (with Retry-After) when the hashing
    # slots were all busy: never a wait, never another error.
    assert set(statuses) <= {401, 429, 503}, sorted(set(map(str, statuses)))
    assert statuses.count(429) > statuses.count(401), "the edge's per-address limit did not hold the flood back"
