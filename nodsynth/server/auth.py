"""Bearer tokens: read from a file (never from the command line, where ``ps`` shows it), compared in constant time.

The server's token file holds one token, or one named token per line, for clients that must not see
each other's jobs (patient CTs)::

    # NAME   TOKEN                    [admin]
    alice    <random token of alice>
    bob      <random token of bob>
    ops      <random token of ops>    admin

(each token made with ``python -c "import secrets; print(secrets.token_urlsafe(32))"``).
Blank lines and ``#`` comments are ignored; names are letters, digits, ``.``, ``_`` and ``-``. A job
belongs to the token that submitted it: other tokens get 404 for it, except that an ``admin`` token
lists every job and may see the status of and cancel or delete any job (never download another's
result). A file holding just one token (the single-token format) names it ``default``.
"""
from __future__ import annotations

import hmac
import os
import re
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from ..errors import InputError

MIN_TOKEN_CHARS = 16
DEFAULT_NAME = "default"
"""Name of the token of a single-token file, and the owner of jobs made before jobs had owners."""
ADMIN_MARK = "admin"
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class ClientToken:
    """One client's token: its ``name`` owns the jobs it submits; ``admin`` may list all jobs."""

    name: str
    token: str = field(repr=False)
    admin: bool = False


def _token_text(path: str | os.PathLike, warn_if_readable_by_others: bool) -> tuple[Path, str]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"token file not found: {path} (create one with: "
                         "python -c \"import secrets; print(secrets.token_urlsafe(32))\" > FILE; chmod 600 FILE)")
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise InputError(f"token file {path} is empty")
    if warn_if_readable_by_others and os.name == "posix" and path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
        warnings.warn(f"token file {path} is readable by other users; run: chmod 600 {path}", stacklevel=3)
    return path, text


def read_token_file(path: str | os.PathLike, warn_if_readable_by_others: bool = True) -> str:
    """The one token in ``path`` (a client's file; surrounding white space removed); raises
    :class:`InputError` when unusable."""
    path, token = _token_text(path, warn_if_readable_by_others)
    if any(c.isspace() for c in token):
        raise InputError(f"token file {path} must hold one token without spaces or line breaks")
    return token


def read_token_table(path: str | os.PathLike, warn_if_readable_by_others: bool = True) -> list[ClientToken]:
    """The server's tokens in ``path`` (format in the module docstring); raises :class:`InputError`
    naming the line at fault."""
    path, text = _token_text(path, warn_if_readable_by_others)
    lines = [(number, line.split()) for number, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    if len(lines) == 1 and len(lines[0][1]) == 1:
        return [ClientToken(DEFAULT_NAME, lines[0][1][0])]
    tokens: list[ClientToken] = []
    for number, words in lines:
        if len(words) not in (2, 3) or (len(words) == 3 and words[2] != ADMIN_MARK):
            raise InputError(f"token file {path}, line {number}: expected NAME TOKEN, optionally followed by "
                             f"'{ADMIN_MARK}' (one token per line; a file of a single token needs no name)")
        name, token = words[0], words[1]
        if not _NAME.match(name):
            raise InputError(f"token file {path}, line {number}: the name {name!r} may hold only letters, "
                             "digits, '.', '_' and '-' (at most 64)")
        if any(name == t.name for t in tokens) or any(token_matches(token, t.token) for t in tokens):
            raise InputError(f"token file {path}, line {number}: the name {name!r} or its token is already "
                             "used by an earlier line; every client needs its own")
        tokens.append(ClientToken(name, token, admin=len(words) == 3))
    return tokens


def bearer_token(authorization_header: Optional[str]) -> Optional[str]:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    if not authorization_header:
        return None
    scheme, _, value = authorization_header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def token_matches(given: Optional[str], expected: str) -> bool:
    """Constant-time comparison (the time taken does not reveal how much of the token matched)."""
    return given is not None and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def find_client(given: Optional[str], tokens: Sequence[ClientToken]) -> Optional[ClientToken]:
    """The client whose token ``given`` is, or ``None``; compares with every token (constant time each)."""
    matches = [client for client in tokens if token_matches(given, client.token)]
    return matches[0] if matches else None
