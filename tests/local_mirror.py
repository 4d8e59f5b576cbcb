"""A real HTTP server on 127.0.0.1 serving dataset files, with scripted failures."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class MirrorState:
    """What the server serves and what it has been asked for."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.statuses: dict[str, list[int]] = {}
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()

    def fail(self, name: str, *statuses: int) -> None:
        """Answer the next requests for ``name`` with these statuses, then serve it."""
        self.statuses[name] = list(statuses)

    @property
    def total_requests(self) -> int:
        """Requests received for any file."""
        return sum(self.requests.values())


class _Handler(BaseHTTPRequestHandler):
    server: _MirrorServer

    def do_GET(self) -> None:
        state = self.server.state
        name = self.path.rsplit("/", 1)[-1]
        with state.lock:
            state.requests[name] += 1
            planned = state.statuses.get(name)
            status = planned.pop(0) if planned else None
            body = state.files.get(name) if status is None else None
        if body is None:
            self.send_response(status or 404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


class _MirrorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: MirrorState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class Mirror:
    """A running local mirror: its base URL and its state."""

    def __init__(self, server: _MirrorServer) -> None:
        self.state = server.state
        self.url = f"http://127.0.0.1:{server.server_address[1]}/fashion/"


@contextmanager
def serve(files: dict[str, bytes]) -> Iterator[Mirror]:
    """Serve ``files`` (by name, under any path) until the block ends."""
    server = _MirrorServer(MirrorState(files))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Mirror(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
