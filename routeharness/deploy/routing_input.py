"""Prompts to route, as ``route`` (JSON lines, plain lines, one argument) and ``serve``
(the ``POST /route`` body) receive them: one contract, ``PromptItem``, so both refuse the
same things with the same one line naming the place and the key (``prompts.jsonl, line 3:
embedding[1]: must be a finite number, got nan``): an unknown key, a key given twice, a
number where text belongs, text where a number belongs, NaN or infinity in a vector, a
value float32 cannot hold, a prompt that shows nothing (blank, or only invisible
characters), and, where a limit is set, a prompt longer than it. The text itself (its
size, encoding, nesting, surrogates, long integers) is read by the one text reader,
``routeharness.common.textinput``. ``RouteRequest`` is the ``/route`` body; the checks
across prompts (``batch_problem``: how many, unique ids, vectors for all or none, one
dimension) are the same for both."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, ValidationInfo, field_validator, model_validator
from typing_extensions import TypedDict

from routeharness.common import textinput
from routeharness.common.contract import (
    Contract,
    Field,
    Float32Vector,
    NonNegative,
    Number,
    check,
)
from routeharness.common.errors import RouteHarnessError

#: prompts one request may route
MAX_PROMPTS = 100_000
#: the validation context key of the longest prompt accepted (characters; absent: none)
MAX_PROMPT_CHARS = "max_prompt_chars"
#: what a non-finite trade-off is told: how to ask for cost-only routing instead
COST_ONLY_HINT = ("for cost-only routing give a large trade-off (e.g. 1e6) or a budget of "
                  "0 (the cheapest validation trade-off)")


def _prompt_text(value: str, info: ValidationInfo) -> str:
    if textinput.is_blank(value):
        raise ValueError("must be non-blank text" + (
            " (it holds only invisible characters)" if value.strip() else ""))
    limit = (info.context or {}).get(MAX_PROMPT_CHARS)
    if limit is not None and len(value) > limit:
        raise ValueError(f"{len(value):,} characters, more than the limit of {limit:,}")
    return value


def _id_text(value: str | int) -> str:
    return str(value)  # ``1`` and ``"1"`` are one id; an ``IntegerText`` is its digits


def finite_or_hint(value: Any) -> Any:
    """A trade-off or budget as given, unless it is NaN or infinite: then the one line
    says how to route on cost alone."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}; {COST_ONLY_HINT}")
    return value


class PromptItem(Contract):
    """One prompt: its text, an id (text or an integer of any length, kept as text;
    default: its 1-based position), its group (routers that need groups) and its own
    vector (routers fitted on the dataset's precomputed embeddings)."""

    prompt: Annotated[str, AfterValidator(_prompt_text)] = Field(
        description="the text to route (not blank, nor only invisible characters)")
    id: Annotated[str | int, AfterValidator(_id_text)] | None = Field(
        None, description="the prompt's id, text or an integer (default: its 1-based "
        "position)")
    group: str | None = Field(None, description="its group, for routers that need one")
    embedding: Float32Vector | None = Field(
        None, min_length=1, description="its own vector (finite numbers float32 holds), "
        "for routers fitted on precomputed embeddings")


def numbered(items: Sequence[PromptItem]) -> list[PromptItem]:
    """``items`` with each missing id set to its 1-based position; where that position is
    another prompt's id, ``#`` goes in front until it is no prompt's id (``#2``), so a
    prompt without an id never clashes with one given."""
    taken = {item.id for item in items if item.id is not None}
    out = []
    for position, item in enumerate(items, start=1):
        if item.id is None:
            name = str(position)
            while name in taken:
                name = "#" + name
            taken.add(name)
            item = item.model_copy(update={"id": name})
        out.append(item)
    return out


def _bare_prompt(value: Any) -> Any:
    return {"prompt": value} if isinstance(value, str) else value


def batch_problem(items: Sequence[PromptItem]) -> str | None:
    """What is wrong with ``items`` as one batch (None when nothing is): none, more than
    ``MAX_PROMPTS``, an id twice, vectors for some prompts only, vectors of two lengths."""
    if not items:
        return "no prompt to route"
    if len(items) > MAX_PROMPTS:
        return f"{len(items)} prompts, at most {MAX_PROMPTS} at once"
    seen: set[str | None] = set()
    for item in items:
        if item.id in seen:
            return f"the id {item.id!r} is given twice"
        seen.add(item.id)
    with_vectors = [item.embedding for item in items if item.embedding is not None]
    if with_vectors and len(with_vectors) != len(items):
        return ("some prompts have an \"embedding\" and some do not: give one with every "
                "prompt or none")
    dims = {len(vector) for vector in with_vectors}
    if len(dims) > 1:
        return f"embeddings of different lengths {sorted(dims)}"
    return None


