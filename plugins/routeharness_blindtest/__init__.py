"""Built-in task plugin: BlindTest ("Vision Language Models Are Blind"), image + question
items answered by four VLMs. ``blindtest`` is the full set (10,192 items); ``blindtest-ci``
its 224-item CI subset (32 per task), for fast tests. Both read the shared data folder
(``--data-dir`` / ``ROUTEHARNESS_DATA``); nothing heavy is imported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl, task_card_path


@hookimpl
def register_tasks(register: Callable[..., Any]) -> None:
    card = str(task_card_path("blindtest"))
    register(name="blindtest", target="routeharness_blindtest.loader:load", card=card,
             description="BlindTest (VLMs Are Blind): 10,192 image+question items x 4 VLMs, "
                         "7 visual tasks (needs --data-dir)")
    register(name="blindtest-ci", target="routeharness_blindtest.loader:load_ci", card=card,
             description="BlindTest CI subset: 224 items (32 per task) x 4 VLMs "
                         "(needs --data-dir)")
