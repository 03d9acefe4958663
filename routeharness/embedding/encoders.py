"""Encoders (prompt -> vector): the ``Encoder`` protocol and ``get_encoder``.

An encoder is any object with the attributes and method of ``Encoder`` below; the
on-disk embedding cache is ``routeharness.embedding.cache``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from routeharness.common.contract import Contract, Field
from routeharness.common.errors import RouteHarnessError, one_line

#: the encoder a task runs with when neither --encoder nor its card names one
DEFAULT_ENCODER = "minilm"


class EncoderIdentity(Contract):
    """What an encoder is, as every file records it (result files, study files, saved
    routers, verification records, cache sidecars): its registered ``name``, the
    ``identity`` and ``revision`` that fix its vectors, and its ``modalities``. Two
    encoders give the same vectors when ``same_vectors`` says so."""

    name: str
    identity: str
    revision: str
    modalities: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, encoder: Encoder) -> EncoderIdentity:
        return cls(name=str(encoder.name), identity=str(encoder.identity),
                   revision=str(encoder.revision),
                   modalities=sorted(encoder.modalities))

    def same_vectors(self, other: EncoderIdentity) -> bool:
        """Same identity and revision: the same vectors for the same inputs."""
        return (self.identity, self.revision) == (other.identity, other.revision)


@runtime_checkable
class Encoder(Protocol):
    """What the harness needs of an encoder.

    ``modalities`` is ``{"text"}`` or ``{"text", "image"}``. ``encode`` returns float32
    ``(n, d)``; ``images`` (one PIL image, path or None per text) is passed only when the
    encoder takes images and the task has them. ``progress(k)`` is called as k more inputs
    are done. Optional: ``trainable_path``, a local Hugging Face transformer directory
    holding this encoder's weights, for routers that fine-tune the encoder (RouterDC);
    ``dimension``, the ``d`` of ``encode``'s output if known without loading the model
    (None or absent: unknown). The cache trusts it over its own files: a stored vector of
    another dimension is rebuilt, and an ``encode`` that returns another is an error.
    ``fit(texts) -> Encoder``: an encoder learned from data (``lexical``) returns a fitted
    copy; ``embed_task`` calls it with the training split's texts only, before embedding
    any split. The copy's ``identity`` must change with those texts (the cache keys on it).
    """

    name: str
    identity: str
    revision: str
    modalities: frozenset[str]

    def encode(self, texts: Sequence[str], images: Sequence[Any] | None = None, *,
               progress: Callable[[int], None] | None = None) -> np.ndarray: ...


def get_encoder(spec: str) -> Encoder:
    """``--encoder NAME`` or ``NAME:ARG`` (e.g. ``st:/path/to/model``) -> an encoder.

    A factory that declares no parameter takes no argument: ``NAME:ARG`` is refused for it
    instead of ``ARG`` being dropped. A factory that fails is one line naming the spec."""
    from routeharness.plugins.registry import get_registry

    name, colon, arg = spec.partition(":")
    factory = get_registry("encoder").get(name).load()
    if colon and not arg.strip():
        raise RouteHarnessError(f"encoder spec {spec!r} has an empty argument after ':' "
                                f"(write {name!r} alone, or {name}:ARG)")
    try:
        takes_argument = bool(inspect.signature(factory).parameters)
    except (TypeError, ValueError):  # a builtin or C callable: assume it takes one
        takes_argument = True
    if not takes_argument and colon:
        raise RouteHarnessError(f"encoder {name!r} takes no argument, got {spec!r}")
    try:
        encoder = factory(arg or None) if takes_argument else factory()
    except RouteHarnessError:
        raise
    except Exception as exc:
        detail = one_line(exc)
        raise RouteHarnessError(f"encoder {spec!r} failed to load: {detail}") from None
    for attribute in ("name", "identity", "revision", "modalities", "encode"):
        if not hasattr(encoder, attribute):
            raise RouteHarnessError(f"encoder {spec!r} lacks {attribute!r}: not an Encoder")
    return encoder


def choose_encoder(encoder: str | None, tasks: Sequence[Any]) -> str:
    """``encoder`` when given; else the tasks' card default (``card.encoder``, or for a
    user's dataset without a card its ``routing.json``'s ``encoder``), which must be one
    for all tasks run together; else ``DEFAULT_ENCODER``."""
    if encoder:
        return encoder
    defaults = {t.name: (getattr(t.card, "encoder", None)
                         or getattr(t, "default_encoder", None) or DEFAULT_ENCODER)
                for t in tasks}
    if len(set(defaults.values())) > 1:
        listed = ", ".join(f"{name}: {enc}" for name, enc in defaults.items())
        raise RouteHarnessError(f"these tasks default to different encoders ({listed}): "
                                f"choose one with --encoder, or run them separately")
    return next(iter(defaults.values()), DEFAULT_ENCODER)
