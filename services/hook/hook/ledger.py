"""The deploy ledger: deliveries seen, deploys with their steps and logs, the live commit.

SQLite on a volume shared by the receiver (which enqueues) and the deployer (which claims and
records). Every decision that depends on the current state runs inside one ``BEGIN IMMEDIATE``
transaction, so two webhooks arriving together cannot both enqueue, and the deployer cannot claim a
deploy that is being superseded.

Queue rules: one deploy runs at a time; at most one waits. A newer commit supersedes the waiting
one (recorded as skipped, with the reason). A commit that is live, running or waiting already is
not deployed again. A delivery id seen before changes nothing. A push only moves forward: a commit
the deployer has recorded as an ancestor of the live one is refused (``live_ancestry``; the
deployer checks every other commit itself once it has fetched it). Going back is a rollback.

Each step of a deploy is written by one object: ``with ledger.step(deploy_id, "build") as log:``
records its start, streams what ``log`` is given, and records how it ended.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

COMMIT_ID = re.compile(r"[0-9a-f]{40}")  # a full SHA-1, the only form a deploy takes (use fullmatch)

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY,
    hook_id TEXT NOT NULL,
    event TEXT NOT NULL,
    received_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    deploy_id INTEGER
);
CREATE TABLE IF NOT EXISTS deploys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hook_id TEXT NOT NULL,
    sha TEXT NOT NULL,
    ref TEXT NOT NULL,
    kind TEXT NOT NULL,               -- push | rollback
    delivery_id TEXT,
    status TEXT NOT NULL,             -- queued | running | succeeded | failed | rolled_back | refused | skipped
    reason TEXT NOT NULL DEFAULT '',
    queued_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS steps (
    deploy_id INTEGER NOT NULL REFERENCES deploys(id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,             -- running | succeeded | failed
    started_at REAL NOT NULL,
    finished_at REAL,
    output TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (deploy_id, position)
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL
);
-- The live commit's ancestors (the most recent ones), written by the deployer, which has the
-- repository, for the receiver, which has not: a push of one of them is a replay, or late.
CREATE TABLE IF NOT EXISTS live_ancestry (
    sha TEXT PRIMARY KEY
);
"""

OUTPUT_LIMIT = 64 * 1024  # per step: the tail of what it printed
FLUSH_EVERY = 2.0  # seconds between writes of a running step's output
FINISHED = ("succeeded", "failed", "rolled_back", "refused", "skipped")


@dataclass(frozen=True)
class Decision:
    """What became of a push: ``accepted`` (queued), ``skipped`` (nothing to do), ``refused`` (it
    would go backwards), ``duplicate`` (a delivery seen before), with why."""

    outcome: str
    reason: str
    deploy_id: int | None = None


class StepLog:
    """The output of one running step, written to the ledger as it comes (every few seconds)."""

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
        self.ledger._update_step(self.deploy_id, self.position, None, self.text())
        self.flushed_at = time.monotonic()

    def text(self) -> str:
        return "".join(self.lines)


