"""The production access log from a real gunicorn: one JSON line per request with every field,
written by each worker's own thread (tests/unit/test_logging.py: a stopping worker writes what is
still queued)."""

from __future__ import annotations

import json

import requests

from .test_two_processes import start_gunicorn


def test_every_request_is_one_json_line_written_by_its_workers_thread(app, settings):
    process, base = start_gunicorn({**settings, "LOG_FORMAT": "json"}, workers=3)
    ids = [f"access-{n:03d}" for n in range(60)]
    try:
        for request_id in ids:
            response = requests.get(
                f"{base}/api/healthz?probe=1",
                timeout=10,
                headers={"X-Request-ID": request_id, "Connection": "close", "User-Agent": "access-test"},
            )
            assert response.status_code == 200
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    lines = [json.loads(line) for line in output.decode().splitlines() if line.startswith('{"time"')]
    logged = {line["request_id"]: line for line in lines if line.get("request_id", "").startswith("access-")}
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
    assert len({entry["pid"] for entry in logged.values()}) > 1  # several workers wrote
