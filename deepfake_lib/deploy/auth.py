"""Bearer-token access control for the service: where the token comes from, and an ASGI middleware.

Auth is on when a token is configured: :func:`load_token` reads ``$DEEPFAKE_TOKEN``, or the file
named by ``$DEEPFAKE_TOKEN_FILE`` (first line; keep it readable by the service only). With a token,
:class:`TokenAuthMiddleware` checks every HTTP request and WebSocket handshake except the paths in
``public`` (by default ``/health`` and the web page's static files, which hold no data):

* HTTP: ``Authorization: Bearer <token>``; a missing or wrong token gets 401 with
  ``WWW-Authenticate: Bearer`` and ``{"detail": "..."}``;
* WebSocket (a browser cannot set headers there): the same header, or the subprotocol
  ``bearer.<token>`` offered beside ``deepfake-stream``, or the query parameter ``?token=<token>``;
  a refused handshake gets the same 401 (or, on servers without the denial-response extension,
  close code 1008 before the connection opens).

Tokens are compared in constant time (:func:`hmac.compare_digest`). Without a token, auth is off,
which :func:`check_bind` allows only on a loopback address unless ``insecure`` is given.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import string
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

__all__ = [
    "PUBLIC_PATHS",
    "SUBPROTOCOL_PREFIX",
    "TOKEN_ENV",
    "TOKEN_FILE_ENV",
    "TokenAuthMiddleware",
    "check_bind",
    "is_loopback",
    "load_token",
    "presented_tokens",
]

TOKEN_ENV = "DEEPFAKE_TOKEN"
"""Environment variable holding the service token."""

TOKEN_FILE_ENV = "DEEPFAKE_TOKEN_FILE"
"""Environment variable naming a file whose first line is the token."""

SUBPROTOCOL_PREFIX = "bearer."
"""A WebSocket subprotocol ``bearer.<token>`` carries the token (never echoed back)."""

PUBLIC_PATHS: tuple[str, ...] = ("/health", "/", "/static/")
"""Paths served without a token: the health check and the web page's files (a path ending in
``/`` covers everything under it; ``/`` alone is the page itself)."""

MIN_TOKEN_CHARS = 16
"""Shortest token accepted (characters)."""

_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-_.~+/=")

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


def _check_token(token: str, where: str) -> str:
    token = token.strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"{where}: the token must be at least {MIN_TOKEN_CHARS} characters")
    if not set(token) <= _TOKEN_CHARS:
        raise ValueError(f"{where}: the token may hold only letters, digits and - _ . ~ + / =")
    return token


def load_token(
    token: str | None = None,
    token_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """The service token: ``token``, else the first line of ``token_file``, else ``$DEEPFAKE_TOKEN``,
    else the file named by ``$DEEPFAKE_TOKEN_FILE``; None when none is set (auth off).
    Raises ``ValueError`` for a token under 16 characters or with characters a header or a
    WebSocket subprotocol cannot carry, and ``OSError`` for an unreadable file."""
    env = os.environ if env is None else env
    if token:
        return _check_token(token, "token")
    path = token_file or env.get(TOKEN_FILE_ENV)
    if not token_file and env.get(TOKEN_ENV):
        return _check_token(env[TOKEN_ENV], f"${TOKEN_ENV}")
    if path:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return _check_token(lines[0] if lines else "", f"token file {path}")
    return None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None, *, insecure: bool = False) -> None:
    """Refuse (``ValueError``) to serve a non-loopback ``host`` without a token unless ``insecure``."""
    if token is None and not insecure and not is_loopback(host):
        raise ValueError(
            f"refusing to listen on {host} without a token: set ${TOKEN_ENV} (or ${TOKEN_FILE_ENV}, "
            "--token-file), or pass --insecure to serve anyone who can reach the port"
        )


def _is_public(path: str, public: Iterable[str]) -> bool:
    return any(path.startswith(p) if p.endswith("/") and p != "/" else path == p for p in public)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def presented_tokens(scope: Scope) -> list[str]:
    """Tokens a request offers: the bearer header; for a WebSocket also ``bearer.<token>``
    subprotocols and the ``token`` query parameter."""
    found: list[str] = []
    scheme, _, value = _header(scope, b"authorization").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        found.append(value.strip())
    if scope["type"] == "websocket":
        found += [
            p[len(SUBPROTOCOL_PREFIX) :]
            for p in scope.get("subprotocols") or []
            if p.startswith(SUBPROTOCOL_PREFIX)
        ]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        found += query.get("token", [])
    return found


class TokenAuthMiddleware:
    """ASGI middleware: requests without the right bearer token get 401 (module docstring)."""

    def __init__(
        self, app: ASGIApp, token: str, *, public: Iterable[str] = PUBLIC_PATHS, realm: str = "deepfake_lib"
    ) -> None:
        self.app = app
        self._token = token.encode("utf-8")
        self.public = tuple(public)
        self.realm = realm

    def allowed(self, scope: Scope) -> tuple[bool, str]:
        """``(ok, why)``: whether ``scope`` carries the token (constant-time comparison)."""
        offered = presented_tokens(scope)
        if not offered:
            return False, "missing bearer token"
        ok = False
        for candidate in offered:  # every candidate is compared: no early exit on a match
            ok |= hmac.compare_digest(candidate.encode("utf-8", "replace"), self._token)
        return ok, "" if ok else "wrong token"

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:
        if scope["type"] not in ("http", "websocket") or _is_public(scope.get("path", ""), self.public):
            await self.app(scope, receive, send)
            return
        ok, why = self.allowed(scope)
        if ok:
            await self.app(scope, receive, send)
            return
        challenge = f'Bearer realm="{self.realm}"' + (
            ', error="invalid_token"' if why == "wrong token" else ""
        )
        body = json.dumps({"detail": f"unauthorized: {why}"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", challenge.encode()),
        ]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await receive()  # websocket.connect
        if "websocket.http.response" in (scope.get("extensions") or {}):
            await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": f"unauthorized: {why}"})
