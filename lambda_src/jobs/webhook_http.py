"""The one HTTP request of a webhook attempt (README "Webhooks": security).

It connects to an address the callback check returned (never to a second resolution of the
name: a DNS answer that changed since cannot lead it elsewhere), sends the Host header and,
over https, the TLS server name and certificate check of the URL's host. Redirects are not
followed (a 3xx is a failed attempt), the answer is read at most ``MAX_READ_BYTES``, every
socket operation times out after ``timeout`` seconds.
"""

from __future__ import annotations

import http.client
import socket
import ssl

from jobs.callbacks import CallbackTarget
from jobs.webhooks import DeliveryFailed

MAX_READ_BYTES = 4096


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(target: CallbackTarget, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body`` to ``target``; its 2xx status, or DeliveryFailed saying why not."""
    errors: list[str] = []
    for address in target.addresses:
        kind = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
        conn = kind(target.host, target.port, address, timeout)
        try:
            try:
                conn.connect()
            except OSError as exc:
                errors.append(f"{address}: {type(exc).__name__}: {exc}")
                continue  # the next address of the host, if any
            try:
                conn.request("POST", target.path, body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read(MAX_READ_BYTES)
            except (OSError, http.client.HTTPException) as exc:
                raise DeliveryFailed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
            status = response.status
            if 200 <= status < 300:
                return status
            if 300 <= status < 400:
                location = response.getheader("Location", "")[:200]
                raise DeliveryFailed(f"HTTP {status} (redirect to {location!r} not followed)")
            text = answer[:200].decode("utf-8", "replace").strip()
            raise DeliveryFailed(f"HTTP {status}" + (f": {text}" if text else ""))
        finally:
            conn.close()
    raise DeliveryFailed("could not connect: " + "; ".join(errors))
