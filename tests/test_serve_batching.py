"""``serve``'s dynamic batching (``deploy/batching.py``, ``Service.route_batch``): requests
close together share one call (one encoder call, one prediction) and get the routes they
would get one by one, each at its own trade-off; a request alone in the server does not
wait, the first of a batch waits at most the bound for company, a request is never split,
and a failure reaches only its batch."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from routeharness.common.errors import RouteHarnessError
from routeharness.deploy.batching import Batcher, BatchSettings


class Recording:
    """A batch function: each work (a list of texts) -> its texts upper-cased; records
    each call's works; fails the whole call on ``fail_on``; blocks while ``gate`` is
    clear."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on, self.calls = fail_on, []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, works: list[list[str]]) -> Sequence[Any]:
        self.calls.append([list(w) for w in works])
        self.gate.wait(10)
        if self.fail_on is not None and any(self.fail_on in w for w in works):
            raise RuntimeError(f"cannot encode {self.fail_on!r}")
        return [ValueError(f"own failure of {w}") if "own" in w else [t.upper() for t in w]
                for w in works]


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def timed(batcher: Batcher, work: list[str], ticket: Any = None) -> tuple[Any, float]:
    start = time.monotonic()
    try:
        result = await batcher.submit(work, ticket)
    except Exception as exc:  # the test looks at it
        result = exc
    return result, time.monotonic() - start


def test_a_lone_request_does_not_wait():
    batcher = Batcher(Recording(), BatchSettings(max_wait_s=0.5, max_batch=64))

    async def main() -> tuple[Any, float]:
        with batcher.arrival() as ticket:
            return await timed(batcher, ["alone"], ticket)

    try:
        (result, took), again = run(main()), run(main())  # a second event loop works too
    finally:
        batcher.close()
    assert result == ["ALONE"] and again[0] == ["ALONE"]
    assert took < 0.25 and again[1] < 0.25, (took, again[1])  # far below the 0.5 s bound
    assert batcher.in_flight == 0


def test_with_company_in_the_server_the_first_waits_at_most_the_bound():
    wait = 0.2
    batcher = Batcher(Recording(), BatchSettings(max_wait_s=wait, max_batch=64))

    async def main() -> tuple[Any, float]:
        other = batcher.arrive()  # in the server, never submits (it is slow to parse)
        with batcher.arrival() as ticket:
            out = await timed(batcher, ["first"], ticket)
        other.leave()
        return out

    try:
        result, took = run(main())
    finally:
        batcher.close()
    assert result == ["FIRST"]
    assert wait * 0.9 <= took <= wait + 0.2, took  # waited for company, then went


def test_company_that_arrives_shares_the_call_and_ends_the_wait():
    recording = Recording()
    batcher = Batcher(recording, BatchSettings(max_wait_s=0.8, max_batch=64))

    async def late(ticket: Any) -> tuple[Any, float]:
        await asyncio.sleep(0.05)
        return await timed(batcher, ["second"], ticket)

    async def main() -> list[tuple[Any, float]]:
        first, second = batcher.arrive(), batcher.arrive()
        return await asyncio.gather(timed(batcher, ["first"], first), late(second))

    try:
        (first, took), (second, _) = run(main())
    finally:
        batcher.close()
    assert (first, second) == (["FIRST"], ["SECOND"])
    assert recording.calls == [[["first"], ["second"]]]  # one call
    assert took < 0.5, took  # every request in the server had queued: no waiting longer


def test_requests_queued_during_a_call_go_together_and_are_never_split():
    recording = Recording()
    batcher = Batcher(recording, BatchSettings(max_wait_s=0.0, max_batch=4))
    requests = [["a"], ["b", "c"], ["d", "e"], ["f"], [f"g{i}" for i in range(6)], ["h"]]

    async def main() -> list[Any]:
        recording.gate.clear()
        first = asyncio.ensure_future(batcher.submit(requests[0]))
        await asyncio.sleep(0.05)  # the first call runs (blocked); the others queue
        rest = [asyncio.ensure_future(batcher.submit(r)) for r in requests[1:]]
        await asyncio.sleep(0.05)
        recording.gate.set()
        return [await first] + [await r for r in rest]

    try:
        got = run(main())
    finally:
        batcher.close()
    assert got == [[t.upper() for t in r] for r in requests]
    # at most 4 prompts a call, in arrival order, whole requests; the 6-prompt one alone
    assert recording.calls == [[["a"]], [["b", "c"], ["d", "e"]], [["f"]],
                               [requests[4]], [["h"]]]
    assert (batcher.calls, batcher.items) == (5, 13)


