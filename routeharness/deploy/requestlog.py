"""``serve``'s request log (``serve --request-log FILE``; docs/serve.md, "The request
log"): one JSON line per chat completion request, a ``RequestLogLine``: the prompt's
SHA-256 (its text too with ``--log-prompts``), the trade-off asked and used, the model
the router chose, the one that answered and each failed attempt before it, the budget's
statement, the latency, tokens and cost, and what a shadow router chose.

Lines are appended whole (one ``write`` of a line ending in ``\\n`` to a file opened for
appending, behind a lock), so a reader sees whole lines only. ``read_log`` reads a log
back through the contract: a line with a missing or malformed field is one line naming
the file and the line."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from routeharness.common.contract import Contract, Field, Number, check
from routeharness.common.errors import DataError, RouteHarnessError

#: the value of every line's ``schema`` key
SCHEMA = "routeharness.request-log/1"
#: the largest log ``read_log`` reads (bytes)
MAX_LOG_BYTES = 2_000_000_000


def prompt_sha256(text: str) -> str:
    """The hash a log keeps of a prompt: SHA-256 of its UTF-8 bytes, hex."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Attempt(Contract):
    """One failed upstream attempt before the answer."""

    model: str = Field(description="the pool's name of the model tried")
    outcome: str = Field(description="429, 5xx status, timeout or connection failed")
    status: int | None = Field(description="its HTTP status (none for a timeout or a "
                                           "connection that failed)")
    latency_ms: float = Field(description="how long the attempt took")


class ShadowChoice(Contract):
    """What the shadow router chose for the same prompt at the same trade-off."""

    router: str = Field(description="the shadow router's label")
    model: str = Field(description="the model it chose")
    predicted_score: Number | None = Field(None, description="its predicted score")
    predicted_cost_usd: Number | None = Field(None, description="its predicted cost, USD")


class RequestLogLine(Contract):
    """One line of the request log."""

    schema_: Literal["routeharness.request-log/1"] = Field(alias="schema")
    id: str = Field(description="the request's id (also the x-routeharness-request-id "
                                "header)")
    time: float = Field(description="when it arrived, seconds since the epoch")
    router: str = Field(description="the live router's label")
    prompt_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the "
                               "routed text (the last user message)")
    prompt: str | None = Field(description="the routed text (with --log-prompts), else "
                                           "null")
    routed: bool = Field(description="whether the router chose (model auto or absent)")
    lam_asked: Number = Field(description="the trade-off asked for")
    lam: Number = Field(description="the trade-off used (the budget may raise it)")
    routed_model: str | None = Field(description="the router's choice (null when the "
                                                 "request named a model)")
    model: str | None = Field(description="the model that answered (null: none did)")
    answered: bool = Field(description="whether an upstream answered (a failure is "
                                       "never an answer)")
    status: int = Field(description="the HTTP status sent to the client")
    fallbacks: list[Attempt] = Field(description="the failed attempts before the answer, "
                                                 "in order")
    budget: str | None = Field(description="the budget's statement (downgrade, refusal)")
    latency_ms: float = Field(description="from the request to the answer's headers")
    input_tokens: int | None = Field(description="the answer's usage.prompt_tokens")
    output_tokens: int | None = Field(description="the answer's usage.completion_tokens")
    cost_usd: Number | None = Field(description="what the answer cost, USD")
    cost_source: Literal["upstream", "prices", "predicted"] | None = Field(
        description="where cost_usd comes from: the upstream's usage.cost, tokens x the "
                    "card's prices, or the router's prediction")
    predicted_score: Number | None = Field(description="the live router's predicted "
                                                       "score of its choice (routed_model)")
    predicted_cost_usd: Number | None = Field(description="its predicted cost, USD")
    shadow: ShadowChoice | None = Field(description="the shadow router's choice")


class RequestLog:
    """Appends ``RequestLogLine`` s to ``path`` (created if missing; kept if there)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise RouteHarnessError(f"--request-log {path}: is a directory")
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise RouteHarnessError(f"--request-log {path}: cannot open it for appending: "
                                    f"{exc.strerror}") from None
        self.lock = threading.Lock()

    def write(self, line: RequestLogLine) -> None:
        data = (line.model_dump_json(by_alias=True) + "\n").encode("utf-8")
        with self.lock:
            os.write(self.fd, data)

    def close(self) -> None:
        with self.lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


def read_log(path: str | Path) -> Iterator[tuple[int, RequestLogLine]]:
    """The lines of a request log as (line number, ``RequestLogLine``); a line that is
    not one (a missing field, a value of the wrong type, not JSON) is one line naming the
    file and the line. Blank lines are skipped."""
    from routeharness.common.textinput import decode, json_lines, parse_json, read_file_bytes

    path = Path(path)
    raw = read_file_bytes(path, "request log", MAX_LOG_BYTES, option=None)
    text = decode(raw, str(path))
    for number, line in json_lines(text):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        data = parse_json(line, where, DataError)
        yield number, check(RequestLogLine, data, where, DataError)
