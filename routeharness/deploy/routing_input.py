"""Prompts to route, as ``route`` (JSON lines, plain lines, one argument) and ``serve``
(a JSON body) receive them: one reader and one validation, so both refuse the same
things with the same one line."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from routeharness.common.errors import RouteHarnessError

#: the keys a prompt object may hold
PROMPT_KEYS = ("prompt", "id", "group", "embedding")
#: prompts one request may route
MAX_PROMPTS = 100_000


@dataclass(frozen=True)
class PromptItem:
    """One prompt: its text, an id (default: its 1-based position), its group (routers
    that need groups) and its own vector (routers fitted on precomputed embeddings)."""

    id: str
    prompt: str
    group: str | None = None
    embedding: tuple[float, ...] | None = None


def prompt_item(value: Any, where: str, position: int) -> PromptItem:
    """A prompt object (or a bare string) checked; one line naming ``where``."""
    if isinstance(value, str):
        value = {"prompt": value}
    if not isinstance(value, Mapping):
        raise RouteHarnessError(f"{where}: a prompt is a JSON object with \"prompt\", got "
                                f"{type(value).__name__}")
    unknown = sorted(set(map(str, value)) - set(PROMPT_KEYS))
    if unknown:
        raise RouteHarnessError(f"{where}: unknown key(s) {unknown} (a prompt has "
                                f"{', '.join(PROMPT_KEYS)})")
    text = value.get("prompt")
    if not isinstance(text, str) or not text.strip():
        raise RouteHarnessError(f"{where}: \"prompt\" must be non-blank text")
    ident = value.get("id", str(position))
    if not isinstance(ident, (str, int)) or isinstance(ident, bool):
        raise RouteHarnessError(f"{where}: \"id\" must be text or an integer")
    group = value.get("group")
    if group is not None and not isinstance(group, str):
        raise RouteHarnessError(f"{where}: \"group\" must be text")
    vector = value.get("embedding")
    if vector is not None:
        if not isinstance(vector, list) or not vector or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                for x in vector):
            raise RouteHarnessError(f"{where}: \"embedding\" must be a non-empty list of "
                                    "finite numbers")
        vector = tuple(float(x) for x in vector)
    return PromptItem(str(ident), text, group, vector)


def check_items(items: list[PromptItem], where: str) -> list[PromptItem]:
    """At least one prompt, at most ``MAX_PROMPTS``, unique ids, one vector dimension,
    vectors for all prompts or none."""
    if not items:
        raise RouteHarnessError(f"{where}: no prompt to route")
    if len(items) > MAX_PROMPTS:
        raise RouteHarnessError(f"{where}: {len(items)} prompts, at most {MAX_PROMPTS} at once")
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise RouteHarnessError(f"{where}: the id {item.id!r} is given twice")
        seen.add(item.id)
    with_vectors = [item for item in items if item.embedding is not None]
    if with_vectors and len(with_vectors) != len(items):
        raise RouteHarnessError(f"{where}: some prompts have an \"embedding\" and some do "
                                "not: give one with every prompt or none")
    dims = {len(item.embedding) for item in with_vectors if item.embedding is not None}
    if len(dims) > 1:
        raise RouteHarnessError(f"{where}: embeddings of different lengths {sorted(dims)}")
    return items


def read_prompts(lines: Iterable[str], where: str) -> list[PromptItem]:
    """Lines of JSON objects (``{"prompt": ...}``), or of plain text (one prompt per
    line); blank lines skipped."""
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        place = f"{where}, line {number}"
        if line.lstrip().startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RouteHarnessError(f"{place}: not valid JSON ({exc.msg})") from None
        else:
            value = line
        items.append(prompt_item(value, place, len(items) + 1))
    return check_items(items, where)
