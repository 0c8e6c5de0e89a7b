"""Without a token (``--insecure-no-token``, loopback only) a web page must still not drive the server.

A page on any site can make the browser send a plain ``POST`` to ``http://127.0.0.1:PORT`` (no CORS
preflight for a simple request) or, by DNS rebinding, have its own host name resolve to 127.0.0.1 and
read the answers. Both are refused: the ``Host`` header must name a loopback host (or one allowed with
``--allow-host``), which a rebound name is not, and a request carrying an ``Origin`` header, which
browsers add to cross-origin requests, must come from the server's own origin.
"""
from __future__ import annotations

import ipaddress
from typing import Collection, Optional
from urllib.parse import urlsplit


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (``127.0.0.0/8``, ``::1``; IPv6 may be in brackets)."""
    host = host.strip().lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(netloc: str) -> str:
    """``"127.0.0.1:8765"`` -> ``"127.0.0.1"``, ``"[::1]:8765"`` -> ``"::1"``; ``""`` when malformed."""
    try:
        return urlsplit("//" + netloc.strip()).hostname or ""
    except ValueError:
        return ""


def foreign_request_reason(host_header: Optional[str], origin_header: Optional[str],
                           allowed_hosts: Collection[str] = ()) -> Optional[str]:
    """Why a request to a server without a token is refused (see the module docstring); ``None`` if it is not."""
    host = _host_name(host_header or "")
    if not (is_loopback(host) or host in {h.lower() for h in allowed_hosts}):
        return (f"Host {host_header!r} is not a loopback name or address (a web page using DNS rebinding?); "
                "a server without a token answers only requests for 127.0.0.1, ::1 or localhost "
                "(nodsynth serve --allow-host NAME adds a name)")
    if origin_header is not None and urlsplit(origin_header.strip()).netloc.lower() != (host_header or "").lower():
        return (f"cross-origin request from {origin_header!r} refused: a web page may not use a server without "
                "a token")
    return None
