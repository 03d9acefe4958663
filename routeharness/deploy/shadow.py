"""Shadow mode (``serve --shadow FOLDER``; docs/serve.md, "Shadow mode"): a second saved
router routes the same chat traffic without answering; its choice goes to the request
log beside the live one's, and ``routeharness results shadow LOG`` compares the two.

The shadow router and its own encoder load at start-up; it routes in a worker thread
while the live answer is fetched, behind a lock of its own, so it adds no latency unless
it is slower than the upstream. A shadow that fails is logged (``routeharness.serve``)
and the request is answered as without it."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError
from routeharness.deploy.requestlog import RequestLogLine, ShadowChoice

log = logging.getLogger("routeharness.serve")


class Shadow:
    """A saved router that routes without answering."""

    def __init__(self, folder: str | Path) -> None:
        from routeharness.deploy import saved

        self.router = saved.load(folder)
        self.label = self.router.manifest.router.label
        if self.router.manifest.encoder.name == "precomputed":
            raise RouteHarnessError(f"--shadow {folder}: this router routes the dataset's "
                                    "own vectors, not text: a shadow must route text")
        if self.router.tags.needs_groups:
            raise RouteHarnessError(f"--shadow {folder}: router {self.label!r} needs each "
                                    "prompt's group, which a chat request does not give")
        self.encoder = self.router.encoder()
        self.encoder.encode(["warm-up"])
        self.lock = threading.Lock()

    def choose(self, text: str, lam: float) -> ShadowChoice | None:
        """The shadow's choice for ``text`` at ``lam`` (blocking: call it in a worker
        thread); None, logged, when it fails."""
        try:
            with self.lock:
                X = self.encoder.encode([text])
                routes = self.router.route_vectors(X, lam, None, [text])
        except Exception as exc:  # the live answer must not suffer from the shadow
            log.warning("shadow router %r failed: %r", self.label, exc)
            return None
        row = routes.rows()[0]
        return ShadowChoice(router=self.label, model=row["model"],
                            predicted_score=row.get("predicted_score"),
                            predicted_cost_usd=row.get("predicted_cost_usd"))


@dataclass
class Side:
    """One router's numbers over a log."""

    label: str
    routed: int = 0
    scores: list[float] | None = None
    costs: list[float] | None = None
    models: dict[str, int] | None = None

    def add(self, model: str, score: float | None, cost: float | None) -> None:
        self.routed += 1
        self.models = self.models or {}
        self.models[model] = self.models.get(model, 0) + 1
        self.scores = self.scores if self.scores is not None else []
        self.costs = self.costs if self.costs is not None else []
        if score is not None and math.isfinite(score):
            self.scores.append(score)
        if cost is not None and math.isfinite(cost):
            self.costs.append(cost)


def compare(lines: Sequence[RequestLogLine]) -> dict[str, Any]:
    """The live and the shadow router over the routed requests of a log that have a
    shadow choice: how many, how often they agree, each one's mean predicted score and
    cost per 1,000 requests of its own choices, and its most chosen model."""
    both = [line for line in lines if line.routed and line.shadow is not None
            and line.routed_model is not None]
    if not both:
        raise RouteHarnessError("the log has no routed request with a shadow choice "
                                "(serve --shadow FOLDER records one)")
    live = Side(both[0].router)
    shadow = Side(both[0].shadow.router)  # type: ignore[union-attr]
    agree = 0
    for line in both:
        choice = line.shadow
        assert choice is not None
        live.add(line.routed_model or "", line.predicted_score, line.predicted_cost_usd)
        shadow.add(choice.model, choice.predicted_score, choice.predicted_cost_usd)
        agree += choice.model == line.routed_model
    rows = []
    for role, side in (("live", live), ("shadow", shadow)):
        top = max((side.models or {}).items(), key=lambda kv: (kv[1], kv[0]))
        rows.append({"role": role, "router": side.label, "requests": side.routed,
                     "predicted_score": float(np.mean(side.scores)) if side.scores else None,
                     "predicted_usd_per_1k": (float(np.mean(side.costs)) * 1000
                                              if side.costs else None),
                     "top_model": top[0], "top_share": top[1] / side.routed})
    return {"requests": len(both), "agreement": agree / len(both), "rows": rows,
            "lines": len(lines)}
