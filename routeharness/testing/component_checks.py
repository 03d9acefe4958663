"""The conformance checks of encoders and task cards (router checks and the runner:
``routeharness.testing.checks``). Same contract: ``check_<what>(obj)`` returns ``None``
or raises ``AssertionError`` with a one-line reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError, UnknownNameError
from routeharness.testing.runner import Check

MOVING_REVISIONS = {"", "main", "master", "head", "latest", "dev", "trunk"}


# --- encoder checks -----------------------------------------------------------------------
SAMPLE_TEXTS = ["What is the capital of France?", "Write a Python function that reverses a list.",
                "naïve café, 東京, emoji 🙂", "", "A much longer prompt " * 20]


def check_encoder_attributes(encoder: Any) -> None:
    """``name``, ``identity`` and ``revision`` are non-empty strings (the cache key), and
    ``modalities`` is a set with ``"text"``, within {"text", "image"}."""
    for attribute in ("name", "identity", "revision"):
        value = getattr(encoder, attribute, None)
        assert isinstance(value, str) and value, f"encoder.{attribute} must be a non-empty string"
    modalities = getattr(encoder, "modalities", None)
    assert isinstance(modalities, (set, frozenset)), "encoder.modalities must be a (frozen)set"
    assert "text" in modalities and set(modalities) <= {"text", "image"}, \
        f"encoder.modalities {sorted(modalities)} must include 'text', within text and image"
    assert callable(getattr(encoder, "encode", None)), "encoder has no encode()"


def _encode(encoder: Any, texts: list[str]) -> np.ndarray:
    return encoder.encode(list(texts), None)


def check_encoder_shape_dtype(encoder: Any) -> None:
    """``encode(texts)`` returns a finite float32 array of shape (len(texts), d), d > 0."""
    out = _encode(encoder, SAMPLE_TEXTS)
    assert isinstance(out, np.ndarray), f"encode returned {type(out).__name__}, not numpy"
    assert out.dtype == np.float32, f"encode returned dtype {out.dtype}, expected float32"
    assert out.ndim == 2 and out.shape[0] == len(SAMPLE_TEXTS) and out.shape[1] > 0, \
        f"encode returned shape {out.shape} for {len(SAMPLE_TEXTS)} texts"
    assert np.isfinite(out).all(), "encode returned NaN or infinite values"


def check_encoder_deterministic(encoder: Any) -> None:
    """The same texts give the same vectors (the embedding cache relies on it), also when
    encoded alone instead of in a batch."""
    first, second = _encode(encoder, SAMPLE_TEXTS), _encode(encoder, SAMPLE_TEXTS)
    assert np.allclose(first, second, atol=1e-5), "two encodings of the same texts differ"
    alone = _encode(encoder, SAMPLE_TEXTS[:1])
    assert np.allclose(alone, first[:1], atol=1e-4), \
        "a text encoded alone differs from the same text encoded in a batch"


def check_encoder_empty_input(encoder: Any) -> None:
    """``encode([])`` returns a (0, d) float32 array (or raises a clear RouteHarnessError)."""
    d = _encode(encoder, SAMPLE_TEXTS[:1]).shape[1]
    try:
        out = _encode(encoder, [])
    except RouteHarnessError:
        return
    except Exception as exc:
        raise AssertionError(f"encode([]) raised {type(exc).__name__}: {exc}") from None
    out = np.asarray(out)
    assert out.shape == (0, d), f"encode([]) returned shape {out.shape}, expected (0, {d})"
    assert out.dtype == np.float32, f"encode([]) returned dtype {out.dtype}"


def encoder_checks(encoder: Any) -> list[Check]:
    return [Check("check_encoder_attributes", check_encoder_attributes),
            Check("check_encoder_shape_dtype", check_encoder_shape_dtype),
            Check("check_encoder_deterministic", check_encoder_deterministic),
            Check("check_encoder_empty_input", check_encoder_empty_input)]


# --- task card checks ---------------------------------------------------------------------
def _card_path(card: Any) -> Path:
    """A card path from a path, a registered task name, or a parsed TaskCard."""
    if hasattr(card, "path") and hasattr(card, "version"):
        return Path(card.path)
    text = str(card)
    if Path(text).suffix in (".yaml", ".yml") or Path(text).exists():
        return Path(text)
    from routeharness.plugins.registry import get_registry

    entry = get_registry("task").get(text)
    path = entry.options.get("card")
    assert path, f"task {text!r} has no task card"
    return Path(path)


def check_card_schema(card: Any) -> None:
    """The card reads through its contract, ``TaskCard`` (``load_card``, as the harness
    reads it: unknown keys, missing keys, wrong types and values out of range are
    errors)."""
    from routeharness.common.errors import TaskCardError
    from routeharness.data.cards import load_card

    try:
        load_card(_card_path(card))
    except TaskCardError as exc:
        raise AssertionError(str(exc)) from None


def _parsed(card: Any) -> Any:
    from routeharness.data.cards import load_card

    return load_card(_card_path(card))


def check_card_version(card: Any) -> None:
    """``version`` is a positive integer (a changed task is a new version)."""
    parsed = _parsed(card)
    assert isinstance(parsed.version, int) and parsed.version >= 1, \
        f"version must be a positive integer, got {parsed.version!r}"


def check_card_pinned_revision(card: Any) -> None:
    """The source names a fixed revision or commit, not a moving branch."""
    parsed = _parsed(card)
    revision = parsed.revision
    assert revision is not None, "source has neither 'revision' nor 'commit': pin the data"
    assert str(revision).strip().lower() not in MOVING_REVISIONS, \
        f"source revision {revision!r} is a moving reference: pin a commit or tag"


def check_card_models_and_splits(card: Any) -> None:
    """At least two candidate models (else there is nothing to route) and all three splits."""
    parsed = _parsed(card)
    assert len(parsed.models) >= 2, f"{len(parsed.models)} model(s): routing needs at least two"
    missing = [s for s in ("train", "validation", "test") if getattr(parsed.splits, s) is None]
    assert not missing, f"splits lacks {missing}"


def check_card_unique_name(card: Any) -> None:
    """No other card in the same folder, and no other registered task, uses its name."""
    path = _card_path(card)
    parsed = _parsed(card)
    import yaml

    for other in sorted(path.parent.glob("*.y*ml")):
        if other.resolve() == path.resolve():
            continue
        try:
            data = yaml.safe_load(other.read_text(encoding="utf-8"))
        except Exception:
            continue
        assert not (isinstance(data, dict) and data.get("name") == parsed.name), \
            f"{other} also declares name {parsed.name!r}"
    from routeharness.plugins.registry import get_registry

    try:
        entry = get_registry("task").get(parsed.name)
    except UnknownNameError:
        return
    registered = entry.options.get("card")
    assert registered is None or Path(registered).resolve() == path.resolve(), (
        f"task name {parsed.name!r} is already registered by plugin {entry.plugin!r} "
        f"({entry.distribution}) with card {registered}")


def task_card_checks(card: Any) -> list[Check]:
    return [Check("check_card_schema", check_card_schema),
            Check("check_card_version", check_card_version),
            Check("check_card_pinned_revision", check_card_pinned_revision),
            Check("check_card_models_and_splits", check_card_models_and_splits),
            Check("check_card_unique_name", check_card_unique_name)]