class Ledger:
    def __init__(self, path: str):
        self.path = path

    def connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys = ON")
        return connection

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads, closed afterwards (sqlite3's own context manager leaves it open)."""
        connection = self.connect()
        try:
            yield connection
        finally:
            connection.close()

    def create(self) -> None:
        with self.reading() as connection:
            connection.executescript(SCHEMA)
        # Group-writable: the receiver and the deployer run as different users sharing a group (the
        # directory is setgid). SQLite creates files 0644 and gives its journal the database's mode.
        if os.stat(self.path).st_uid == os.geteuid():
            os.chmod(self.path, 0o664)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self.connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        finally:
            connection.close()

    # --- receiver side --------------------------------------------------------------------------

    def seen_delivery(self, delivery_id: str) -> sqlite3.Row | None:
        with self.reading() as connection:
            row: sqlite3.Row | None = connection.execute(
                "SELECT * FROM deliveries WHERE delivery_id = ?", (delivery_id,)
            ).fetchone()
            return row

    def record_delivery(self, delivery_id: str, hook_id: str, event: str, decision: Decision) -> None:
        with self.transaction() as connection:
            self._record_delivery(connection, delivery_id, hook_id, event, decision)

    @staticmethod
    def _record_delivery(
        connection: sqlite3.Connection, delivery_id: str, hook_id: str, event: str, decision: Decision
    ) -> None:
        connection.execute(
            "INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?)",
            (delivery_id, hook_id, event, time.time(), decision.outcome, decision.reason, decision.deploy_id),
        )

    def enqueue(
        self,
        hook_id: str,
        sha: str,
        ref: str,
        kind: str = "push",
        delivery_id: str | None = None,
        forced: bool = False,
    ) -> Decision:
        """Queue a deploy of ``sha`` unless it is live, running or waiting, or (a push that is not a
        force-push) an ancestor of the live commit; a waiting older one is superseded."""
        with self.transaction() as connection:
            if delivery_id is not None:
                seen = connection.execute(
                    "SELECT outcome, reason, deploy_id FROM deliveries WHERE delivery_id = ?", (delivery_id,)
                ).fetchone()
                if seen is not None:
                    return Decision(
                        "duplicate", f"delivery {delivery_id} was handled already: {seen['reason']}", seen["deploy_id"]
                    )
            decision = self._refusal(connection, sha, kind, forced) or self._decide(
                connection, hook_id, sha, ref, kind, delivery_id
            )
            if delivery_id is not None:
                self._record_delivery(connection, delivery_id, hook_id, "push", decision)
            return decision

    def _refusal(self, connection: sqlite3.Connection, sha: str, kind: str, forced: bool) -> Decision | None:
        if kind != "push" or forced:
            return None  # a rollback goes back on purpose; a force-push may move the branch back
        live = self._get_state(connection, "live_sha")
        if live is None or live == sha:
            return None
        if connection.execute("SELECT 1 FROM live_ancestry WHERE sha = ?", (sha,)).fetchone() is None:
            return None  # not known as older: the deployer checks it once it has fetched it
        return Decision(
            "refused",
            f"{sha[:12]} is older than the live commit {live[:12]} (one of its ancestors): a push only "
            f"moves forward; to go back, roll back (make rollback SHA={sha[:12]})",
        )

    def _decide(
        self, connection: sqlite3.Connection, hook_id: str, sha: str, ref: str, kind: str, delivery_id: str | None
    ) -> Decision:
        active = connection.execute(
            "SELECT id, sha, status FROM deploys WHERE status IN ('queued', 'running') ORDER BY id"
        ).fetchall()
        for deploy in active:
            if deploy["sha"] == sha:
                verb = "being deployed" if deploy["status"] == "running" else "queued"
                return Decision(
                    "skipped" if deploy["status"] == "running" else "accepted",
                    f"{sha[:12]} is already {verb} (deploy {deploy['id']})",
                    deploy["id"],
                )
        live = self._get_state(connection, "live_sha")
        if live == sha and not any(d["status"] == "running" for d in active):
            return Decision("skipped", f"{sha[:12]} is already live")
        now = time.time()
        cursor = connection.execute(
            "INSERT INTO deploys (hook_id, sha, ref, kind, delivery_id, status, queued_at) "
            "VALUES (?, ?, ?, ?, ?, 'queued', ?)",
            (hook_id, sha, ref, kind, delivery_id, now),
        )
        deploy_id = cursor.lastrowid
        superseded = [d["id"] for d in active if d["status"] == "queued"]
        for old_id in superseded:
            connection.execute(
                "UPDATE deploys SET status = 'skipped', reason = ?, finished_at = ? WHERE id = ?",
                (f"superseded by deploy {deploy_id} ({sha[:12]}) before it started", now, old_id),
            )
        reason = f"queued {sha[:12]}" + (f"; superseded deploy {', '.join(map(str, superseded))}" if superseded else "")
        return Decision("accepted", reason, deploy_id)

    # --- deployer side --------------------------------------------------------------------------

    def claim_next(self) -> sqlite3.Row | None:
        """Mark the waiting deploy as running and return it; None when nothing waits or one runs."""
        with self.transaction() as connection:
            if connection.execute("SELECT 1 FROM deploys WHERE status = 'running'").fetchone():
                return None
            deploy = connection.execute("SELECT * FROM deploys WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
            if deploy is None:
                return None
            live = self._get_state(connection, "live_sha")
            now = time.time()
            if live == deploy["sha"]:
                connection.execute(
                    "UPDATE deploys SET status = 'skipped', reason = ?, started_at = ?, finished_at = ? WHERE id = ?",
                    (f"{deploy['sha'][:12]} is already live", now, now, deploy["id"]),
                )
                return None
            connection.execute(
                "UPDATE deploys SET status = 'running', started_at = ? WHERE id = ?", (now, deploy["id"])
            )
            claimed: sqlite3.Row = connection.execute("SELECT * FROM deploys WHERE id = ?", (deploy["id"],)).fetchone()
            return claimed

    def interrupt_running(self, reason: str) -> list[int]:
        """A deployer that starts finds deploys its predecessor left running: they failed."""
        with self.transaction() as connection:
            ids = [row["id"] for row in connection.execute("SELECT id FROM deploys WHERE status = 'running'")]
            for deploy_id in ids:
                connection.execute(
                    "UPDATE deploys SET status = 'failed', reason = ?, finished_at = ? WHERE id = ?",
                    (reason, time.time(), deploy_id),
                )
                connection.execute(
                    "UPDATE steps SET status = 'failed', finished_at = ? WHERE deploy_id = ? AND status = 'running'",
                    (time.time(), deploy_id),
                )
            return ids

    @contextmanager
    def step(self, deploy_id: int, name: str) -> Iterator[StepLog]:
        """One step of a deploy: started now, its output as it comes, ended by how the block ends (an
        exception marks it failed, with what it said, and goes on up)."""
        with self.transaction() as connection:
            position = connection.execute(
                "SELECT COALESCE(MAX(position), 0) + 1 FROM steps WHERE deploy_id = ?", (deploy_id,)
            ).fetchone()[0]
            connection.execute(
                "INSERT INTO steps (deploy_id, position, name, status, started_at) VALUES (?, ?, ?, 'running', ?)",
                (deploy_id, position, name, time.time()),
            )
        log = StepLog(self, deploy_id, position)
        try:
            yield log
        except BaseException as error:
            log.write(f"FAILED: {error}")
            self._update_step(deploy_id, position, "failed", log.text())
            raise
        self._update_step(deploy_id, position, "succeeded", log.text())

    def _update_step(self, deploy_id: int, position: int, status: str | None, output: str) -> None:
        """The step's output so far; with ``status``, its end."""
        with self.transaction() as connection:
            if status is None:
                connection.execute(
                    "UPDATE steps SET output = ? WHERE deploy_id = ? AND position = ?",
                    (output[-OUTPUT_LIMIT:], deploy_id, position),
                )
            else:
                connection.execute(
                    "UPDATE steps SET status = ?, finished_at = ?, output = ? WHERE deploy_id = ? AND position = ?",
                    (status, time.time(), output[-OUTPUT_LIMIT:], deploy_id, position),
                )

    def finish(self, deploy_id: int, status: str, reason: str) -> None:
        """How the deploy ended (one of FINISHED); a deploy that succeeded made its commit live."""
        if status not in FINISHED:
            raise ValueError(f"not a finished status: {status!r}")
        with self.transaction() as connection:
            connection.execute(
                "UPDATE deploys SET status = ?, reason = ?, finished_at = ? WHERE id = ?",
                (status, reason, time.time(), deploy_id),
            )
            if status == "succeeded":
                (sha,) = connection.execute("SELECT sha FROM deploys WHERE id = ?", (deploy_id,)).fetchone()
                self._set_state(connection, "live_sha", sha)
                self._set_state(connection, "live_deploy_id", str(deploy_id))

    def live_sha(self) -> str | None:
        with self.reading() as connection:
            return self._get_state(connection, "live_sha")

    def set_live(self, sha: str) -> None:
        with self.transaction() as connection:
            self._set_state(connection, "live_sha", sha)

    def set_live_ancestry(self, shas: Iterable[str]) -> None:
        """The live commit's ancestors, as the deployer's repository knows them (replacing the last)."""
        with self.transaction() as connection:
            connection.execute("DELETE FROM live_ancestry")
            connection.executemany("INSERT OR IGNORE INTO live_ancestry VALUES (?)", ((sha,) for sha in shas))

    @staticmethod
    def _get_state(connection: sqlite3.Connection, key: str) -> str | None:
        row = connection.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return str(row["value"]) if row else None

    @staticmethod
    def _set_state(connection: sqlite3.Connection, key: str, value: str) -> None:
        connection.execute(
            "INSERT INTO state VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (key, value, time.time()),
        )

    def images_to_prune(self, current_sha: str, keep: int) -> list[str]:
        """Commits whose web image a deploy built, except ``current_sha`` and the ``keep`` commits
        most recently live before it (fast rollback targets): their images can go."""
        with self.reading() as connection:
            built = connection.execute(
                "SELECT DISTINCT d.sha FROM deploys d JOIN steps s ON s.deploy_id = d.id "
                "WHERE s.name = 'build' AND s.status = 'succeeded'"
            ).fetchall()
            recent = connection.execute(
                "SELECT sha FROM deploys WHERE status = 'succeeded' AND sha != ? "
                "GROUP BY sha ORDER BY MAX(finished_at) DESC LIMIT ?",
                (current_sha, keep),
            ).fetchall()
        kept = {current_sha} | {row["sha"] for row in recent}
        return sorted({row["sha"] for row in built} - kept)

    # --- metrics --------------------------------------------------------------------------------

    def finished_deploys(self) -> list[sqlite3.Row]:
        """How every deploy that ended ended: its status, when, and how long it ran (None for one
        that never started: skipped or refused before the deployer took it)."""
        with self.reading() as connection:
            return connection.execute(
                "SELECT status, finished_at, finished_at - started_at AS duration FROM deploys "
                "WHERE status NOT IN ('queued', 'running')"
            ).fetchall()

    def waiting_and_running(self) -> tuple[int, int]:
        with self.reading() as connection:
            queued, running = connection.execute(
                "SELECT COALESCE(SUM(status = 'queued'), 0), COALESCE(SUM(status = 'running'), 0) FROM deploys"
            ).fetchone()
        return int(queued), int(running)

    def delivery_outcomes(self) -> dict[str, int]:
        with self.reading() as connection:
            rows = connection.execute("SELECT outcome, COUNT(*) FROM deliveries GROUP BY outcome").fetchall()
        return dict(rows)

    # --- status ---------------------------------------------------------------------------------

    def status(self, recent: int = 20) -> dict[str, Any]:
        with self.reading() as connection:
            live_sha = self._get_state(connection, "live_sha")
            live_since = connection.execute("SELECT updated_at FROM state WHERE key = 'live_sha'").fetchone()
            rows = connection.execute("SELECT * FROM deploys ORDER BY id DESC LIMIT ?", (recent,)).fetchall()
            active = connection.execute(
                "SELECT * FROM deploys WHERE status IN ('queued', 'running') ORDER BY id"
            ).fetchall()
        return {
            "live": {"sha": live_sha, "since": _iso(live_since["updated_at"]) if live_since else None},
            "running": next((deploy_summary(d) for d in active if d["status"] == "running"), None),
            "queue": [deploy_summary(d) for d in active if d["status"] == "queued"],
            "recent": [deploy_summary(d) for d in rows],
        }

    def deploy(self, deploy_id: int) -> dict[str, Any] | None:
        with self.reading() as connection:
            row = connection.execute("SELECT * FROM deploys WHERE id = ?", (deploy_id,)).fetchone()
            if row is None:
                return None
            steps = connection.execute(
                "SELECT * FROM steps WHERE deploy_id = ? ORDER BY position", (deploy_id,)
            ).fetchall()
        return {
            **deploy_summary(row),
            "steps": [
                {
                    "name": step["name"],
                    "status": step["status"],
                    "started_at": _iso(step["started_at"]),
                    "finished_at": _iso(step["finished_at"]),
                    "duration_s": _duration(step["started_at"], step["finished_at"]),
                    "output": step["output"],
                }
                for step in steps
            ],
        }


def deploy_summary(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "hook": row["hook_id"],
        "sha": row["sha"],
        "ref": row["ref"],
        "kind": row["kind"],
        "delivery_id": row["delivery_id"],
        "status": row["status"],
        "reason": row["reason"],
        "queued_at": _iso(row["queued_at"]),
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "duration_s": _duration(row["started_at"], row["finished_at"]),
    }


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp % 1 * 1000):03d}Z"


def _duration(started: float | None, finished: float | None) -> float | None:
    return None if started is None or finished is None else round(finished - started, 3)
