"""Prompts to route, as ``route`` (JSON lines, plain lines, one argument) and ``serve``
(the ``POST /route`` body) receive them: one contract, ``PromptItem``, so both refuse the
same things with the same one line naming the place and the key (``prompts.jsonl, line 3:
embedding[1]: must be a finite number, got nan``): an unknown key, a key given twice, a
number where text belongs, text where a number belongs, NaN or infinity in a vector.
``RouteRequest`` is the ``/route`` body; the checks across prompts (``batch_problem``:
how many, unique ids, vectors for all or none, one dimension) are the same for both."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, model_validator
from typing_extensions import TypedDict

from routeharness.common.contract import (
    Contract,
    Field,
    FiniteFloat,
    NonNegative,
    Number,
    check,
    parse_json,
)
from routeharness.common.errors import RouteHarnessError

#: the keys a prompt object may hold
#: prompts one request may route
MAX_PROMPTS = 100_000


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must be non-blank text")
    return value


def _id_text(value: str | int) -> str:
    return str(value)  # ``1`` and ``"1"`` are one id


class PromptItem(Contract):
    """One prompt: its text, an id (text or an integer, kept as text; default: its
    1-based position), its group (routers that need groups) and its own vector (routers
    fitted on the dataset's precomputed embeddings)."""

    prompt: Annotated[str, AfterValidator(_not_blank)] = Field(
        description="the text to route")
    id: Annotated[str | int, AfterValidator(_id_text)] | None = Field(
        None, description="the prompt's id, text or an integer (default: its 1-based "
        "position)")
    group: str | None = Field(None, description="its group, for routers that need one")
    embedding: list[FiniteFloat] | None = Field(
        None, min_length=1, description="its own vector (finite numbers), for routers "
        "fitted on precomputed embeddings")


def numbered(items: Sequence[PromptItem]) -> list[PromptItem]:
    """``items`` with each missing id set to its 1-based position."""
    return [item if item.id is not None else item.model_copy(update={"id": str(position)})
            for position, item in enumerate(items, start=1)]


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
    lam: NonNegative | None = Field(None, description="the trade-off (default: serve's "
                                    "--lam)")
    budget: NonNegative | None = Field(None, description="USD per 1,000 prompts: the "
                                       "validation trade-off of highest quality within it")

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


def prompt_item(value: Any, where: str, position: int) -> PromptItem:
    """A prompt object (or a bare string) as a ``PromptItem``, its id defaulting to
    ``position``; one line naming ``where`` and the key otherwise."""
    item = check(PromptItem, _bare_prompt(value), where)
    return item if item.id is not None else item.model_copy(update={"id": str(position)})


def check_items(items: list[PromptItem], where: str) -> list[PromptItem]:
    """``items`` when they make one batch (``batch_problem``); one line otherwise."""
    problem = batch_problem(items)
    if problem:
        raise RouteHarnessError(f"{where}: {problem}")
    return items


def read_prompts(lines: Iterable[str], where: str) -> list[PromptItem]:
    """Lines of JSON objects (``{"prompt": ...}``, strict JSON: a key given twice is
    refused), or of plain text (one prompt per line); blank lines skipped. A problem is
    one line naming ``where``, the line number and the key."""
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        place = f"{where}, line {number}"
        value = parse_json(line, place) if line.lstrip().startswith("{") else line
        items.append(prompt_item(value, place, len(items) + 1))
    return check_items(items, where)
