"""Callback URLs (README "Webhooks"): what a job's ``callback_url`` may be, and where it may lead.

A callback URL is user input that makes the stack send requests: it is checked twice, at
submit (400 ``invalid_callback_url``, nothing written) and before every delivery (DNS may have
changed), by the same rule:

- an absolute ``https`` URL (``http`` only when the deployment allows loopback receivers, and
  then only to a loopback address), with a host, no user name or password, no fragment, at
  most ``CALLBACK_URL_MAX_CHARS`` characters;
- every address its host resolves to must be public: no private, loopback, link-local
  (169.254.0.0/16, the instance metadata service among them), unique-local, multicast,
  reserved, unspecified, shared (CGNAT) or other special-purpose address, IPv4 or IPv6,
  including IPv4 addresses embedded in IPv6 (IPv4-mapped, NAT64, 6to4).

``allow_loopback`` (``WEBHOOK_ALLOW_LOOPBACK``, true only on the embedded default) additionally
allows loopback addresses (127.0.0.0/8, ::1), over ``http`` or ``https``.

Delivery connects to the address this check returned, not to a second resolution of the
name, so a DNS answer that changes between check and connect cannot reach an internal address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from jobs.errors import ValidationError

CALLBACK_URL_MAX_CHARS = 2048
CODE = "invalid_callback_url"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to (as strings); raises OSError when it does not.
Resolver = Callable[[str, int], Sequence[str]]

# Special-purpose ranges refused whatever ``ipaddress`` says of them (its flags cover most;
# these are the ones worth naming: metadata services and shared address space).
_BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "169.254.0.0/16",  # link-local, incl. 169.254.169.254 (EC2/ECS metadata) and 169.254.170.2
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "fd00:ec2::/32",  # EC2 metadata over IPv6 (fd00:ec2::254), inside fc00::/7 anyway
        "fc00::/7",  # unique-local
        "fe80::/10",  # link-local
        "64:ff9b:1::/48",  # local-use NAT64
    )
)
_LOOPBACK_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA), as the system resolver answers."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class CallbackTarget:
    """A checked callback URL: where to connect (``addresses``, all allowed) and what to send."""

    url: str
    scheme: str
    host: str  # as in the URL (the Host header and TLS server name)
    port: int
    path: str  # path and query, "/" at least
    addresses: tuple[str, ...]


def parse_callback_url(raw: object) -> str:
    """The form of a callback URL (no I/O): a string, absolute http(s), host, no userinfo,
    bounded; or a 400 ``invalid_callback_url``. Where it leads is :func:`check_callback_url`'s."""
    if not isinstance(raw, str):
        raise ValidationError(f"field callback_url must be a string, got {type(raw).__name__}", CODE)
    if len(raw) > CALLBACK_URL_MAX_CHARS:
        raise ValidationError(
            f"callback_url is {len(raw)} characters; at most {CALLBACK_URL_MAX_CHARS} are allowed", CODE
        )
    if not raw.isprintable() or any(c.isspace() for c in raw) or not raw.isascii():
        raise ValidationError("callback_url must be printable ASCII without spaces (percent-encode the rest)", CODE)
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"callback_url is not a valid URL: {exc}", CODE) from None
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValidationError("callback_url must be an absolute https:// URL", CODE)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationError("callback_url must not carry a user name or password", CODE)
    if not parts.hostname:
        raise ValidationError("callback_url has no host", CODE)
    if parts.fragment or raw.endswith("#"):
        raise ValidationError("callback_url must not have a #fragment", CODE)
    if port == 0:
        raise ValidationError("callback_url has port 0", CODE)
    return raw


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return None


def is_loopback(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_loopback(embedded)
    return any(address in net for net in _LOOPBACK_NETWORKS if net.version == address.version)


def refusal(address: IPAddress) -> str | None:
    """Why a callback may not reach ``address`` (None: a public address it may reach)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            why = refusal(embedded)
            return f"{why} (embedded in {address})" if why else None
    if any(address in net for net in _BLOCKED_NETWORKS if net.version == address.version):
        if address in ipaddress.ip_network("169.254.0.0/16"):
            return "a link-local / metadata address"
        return "a special-purpose address"
    for flag, what in (
        ("is_loopback", "a loopback address"),
        ("is_private", "a private address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_unspecified", "an unspecified address"),
        ("is_site_local", "a site-local address"),
    ):
        if getattr(address, flag, False):
            return what
    if not address.is_global:
        return "a non-public address"
    return None


def check_callback_url(raw: object, allow_loopback: bool, resolver: Resolver = system_resolver) -> CallbackTarget:
    """Check a callback URL's form and where its host leads now; the checked target, or a
    ValidationError ``invalid_callback_url`` saying why."""
    url = parse_callback_url(raw)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        literal = None
    if literal is not None:
        names = [str(literal)]
    else:
        try:
            names = list(resolver(host, port))
        except (OSError, UnicodeError) as exc:
            raise ValidationError(f"callback_url host {host!r} does not resolve ({exc})", CODE) from None
        if not names:
            raise ValidationError(f"callback_url host {host!r} does not resolve", CODE)
    addresses: list[IPAddress] = []
    for name in names:
        try:
            addresses.append(ipaddress.ip_address(name.split("%")[0]))
        except ValueError:
            raise ValidationError(f"callback_url host {host!r} resolves to {name!r}, not an address", CODE) from None
    loopback = [a for a in addresses if allow_loopback and is_loopback(a)]
    for address in addresses:
        if address in loopback:
            continue
        why = refusal(address)
        if why is not None:
            shown = host if literal is not None else f"{host} ({address})"
            raise ValidationError(f"callback_url must lead to a public address; {shown} is {why}", CODE)
    if parts.scheme != "https" and len(loopback) != len(addresses):
        raise ValidationError("callback_url must be an https:// URL", CODE)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return CallbackTarget(url, parts.scheme, host, port, path, tuple(str(a) for a in addresses))
