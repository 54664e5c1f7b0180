"""The receiver behind nginx's /hooks/: small, synchronous, quick to answer."""

import os
from typing import Any

bind = os.environ.get("HOOK_BIND", "0.0.0.0:9000")
workers = int(os.environ.get("HOOK_WORKERS", "2"))
timeout = 15
accesslog = "-"
errorlog = "-"
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - gunicorn's own advice
control_socket_disable = True

# Push-to-deploy's Prometheus metrics (hook/metrics.py), from the master on a port nginx never
# proxies; 0 turns them off.
metrics_port = int(os.environ.get("HOOK_METRICS_PORT", "0"))
metrics_address = os.environ.get("HOOK_METRICS_ADDRESS", "0.0.0.0")  # noqa: S104 - in its container; never published


def when_ready(server: Any) -> None:  # gunicorn ships no types
    if metrics_port:
        from hook.metrics import serve
        from hook.settings import HookSettings

        serve(HookSettings.from_environ(with_secrets=False), metrics_address, metrics_port)
        server.log.info("metrics on http://%s:%d/metrics", metrics_address, metrics_port)
