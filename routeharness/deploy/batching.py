"""Dynamic batching of ``serve``'s routing (``serve --batch-wait-ms``, ``--max-batch``).

``Batcher`` lives in the event loop. Endpoints ``await submit(work)``; one collector
coroutine takes the queued requests and runs the whole batch's work (``serve``: encode
every prompt in one encoder call, then the router's predictions) in one call on a
dedicated single-thread executor, so the encoder and router are never used by two threads
at once and a lone request makes one thread hop, as the unbatched path does. While that
call runs, new requests queue; when it returns, the collector takes everything queued
(up to ``max_batch`` prompts) at once: natural batching.

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
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from routeharness.common.errors import RouteHarnessError

#: the defaults of ``serve --batch-wait-ms`` and ``--max-batch``
DEFAULT_WAIT_MS = 5.0
#: on by default: a lone request does not wait, and requests that arrive together share
#: one encoder call and one prediction (docs/serve.md, "Dynamic batching")
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
        """No longer counted (idempotent)."""
        if self._batcher is not None:
            self._batcher._left()
            self._batcher = None


@dataclass
class _Pending(Generic[Work, Result]):
    work: Work
    size: int
    ticket: Ticket | None
    arrived: float
    future: asyncio.Future[Result] = field(repr=False)


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
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="routeharness-route")
        self._queue: deque[_Pending[Work, Result]] = deque()
        self._queued = 0
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.in_flight = 0
        self.calls = self.items = 0

    # --- what endpoints call ----------------------------------------------------------
    def arrive(self) -> Ticket:
        """Counts a request in the server from now until it is routed or ``leave`` s."""
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
        if self._closed:
            raise RouteHarnessError("the server is shutting down")
        loop = asyncio.get_running_loop()
        self._start(loop)
        pending = _Pending(work, self._size(work), ticket, loop.time(), loop.create_future())
        self._queue.append(pending)
        self._queued += pending.size
        self._poke()
        return await pending.future

    def close(self) -> None:
        """Stops the collector (requests still queued get an error) and the thread, once
        its call returns."""
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        while self._queue:
            pending = self._queue.popleft()
            if not pending.future.done():
                pending.future.set_exception(RouteHarnessError("the server is shutting down"))
        self._executor.shutdown(wait=True)

    # --- the collector ------------------------------------------------------------------
    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        """The collector, started in the running loop (again in a new loop)."""
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._changed = asyncio.Event()
            self._task = loop.create_task(self._collect(), name="routeharness-batcher")

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _left(self) -> None:
        self.in_flight -= 1
        self._poke()  # the first request may have been waiting for this one

    def _waiting_for_company(self) -> bool:
        """Whether a batch not yet full could still gain a request now in the server."""
        return (self._queued < self.settings.max_batch
                and self.in_flight > len(self._queue))

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._changed is not None
        changed = self._changed
        while True:
            while not self._queue:
                changed.clear()
                await changed.wait()
            deadline = self._queue[0].arrived + self.settings.max_wait_s
            while self._waiting_for_company():
                left = deadline - loop.time()
                if left <= 0:
                    break
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), left)
            batch = self._take()
            try:
                results = await loop.run_in_executor(
                    self._executor, self._run, [pending.work for pending in batch])
                if len(results) != len(batch):
                    raise RouteHarnessError(f"a batch of {len(batch)} requests got "
                                            f"{len(results)} results")
            except asyncio.CancelledError:
                for pending in batch:
                    self._settle(pending, RouteHarnessError("the server is shutting down"))
                raise
            except BaseException as exc:  # the batch's call failed: each of its requests
                for pending in batch:
                    self._settle(pending, exc)
                continue
            self.calls += 1
            self.items += sum(pending.size for pending in batch)
            for pending, result in zip(batch, results):
                self._settle(pending, result)

    def _take(self) -> list[_Pending[Work, Result]]:
        """The oldest request, then the next ones while they fit (never one split)."""
        batch = [self._queue.popleft()]
        size = batch[0].size
        while self._queue and size + self._queue[0].size <= self.settings.max_batch:
            size += self._queue[0].size
            batch.append(self._queue.popleft())
        self._queued -= size
        return batch

    def _settle(self, pending: _Pending[Work, Result], result: Any) -> None:
        if pending.ticket is not None:
            pending.ticket.leave()  # routed: no later batch waits for it
        if pending.future.done():  # its caller is gone (cancelled)
            return
        if isinstance(result, BaseException):
            pending.future.set_exception(result)
        else:
            pending.future.set_result(result)
