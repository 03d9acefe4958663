"""The protocol's fixed facts: the trade-off sweep, the seed streams, the reference rows,
and ``Protocol``, everything that fixes the numbers (recorded in every result file)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from routeharness.common.errors import RouteHarnessError
from routeharness.routers.base import TIE_BREAK

if TYPE_CHECKING:
    from routeharness.results.records import ProtocolRecord

#: the trade-off range (log10 of lam, normalised cost units) every sweep covers: the
#: harness's sweep, the conformance kit's, and the lams learned routers train on
LOG10_LAMBDA_RANGE: tuple[float, float] = (-3.0, 3.0)


def lambda_sweep(n_between: int) -> tuple[float, ...]:
    """0 (quality only), ``n_between`` log-spaced lams over ``LOG10_LAMBDA_RANGE``, and
    inf (cost only). Computed in Python and rounded to 12 significant digits, so that
    every numpy version and platform gives the very same sweep (``np.logspace`` differs
    in the last bits between numpy versions: a file made with another one would record
    other lams). Recorded sweeps are compared with ``results.records.same_lambdas``."""
    low, high = LOG10_LAMBDA_RANGE
    step = (high - low) / (n_between - 1) if n_between > 1 else 0.0
    between = (float(f"{10.0 ** (low + i * step):.12g}") for i in range(n_between))
    return (0.0, *between, math.inf)


DEFAULT_LAMBDAS: tuple[float, ...] = lambda_sweep(49)

#: the independent random streams one seed is split into
SEED_STREAMS = ("grid", "router", "bootstrap")
#: how many seeds one run may have, and their bound (torch and numpy take 32-bit seeds;
#: ``results.records.Seed`` checks the same bound in files: this module stays free of
#: pydantic, so that ``routeharness --help`` does not load it)
MAX_SEEDS = 1000
SEED_LIMIT = 2 ** 32
#: what tuning scores a configuration on (``Protocol.tune_on``, ``--tune-on``): the
#: validation split (fitted on train), or leave-one-group-out over the training groups
#: (``evaluation.tuning``)
TUNE_ON = ("validation", "groups")
#: the most bootstrap resamples a run may ask for (each is one pass over the test choices:
#: 10^5 take minutes on the largest task; 10^8 would run for days)
MAX_BOOTSTRAP = 100_000


@dataclass(frozen=True)
class SeedStreams:
    """One seed's independent streams, each a 32-bit integer: ``grid`` samples the
    tuning grid, ``router`` is every router's ``random_state``, ``bootstrap`` draws the
    confidence-interval resamples. Independent, so a deterministic router's interval
    does not move when the grid sample changes, and the router's draws are not the
    bootstrap's."""

    seed: int
    grid: int
    router: int
    bootstrap: int


def seed_streams(seed: int) -> SeedStreams:
    """``numpy.random.SeedSequence(seed).spawn(3)``, one 32-bit integer per stream."""
    if not 0 <= int(seed) < SEED_LIMIT:
        raise RouteHarnessError(f"seed {seed} is outside 0..{SEED_LIMIT - 1}")
    children = np.random.SeedSequence(int(seed)).spawn(len(SEED_STREAMS))
    values = [int(child.generate_state(1, dtype=np.uint32)[0]) for child in children]
    return SeedStreams(int(seed), *values)


@dataclass(frozen=True)
class Protocol:
    """Everything that fixes the numbers; recorded in every result file. ``tune_on``:
    what tuning scores a configuration on (``TUNE_ON``); ``validation`` is the default
    every file before it was made with."""

    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS
    seeds: tuple[int, ...] = (0,)
    tune: bool = True
    max_configs: int = 24
    n_bootstrap: int = 200
    tie_break: str = TIE_BREAK
    fit_on: str = "train"
    tune_on: str = "validation"
    evaluate_on: str = "test"
    cost_normalisation: str = ("routing: train's most expensive model's mean cost = 1; "
                               "metrics: the evaluated split's most expensive model's mean cost = 1")
    missing_scores: str = "rows with a missing score are excluded from tuning and test metrics"
    seed_streams: str = ("numpy SeedSequence(seed).spawn(3) -> grid sample, router "
                         "random_state, bootstrap (one 32-bit integer each)")
    oracle: str = ("reference: each test prompt's best model by its true outcome at every "
                   "lam (train's cost scale), ties by tie_break")
    version: int = 2

    def __post_init__(self) -> None:
        """Numbers that would crash or hang a run are refused here, whoever builds the
        protocol (the CLI, a board, Python)."""
        if isinstance(self.n_bootstrap, bool) or not isinstance(self.n_bootstrap, int) \
                or not 0 <= self.n_bootstrap <= MAX_BOOTSTRAP:
            raise RouteHarnessError(f"n_bootstrap must be an integer from 0 to "
                                    f"{MAX_BOOTSTRAP}, got {self.n_bootstrap!r}")
        if isinstance(self.max_configs, bool) or not isinstance(self.max_configs, int) \
                or self.max_configs < 1:
            raise RouteHarnessError(f"max_configs must be an integer >= 1, got "
                                    f"{self.max_configs!r}")
        if self.tune_on not in TUNE_ON:
            raise RouteHarnessError(f"tune_on must be one of {', '.join(TUNE_ON)}, got "
                                    f"{self.tune_on!r}")
        if self.tune_on != "validation" and not self.tune:
            raise RouteHarnessError(f"tune_on={self.tune_on!r} without tuning (--no-tune): "
                                    "nothing would be tuned on groups")
        seeds = list(self.seeds)
        if not seeds or len(seeds) > MAX_SEEDS or len(set(seeds)) != len(seeds) or any(
                isinstance(s, bool) or not isinstance(s, (int, np.integer))
                or not 0 <= s < SEED_LIMIT for s in seeds):
            raise RouteHarnessError(f"seeds must be 1 to {MAX_SEEDS} distinct integers in "
                                    f"0..{SEED_LIMIT - 1}, got {seeds[:5]!r}"
                                    + ("..." if len(seeds) > 5 else ""))

    def to_dict(self) -> dict[str, Any]:
        """The protocol as a result file records it, as JSON data."""
        return self.recorded().to_dict()

    def recorded(self) -> ProtocolRecord:
        """The protocol as every result file records it."""
        from routeharness.results.records import ProtocolRecord

        values = asdict(self)
        values.update(lambdas=[float(x) for x in self.lambdas],
                      seeds=[int(s) for s in self.seeds])
        return ProtocolRecord(**values)
