"""A local web server for the `fetch` tests: fixed routes on 127.0.0.1 (an ephemeral port, a background thread).

    with LocalWebServer({"/doc": page("<html>...</html>"), "/old": redirect("http://localhost:1234/new")}) as web:
        web.url("/doc"); web.hits["/doc"]

Tests never reach the internet: every URL they fetch is one of these servers.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def page(html: str, content_type: str = "text/html; charset=utf-8", status: int = 200) -> Route:
    return Route(status, html.encode("utf-8"), {"Content-Type": content_type})


def redirect(location: str, status: int = 302) -> Route:
    return Route(status, b"", {"Location": location})


class LocalWebServer:
    def __init__(self, routes: dict[str, Route], host: str = "127.0.0.1") -> None:
        self.routes = routes
        self.hits: Counter[str] = Counter()
        self.host = host
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                server.hits[self.path] += 1
                route = server.routes.get(self.path, Route(404, b"not found", {"Content-Type": "text/plain"}))
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self._server.server_address[1]

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def __enter__(self) -> LocalWebServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
