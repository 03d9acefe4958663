"""routeharness: a plugin-based evaluation harness for LLM routers."""

__version__ = "0.1.0"

from routeharness.errors import RouteHarnessError

__all__ = ["RouteHarnessError", "__version__"]
