"""`python -m hook worker | worker-health | rollback SHA | status`."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from .hooks import ConfigError
from .ledger import Ledger
from .settings import HookSettings

USAGE = "usage: python -m hook worker | worker-health | rollback COMMIT [--hook ID] | status"


def main(argv: list[str]) -> int:
    if not argv:
        print(USAGE, file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    try:
        settings = HookSettings.from_environ(with_secrets=False)
        ledger = Ledger(settings.ledger_path)
        if command == "worker":
            from .deployer import work

            work(settings)
            return 0
        if command == "worker-health":
            age = time.time() - settings.heartbeat_path.stat().st_mtime
            # Busy deploying is healthy too: the loop only beats between deploys.
            busy = ledger.status()["running"] is not None
            return 0 if age < 30 or busy else 1
        if command == "status":
            print(json.dumps(ledger.status(), indent=2))
            return 0
        if command == "rollback" and args:
            return rollback(settings, ledger, args)
    except ConfigError as error:
        print(f"hook: {error}", file=sys.stderr)
        return 2
    print(USAGE, file=sys.stderr)
    return 2


def rollback(settings: HookSettings, ledger: Ledger, args: list[str]) -> int:
    """Queue a deploy of an earlier commit: the same path as a push (fetch, build, health, switch)."""
    hook_id = args[args.index("--hook") + 1] if "--hook" in args else "github"
    hook = settings.hooks.get(hook_id)
    if hook is None:
        print(f"hook: no hook {hook_id!r}", file=sys.stderr)
        return 2
    root = settings.deploy.root or "."
    resolved = subprocess.run(
        ["git", "-C", root, "rev-parse", "--verify", f"{args[0]}^{{commit}}"], capture_output=True, text=True
    )
    if resolved.returncode != 0:
        print(f"hook: {args[0]!r} is not a commit in {root}", file=sys.stderr)
        return 2
    sha = resolved.stdout.strip()
    ledger.create()  # before the receiver ever ran: deploy/install-host.sh queues the first release
    decision = ledger.enqueue(hook.id, sha, hook.ref, kind="rollback")
    print(json.dumps({"status": decision.outcome, "reason": decision.reason, "deploy_id": decision.deploy_id}))
    return 0 if decision.outcome in {"accepted", "skipped"} else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
