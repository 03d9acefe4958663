"""The ``routeharness`` command line: click + rich, a thin layer over the library.

One module per command group; ``_app`` holds the group, the entry point and what the
commands share. Heavy libraries (torch, faiss, datasets, sentence-transformers) are
imported only inside the commands that need them, so ``--help`` and the listings start
instantly.
"""

from routeharness.cli import (
    check,
    data,
    deploy,
    evaluation,
    leaderboard,
    listing,
    results,
    schemas,
    serve,
    study,
)
from routeharness.cli._app import cli, main

__all__ = ["check", "cli", "data", "deploy", "evaluation", "leaderboard", "listing",
           "main", "results", "schemas", "serve", "study"]
