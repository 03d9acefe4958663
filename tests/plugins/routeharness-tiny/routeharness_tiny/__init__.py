"""A third-party plugin: the router that always picks the second-cheapest model, and a
command (``routeharness tiny-info``) that says what the plugin provides. It imports only
the public API (``from routeharness import ...``)."""

from __future__ import annotations

import click
import numpy as np

from routeharness import SELECTION, BaseRouter, __version__, hookimpl

ROUTER = "second-cheapest"
DESCRIPTION = "always the second-cheapest model (test plugin)"


class SecondCheapestRouter(BaseRouter):
    kind = SELECTION

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, outcomes):
        order = np.argsort(np.nanmean(outcomes.costs, axis=0), kind="stable")
        self.model_index_ = int(order[min(1, len(order) - 1)])
        return self

    def route(self, X, lam, groups=None):
        self._check_fitted()
        return np.full(len(X), self.model_index_)


@hookimpl
def register_routers(register):
    register(name=ROUTER, target=SecondCheapestRouter, description=DESCRIPTION)


@hookimpl
def register_commands(cli):
    @cli.command(name="tiny-info")
    @click.option("--router", "show_router", is_flag=True, help="Only the router's name.")
    def tiny_info(show_router):
        """What the routeharness-tiny plugin provides."""
        if show_router:
            click.echo(ROUTER)
            return
        click.echo(f"routeharness-tiny: router {ROUTER!r} ({DESCRIPTION}), "
                   f"running on routeharness {__version__}")
