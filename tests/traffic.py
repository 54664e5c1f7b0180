"""A steady load on the running stack, to prove what a deploy or a fault costs the clients."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import requests
from requests.adapters import HTTPAdapter


class NamedHostAdapter(HTTPAdapter):
    """Connects where the URL says (127.0.0.1) but asks for and checks the certificate of ``name``,
    as a client does whose DNS sends ``name`` to this machine."""

    def __init__(self, name: str):
        self.name = name
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, server_hostname=self.name, assert_hostname=self.name, **kwargs)


@dataclass
class Outcome:
    url: str
    at: float  # when the request was sent
    seconds: float  # how long the answer took
    status: int | None  # None: no HTTP answer at all (reset, refused, timed out)
    detail: str  # the version or status the API reported, the error code, or what went wrong
    retry_after: str | None = None
    instance: str | None = None  # which web container answered (healthz says)
    retried: bool = False  # sent again after its kept-alive connection was closed unanswered

    @property
    def ok(self) -> bool:
        return self.status == 200


def closed_unanswered(outcome: Outcome) -> bool:
    """The connection was closed or reset before any answer (not a timeout, not a TLS failure)."""
    return "RemoteDisconnected" in outcome.detail or "ConnectionResetError" in outcome.detail


def describe(response: requests.Response) -> str:
    """What the answer said: the version (healthz), the error code, or why it is not the contract's."""
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        return f"not JSON ({response.headers.get('Content-Type')}): {response.text[:120]}"
    try:
        body = response.json()
    except ValueError:
        return f"invalid JSON: {response.text[:120]}"
    if response.status_code == 200:
        return str(body.get("version", "ok")) if isinstance(body, dict) else "ok"
    error = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(error, dict) and isinstance(error.get("code"), str) and error.get("message")):
        return f"not the error shape: {response.text[:120]}"
    return error["code"]


def instance_of(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("instance") if isinstance(body, dict) else None


@dataclass
class Traffic:
    """Threads that GET ``urls`` in turn until stopped. By default each request opens a new TLS
    connection, as new clients meet nginx reloads and container switches; ``keep_alive`` keeps one
    connection per thread, as browsers and API clients do. ``server_name``: the name whose
    certificate is asked for and checked (NamedHostAdapter), when not the URL's host.

    ``interval``: each thread sends at most one request per interval: a steady stream of clients
    (80 a second with four threads), not a flood, which would cost the machine's cores more than
    the stack under test gets (the flood tests are test_hostile_clients.py's and `make bench`'s).

    ``retry_closed_idle``: when a kept-alive connection is closed before any answer came, send the
    GET again once on a new connection, as HTTP/1.1 lets a client do with an idempotent request
    (RFC 9112, 9.3.1) and as browsers, curl and Go's client do. A server may close an idle
    connection at any moment (nginx does at keepalive_timeout, and at every reload, for the idle
    connections of its old workers); such a request was never processed. Each retry is counted."""

    urls: Sequence[str]
    ca_file: str
    threads: int = 4
    interval: float = 0.05
    headers: dict = field(default_factory=dict)
    keep_alive: bool = False
    server_name: str | None = None
    retry_closed_idle: bool = False
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self):
        if isinstance(self.urls, str):
            self.urls = [self.urls]
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        self._lock = threading.Lock()

    def _run(self):
        session = requests.Session()
        session.verify = self.ca_file
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override the CA set here
        if self.server_name:
            session.mount("https://", NamedHostAdapter(self.server_name))
        headers = dict(self.headers) if self.keep_alive else {**self.headers, "Connection": "close"}
        reused = False  # the last request left its connection open for this one
        for url in itertools.cycle(self.urls):
            if self._stop.is_set():
                break
            started = time.time()
            outcome = self._get(session, url, headers, started)
            if outcome.status is None and reused and self.retry_closed_idle and closed_unanswered(outcome):
                outcome = replace(self._get(session, url, headers, started), retried=True)
            reused = self.keep_alive and outcome.status is not None
            with self._lock:
                self.outcomes.append(outcome)
            self._stop.wait(max(0.0, started + self.interval - time.time()))

    @staticmethod
    def _get(session: requests.Session, url: str, headers: dict, started: float) -> Outcome:
        try:
            response = session.get(url, timeout=15, headers=headers)
        except requests.RequestException as error:
            return Outcome(url, started, time.time() - started, None, f"{type(error).__name__}: {error}")
        return Outcome(
            url,
            started,
            time.time() - started,
            response.status_code,
            describe(response),
            response.headers.get("Retry-After"),
            instance_of(response),
        )

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

    def answered(self, path: str = "") -> list[Outcome]:
        """The requests answered 200 (to URLs ending in ``path``), in the order they were sent."""
        return sorted((o for o in self.outcomes if o.ok and o.url.endswith(path)), key=lambda o: o.at)

    def between(self, start: float, end: float) -> list[Outcome]:
        """The requests sent in [start, end)."""
        return sorted((o for o in self.outcomes if start <= o.at < end), key=lambda o: o.at)

    def overlap_seconds(self, old: str, new: str) -> float:
        """How long both versions answered (healthz tells): while nginx's old workers finish,
        requests started a moment apart can meet either version."""
        answered = self.answered("/api/healthz")
        first_new = next((o.at for o in answered if o.detail == new), None)
        last_old = max((o.at for o in answered if o.detail == old), default=None)
        if first_new is None or last_old is None:
            return 0.0
        return round(max(0.0, last_old - first_new), 3)

    def instances(self) -> set[str]:
        """The web containers that answered healthz."""
        return {o.instance for o in self.answered("/api/healthz") if o.instance}

    def summary(self) -> dict:
        return {
            "sent": self.sent,
            "failed": len(self.failures),
            "versions": dict(Counter(o.detail for o in self.answered("/api/healthz"))),
            "instances": len(self.instances()),
            "retried on a new connection": sum(o.retried for o in self.outcomes),
        }


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0