class RouteRequest(Contract):
    """The body of ``POST /route``: prompts (text, or ``PromptItem`` objects) and at most
    one of a trade-off and a budget."""

    model_config = ConfigDict(title="routeharness serve: POST /route")

    prompts: list[PromptItem] = Field(description="the prompts: text, or objects with "
                                      "\"prompt\" and optional \"id\", \"group\", "
                                      "\"embedding\"")
    lam: NonNegative | None = Field(None, description="the trade-off, a finite number >= 0 "
                                    "(default: serve's --lam)")
    budget: NonNegative | None = Field(None, description="USD per 1,000 prompts: the "
                                       "validation trade-off of highest quality within it")

    @field_validator("lam", "budget", mode="before")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        return finite_or_hint(value)

    @model_validator(mode="before")
    @classmethod
    def _bare_prompts(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("prompts"), list):
            return {**data, "prompts": [_bare_prompt(p) for p in data["prompts"]]}
        return data

    @model_validator(mode="after")
    def _one_batch(self) -> RouteRequest:
        if self.lam is not None and self.budget is not None:
            raise ValueError("give \"lam\" or \"budget\", not both")
        problem = batch_problem(numbered(self.prompts))
        if problem:
            raise ValueError(problem)
        return self

    def items(self) -> list[PromptItem]:
        """The prompts, each with its id."""
        return numbered(self.prompts)


class Prediction(TypedDict):
    """A utility router's prediction for one model on one prompt: ``score`` (in [0, 1])
    and ``cost_usd``. A typed mapping, not a model: a large answer holds millions."""

    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)  # type: ignore[misc]

    score: float
    cost_usd: float


class RoutedPrompt(Contract):
    """One routed prompt, as ``serve`` answers it in ``routes`` and ``route --format
    jsonl`` writes it (there with its ``prompt`` too): the chosen model at ``lam`` and,
    for a utility router, the predictions (a selection router's rows have none)."""

    id: str = Field(description="the prompt's id")
    prompt: str | None = Field(None, description="the prompt (route --format jsonl)")
    model: str = Field(description="the chosen model")
    lam: Number = Field(description="the trade-off it was chosen at")
    predicted_score: float | None = Field(None, description="the chosen model's predicted "
                                          "score")
    predicted_cost_usd: float | None = Field(None, description="its predicted cost, USD")
    predicted: dict[str, Prediction] | None = Field(None, description="every model's "
                                                    "prediction")


def prompt_item(value: Any, where: str, position: int,
                max_prompt_chars: int | None = None) -> PromptItem:
    """A prompt object (or a bare string) as a ``PromptItem``, its id defaulting to
    ``position``; one line naming ``where`` and the key otherwise."""
    item = check(PromptItem, _bare_prompt(value), where,
                 context={MAX_PROMPT_CHARS: max_prompt_chars})
    return item if item.id is not None else item.model_copy(update={"id": str(position)})


def check_items(items: list[PromptItem], where: str) -> list[PromptItem]:
    """``items`` numbered (``numbered``) when they make one batch (``batch_problem``); one
    line otherwise."""
    items = numbered(items)
    problem = batch_problem(items)
    if problem:
        raise RouteHarnessError(f"{where}: {problem}")
    return items


def read_prompts(source: str | Iterable[str], where: str, *,
                 max_prompt_chars: int | None = None) -> list[PromptItem]:
    """Prompts from text (lines split by the text reader: ``\\n`` only) or from lines:
    JSON objects (``{"prompt": ...}``; strict JSON, read by ``textinput.parse_json``), or
    plain text (one prompt per line); blank lines skipped. A problem is one line naming
    ``where``, the line number and the key."""
    lines = textinput.json_lines(source) if isinstance(source, str) else \
        enumerate(source, start=1)
    items = []
    for number, line in lines:
        if not line.strip():
            continue
        place = f"{where}, line {number}"
        value = textinput.parse_json(line, place) if line.lstrip().startswith("{") else \
            textinput.check_text(line, place)
        items.append(check(PromptItem, _bare_prompt(value), place,
                           context={MAX_PROMPT_CHARS: max_prompt_chars}))
    return check_items(items, where)


def read_prompt_argument(prompt: str, where: str = "PROMPT", *,
                         limit: int | None = None, option: str | None = None
                         ) -> list[PromptItem]:
    """A prompt given on the command line, read by the same rules as a line of a file
    (bytes that were not UTF-8 refused; its size within ``limit``)."""
    textinput.check_text(prompt, where)
    if limit is not None and len(prompt.encode("utf-8")) > limit:
        raise RouteHarnessError(f"{where}: more than the limit of "
                                f"{textinput.size_text(limit)}"
                                + (f" ({option} sets it)" if option else ""))
    return check_items([check(PromptItem, {"prompt": prompt}, where)], where)
