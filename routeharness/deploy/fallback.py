"""Fallback of ``serve``'s chat completions (docs/serve.md, "Fallback"): when the routed
model's upstream fails in a way another model can mend (429, a 5xx, a timeout, a refused
or broken connection), the request goes to the next model by the router's predicted
utility at the request's trade-off, up to ``max_tries`` upstreams in all.

- ``FallbackSection``: the ``fallback:`` section of the upstreams YAML (``max_tries``, the
  ``models`` a request may fall back to), checked against the pool at start-up;
- ``FallbackPolicy``: the settled policy (``serve --fallback N`` overrides ``max_tries``);
- ``Failure``: one failed attempt, what the response header, the log and an all-failed
  502 say about it (never the upstream's body);
- ``order``: the models to try, best predicted utility first.

A failure is never an answer: a request whose every attempt failed is answered with the
failure (the one upstream's status when one was tried, else a 502 naming each attempt).
Other 4xx statuses (a bad parameter, a refused content) are the caller's and end the
request at once, as do requests naming a model (not ``auto``): they asked for that model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import field_validator

from routeharness.common.contract import Contract, Field
from routeharness.common.errors import RouteHarnessError

#: statuses another model may mend: a rate limit, and every 5xx
RETRY_STATUSES = frozenset({429})
#: the most upstreams one request may try
MAX_TRIES_LIMIT = 20


def retryable_status(status: int) -> bool:
    """Whether an upstream status is worth another model: 429 or any 5xx."""
    return status in RETRY_STATUSES or 500 <= status <= 599


class FallbackSection(Contract):
    """The ``fallback:`` section of the upstreams YAML."""

    max_tries: int = Field(2, ge=1, le=MAX_TRIES_LIMIT, description="the most upstreams "
                           "one routed request tries, the routed model included (1: no "
                           "fallback)")
    models: list[str] | None = Field(None, description="the models a request may fall "
                                     "back to (default: every model with an upstream), "
                                     "tried by predicted utility, not in this order")

    @field_validator("models")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("must name at least one model (leave it out for all)")
            twice = sorted({m for m in value if value.count(m) > 1})
            if twice:
                raise ValueError(f"names {twice[0]!r} twice")
        return value


@dataclass(frozen=True)
class FallbackPolicy:
    """How many upstreams a routed request tries, and which models it may fall back to
    (None: every model with an upstream)."""

    max_tries: int = 1
    models: frozenset[str] | None = None

    @property
    def on(self) -> bool:
        return self.max_tries > 1


def settle_policy(section: FallbackSection | None, where: str, upstreams: Mapping[str, Any],
                  tries: int | None = None) -> FallbackPolicy:
    """The policy of an upstreams file's ``fallback`` section (``where``: the file, for
    messages): a model it names that has no upstream is one line; ``tries`` (``serve
    --fallback``) overrides ``max_tries``; no section and no flag: no fallback."""
    if tries is not None and not (1 <= tries <= MAX_TRIES_LIMIT):
        raise RouteHarnessError(f"--fallback {tries}: the number of upstreams to try must "
                                f"be between 1 and {MAX_TRIES_LIMIT}")
    models = None
    if section is not None and section.models is not None:
        for i, name in enumerate(section.models):
            if name not in upstreams:
                raise RouteHarnessError(f"{where}: fallback.models[{i}]: {name!r} has no "
                                        f"upstream in this file ({', '.join(upstreams)})")
        models = frozenset(section.models)
    max_tries = tries if tries is not None else (section.max_tries if section else 1)
    return FallbackPolicy(max_tries, models)


@dataclass(frozen=True)
class Failure:
    """One failed attempt: the model, what went wrong (``kind``: ``status``, ``timeout``,
    ``connect``), its HTTP status (``status``), and the seconds it took."""

    model: str
    kind: str
    status: int | None = None
    seconds: float = 0.0
    timeout_s: float | None = None

    @property
    def retryable(self) -> bool:
        return self.kind != "status" or retryable_status(self.status or 0)

    def reason(self) -> str:
        """What failed, short: ``429``, ``503``, ``timeout``, ``connection failed``."""
        if self.kind == "status":
            return str(self.status)
        return "timeout" if self.kind == "timeout" else "connection failed"

    def header(self) -> str:
        """As ``x-routeharness-fallback`` says it: ``429 from m1``."""
        return f"{self.reason()} from {self.model}"

    def sentence(self) -> str:
        """As an all-failed 502 says it."""
        if self.kind == "status":
            return f"{self.model!r} answered HTTP {self.status}"
        if self.kind == "timeout":
            return f"{self.model!r} did not answer within {self.timeout_s:g} s"
        return f"{self.model!r} could not be reached"

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "outcome": self.reason(), "status": self.status,
                "latency_ms": round(self.seconds * 1000, 1)}


def all_failed_message(failures: Sequence[Failure]) -> str:
    """The one line of a 502 after every attempt failed (no upstream body in it)."""
    return (f"every upstream tried failed ({len(failures)}): "
            + "; ".join(f.sentence() for f in failures)
            + " (the server's log has the details)")


def order(chosen: str, pool: Sequence[str], served: Mapping[str, Any],
          policy: FallbackPolicy, scores: Any = None, costs: Any = None,
          lam: float = 0.0) -> list[str]:
    """The models a routed request tries, at most ``policy.max_tries``: ``chosen`` first,
    then the models with an upstream that the policy allows, by the router's predicted
    utility (score - lam x normalised cost; ``costs`` already normalised) at the
    request's trade-off, ties to the pool's order; for a router without predictions
    (``scores`` None), in the pool's order."""
    out = [chosen]
    if policy.max_tries <= 1:
        return out
    rest = [i for i, name in enumerate(pool) if name != chosen and name in served
            and (policy.models is None or name in policy.models)]
    if scores is not None and costs is not None:
        def key(i: int) -> tuple[float, float, int]:
            score, cost = float(scores[i]), float(costs[i])
            value = -cost if math.isinf(lam) else score - lam * cost  # inf: cost only
            return (-value if math.isfinite(value) else math.inf,
                    -score if math.isfinite(score) else math.inf, i)
        rest.sort(key=key)
    out += [pool[i] for i in rest]
    return out[:policy.max_tries]
