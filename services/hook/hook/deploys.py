"""The deploy ledger: deliveries seen, deploys with their steps and logs, the live commit.

SQLite on a volume shared by the receiver (which enqueues) and the deployer (which claims and
records). Every decision that depends on the current state runs inside one ``BEGIN IMMEDIATE``
transaction, so two webhooks arriving together cannot both enqueue, and the deployer cannot claim a
deploy that is being superseded.

Queue rules: one deploy runs at a time; at most one waits. A newer commit supersedes the waiting
one (recorded as skipped, with the reason). A commit that is live, running or waiting already is
not deployed again. A delivery id seen before changes nothing.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass

COMMIT_ID = re.compile(r"^[0-9a-f]{40}$")  # a full SHA-1, the only form a deploy takes

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
    status TEXT NOT NULL,             -- queued | running | succeeded | failed | skipped
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
"""

OUTPUT_LIMIT = 64 * 1024  # per step: the tail of what it printed


@dataclass(frozen=True)
class Decision:
    """What became of a push: ``accepted`` (queued), ``skipped`` (nothing to do), with why."""

    outcome: str
    reason: str
    deploy_id: int | None = None


class Ledger:
    def __init__(self, path: str):
        self.path = path

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Ledger:
        # On the hookdata volume, which the receiver and the deployer share.
        return cls(environ.get("HOOK_DB", "/var/lib/hook/hook.sqlite"))

    def connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys = ON")
        return connection

    @contextmanager
    def reading(self):
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
    def transaction(self):
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
            return connection.execute("SELECT * FROM deliveries WHERE delivery_id = ?", (delivery_id,)).fetchone()

    def record_delivery(self, delivery_id: str, hook_id: str, event: str, decision: Decision) -> None:
        with self.transaction() as connection:
            self._record_delivery(connection, delivery_id, hook_id, event, decision)

    @staticmethod
    def _record_delivery(connection, delivery_id, hook_id, event, decision: Decision) -> None:
        connection.execute(
            "INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?)",
            (delivery_id, hook_id, event, time.time(), decision.outcome, decision.reason, decision.deploy_id),
        )

    def enqueue(self, hook_id: str, sha: str, ref: str, kind: str = "push", delivery_id: str | None = None) -> Decision:
        """Queue a deploy of ``sha`` unless it is live, running or waiting; a waiting older one is superseded."""
        with self.transaction() as connection:
            if delivery_id is not None:
                seen = connection.execute(
                    "SELECT outcome, reason, deploy_id FROM deliveries WHERE delivery_id = ?", (delivery_id,)
                ).fetchone()
                if seen is not None:
                    return Decision(
                        "duplicate", f"delivery {delivery_id} was handled already: {seen['reason']}", seen["deploy_id"]
                    )
            decision = self._decide(connection, hook_id, sha, ref, kind, delivery_id)
            if delivery_id is not None:
                self._record_delivery(connection, delivery_id, hook_id, "push", decision)
            return decision

    def _decide(self, connection, hook_id, sha, ref, kind, delivery_id) -> Decision:
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
            return connection.execute("SELECT * FROM deploys WHERE id = ?", (deploy["id"],)).fetchone()

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

    def start_step(self, deploy_id: int, name: str) -> int:
        with self.transaction() as connection:
            position = connection.execute(
                "SELECT COALESCE(MAX(position), 0) + 1 FROM steps WHERE deploy_id = ?", (deploy_id,)
            ).fetchone()[0]
            connection.execute(
                "INSERT INTO steps (deploy_id, position, name, status, started_at) VALUES (?, ?, ?, 'running', ?)",
                (deploy_id, position, name, time.time()),
            )
            return position

    def update_step_output(self, deploy_id: int, position: int, output: str) -> None:
        with self.transaction() as connection:
            connection.execute(
                "UPDATE steps SET output = ? WHERE deploy_id = ? AND position = ?",
                (output[-OUTPUT_LIMIT:], deploy_id, position),
            )

    def finish_step(self, deploy_id: int, position: int, ok: bool, output: str) -> None:
        with self.transaction() as connection:
            connection.execute(
                "UPDATE steps SET status = ?, finished_at = ?, output = ? WHERE deploy_id = ? AND position = ?",
                ("succeeded" if ok else "failed", time.time(), output[-OUTPUT_LIMIT:], deploy_id, position),
            )

    def finish(self, deploy_id: int, ok: bool, reason: str, live_sha: str | None = None) -> None:
        with self.transaction() as connection:
            connection.execute(
                "UPDATE deploys SET status = ?, reason = ?, finished_at = ? WHERE id = ?",
                ("succeeded" if ok else "failed", reason, time.time(), deploy_id),
            )
            if live_sha:
                self._set_state(connection, "live_sha", live_sha)
                self._set_state(connection, "live_deploy_id", str(deploy_id))

    def live_sha(self) -> str | None:
        with self.reading() as connection:
            return self._get_state(connection, "live_sha")

    def set_live(self, sha: str) -> None:
        with self.transaction() as connection:
            self._set_state(connection, "live_sha", sha)

    @staticmethod
    def _get_state(connection, key: str) -> str | None:
        row = connection.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    @staticmethod
    def _set_state(connection, key: str, value: str) -> None:
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

    # --- status ---------------------------------------------------------------------------------

    def status(self, recent: int = 20) -> dict:
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

    def deploy(self, deploy_id: int) -> dict | None:
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


def deploy_summary(row: sqlite3.Row) -> dict:
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
