"""The daemon's token: made once, shown once, kept only as a salted scrypt hash.

The token file (``<home>/server-token.json``, mode 0600) holds the hash and its parameters. The
daemon re-reads it when it changes, so ``blitz token`` takes effect on a running daemon at once.
A request presents the token as ``Authorization: Bearer``, as the ``blitz_token`` cookie set by
``POST /api/login``, or (on the event stream and the voice socket only) as ``?token=``; it is
checked in constant time. Checking with scrypt costs tens of milliseconds, so the last accepted
token is remembered (as a keyed digest, in memory) and later requests with it cost one HMAC.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import HTTPConnection

from blitz.errors import ConfigError
from blitz.redact import register_secret
from blitz.server.problems import Problem

TOKEN_FILE = "server-token.json"
COOKIE = "blitz_token"
PREFIX = "blitz_"

# scrypt: 16 MiB of memory per check. The token is 256 random bits, so the hash guards against
# nothing guessable; it keeps a stolen file from being a usable credential.
_N, _R, _P = 2**14, 8, 1


@dataclass(frozen=True, slots=True)
class _Hash:
    salt: bytes
    digest: bytes
    n: int
    r: int
    p: int

    def matches(self, token: str) -> bool:
        candidate = _scrypt(token, self.salt, self.n, self.r, self.p)
        return hmac.compare_digest(candidate, self.digest)


def _scrypt(token: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        token.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=128 * r * (n + p + 2), dklen=32
    )


class TokenStore:
    """The token file of one blitz home."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) of what we read
        self._hash: _Hash | None = None
        self._key = secrets.token_bytes(32)  # keys the in-memory digest of the accepted token
        self._accepted: bytes | None = None

    @classmethod
    def of_home(cls, home: Path) -> TokenStore:
        return cls(home / TOKEN_FILE)

    def exists(self) -> bool:
        return self.path.exists()

    def rotate(self) -> str:
        """Make a new token, store its hash (replacing any other) and return it: the only time
        it is ever seen."""
        token = PREFIX + secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        record = {
            "scheme": "scrypt",
            "n": _N,
            "r": _R,
            "p": _P,
            "salt": salt.hex(),
            "hash": _scrypt(token, salt, _N, _R, _P).hex(),
            "created_at": time.time(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f)
                f.write("\n")
            os.chmod(temporary, 0o600)  # whatever the umask made of it
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        register_secret(token)
        return token

    def ensure(self) -> str | None:
        """Make a token if there is none; return it when made now, else None."""
        return None if self.exists() else self.rotate()

    def _current(self) -> _Hash | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._hash, self._stamp, self._accepted = None, None, None
            return None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp != self._stamp:
            self._hash, self._accepted = _load(self.path), None
            self._stamp = stamp
        return self._hash

    def check(self, token: str) -> bool:
        """Whether ``token`` is the current token (constant time)."""
        with self._lock:
            current = self._current()
            if current is None or not token:
                return False
            digest = hmac.new(self._key, token.encode("utf-8"), hashlib.sha256).digest()
            accepted = self._accepted
        if accepted is not None and hmac.compare_digest(digest, accepted):
            return True
        if not current.matches(token):
            return False
        with self._lock:
            if self._hash is current:
                self._accepted = digest
        register_secret(token)  # it never shows in a response or an event from now on
        return True


def _load(path: Path) -> _Hash:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        if data.get("scheme") != "scrypt":
            raise ValueError(f"unknown scheme {data.get('scheme')!r}")
        return _Hash(
            salt=bytes.fromhex(data["salt"]),
            digest=bytes.fromhex(data["hash"]),
            n=int(data["n"]),
            r=int(data["r"]),
            p=int(data["p"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"the token file {path} is unreadable ({exc}); make a new token with `blitz token`"
        ) from exc


def presented(request: HTTPConnection, *, query: bool = False) -> str:
    """The token a request (or a WebSocket) carries: the bearer header, else the cookie, else
    (``query``) the ``token`` query parameter."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    cookie = request.cookies.get(COOKIE, "")
    if cookie:
        return cookie
    if query:
        return request.query_params.get("token", "")
    return ""


def verify(tokens: TokenStore, token: str) -> None:
    """Raise the 401 problem unless ``token`` is the daemon's token."""
    if not token:
        raise Problem(
            401,
            "send the daemon's token as a bearer token in the Authorization header (it was "
            "printed when `blitz serve` first started; `blitz token` makes a new one)",
            title="token required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not tokens.check(token):
        raise Problem(
            401,
            "the token is not this daemon's (a new one was made with `blitz token`?)",
            title="token invalid",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
