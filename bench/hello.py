"""The framework's ceiling for `make bench`: a hello-world Flask view answering what /api/healthz
answers, run by web's image on web's gunicorn settings (compose/bench.yml), so bare ÷ this is what
our own middleware costs."""

import os
import socket

from flask import Flask

app = Flask(__name__)
INSTANCE = socket.gethostname()


@app.get("/api/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": "0", "revision": os.environ.get("APP_REVISION", "unknown"), "instance": INSTANCE}
