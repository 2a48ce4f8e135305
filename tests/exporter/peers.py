"""A tiny local HTTP peer standing in for the controller (/alert) or InfluxDB (/api/v2/write)."""
from __future__ import annotations

import gzip
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Controller:
    """Records every POST (headers plus "path", body un-gzipped) and answers the next scripted status (then 200)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.got = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with outer.got:
                    status = outer.statuses.pop(0) if outer.statuses else 200
                    outer.received.append(({k.lower(): v for k, v in self.headers.items()} | {"path": self.path}, body))
                    outer.got.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, n: int) -> list[tuple[dict[str, str], bytes]]:
        with self.got:
            assert self.got.wait_for(lambda: len(self.received) >= n, timeout=5), f"got {len(self.received)} of {n}"
            return list(self.received)

    def wait_until(self, check: Callable[[list[tuple[dict[str, str], bytes]]], bool], timeout: float = 10) -> bool:
        with self.got:
            return self.got.wait_for(lambda: check(self.received), timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