def test_a_failure_reaches_its_batch_only_and_an_own_failure_its_request_only():
    recording = Recording(fail_on="bad")
    batcher = Batcher(recording, BatchSettings(max_wait_s=0.0, max_batch=2))

    async def main() -> list[Any]:
        recording.gate.clear()
        first = asyncio.ensure_future(timed(batcher, ["x"]))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(timed(batcher, r)) for r in
                (["bad"], ["y"], ["own"], ["z"])]
        await asyncio.sleep(0.05)
        recording.gate.set()
        return [(await f)[0] for f in (first, *rest)]

    try:
        x, bad, y, own, z = run(main())
        assert run(timed(batcher, ["after"]))[0] == ["AFTER"]  # the batcher goes on
    finally:
        batcher.close()
    assert recording.calls[1:3] == [[["bad"], ["y"]], [["own"], ["z"]]]
    assert x == ["X"] and z == ["Z"]
    assert isinstance(bad, RuntimeError) and isinstance(y, RuntimeError)  # their batch
    assert isinstance(own, ValueError) and "own failure" in str(own)


def test_a_closed_batcher_refuses():
    batcher = Batcher(Recording(), BatchSettings(0.0, 8))
    batcher.close()
    with pytest.raises(RouteHarnessError, match="shutting down"):
        run(batcher.submit(["late"]))


@pytest.mark.parametrize("wait, size, says", [(-0.001, 4, "--batch-wait-ms -1"),
                                              (2.0, 4, "--batch-wait-ms 2000"),
                                              (0.005, 0, "--max-batch 0")])
def test_bad_settings_are_one_line(wait, size, says):
    with pytest.raises(RouteHarnessError, match=says):
        BatchSettings(wait, size)


def test_the_cli_defaults_are_the_batchers():
    from routeharness.cli.serve import DEFAULT_BATCH_WAIT_MS, DEFAULT_MAX_BATCH
    from routeharness.deploy import batching

    assert (DEFAULT_BATCH_WAIT_MS, DEFAULT_MAX_BATCH) == (batching.DEFAULT_WAIT_MS,
                                                          batching.DEFAULT_MAX_BATCH)


# --- through serve: a saved kNN router, batched against one by one -----------------------
pytest.importorskip("fastapi")
from test_serve import TEXTS, plugins  # noqa: E402, F401


@pytest.fixture(scope="module")
def knn_folder(plugins, tmp_path_factory):
    from routeharness.cli._app import main
    from routeharness.deploy import saved

    base = tmp_path_factory.mktemp("serve-knn")
    try:
        main(["data", "synth", str(base / "synth"), "--train", "160", "--validation", "60",
              "--test", "20", "--models", "4", "--clusters", "5", "--dim", "8"])
    except SystemExit as exc:
        assert not exc.code
    fitted = saved.fit("knn", str(base / "synth"), encoder="serve-hash", tune=False,
                       cache_dir=str(base / "cache"))
    return saved.save(fitted, base / "router")


def _counting(service: Any) -> list[int]:
    calls: list[int] = []
    encode = service.encoder.encode

    def counted(texts, *args, **kwargs):
        calls.append(len(texts))
        return encode(texts, *args, **kwargs)

    service.encoder.encode = counted
    return calls


def _rows(answer: Any) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    return answer.json()["routes"]


def test_concurrent_requests_get_their_own_routes_and_share_calls(knn_folder):
    from fastapi.testclient import TestClient

    from routeharness.deploy.routing_input import RouteRequest
    from routeharness.deploy.serve import create_app

    app = create_app(knn_folder, default_lam=0.0, batching=BatchSettings(0.02, 64))
    service = app.state.service
    assert service.router.router.kind == "utility"
    bodies = [{"prompts": TEXTS[i:i + 1 + i % 3], "lam": lam}
              for i in range(len(TEXTS)) for lam in (0.0, 0.5, 5.0)]
    alone = [service.route(RouteRequest.model_validate(b).items(), b["lam"]).rows()
             for b in bodies]
    calls = _counting(service)
    with TestClient(app, raise_server_exceptions=False) as client, \
            ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda body: client.post("/route", json=body), bodies))
    for body, answer, want in zip(bodies, answers, alone):
        got = _rows(answer)
        assert [r["model"] for r in got] == [r["model"] for r in want]
        assert [r["lam"] for r in got] == [body["lam"]] * len(want)
        np.testing.assert_allclose([r["predicted_score"] for r in got],
                                   [r["predicted_score"] for r in want], rtol=1e-6)
    prompts = sum(len(b["prompts"]) for b in bodies)
    assert sum(calls) == prompts == service.batcher.items  # every prompt, once
    assert len(calls) == service.batcher.calls < len(bodies), calls  # they did share


