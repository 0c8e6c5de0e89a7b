"""Bearer tokens: read from a file (never from the command line, where ``ps`` shows it), compared in constant time."""
from __future__ import annotations

import hmac
import os
import stat
import warnings
from pathlib import Path
from typing import Optional

from ..errors import InputError

MIN_TOKEN_CHARS = 16


def read_token_file(path: str | os.PathLike, warn_if_readable_by_others: bool = True) -> str:
    """The token in ``path`` (surrounding white space removed); raises :class:`InputError` when unusable."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"token file not found: {path} (create one with: "
                         "python -c \"import secrets; print(secrets.token_urlsafe(32))\" > FILE; chmod 600 FILE)")
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise InputError(f"token file {path} is empty")
    if any(c.isspace() for c in token):
        raise InputError(f"token file {path} must hold one token without spaces or line breaks")
    if warn_if_readable_by_others and os.name == "posix" and path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
        warnings.warn(f"token file {path} is readable by other users; run: chmod 600 {path}", stacklevel=2)
    return token


def bearer_token(authorization_header: Optional[str]) -> Optional[str]:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    if not authorization_header:
        return None
    scheme, _, value = authorization_header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def token_matches(given: Optional[str], expected: str) -> bool:
    """Constant-time comparison (the time taken does not reveal how much of the token matched)."""
    return given is not None and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
