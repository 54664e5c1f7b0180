"""A stop that lets the edge move away first.

Under Swarm a stopping task leaves DNS and gets SIGTERM at about the same moment; nginx sees the
change a second or so later and reloads. gunicorn on SIGTERM closes its listening socket at once,
and a request nginx sends meanwhile, or on a connection it keeps alive, would fail. With a drain
time the master keeps every worker serving that long after SIGTERM, then stops as gunicorn always
does: no new connections, requests in flight finished within the graceful timeout."""

from __future__ import annotations

import time
from typing import Any


def drain_before_stopping(arbiter: Any, seconds: float) -> None:  # gunicorn's Arbiter has no types
    """Delay the arbiter's graceful stop (SIGTERM) by ``seconds``; SIGINT and SIGQUIT stay quick."""
    stop_gracefully = arbiter.handle_term

    def handle_term() -> None:
        arbiter.log.info("SIGTERM: serving %.0f s more while the edge lets go, then stopping", seconds)
        time.sleep(seconds)
        stop_gracefully()

    # The arbiter looks its signal handlers up by name on itself each time a signal arrives.
    arbiter.handle_term = handle_term
