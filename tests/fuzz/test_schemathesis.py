"""schemathesis (every check) on the API's own OpenAPI spec: no 5xx, no HTML, every answer as the
spec says, bad input refused with the right status. Bounded so it fits CI: a fixed seed, a fixed
number of examples per operation, and through nginx a pace under the edge's rate limit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from contract import PASSWORD

HERE = Path(__file__).resolve().parent
SEED = 20261202


def schemathesis(base_url: str, email: str, *options: str, ca_file: str | None = None) -> str:
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "fuzz_auth",  # the token provider in this directory
        "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),  # the hooks, and tests/contract.py
        "FUZZ_BASE_URL": base_url,
        "FUZZ_CA_FILE": ca_file or "",
        "FUZZ_ADMIN_EMAIL": email,
        "FUZZ_ADMIN_PASSWORD": PASSWORD,
    }
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base_url}/api/openapi.json",
        "--url",
        base_url,
        "--checks",
        "all",
        "--seed",
        str(SEED),
        "--generation-database",
        "none",  # nothing written beside the repository; the seed makes a run repeatable
        "--no-color",
        *(["--tls-verify", ca_file] if ca_file else []),
        *options,
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    summary = result.stdout[result.stdout.rfind("\n", 0, result.stdout.rfind("SUMMARY")) + 1 :]
    print(summary)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return summary


def test_the_api_holds_its_contract_under_fuzzing_on_make_dev(dev_server):
    summary = schemathesis(dev_server["base_url"], dev_server["email"], "--max-examples", "100")
    assert "No issues found" in summary


def test_the_api_holds_its_contract_under_fuzzing_through_nginx(stack):
    email = stack.create_admin()
    # This tier's edge allows 200 requests a second per address on /api/auth/ (SIGN_IN_RATE and
    # AUTH_RATE, conftest): stay well under it, or the fuzzer meets 429s instead of the API.
    summary = schemathesis(
        stack.https, email, "--max-examples", "30", "--rate-limit", "60/s", ca_file=str(stack.ca_file)
    )
    assert "No issues found" in summary
