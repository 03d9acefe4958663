"""Built-in task plugin: the text routing tasks AlpacaEval 2.0, LLMRouter and RouterDC.

Each task is a module here with ``load(card, data_dir=None, **options)`` (the registered
loader) and ``build(source_dir, out_dir)`` (``routeharness data build``). Nothing heavy is
imported at module import time. alpacaeval and llmrouter ship a canonical copy in
``data/`` (their licences beside it, ``data/NOTICE.md``); routerdc's data has no licence
upstream and is read only from ``--data-dir``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl, task_card_path

TASKS = {
    "alpacaeval": "AlpacaEval 2.0: 805 instructions x 55 LLMs, GPT-4-turbo judge win probability",
    "llmrouter": "LLMRouter: 14 QA/reasoning tasks x 9 NIM-served LLMs (leaked test rows removed)",
    "routerdc": "RouterDC: MMLU, GSM8K, CMMLU, ARC-C/E, HumanEval x 7 open 7-8B LLMs "
                "(not shipped: needs --data-dir)",
}


@hookimpl
def register_tasks(register: Callable[..., Any]) -> None:
    for name, description in TASKS.items():
        register(name=name, target=f"routeharness_texttasks.{name}:load",
                 card=str(task_card_path(name)), description=description,
                 build=f"routeharness_texttasks.{name}:build")
