"""Built-in task plugin: ``vhelm-mm``, multimodal routing built from VHELM's raw
per-instance outputs (HELM run-output format). The dataset is built once with
``routeharness data build vhelm-mm --source DIR_OR_URL [--suite v2.1.0] --out DIR`` and
then read with ``--data-dir DIR``. Nothing heavy is imported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl, task_card_path


@hookimpl
def register_tasks(register: Callable[..., Any]) -> None:
    register(name="vhelm-mm", target="routeharness_vhelm.loader:load",
             card=str(task_card_path("vhelm-mm")), build="routeharness_vhelm.build:build",
             description="VHELM multimodal routing, built from HELM raw outputs with "
                         "`routeharness data build vhelm-mm` (needs --data-dir)")
