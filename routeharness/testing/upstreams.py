"""A pool of fake OpenAI-compatible upstreams for testing ``serve`` (its tests and
benchmarks/resilience.py): one local HTTP server per model on 127.0.0.1, each answering
``POST .../chat/completions`` with a fixed answer and a ``usage`` (tokens and, where
given, ``cost`` in USD), and failing at stated rates: 429, 503, or a hang longer than
any timeout. The draws are seeded per model, so a run is repeatable. Nothing leaves the
machine."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: (model, the last user message) -> the answer's ``usage`` (tokens, ``cost``)
UsageOf = Callable[[str, str], dict[str, Any]]


@dataclass
class Faults:
    """The share of requests answered 429, answered 503, and left hanging (``hang_s``
    seconds, then answered normally), drawn in that order per request."""

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_timeout: float = 0.0
    hang_s: float = 5.0


@dataclass
class FakeModel:
    """One model's server: its faults, its seeded draws, and what it was asked."""

    name: str
    faults: Faults
    rng: random.Random
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    failed: dict[str, int] = field(default_factory=lambda: {"429": 0, "503": 0, "hang": 0})
    server: Any = None

    def draw(self) -> str:
        with self.lock:
            self.requests += 1
            x = self.rng.random()
            f = self.faults
            for kind, rate in (("429", f.rate_429), ("503", f.rate_5xx),
                               ("hang", f.rate_timeout)):
                if x < rate:
                    self.failed[kind] += 1
                    return kind
                x -= rate
            return "ok"


def _last_user(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""


class FakePool:
    """Fake upstreams for ``models`` (see the module doc); ``usage``: each answer's usage
    (default: 10 tokens in, 20 out). Use as a context manager, or ``start``/``stop``."""

    def __init__(self, models: list[str], usage: UsageOf | None = None, seed: int = 0,
                 faults: Faults | None = None) -> None:
        self.usage = usage or (lambda model, text: {"prompt_tokens": 10,
                                                    "completion_tokens": 20})
        self.models = {name: FakeModel(name, faults or Faults(),
                                       random.Random(f"{seed}:{name}")) for name in models}
        self.urls: dict[str, str] = {}

    def set_faults(self, faults: Faults, models: list[str] | None = None) -> None:
        for name in models or list(self.models):
            self.models[name].faults = faults

    def start(self) -> dict[str, str]:
        """Starts one server per model; returns model -> its base URL (``.../v1``)."""
        for model in self.models.values():
            handler = _handler(model, self.usage)
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            model.server = server
            self.urls[model.name] = f"http://127.0.0.1:{server.server_address[1]}/v1"
        return dict(self.urls)

    def stop(self) -> None:
        for model in self.models.values():
            if model.server is not None:
                model.server.shutdown()
                model.server.server_close()
                model.server = None

    def __enter__(self) -> FakePool:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def upstreams_yaml(self, timeout_s: float = 1.0, fallback: str = "") -> str:
        """An upstreams file naming every model of the pool (``fallback``: the text of a
        ``fallback:`` section's body, e.g. ``"{max_tries: 3}"``)."""
        lines = ["models:"] + [f"  {json.dumps(name)}: {{base_url: '{url}', timeout: "
                               f"{timeout_s:g}}}" for name, url in self.urls.items()]
        if fallback:
            lines.append(f"fallback: {fallback}")
        return "\n".join(lines) + "\n"


def _handler(model: FakeModel, usage: UsageOf) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, data: dict[str, Any]) -> None:
            raw = json.dumps(data).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a hang past its timeout)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            kind = model.draw()
            if kind == "429":
                self._send(429, {"error": {"message": "rate limited (secret-org-42)"}})
                return
            if kind == "503":
                self._send(503, {"error": {"message": "overloaded at node-7.internal"}})
                return
            if kind == "hang":
                time.sleep(model.faults.hang_s)
            text = _last_user(body)
            self._send(200, {"object": "chat.completion", "model": body.get("model"),
                             "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                 "role": "assistant", "content": f"answer from {model.name}"}}],
                             "usage": usage(model.name, text)})

    return Handler
