"""What a deploy step does: run a command (a timeout, its output streamed into the step's log), or
wait for something (on the deployer's clock, which unit tests replace)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")


class StepFailed(RuntimeError):
    """A step did not succeed; the message is the deploy's reason."""


class Log(Protocol):
    def write(self, text: str) -> None: ...


def run_command(
    log: Log,
    argv: Sequence[str],
    timeout: float,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> int:
    """Run ``argv``, copying its output to ``log`` line by line; kill it at ``timeout`` seconds."""
    log.write("$ " + " ".join(argv))
    process = subprocess.Popen(
        list(argv), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )

    def pump() -> None:
        assert process.stdout is not None  # stdout=PIPE
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


def until(
    check: Callable[[], T],
    timeout: float,
    interval: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> T:
    """Call ``check`` every ``interval`` seconds until it returns something truthy (or raises);
    that value, or its last one once ``timeout`` seconds have passed."""
    deadline = clock() + timeout
    while not (result := check()) and clock() < deadline:
        sleep(interval)
    return result
