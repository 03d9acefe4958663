"""What guards every HTTP endpoint of ``serve`` (docs/serve.md, "Limits and access"), kept
apart from the endpoints so that any endpoint added later is guarded by being in the app:

- ``Guard``, an ASGI middleware: with a token set, every request must carry
  ``Authorization: Bearer <token>`` (compared in constant time: the SHA-256 digests of
  both, so neither the token's bytes nor its length show in the timing), else 401; a body
  larger than the limit is 413, refused from its ``Content-Length`` before a byte of it is
  read, or, for a body sent in chunks, as soon as what was read passes the limit;
- ``ServeLimits``: the settings and their defaults (``serve --max-body``,
  ``--max-prompt-chars``);
- ``read_token``: the token from an environment variable or a file, never from the command
  line (where ``ps`` shows it);
- ``Problem`` and ``ErrorBody``: the error every endpoint answers,
  ``{"error": {"message", "type"}}``.

FastAPI is not imported here: the middleware speaks plain ASGI.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routeharness.common.contract import Contract, Field
from routeharness.common.errors import RouteHarnessError
from routeharness.common.files import FileReadError
from routeharness.common.textinput import check_text, decode, read_file_bytes, size_text

#: the largest request body ``serve`` reads unless ``--max-body`` says otherwise: a
#: ``/route`` of its 100,000-prompt maximum at about 100 characters a prompt, or a chat
#: request holding a few base64 images; parsing one takes about 4x its size in memory
DEFAULT_MAX_BODY_BYTES = 16_000_000
#: the longest prompt ``serve`` routes unless ``--max-prompt-chars`` says otherwise: the
#: encoders read at most a few thousand tokens of it, and a longer one would hold the
#: routing lock while it is tokenized
DEFAULT_MAX_PROMPT_CHARS = 100_000
#: the shortest token accepted: shorter ones can be guessed
MIN_TOKEN_CHARS = 16
#: the most a token file may hold
_TOKEN_FILE_LIMIT = 4096


class Problem(RouteHarnessError):
    """A request that fails: its HTTP status, one-line message and error type."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


class BadRequest(Problem):
    """A request that is not what its contract says: 400, one line naming the key."""

    def __init__(self, message: str):
        super().__init__(400, message)


class BodyTooLarge(Problem):
    """A request body over the limit: 413."""

    def __init__(self, limit: int):
        super().__init__(413, f"request: the body is larger than the limit of "
                         f"{size_text(limit)} (serve --max-body)", "request_too_large")


class ErrorDetail(Contract):
    message: str = Field(description="one line")
    type: str = Field(description="invalid_request_error, unauthorized, "
                      "request_too_large, not_found, upstream_error, upstream_timeout, "
                      "internal_error")


class ErrorBody(Contract):
    """Every error ``serve`` answers: ``{"error": {"message", "type"}}``."""

    error: ErrorDetail


def error_json(message: str, kind: str) -> bytes:
    """An ``ErrorBody`` as the bytes of a response."""
    return ErrorBody(error=ErrorDetail(message=message, type=kind)).model_dump_json().encode()


@dataclass(frozen=True)
class ServeLimits:
    """What ``serve`` accepts: the largest body (bytes) and the longest prompt
    (characters), each > 0."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_prompt_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RouteHarnessError(f"serve: {name} must be an integer >= 1, got "
                                        f"{value!r}")


# --- the token -------------------------------------------------------------------------------
def _check_token(token: str, where: str) -> str:
    token = token.strip()
    if not token:
        raise RouteHarnessError(f"{where}: the token is empty")
    if len(token) < MIN_TOKEN_CHARS:
        raise RouteHarnessError(f"{where}: the token has {len(token)} characters, fewer "
                                f"than {MIN_TOKEN_CHARS} (a short one can be guessed)")
    if not all(33 <= ord(ch) <= 126 for ch in token):
        raise RouteHarnessError(f"{where}: the token must be printable ASCII without "
                                "spaces (it is sent in an HTTP header)")
    return token


def read_token(env: str | None = None, file: str | Path | None = None,
               environ: Mapping[str, str] | None = None) -> str | None:
    """The bearer token ``serve`` requires: from the environment variable named ``env``
    or the file ``file`` (its text, surrounding whitespace dropped); None when neither is
    given. At least ``MIN_TOKEN_CHARS`` printable ASCII characters; every problem one
    line."""
    if env is not None and file is not None:
        raise RouteHarnessError("give --token-env or --token-file, not both")
    if env is not None:
        environ = os.environ if environ is None else environ
        if env not in environ:
            raise RouteHarnessError(f"--token-env {env}: the environment variable is not set")
        return _check_token(environ[env], f"--token-env {env}")
    if file is not None:
        where = f"--token-file {file}"
        try:
            raw = read_file_bytes(file, "token file", _TOKEN_FILE_LIMIT, option=None)
        except FileReadError as exc:
            raise RouteHarnessError(f"{where}: cannot read it: {exc.reason}") from None
        return _check_token(check_text(decode(raw, where), where), where)
    return None


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


# --- the middleware --------------------------------------------------------------------------
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Guard:
    """ASGI middleware: the bearer token (when set) and the body limit on every HTTP
    request, before the application sees it (see the module doc)."""

    def __init__(self, app: Any, *, token: str | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes
        self.token_digest = None if token is None else _digest(token.encode("ascii"))

    async def _refuse(self, send: Send, status: int, message: str, kind: str,
                      headers: list[tuple[bytes, bytes]] | None = None) -> None:
        body = error_json(message, kind)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            *(headers or [])]})
        await send({"type": "http.response.body", "body": body})

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        if self.token_digest is None:
            return True
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        # always one digest comparison, whatever was sent
        match = hmac.compare_digest(_digest(given.strip()), self.token_digest)
        return scheme.lower() == b"bearer" and match

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if not self._authorized(headers):
            await self._refuse(send, 401, "a bearer token is required: Authorization: Bearer "
                               "<the token serve was started with>", "unauthorized",
                               [(b"www-authenticate", b"Bearer")])
            return
        length = headers.get(b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await self._refuse(send, 400, "request: Content-Length is not a number",
                                   "invalid_request_error")
                return
            if int(length) > self.max_body_bytes:
                problem = BodyTooLarge(self.max_body_bytes)
                await self._refuse(send, 413, problem.message, problem.kind,
                                   [(b"connection", b"close")])
                return
        received, started = 0, False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge as problem:  # an application that did not answer it itself
            if not started:
                await self._refuse(send, 413, problem.message, problem.kind,
                                   [(b"connection", b"close")])
