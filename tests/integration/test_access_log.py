"""The production access log from a real gunicorn: one JSON line per request with every field,
written by each worker's own thread (tests/unit/test_logging.py: a stopping worker writes what is
still queued)."""

from __future__ import annotations

import json
import threading

import requests

from harness.polling import until

from .test_two_processes import start_gunicorn


def test_every_request_is_one_json_line_written_by_its_workers_thread(app, settings):
    process, base = start_gunicorn({**settings, "LOG_FORMAT": "json"}, workers=3)
    # Read as it is written: requests go on until a second worker has logged one (gunicorn answers
    # once its first worker is up; the others may still be loading the app).
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(line.decode() for line in process.stdout), daemon=True)
    reader.start()
    ids: list[str] = []

    def logged_lines() -> dict[str, dict]:
        lines = [json.loads(line) for line in list(output) if line.startswith('{"time"')]
        return {line["request_id"]: line for line in lines if line.get("request_id", "").startswith("access-")}

    def a_second_worker_logged() -> bool:
        for _ in range(20):
            ids.append(f"access-{len(ids):03d}")
            response = requests.get(
                f"{base}/api/healthz?probe=1",
                timeout=10,
                headers={"X-Request-ID": ids[-1], "Connection": "close", "User-Agent": "access-test"},
            )
            assert response.status_code == 200
        return len({entry["pid"] for entry in logged_lines().values()}) > 1

    try:
        several_workers_wrote = until(a_second_worker_logged, timeout=30, interval=0)
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=10)
    logged = logged_lines()
    assert sorted(logged) == ids
    line = logged["access-000"]
    assert set(line) == {
        "time",
        "remote",
        "method",
        "path",
        "query",
        "status",
        "bytes",
        "duration_us",
        "request_id",
        "pid",
        "user_agent",
    }
    assert (line["method"], line["path"], line["query"], line["status"]) == ("GET", "/api/healthz", "probe=1", 200)
    assert line["remote"] == "127.0.0.1" and line["user_agent"] == "access-test"
    assert int(line["bytes"]) > 0 and int(line["duration_us"]) > 0
    assert several_workers_wrote
