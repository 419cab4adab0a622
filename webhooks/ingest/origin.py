"""Where a delivery came from: the client address and the URL the provider called.

``X-Forwarded-*`` headers are believed only from the proxies listed in
``WEBHOOKS_TRUSTED_PROXIES``; from anyone else they are ignored, or a client
could choose its own address and defeat the endpoint's network allowlist.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest

from webhooks.conf import conf


def _trusted(address: str, proxies: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


@functools.lru_cache(maxsize=4096)
def _valid_ip(value: str) -> str | None:
    # Kept per value: a source delivers many times, and parsing costs more than a lookup.
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def _via_trusted_proxy(request: HttpRequest) -> bool:
    proxies = conf.TRUSTED_PROXIES
    return bool(proxies) and _trusted(request.META.get("REMOTE_ADDR", ""), proxies)


def client_ip(request: HttpRequest) -> str | None:
    """The delivering client: the nearest untrusted hop of ``X-Forwarded-For``."""
    return client_ip_of(
        request.META.get("REMOTE_ADDR", "") or "",
        request.META.get("HTTP_X_FORWARDED_FOR", ""),
    )


def client_ip_of(remote_addr: str, forwarded_for: str) -> str | None:
    """:func:`client_ip` from the peer's address and the ``X-Forwarded-For`` header."""
    remote = _valid_ip(remote_addr)
    proxies = conf.TRUSTED_PROXIES
    if remote is None or not proxies or not _trusted(remote_addr, proxies):
        return remote
    hops = forwarded_for.split(",")
    for hop in reversed(hops):
        address = _valid_ip(hop)
        if address is None:
            return remote
        if not _trusted(address, conf.TRUSTED_PROXIES):
            return address
    return remote


def public_url(request: HttpRequest) -> str:
    """The URL as the provider called it, query included; empty when the host is not allowed."""
    path = request.get_full_path()
    if conf.PUBLIC_URL:
        return conf.PUBLIC_URL + path
    if _via_trusted_proxy(request):
        scheme = request.META.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip()
        host = request.META.get("HTTP_X_FORWARDED_HOST", "").split(",")[0].strip()
        if scheme in ("http", "https") and host:
            return f"{scheme}://{host}{path}"
    try:
        return request.build_absolute_uri(path)
    except DisallowedHost:
        return ""
