"""A steady load on the running stack, to prove that something (a deploy) costs no request."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests


@dataclass
class Outcome:
    at: float
    ok: bool
    detail: str  # the version the API reported, or what went wrong


@dataclass
class Traffic:
    """Threads that GET ``url`` over fresh TLS connections until stopped (no keep-alive, so nginx
    reloads and container switches are met exactly as new clients meet them)."""

    url: str
    ca_file: str
    threads: int = 4
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        self._lock = threading.Lock()

    def _run(self):
        while not self._stop.is_set():
            started = time.time()
            try:
                response = requests.get(self.url, verify=self.ca_file, timeout=15, headers={"Connection": "close"})
                ok = response.status_code == 200
                detail = (
                    response.json().get("version", "?") if ok else f"HTTP {response.status_code}: {response.text[:200]}"
                )
            except (requests.RequestException, ValueError) as error:
                ok, detail = False, f"{type(error).__name__}: {error}"
            with self._lock:
                self.outcomes.append(Outcome(started, ok, detail))

    def __enter__(self) -> Traffic:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *_exc):
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    @property
    def sent(self) -> int:
        return len(self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]

    def answered(self) -> list[Outcome]:
        return sorted((o for o in self.outcomes if o.ok), key=lambda o: o.at)

    def overlap_seconds(self, old: str, new: str) -> float:
        """How long both versions answered: while nginx's old workers finish, requests started a
        moment apart can meet either version."""
        answered = self.answered()
        first_new = next((o.at for o in answered if o.detail == new), None)
        last_old = max((o.at for o in answered if o.detail == old), default=None)
        if first_new is None or last_old is None:
            return 0.0
        return round(max(0.0, last_old - first_new), 3)

    def summary(self) -> dict:
        return {
            "sent": self.sent,
            "failed": len(self.failures),
            "versions": dict(Counter(o.detail for o in self.outcomes if o.ok)),
        }
