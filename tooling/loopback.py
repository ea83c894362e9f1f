"""A small HTTP server on loopback, served from a daemon thread: the console's server on the
embedded default, the bench's webhook receiver, and the tests' stand-ins (receivers, a fake API,
a fake hosted login) all start and stop one the same way.

(The local runtime's front door has its own server class: it tunes the request queue and the
poll interval for load.)
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOOPBACK = "127.0.0.1"


def serve(handler: type[BaseHTTPRequestHandler], *, port: int = 0, name: str | None = None) -> ThreadingHTTPServer:
    """Listen on ``127.0.0.1:port`` (0: a free port) and serve from a daemon thread; each request
    gets a daemon thread of its own, so a request left hanging never holds up the process's exit."""
    server = ThreadingHTTPServer((LOOPBACK, port), handler)
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server


def base_url(server: ThreadingHTTPServer) -> str:
    """``http://127.0.0.1:<port>`` of a server ``serve`` started."""
    return f"http://{LOOPBACK}:{server.server_address[1]}"


def stop(server: ThreadingHTTPServer) -> None:
    """Stop serving (waits for the serving loop to end) and close the listening socket."""
    server.shutdown()
    server.server_close()
