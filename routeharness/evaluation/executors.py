"""Where the runs of a matrix execute: in this process, one after another (``local``, the
default), or as tasks on a Ray cluster (``ray``: a local one with this machine's cores,
or an existing one at ``--address``). Both run the same functions (``tuning.config_auc``,
``evaluate.fit_route``, ``evaluate.finish``) with the same seed streams, so every number
they produce is the same; only wall times differ.

On Ray the unit of work is one tuning configuration, then one final fit and test
routing, then its scoring, chained by Ray's object references (a run's final fit waits
for its configurations). A task's embeddings go into the object store once and every
Ray task reads them from there. A deterministic router's configurations and final fit
are submitted once per task and shared by its seeds, as the local executor memoises them.
Ray retries a task whose worker died (``MAX_RETRIES``); runs come back as they finish, and
the caller checkpoints each (``--resume`` works as with the local executor). Ray is an
optional extra: nothing here imports it until a Ray executor starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError, one_line
from routeharness.common.progress import Advance, _ignore
from routeharness.embedding.embed import EmbeddedTask
from routeharness.evaluation.protocol import Protocol, seed_streams
from routeharness.evaluation.run import Routed, finish, fit_route, route_one
from routeharness.evaluation.tuning import (
    RouterRun,
    TuningInputs,
    config_auc,
    config_key,
    configs_to_tune,
    default_config,
    pick,
    sparse_table,
    tuning_steps,
)

#: the executors ``--executor`` accepts
EXECUTORS = ("local", "ray")
#: times Ray re-runs a task whose worker process died
MAX_RETRIES = 3
#: environment passed to Ray's workers (plugin selection, cache and data locations)
_ENV_PREFIXES = ("ROUTEHARNESS_", "HF_", "TRANSFORMERS_", "SENTENCE_TRANSFORMERS_")
#: seconds to wait for a Ray cluster's address to accept a connection before giving up
#: (Ray itself retries an unreachable address forever)
CONNECT_TIMEOUT = float(os.environ.get("ROUTEHARNESS_RAY_CONNECT_TIMEOUT", "10"))


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """One line within ``timeout`` seconds when nothing listens at a Ray ``address``
    (``HOST:PORT`` or ``ray://HOST:PORT``); ``auto`` and other forms are left to Ray."""
    import socket

    target = address.removeprefix("ray://")
    host, colon, port = target.rpartition(":")
    if not colon or not port.isdigit() or not host:
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise RouteHarnessError(f"cannot reach a Ray cluster at {address}: {reason} (is it "
                                f"running? start one with `ray start --head`, or leave out "
                                f"--address to start one here)") from None


@dataclass(frozen=True)
class Job:
    """One router x task x seed run."""

    plan: RouterRun
    embedded: EmbeddedTask
    seed: int

    @property
    def key(self) -> tuple[str, str, int]:
        """(router label, task name, seed): what a record is found by."""
        return (self.plan.label, self.embedded.task.name, self.seed)


class Executor:
    """Runs jobs and yields ``(job, Routed)`` as each finishes. A context manager: what it
    starts (a Ray cluster) it stops on exit."""

    name = "base"

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stops what the executor started."""

    def run(self, jobs: Sequence[Job], protocol: Protocol,
            advance: Advance = _ignore) -> Iterator[tuple[Job, Routed]]:
        raise NotImplementedError


class LocalExecutor(Executor):
    """One run after another in this process (``evaluate.route_one``), progress per
    configuration; a deterministic router's routes memoised per task."""

    name = "local"

    def run(self, jobs: Sequence[Job], protocol: Protocol,
            advance: Advance = _ignore) -> Iterator[tuple[Job, Routed]]:
        current: int | None = None
        for job in jobs:
            if id(job.embedded) != current:  # memoised routes belong to one task
                current = id(job.embedded)
                for plan in {id(j.plan): j.plan for j in jobs}.values():
                    plan.memo.clear()
            yield job, route_one(job.plan, job.embedded, job.seed, protocol, advance)


@dataclass(frozen=True)
class PreparedTexts:
    """``encode_text`` for other processes: the vectors of the texts a router may ask for
    (model descriptions or names, group descriptions or names), encoded once here, so no
    worker loads an encoder or writes the cache. Any other text is a one-line error."""

    vectors: dict[str, np.ndarray]

    @classmethod
    def of(cls, embedded: EmbeddedTask) -> PreparedTexts:
        task = embedded.task
        texts = {m.description or m.name for m in task.models}
        texts |= {m.name for m in task.models}
        for data in task.splits.values():
            texts |= {str(g) for g in data.groups}
        texts |= {str(k) for k in task.group_descriptions}
        texts |= {str(v) for v in task.group_descriptions.values() if v}
        ordered = sorted(texts)
        rows = embedded.encode_text(ordered) if ordered and embedded.encode_text else []
        return cls({t: np.asarray(v, dtype=np.float32) for t, v in zip(ordered, rows)})

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self.vectors]
        if missing:
            raise RouteHarnessError(
                f"this router embeds a text the executor did not prepare ({missing[0]!r}): "
                "only model and group descriptions are available on Ray workers; run it "
                "with --executor local")
        return np.stack([self.vectors[t] for t in texts]) if texts else \
            np.zeros((0, 0), dtype=np.float32)


def shareable(embedded: EmbeddedTask) -> EmbeddedTask:
    """The embedded task as other processes get it: data, vectors and ``PreparedTexts``."""
    if embedded.encode_text is None:
        return embedded
    return replace(embedded, encode_text=PreparedTexts.of(embedded))


@dataclass(frozen=True)
class _Failure:
    """A one-line error raised in a worker, carried back to be raised here."""

    message: str


