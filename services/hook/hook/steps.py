"""Running one step of a deploy: a command with a timeout, its output streamed into the ledger."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Sequence

from .deploys import Ledger

FLUSH_EVERY = 2.0  # seconds between writes of a running step's output


class StepFailed(RuntimeError):
    """A step did not succeed; the message is the deploy's reason."""


class StepLog:
    """The output of one step, as it happens."""

    def __init__(self, ledger: Ledger, deploy_id: int, position: int):
        self.ledger = ledger
        self.deploy_id = deploy_id
        self.position = position
        self.lines: list[str] = []
        self.flushed_at = time.monotonic()

    def write(self, text: str) -> None:
        self.lines.append(text if text.endswith("\n") else text + "\n")
        if time.monotonic() - self.flushed_at > FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        self.ledger.update_step_output(self.deploy_id, self.position, self.text())
        self.flushed_at = time.monotonic()

    def text(self) -> str:
        return "".join(self.lines)


def run_command(
    log: StepLog,
    argv: Sequence[str],
    timeout: float,
    cwd: str | None = None,
    env: dict | None = None,
    check: bool = True,
) -> int:
    """Run ``argv``, copying its output to ``log`` line by line; kill it at ``timeout`` seconds."""
    log.write("$ " + " ".join(argv))
    process = subprocess.Popen(
        list(argv), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )

    def pump():
        for line in process.stdout:
            log.write(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        returncode = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        reader.join(timeout=5)
        raise StepFailed(f"{argv[0]} {argv[1] if len(argv) > 1 else ''} timed out after {timeout:.0f}s") from None
    reader.join(timeout=5)
    if check and returncode != 0:
        raise StepFailed(f"`{' '.join(argv[:4])}…` exited with {returncode}")
    return returncode
