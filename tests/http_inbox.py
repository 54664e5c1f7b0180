"""A real HTTP server on loopback that records what it is sent and answers every request with one
status: the outside world (Sentry's ingest, an OpenTelemetry collector, a probe's target) for tests."""

from __future__ import annotations

import gzip
import http.server
import threading
from dataclasses import dataclass, field


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpInbox:
    status: int = 200
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        inbox = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                inbox.received.append(Received(self.command, self.path, dict(self.headers), body))
                self.send_response(inbox.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posted_to(self, path: str) -> list[Received]:
        return [request for request in self.received if request.method == "POST" and request.path.startswith(path)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
