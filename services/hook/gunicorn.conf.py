"""The receiver behind nginx's /hooks/: small, synchronous, quick to answer."""

import os

bind = os.environ.get("HOOK_BIND", "0.0.0.0:9000")
workers = int(os.environ.get("HOOK_WORKERS", "2"))
timeout = 15
accesslog = "-"
errorlog = "-"
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - gunicorn's own advice
control_socket_disable = True
