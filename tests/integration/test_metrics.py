"""The metrics endpoint of a real gunicorn server with several workers (on Postgres and Redis): the
master serves the sum over every worker, on its own port; counts move with the requests made."""

from __future__ import annotations

import requests

from contract import Api
from harness.ports import free_port
from scraped_metrics import sample, scrape

from .test_two_processes import start_gunicorn


def test_the_master_serves_every_workers_counts(app, settings, tmp_path):
    port = free_port()
    process, base = start_gunicorn(
        {**settings, "METRICS_PORT": str(port), "METRICS_ADDRESS": "127.0.0.1", "METRICS_DIR": str(tmp_path / "m")},
        workers=3,
    )
    try:
        healthz = {"method": "GET", "route": "/api/healthz", "status": "200"}
        metrics = f"http://127.0.0.1:{port}/metrics"
        before = scrape(metrics)
        for _ in range(30):
            # A new connection each time, so the requests spread over the workers.
            response = requests.get(f"{base}/api/healthz", timeout=10, headers={"Connection": "close"})
            assert response.status_code == 200
        api = Api(requests.Session(), base)
        api.tokens("metrics@example.com")
        assert api.login("metrics@example.com", "not the password").status_code == 401
        after = scrape(metrics)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert (
        sample(after, "flask_stack_http_requests_total", **healthz)
        - sample(before, "flask_stack_http_requests_total", **healthz)
        == 30
    )
    assert sample(after, "flask_stack_logins_total", outcome="ok") == 1
    assert sample(after, "flask_stack_logins_total", outcome="failed") == 1
    assert sample(after, "flask_stack_http_requests_in_flight") == 0
    # The master asked a worker for /api/readyz as it answered the scrape.
    assert sample(after, "flask_stack_ready") == 1
    assert sample(after, "flask_stack_circuit_open", breaker="token store") == 0
    assert sample(after, "flask_stack_token_store_seconds_count", operation="get_many") >= 1
