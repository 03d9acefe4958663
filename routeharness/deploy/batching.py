"""Dynamic batching of ``serve``'s routing (``serve --batch-wait-ms``, ``--max-batch``).

Endpoints ``await Batcher.submit(work)`` in the event loop: the request is queued and its
future awaited, no worker thread blocked for it. One dedicated thread takes the queued
requests and runs the whole batch's work (``serve``: every prompt encoded in one encoder
call, then the router's predictions) in one call, so the encoder and router are never
used by two threads at once and a lone request makes one thread hop, as the unbatched
path does; the results go back to each request's event loop. While a call runs, new
requests queue; when it returns, the thread takes everything queued (up to ``max_batch``
prompts) at once and starts the next call itself, without waiting for the event loop
(a loop busy answering and reading requests would otherwise leave the encoder idle).

The first request of a batch waits for company at most ``max_wait_s``, and only while
another request is in the server that has not yet queued (``arrive``: endpoints count
their requests from entry until they are routed); a request alone in the server starts at
once, so a lone request's latency does not grow by the wait. A batch holds at most
``max_batch`` prompts and starts at once when full or when every request in the server
has queued. A request is never split: one with more prompts than ``max_batch`` is a batch
of its own. A failure of the batch's call reaches that batch's requests only.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from routeharness.common.errors import RouteHarnessError

#: the defaults of ``serve --batch-wait-ms`` and ``--max-batch``
DEFAULT_WAIT_MS = 5.0
#: off by default (1): a lone request no longer waits, and 8 clients with short prompts
#: gained, but on the shared 2-core machine (docs/serve.md, "Dynamic batching") calls of
#: up to 64 short prompts answered 64 and 200 clients slower than off in some runs, with a
#: long tail; ``--max-batch 64`` turns it on
DEFAULT_MAX_BATCH = 1

Work = TypeVar("Work")
Result = TypeVar("Result")


@dataclass(frozen=True)
class BatchSettings:
    """How long the first request of a batch may wait for others (seconds) and how many
    prompts a batch holds; ``max_batch`` 1: no batching (each request routes alone)."""

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


class Ticket:
    """A request in the server, counted by its batcher until it leaves or is routed."""

    def __init__(self, batcher: Batcher[Any, Any]) -> None:
        self._batcher: Batcher[Any, Any] | None = batcher

    def leave(self) -> None:
        """No longer counted (idempotent; from any thread)."""
        batcher = self._batcher
        if batcher is not None:
            batcher._left(self)


@dataclass
class _Pending(Generic[Work, Result]):
    work: Work
    size: int
    ticket: Ticket | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Result] = field(repr=False)
    arrived: float = field(default_factory=time.monotonic)


class Batcher(Generic[Work, Result]):
    """Runs ``run`` (a batch of works -> one result per work, in order; a result that is
    an exception is raised to its own request only) on one dedicated thread for the works
    submitted together; ``size(work)``: its prompts. ``calls`` and ``items`` count the
    calls and the prompts they took; ``in_flight`` the requests arrived and not yet
    routed."""

    def __init__(self, run: Callable[[list[Work]], Sequence[Result | BaseException]],
                 settings: BatchSettings | None = None,
                 size: Callable[[Work], int] = len) -> None:  # type: ignore[assignment]
        self.settings = BatchSettings() if settings is None else settings
        self._run, self._size = run, size
        self._queue: deque[_Pending[Work, Result]] = deque()
        self._queued = 0
        self._ready = threading.Condition()
        self._closed = False
        self.in_flight = 0
        self.calls = self.items = 0
        self._thread = threading.Thread(target=self._work, name="routeharness-route",
                                        daemon=True)
        self._thread.start()

    # --- what endpoints call (in the event loop) ------------------------------------
    def arrive(self) -> Ticket:
        """Counts a request in the server from now until it is routed or ``leave`` s."""
        with self._ready:
            self.in_flight += 1
        return Ticket(self)

    @contextlib.contextmanager
    def arrival(self) -> Iterator[Ticket]:
        """``arrive`` for the block's length (the ticket leaves at its end)."""
        ticket = self.arrive()
        try:
            yield ticket
        finally:
            ticket.leave()

    async def submit(self, work: Work, ticket: Ticket | None = None) -> Result:
        """The result of ``work``, run in the next batch; the failure of its batch's call,
        or its own, raised. ``ticket``: the request's ``arrive``, left once it is routed."""
        loop = asyncio.get_running_loop()
        pending = _Pending(work, self._size(work), ticket, loop, loop.create_future())
        with self._ready:
            if self._closed:
                raise RouteHarnessError("the server is shutting down")
            self._queue.append(pending)
            self._queued += pending.size
            self._ready.notify_all()
        return await pending.future

    def close(self) -> None:
        """Stops the thread once its call returns; requests still queued get an error."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        self._thread.join(timeout=60)

    # --- the thread ----------------------------------------------------------------
    def _left(self, ticket: Ticket) -> None:
        with self._ready:
            if ticket._batcher is None:
                return
            ticket._batcher = None
            self.in_flight -= 1
            self._ready.notify_all()  # the first request may have been waiting for it

    def _take(self) -> list[_Pending[Work, Result]] | None:
        """The next batch (None: closed): the oldest request, then the next ones while
        they fit (never one split), after waiting (at most ``max_wait_s`` from the oldest's
        arrival) only while a request in the server has not queued and the batch has
        room."""
        limit, wait = self.settings.max_batch, self.settings.max_wait_s
        with self._ready:
            while not self._queue:
                if self._closed:
                    return None
                self._ready.wait()
            deadline = self._queue[0].arrived + wait
            while (self._queued < limit and self.in_flight > len(self._queue)
                   and not self._closed):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._ready.wait(left)
            if self._closed:
                return None
            batch = [self._queue.popleft()]
            size = batch[0].size
            while self._queue and size + self._queue[0].size <= limit:
                size += self._queue[0].size
                batch.append(self._queue.popleft())
            self._queued -= size
            return batch

    def _work(self) -> None:
        """Batches run one after another on this thread (it takes the next itself: the
        encoder does not wait for the event loop between calls)."""
        while True:
            batch = self._take()
            if batch is None:
                break
            try:
                results: Sequence[Any] = self._run([pending.work for pending in batch])
                if len(results) != len(batch):
                    raise RouteHarnessError(f"a batch of {len(batch)} requests got "
                                            f"{len(results)} results")
                self.calls += 1
                self.items += sum(pending.size for pending in batch)
            except BaseException as exc:  # the batch's call failed: each of its requests
                results = [exc] * len(batch)
            for pending, result in zip(batch, results):
                self._deliver(pending, result)
        with self._ready:
            while self._queue:
                self._deliver(self._queue.popleft(),
                              RouteHarnessError("the server is shutting down"))

    def _deliver(self, pending: _Pending[Work, Result], result: Any) -> None:
        if pending.ticket is not None:
            pending.ticket.leave()  # routed: no later batch waits for it
        try:
            pending.loop.call_soon_threadsafe(_settle, pending.future, result)
        except RuntimeError:  # its event loop is closed: nobody waits
            pass


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if future.done():  # its caller is gone (cancelled)
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
