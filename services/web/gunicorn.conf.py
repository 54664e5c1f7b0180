"""gunicorn settings, all from the environment: ``gunicorn -c gunicorn.conf.py 'api:create_app()'``."""

import os
from typing import Any

from gunicorn.reloader import reloader_engines

from runtime.cpus import available_cpus, default_workers
from runtime.environment import load_environment
from serving import metrics
from serving.graceful_stop import drain_before_stopping
from serving.one_write import send_headers_with_body
from serving.protocol_errors import use_json_errors
from serving.reload import SinceStartReloader

# The same env files as the app, so GUNICORN_* can live in .env.d/ too.
mode, settings = load_environment(os.environ)
use_json_errors()
# Headers and body in one system call, so a killed worker never leaves a response cut short.
send_headers_with_body()


def setting(name: str, default: str) -> str:
    return settings.get(name) or default


development = mode == "development"

# PORT: what Heroku-style platforms give the web process (the Procfile).
bind = setting("GUNICORN_BIND", f"0.0.0.0:{setting('PORT', '8000')}")
# CPUs + 1, capped at 8: `make bench-sweep` (docs/benchmarks-workers.md) measured 3 gthread workers on 2
# cores as fast as 5 (the 2 x cores + 1 rule), with a shorter tail and 25 MiB less memory. The CPUs
# are the container's quota, not the host's cores.
workers = int(setting("GUNICORN_WORKERS", str(default_workers(available_cpus()))))
# gthread keeps client connections open between requests, which nginx's upstream keepalive needs
# (the sync worker closes every connection).
worker_class = setting("GUNICORN_WORKER_CLASS", "gthread")
threads = int(setting("GUNICORN_THREADS", "4"))
timeout = int(setting("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(setting("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Seconds to keep serving after SIGTERM before the graceful stop (serving/graceful_stop.py); Swarm
# sets it, since its edge learns of a stopping task from DNS.
stop_drain_seconds = float(setting("GUNICORN_STOP_DRAIN_SECONDS", "0"))
# Longer than nginx's upstream keepalive_timeout (60 s), so nginx, not gunicorn, closes idle
# connections and never sends a request down one gunicorn has just closed.
keepalive = int(setting("GUNICORN_KEEPALIVE", "75"))
# gunicorn's largest limits on the request line and headers, above nginx's 6 KiB buffers
# (nginx.conf), so behind nginx a request too large is nginx's 414/431 in the API's JSON shape, never
# gunicorn's HTML page. Facing clients directly (`make dev`), these are gunicorn's own answers.
limit_request_line = int(setting("GUNICORN_LIMIT_REQUEST_LINE", "8190"))
limit_request_field_size = int(setting("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", "8190"))
limit_request_fields = int(setting("GUNICORN_LIMIT_REQUEST_FIELDS", "32768"))
max_requests = int(setting("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = int(setting("GUNICORN_MAX_REQUESTS_JITTER", "0"))

# Heartbeat files on a tmpfs: a disk-backed /tmp can stall workers long enough to be killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - gunicorn's own advice

# No runtime control socket (gunicornc): nothing needs it, and it would write under $HOME.
control_socket_disable = True

accesslog = "-"
errorlog = "-"
loglevel = setting("GUNICORN_LOG_LEVEL", "info")
# The response's X-Request-ID is the one the app kept or made, so access and app logs line up; the
# worker's pid shows which process served a request.
if setting("LOG_FORMAT", "text" if mode != "production" else "json") == "json":
    logger_class = "serving.access_log.JsonAccessLogger"
else:
    access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(D)sus pid=%(p)s [%({x-request-id}o)s]'

reload = setting("GUNICORN_RELOAD", "true" if development else "false").lower() == "true"
# gunicorn's polling reloader missed a file saved again while a worker was importing the app.
reloader_engines["since-start"] = SinceStartReloader
reload_engine = "since-start"
# Load the app once in the master and fork it: less memory, and a config error stops the start.
# Not with --reload, which must import the code afresh in each worker, nor with GUNICORN_PRELOAD=false
# (the systemd unit), so that a reload (HUP) loads the release the `current` symlink points at.
preload_app = setting("GUNICORN_PRELOAD", "false" if reload else "true").lower() == "true"

# Prometheus metrics of every worker, summed by the master on their own port (serving/metrics.py;
# empty: none). Set up here, before the app is imported: prometheus_client chooses its mode then.
metrics_port = int(setting("METRICS_PORT", "0"))
metrics_address = setting("METRICS_ADDRESS", "0.0.0.0")  # noqa: S104 - in its container; never published
if metrics_port:
    metrics.prepare(setting("METRICS_DIR", "/tmp/flask-stack-metrics"))  # noqa: S108 - a tmpfs in the containers

# The app warns when the memory token store meets several workers; tell it how many there are.
os.environ["GUNICORN_WORKERS"] = str(workers)


def post_fork(server: Any, worker: Any) -> None:  # gunicorn ships no types
    """Connections must not be shared across fork: with the app loaded in the master, each worker
    drops the pool it inherited and opens its own. With --reload the worker loads the app itself,
    later, after its reloader has noted the time: loading it here would let a file saved meanwhile
    go unnoticed."""
    if not preload_app:
        return
    from api.extensions import db

    app = server.app.wsgi()
    if "sqlalchemy" not in getattr(app, "extensions", {}):
        return  # another app on these settings (make bench's hello-world ceiling)
    with app.app_context():
        db.engine.dispose(close=False)


def when_ready(server: Any) -> None:
    if stop_drain_seconds > 0:
        drain_before_stopping(server, stop_drain_seconds)
    if metrics_port:
        metrics.serve(metrics_address, metrics_port, bind)
        server.log.info("metrics on http://%s:%d/metrics", metrics_address, metrics_port)


def worker_exit(server: Any, worker: Any) -> None:
    """The worker's access lines still queued are written before it goes (serving/access_log.py)."""
    close_access_log = getattr(worker.log, "close_access_log", None)
    if close_access_log is not None:
        close_access_log()


def child_exit(server: Any, worker: Any) -> None:
    if metrics_port:
        metrics.forget(worker.pid)