def _config_task(plan: RouterRun, params: dict, embedded: EmbeddedTask,
                 protocol: Protocol, random_state: int) -> Any:
    import time

    from routeharness.common.errors import RouteHarnessError as Error

    try:
        started = time.perf_counter()
        value = config_auc(plan, params, TuningInputs.of(embedded, protocol.tune_on), protocol,
                           random_state)
        return value, time.perf_counter() - started
    except Error as exc:
        return _Failure(str(exc))


def _fit_task(plan: RouterRun, configs: list[dict], fallback: dict, embedded: EmbeddedTask,
              seed: int, protocol: Protocol, *scored: Any) -> Any:
    from routeharness.common.errors import RouteHarnessError as Error

    failed = next((s for s in scored if isinstance(s, _Failure)), None)
    if failed is not None:
        return failed
    if configs:
        best, table = pick(plan, configs, [value for value, _ in scored])
    else:
        best, table = fallback, []
    try:
        fitted = fit_route(plan, embedded, seed, protocol, best)
    except Error as exc:
        return _Failure(str(exc))
    return table, float(sum(seconds for _, seconds in scored)), fitted


def _score_task(plan: RouterRun, embedded: EmbeddedTask, seed: int, protocol: Protocol,
                fitted: Any) -> Any:
    if isinstance(fitted, _Failure):
        return fitted
    table, tune_seconds, final = fitted
    return finish(plan, embedded, seed, protocol, table, tune_seconds, final)


class RayExecutor(Executor):
    """Runs on Ray: an existing cluster at ``address``, else a local one started here
    (``num_cpus``: default this machine's cores) and stopped on ``close``."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        self.address = address
        self.num_cpus = num_cpus
        self._ray: Any = None
        self._started = False
        self._remote: dict[str, Any] = {}

    def start(self) -> Any:
        """Connects to (or starts) the cluster once; returns the ``ray`` module."""
        if self._ray is not None:
            return self._ray
        try:
            import ray
        except ImportError:
            raise RouteHarnessError("--executor ray needs Ray: pip install "
                                    "'routeharness[ray]'") from None
        if not ray.is_initialized():
            import logging
            import signal
            import threading

            env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            main = threading.current_thread() is threading.main_thread()
            handler = signal.getsignal(signal.SIGTERM) if main else None
            try:
                ray.init(address=self.address, num_cpus=None if self.address else self.num_cpus,
                         include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR, configure_logging=True,
                         runtime_env={"env_vars": env} if env else None)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"at {self.address}" if self.address else "on this machine"
                reason = one_line(exc)
                raise RouteHarnessError(f"cannot start Ray {where}: {reason}") from None
            finally:
                if main and handler is not None:  # ours (the CLI stops in order), not Ray's
                    signal.signal(signal.SIGTERM, handler)
            self._started = True
        options = {"max_retries": MAX_RETRIES, "retry_exceptions": False}
        self._remote = {name: ray.remote(**options)(fn) for name, fn in
                        (("config", _config_task), ("fit", _fit_task), ("score", _score_task))}
        self._ray = ray
        return ray

    def close(self) -> None:
        if self._started and self._ray is not None:
            self._ray.shutdown()
        self._ray, self._started = None, False

    def run(self, jobs: Sequence[Job], protocol: Protocol,
            advance: Advance = _ignore) -> Iterator[tuple[Job, Routed]]:
        ray = self.start()
        shared: dict[int, Any] = {}
        memo: dict[tuple, Any] = {}
        pending: dict[Any, Job] = {}
        for job in jobs:
            plan, seed, task_id = job.plan, job.seed, id(job.embedded)
            if task_id not in shared:
                shared[task_id] = ray.put(shareable(job.embedded))
            data = shared[task_id]
            streams = seed_streams(seed)
            sparse = sparse_table(job.embedded.task.splits["train"].scores)
            configs = configs_to_tune(plan, protocol, streams, sparse)
            fallback = {} if configs else default_config(plan, protocol, streams, sparse)
            scored = []
            for params in configs:
                key = (task_id, plan.label, "validation", config_key(params))
                ref = memo.get(key) if plan.deterministic else None
                if ref is None:
                    ref = self._remote["config"].remote(plan, params, data, protocol,
                                                        streams.router)
                    if plan.deterministic:
                        memo[key] = ref
                scored.append(ref)
            key = (task_id, plan.label, "test",
                   tuple(config_key(c) for c in configs) or config_key(fallback))
            fitted = memo.get(key) if plan.deterministic else None
            if fitted is None:
                fitted = self._remote["fit"].remote(plan, configs, fallback, data, seed,
                                                    protocol, *scored)
                if plan.deterministic:
                    memo[key] = fitted
            pending[self._remote["score"].remote(plan, data, seed, protocol, fitted)] = job
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(ready[0])
                out = ray.get(ready[0])
                if isinstance(out, _Failure):
                    raise RouteHarnessError(out.message)
                advance(tuning_steps(job.plan, protocol, sparse_table(
                    job.embedded.task.splits["train"].scores)),
                        f"{job.plan.label} on {job.embedded.task.name}, seed {job.seed}: done")
                yield job, out
        finally:
            for ref in pending:
                ray.cancel(ref)


def get_executor(name: str = "local", address: str | None = None) -> Executor:
    """The executor ``--executor NAME`` names; ``address`` only with ``ray``."""
    if name not in EXECUTORS:
        raise RouteHarnessError(f"unknown executor {name!r} (choose from "
                                f"{', '.join(EXECUTORS)})")
    if name == "local":
        if address:
            raise RouteHarnessError("--address is for --executor ray")
        return LocalExecutor()
    if address:  # before any work: Ray would retry an unreachable address forever
        check_reachable(address)
    return RayExecutor(address)
