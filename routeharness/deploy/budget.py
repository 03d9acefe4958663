"""A hard spending budget for ``serve``'s chat completions (docs/serve.md, "Budget"):
USD per hour (``serve --budget-usd-per-hour``) or per 1,000 requests
(``--budget-usd-per-1k``), over fixed windows (clock time from start-up, or runs of
1,000 chat requests).

- Below ``SOFT`` of the budget spent, requests are routed at the trade-off they ask for.
- From ``SOFT`` on, routing moves down the trade-off: the trade-off becomes at least the
  one of the saved router's validation operating point that lies as far along the
  points (most to least expensive) as the spent share lies between ``SOFT`` and 1.
- A model whose predicted cost is over what is left is skipped (a downgrade), and when no
  model fits, or the budget is spent, the request is refused (429, ``budget_exceeded``).

Each downgrade and refusal is stated in the response's ``x-routeharness-budget`` header
and the request log. What is spent is the answer's cost (the upstream's ``usage.cost``,
else its tokens x the card's prices, else the router's prediction), charged when the
answer comes, so the budget holds to within the difference between predicted and actual
cost of the requests in flight at once.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from routeharness.common.errors import RouteHarnessError

#: the share of the budget from which routing moves down the trade-off
SOFT = 0.5
#: the windows a budget may be over: name -> (the option, what the window is)
WINDOWS = {"hour": "--budget-usd-per-hour", "1k": "--budget-usd-per-1k"}


def check_budget(value: Any, option: str) -> float:
    """A budget as given on the command line: a finite number of USD > 0, else one
    line naming the option."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RouteHarnessError(f"{option} {value!r}: not a number of USD") from None
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise RouteHarnessError(f"{option} {value}: a budget is a finite number of USD > 0")
    return number


@dataclass(frozen=True)
class BudgetLimit:
    """A budget: ``usd`` per window ``per`` (``"hour"`` or ``"1k"`` requests)."""

    usd: float
    per: str

    def __post_init__(self) -> None:
        if self.per not in WINDOWS:
            raise RouteHarnessError(f"a budget window is one of {list(WINDOWS)}, got "
                                    f"{self.per!r}")
        check_budget(self.usd, WINDOWS[self.per])

    def text(self) -> str:
        return f"${self.usd:g} per " + ("hour" if self.per == "hour" else "1,000 requests")


@dataclass
class Decision:
    """What the budget says before routing: the trade-off to use, whether it was raised,
    and the statement (None: nothing to say)."""

    lam: float
    downgraded: bool = False
    statement: str | None = None


class BudgetExceeded(RouteHarnessError):
    """The budget is spent, or no model fits in what is left: 429."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = 429, message, "budget_exceeded"
        self.retry_after = retry_after


@dataclass
class Budget:
    """A budget's running account (thread-safe). ``lams``: the validation operating
    points' trade-offs, most expensive first; ``clock``: seconds (monotonic)."""

    limit: BudgetLimit
    lams: Sequence[float]
    clock: Callable[[], float] = time.monotonic
    spent: float = 0.0
    requests: int = 0
    window: int = 0
    refused: int = 0
    downgraded: int = 0
    started: float = field(default=0.0)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.started = self.clock()
        self.lams = sorted(float(x) for x in self.lams)

    def _roll(self) -> None:
        """Start a new window when the current one is over."""
        if self.limit.per == "hour":
            current = int((self.clock() - self.started) // 3600)
        else:
            current = self.requests // 1000
        if current != self.window:
            self.window, self.spent = current, 0.0

    def _retry_after(self) -> int | None:
        if self.limit.per != "hour":
            return None
        return max(1, math.ceil(3600 * (self.window + 1) - (self.clock() - self.started)))

    def left(self) -> float:
        with self.lock:
            self._roll()
            return self.limit.usd - self.spent

    def _state(self) -> str:
        return f"${self.spent:.4g} of {self.limit.text()} spent"

    def before(self, lam: float, routed: bool = True) -> Decision:
        """Counts the request into its window and says at which trade-off to route it
        (``routed`` False: a request naming its model, never downgraded), or raises
        ``BudgetExceeded`` when the budget is spent."""
        with self.lock:
            self._roll()
            self.requests += 1
            share = self.spent / self.limit.usd
            if share >= 1:
                self.refused += 1
                raise BudgetExceeded(f"budget: refused: {self._state()}",
                                     self._retry_after())
            if share < SOFT or not self.lams or not routed:
                return Decision(lam)
            step = (share - SOFT) / (1 - SOFT)
            floor = self.lams[min(len(self.lams) - 1, math.ceil(step * (len(self.lams) - 1)))]
            if floor <= lam:
                return Decision(lam)
            self.downgraded += 1
            return Decision(floor, True, f"downgrade: lam {lam:g} -> {floor:g} ({self._state()})")

    def fit(self, tries: list[str], predicted: dict[str, float]) -> tuple[list[str], str | None]:
        """``tries`` without the models whose predicted cost (USD; ``predicted``) is over
        what is left, and the statement when the routed model was dropped; raises
        ``BudgetExceeded`` when none is left."""
        left = self.left()
        kept = [m for m in tries if predicted.get(m, 0.0) <= left]
        if not kept:
            with self.lock:
                self.refused += 1
            cheapest = min(predicted.get(m, 0.0) for m in tries)
            raise BudgetExceeded(f"budget: refused: ${left:.4g} left of {self.limit.text()}, "
                                 f"less than the cheapest model's predicted ${cheapest:.4g}",
                                 self._retry_after())
        if kept[0] != tries[0]:
            with self.lock:
                self.downgraded += 1
            return kept, (f"downgrade: {tries[0]} (predicted ${predicted[tries[0]]:.4g}) "
                          f"is over the ${left:.4g} left; {kept[0]} instead")
        return kept, None

    def spend(self, usd: float) -> None:
        with self.lock:
            self._roll()
            if math.isfinite(usd) and usd > 0:
                self.spent += usd