def test_one_batch_selects_per_request_at_its_own_trade_off_and_models(knn_folder):
    from routeharness.deploy.serve import RouteWork, Service

    service = Service(knn_folder, None, 0.0, batching=BatchSettings(0.0, 64))
    service.upstreams = {name: None for name in service.pool[1:3]}  # served: two models
    texts = TEXTS[:6]
    lams = [0.0, 1.0, 100.0]
    works = [service.work([_item(t)], lam, served_only=served)
             for t in texts for lam in lams for served in (False, True)]
    calls = _counting(service)
    together = service.route_batch(works)
    assert calls == [len(works)]  # one encoder call
    assert service.route_batch([RouteWork(["x"], 0.0)])  # a work alone is a batch too
    alone = [service.route_batch([work])[0] for work in works]
    chosen = set()
    for work, got, want in zip(works, together, alone):
        np.testing.assert_array_equal(got.choices, want.choices)
        assert got.lam == work.lam
        if work.served is not None:
            assert got.models[int(got.choices[0])] in service.upstreams
        chosen.add((work.lam, int(got.choices[0])))
    assert len({c for _, c in chosen}) > 1  # the trade-offs did choose differently


def _item(text: str) -> Any:
    from routeharness.deploy.routing_input import prompt_item

    return prompt_item(text, "test", 1, 1000)


def test_a_selection_router_routes_each_request_apart(knn_folder):
    from routeharness.deploy.serve import Service

    service = Service(knn_folder, None, 0.0, batching=BatchSettings(0.0, 64))
    seen: list[tuple[int, float]] = []

    def route(X, lam, groups=None, **kwargs):
        seen.append((len(X), lam))
        if lam == 7.0:
            raise ValueError("this request's own failure")
        return np.full(len(X), int(lam) % len(service.pool))

    service.router.router.kind = "selection"
    service.router.router.route = route
    works = [service.work([_item(t) for t in TEXTS[:n]], float(n)) for n in (1, 3, 7, 2)]
    one, three, seven, two = service.route_batch(works)
    assert seen == [(1, 1.0), (3, 3.0), (7, 7.0), (2, 2.0)]
    assert one.choices.tolist() == [1] and three.choices.tolist() == [3, 3, 3]
    assert two.choices.tolist() == [2, 2] and isinstance(seven, ValueError)


def test_a_lone_request_through_serve_does_not_wait(knn_folder):
    from fastapi.testclient import TestClient

    from routeharness.deploy.serve import create_app

    app = create_app(knn_folder, batching=BatchSettings(0.5, 64))
    with TestClient(app) as client:
        _rows(client.post("/route", json={"prompts": ["warm"]}))
        start = time.monotonic()
        _rows(client.post("/route", json={"prompts": [TEXTS[0]]}))
        took = time.monotonic() - start
    assert took < 0.25, took  # far below the 0.5 s bound
    assert app.state.service.batcher.in_flight == 0


def test_an_encoder_failure_is_the_answer_the_unbatched_path_gives(knn_folder):
    from fastapi.testclient import TestClient

    from routeharness.deploy.serve import create_app

    answers = {}
    for name, settings in (("batched", BatchSettings(0.0, 64)), ("off", BatchSettings(0, 1))):
        app = create_app(knn_folder, batching=settings)

        def broken(texts, *args, **kwargs):
            raise RouteHarnessError("the encoder cannot read this")

        app.state.service.encoder.encode = broken
        with TestClient(app, raise_server_exceptions=False) as client:
            answer = client.post("/route", json={"prompts": ["boom"]})
            answers[name] = (answer.status_code, answer.json())
            if settings.enabled:  # and a bad request does not hold a batch up
                assert client.post("/route", json={"prompts": []}).status_code == 400
                assert app.state.service.batcher.in_flight == 0
    assert answers["batched"] == answers["off"]
    assert answers["off"][0] == 400 and "cannot read" in str(answers["off"][1])
