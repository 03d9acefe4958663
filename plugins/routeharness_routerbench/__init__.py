"""Built-in task plugin: RouterBench (ARC-Challenge, MBPP, Winogrande; 11 models)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl, task_card_path


@hookimpl
def register_tasks(register: Callable[..., Any]) -> None:
    register(name="routerbench", target="routeharness_routerbench.loader:load",
             card=str(task_card_path("routerbench")),
             description="RouterBench: ARC-Challenge, MBPP, Winogrande; 3,178 prompts x 11 LLMs, real USD costs")
