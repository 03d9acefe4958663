"""Dynamic batching of ``serve``'s encoder calls (``serve --batch-wait-ms``,
``--max-batch``).

Requests that arrive close together share one encoder call: the first prompt to arrive
waits at most ``max_wait_s`` for others, and a batch holds at most ``max_batch`` prompts
(it starts at once when full). One worker thread calls the encoder, so the encoder is
never used by two threads at once (tokenizers are not safe to share); callers block in
``encode`` until their rows are back. A request is never split: one with more prompts
than ``max_batch`` is a batch of its own (the encoder chunks it). A lone request's
latency grows by at most ``max_wait_s``; requests queued while the encoder is busy go
together in the next call without waiting further (``max_wait_s = 0``: only those).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from routeharness.common.errors import RouteHarnessError

#: the defaults of ``serve --batch-wait-ms`` and ``--max-batch``
DEFAULT_WAIT_MS = 5.0
#: off by default (1): measured on a quiet 2-core machine (benchmarks/route_latency.md), a
#: shared call helped only 8 clients with short prompts (1.35x) and cost a lone request
#: 7 ms; ``--max-batch 64`` turns it on where many short requests arrive together
DEFAULT_MAX_BATCH = 1


@dataclass(frozen=True)
class BatchSettings:
    """How long the first request of a batch waits for others (seconds) and how many
    prompts a batch holds; ``max_batch`` 1: no batching (each request encodes alone)."""

    max_wait_s: float = DEFAULT_WAIT_MS / 1000
    max_batch: int = DEFAULT_MAX_BATCH

    def __post_init__(self) -> None:
        if not (0 <= self.max_wait_s <= 1):
            raise RouteHarnessError(f"--batch-wait-ms {self.max_wait_s * 1000:g}: must be "
                                    "between 0 and 1000")
        if self.max_batch < 1:
            raise RouteHarnessError(f"--max-batch {self.max_batch}: must be >= 1")

    @property
    def enabled(self) -> bool:
        return self.max_batch > 1


@dataclass
class _Pending:
    texts: list[str]
    arrived: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None
    error: BaseException | None = None


class Batcher:
    """Calls ``encode`` (texts -> float32 (n, d)) from one worker thread on the prompts
    of every request queued within ``settings.max_wait_s`` of the first, up to
    ``settings.max_batch`` prompts; ``calls`` and ``encoded`` count its calls and prompts."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray],
                 settings: BatchSettings | None = None) -> None:
        self.settings = BatchSettings() if settings is None else settings
        self._encode = encode
        self._queue: deque[_Pending] = deque()
        self._queued = 0
        self._ready = threading.Condition()
        self._closed = False
        self.calls = self.encoded = 0
        self._thread = threading.Thread(target=self._run, name="routeharness-batcher",
                                        daemon=True)
        self._thread.start()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of ``texts`` (blocking until their batch is encoded); the
        encoder's exception, if it failed."""
        pending = _Pending(list(texts))
        with self._ready:
            if self._closed:
                raise RouteHarnessError("the encoder is shut down")
            self._queue.append(pending)
            self._queued += len(pending.texts)
            self._ready.notify_all()
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def close(self) -> None:
        """Stops the worker once the queue is empty."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        self._thread.join(timeout=10)

    def _take(self) -> list[_Pending] | None:
        """The next batch (None: closed and empty): the oldest request, then every request
        queued within the wait that still fits."""
        limit, wait = self.settings.max_batch, self.settings.max_wait_s
        with self._ready:
            while not self._queue:
                if self._closed:
                    return None
                self._ready.wait()
            deadline = self._queue[0].arrived + wait  # the oldest waits no longer
            while self._queued < limit and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._ready.wait(left)
            batch = [self._queue.popleft()]
            size = len(batch[0].texts)
            while self._queue and size + len(self._queue[0].texts) <= limit:
                size += len(self._queue[0].texts)
                batch.append(self._queue.popleft())
            self._queued -= size
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            texts = [text for pending in batch for text in pending.texts]
            try:
                vectors = np.asarray(self._encode(texts))
                if vectors.shape[0] != len(texts):
                    raise RouteHarnessError(f"the encoder returned {vectors.shape[0]} "
                                            f"vectors for {len(texts)} prompts")
            except BaseException as exc:  # every waiting request gets the failure
                for pending in batch:
                    pending.error = exc
                    pending.done.set()
                continue
            self.calls += 1
            self.encoded += len(texts)
            start = 0
            for pending in batch:
                pending.result = vectors[start:start + len(pending.texts)]
                start += len(pending.texts)
                pending.done.set()
