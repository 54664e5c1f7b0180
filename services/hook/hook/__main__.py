"""`python -m hook worker | worker-health | rollback SHA | status`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from .config import ConfigError, load_hooks
from .deploys import Ledger

USAGE = "usage: python -m hook worker | worker-health | rollback COMMIT [--hook ID] | status"


def main(argv: list[str]) -> int:
    if not argv:
        print(USAGE, file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    ledger = Ledger.from_environ(os.environ)
    try:
        if command == "worker":
            from .worker import work

            work()
            return 0
        if command == "worker-health":
            from .worker import heartbeat_path

            age = time.time() - heartbeat_path(os.environ).stat().st_mtime
            # Busy deploying is healthy too: the loop only beats between deploys.
            busy = ledger.status()["running"] is not None
            return 0 if age < 30 or busy else 1
        if command == "status":
            print(json.dumps(ledger.status(), indent=2))
            return 0
        if command == "rollback" and args:
            return rollback(ledger, args)
    except ConfigError as error:
        print(f"hook: {error}", file=sys.stderr)
        return 2
    print(USAGE, file=sys.stderr)
    return 2


def rollback(ledger: Ledger, args: list[str]) -> int:
    """Queue a deploy of an earlier commit: the same path as a push (fetch, build, health, switch)."""
    hook_id = args[args.index("--hook") + 1] if "--hook" in args else "github"
    hooks = load_hooks(with_secrets=False)
    if hook_id not in hooks:
        print(f"hook: no hook {hook_id!r}", file=sys.stderr)
        return 2
    root = os.environ.get("DEPLOY_ROOT", ".")
    resolved = subprocess.run(
        ["git", "-C", root, "rev-parse", "--verify", f"{args[0]}^{{commit}}"], capture_output=True, text=True
    )
    if resolved.returncode != 0:
        print(f"hook: {args[0]!r} is not a commit in {root}", file=sys.stderr)
        return 2
    sha = resolved.stdout.strip()
    decision = ledger.enqueue(hook_id, sha, hooks[hook_id].ref, kind="rollback")
    print(json.dumps({"status": decision.outcome, "reason": decision.reason, "deploy_id": decision.deploy_id}))
    return 0 if decision.outcome in {"accepted", "skipped"} else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
