"""What ``serve`` does around forwarding a chat completion (docs/serve.md): fallback
(``fallback``), the budget (``budget``), the request log (``requestlog``) and the shadow
router (``shadow``), put together for the chat endpoint: ``ProxyOptions`` (the command
line's settings), ``Proxy`` (built once, at start-up, with the loaded router) and
``Exchange`` (one request's record, written as its log line).

What an answer cost (``cost_of``): the upstream's ``usage.cost`` (USD, as OpenRouter and
LiteLLM report it), else its ``usage`` tokens x the task card's prices for the model,
else the router's predicted cost; which one is logged (``cost_source``)."""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routeharness.deploy.budget import Budget, BudgetLimit
from routeharness.deploy.fallback import Failure, FallbackPolicy, FallbackSection, settle_policy
from routeharness.deploy.requestlog import (
    SCHEMA,
    Attempt,
    RequestLog,
    RequestLogLine,
    ShadowChoice,
    prompt_sha256,
)

#: the response headers this module sets
MODEL_HEADER = "x-routeharness-model"
ROUTED_MODEL_HEADER = "x-routeharness-routed-model"
FALLBACK_HEADER = "x-routeharness-fallback"
BUDGET_HEADER = "x-routeharness-budget"
REQUEST_ID_HEADER = "x-routeharness-request-id"


@dataclass(frozen=True)
class ProxyOptions:
    """``serve``'s settings of the chat path: ``fallback`` (upstreams a routed request may
    try; None: the upstreams file's ``fallback.max_tries``, else 1), the budget, the
    request log and whether it keeps prompt text, the shadow router's folder."""

    fallback: int | None = None
    budget: BudgetLimit | None = None
    request_log: str | Path | None = None
    log_prompts: bool = False
    shadow: str | Path | None = None


class Proxy:
    """The chat path's parts for one loaded router (``service``: ``serve.Service``)."""

    def __init__(self, options: ProxyOptions, service: Any, upstreams_path: Any,
                 section: FallbackSection | None) -> None:
        self.options = options
        self.policy: FallbackPolicy = settle_policy(section, str(upstreams_path),
                                                    service.upstreams, options.fallback)
        self.budget = None
        if options.budget is not None:
            lams = [p.lam for p in service.router.validation]
            self.budget = Budget(options.budget, lams)
        self.shadow = None
        if options.shadow is not None:
            from routeharness.deploy.shadow import Shadow

            self.shadow = Shadow(options.shadow)
        self.log = None if options.request_log is None else RequestLog(options.request_log)
        self.prices = {m.name: (m.price_input_per_mtok, m.price_output_per_mtok)
                       for m in service.router.models}
        self.label = service.label

    def describe(self) -> list[str]:
        """What is on, one line each (``serve`` prints them at start-up)."""
        out = []
        if self.policy.on:
            out.append(f"fallback: up to {self.policy.max_tries} upstreams per routed request")
        if self.budget is not None:
            out.append(f"budget: {self.budget.limit.text()}")
        if self.log is not None:
            out.append(f"request log: {self.log.path} ("
                       + ("prompt text" if self.options.log_prompts else "prompt hashes") + ")")
        if self.shadow is not None:
            out.append(f"shadow router: {self.shadow.label}")
        return out

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    def cost_of(self, content: bytes | None, model: str, predicted: float | None
                ) -> tuple[int | None, int | None, float | None, str | None]:
        """(input tokens, output tokens, cost USD, where the cost comes from) of an
        answer's body (None: a stream)."""
        usage: dict[str, Any] = {}
        if content:
            try:
                data = json.loads(content)
                usage = data.get("usage") or {} if isinstance(data, dict) else {}
            except (ValueError, AttributeError):
                usage = {}
        usage = usage if isinstance(usage, dict) else {}

        def count(key: str) -> int | None:
            value = usage.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) \
                and value >= 0 else None

        tokens_in, tokens_out = count("prompt_tokens"), count("completion_tokens")
        cost = usage.get("cost")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and \
                math.isfinite(cost) and cost >= 0:
            return tokens_in, tokens_out, float(cost), "upstream"
        price_in, price_out = self.prices.get(model, (None, None))
        if None not in (tokens_in, tokens_out, price_in, price_out):
            return tokens_in, tokens_out, (tokens_in * price_in + tokens_out * price_out) / 1e6, \
                "prices"
        if predicted is not None and math.isfinite(predicted):
            return tokens_in, tokens_out, float(predicted), "predicted"
        return tokens_in, tokens_out, None, None


@dataclass
class Exchange:
    """One chat request as it goes: what the log line and the headers say of it."""

    text: str
    lam_asked: float
    routed: bool
    started: float = field(default_factory=time.monotonic)
    arrived: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    lam: float = 0.0
    routed_model: str | None = None
    model: str | None = None
    answered: bool = False
    status: int = 0
    failures: list[Failure] = field(default_factory=list)
    budget: list[str] = field(default_factory=list)
    predicted: dict[str, tuple[float, float]] = field(default_factory=dict)
    shadow: ShadowChoice | None = None
    cost: tuple[int | None, int | None, float | None, str | None] = (None, None, None, None)
    latency_ms: float = 0.0

    def headers(self, model: str | None) -> dict[str, str]:
        """The decision as response headers (``model``: the one answering; None: none)."""
        out = {REQUEST_ID_HEADER: self.id} if model is None else \
            {MODEL_HEADER: model, REQUEST_ID_HEADER: self.id}
        if self.routed_model is not None:
            out[ROUTED_MODEL_HEADER] = self.routed_model
        if self.failures:
            out[FALLBACK_HEADER] = "; ".join(f.header() for f in self.failures)
        if self.budget:
            out[BUDGET_HEADER] = "; ".join(self.budget)
        return out

    def line(self, proxy: Proxy) -> RequestLogLine:
        score, cost = self.predicted.get(self.routed_model or "", (None, None))
        tokens_in, tokens_out, usd, source = self.cost
        return RequestLogLine.model_validate({
            "schema": SCHEMA, "id": self.id, "time": self.arrived, "router": proxy.label,
            "prompt_sha256": prompt_sha256(self.text),
            "prompt": self.text if proxy.options.log_prompts else None,
            "routed": self.routed, "lam_asked": self.lam_asked, "lam": self.lam,
            "routed_model": self.routed_model, "model": self.model,
            "answered": self.answered, "status": self.status,
            "fallbacks": [Attempt(**f.to_dict()) for f in self.failures],
            "budget": "; ".join(self.budget) or None, "latency_ms": self.latency_ms,
            "input_tokens": tokens_in, "output_tokens": tokens_out, "cost_usd": usd,
            "cost_source": source, "predicted_score": score, "predicted_cost_usd": cost,
            "shadow": self.shadow})
