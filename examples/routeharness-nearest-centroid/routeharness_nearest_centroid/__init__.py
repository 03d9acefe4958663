"""routeharness plugin: the nearest-centroid router.

Only the hook lives here, and it imports nothing heavy: the router class is named as a
``"module:Class"`` string and imported the first time it is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_routers(register: Callable[..., Any]) -> None:
    register(name="nearest-centroid",
             target="routeharness_nearest_centroid.router:NearestCentroidRouter",
             description="k-means clusters of training prompts; each cluster's mean outcomes")
