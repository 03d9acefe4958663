"""``serve``'s dynamic batching (``deploy/batching.py``): requests close together share one
encoder call and get exactly the vectors (and routes) they would get one by one; the
first request waits at most the bounded wait, a full batch starts at once, a request is
never split, and an encoder failure reaches every caller of that batch only."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from routeharness.common.errors import RouteHarnessError
from routeharness.deploy.batching import Batcher, BatchSettings


class Recording:
    """Deterministic vectors per text; records each call's size; ``delay`` s per call."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.delay, self.fail_on, self.calls = delay, fail_on, []
        self.lock = threading.Lock()

    def vector(self, text: str) -> np.ndarray:
        seed = sum(text.encode()) * 7919 + len(text)
        return np.random.default_rng(seed).standard_normal(8).astype(np.float32)

    def __call__(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            self.calls.append(len(texts))
        time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError(f"cannot encode {self.fail_on!r}")
        return np.stack([self.vector(t) for t in texts])


def test_concurrent_requests_share_calls_and_get_their_own_rows():
    encoder = Recording(delay=0.02)
    batcher = Batcher(encoder, BatchSettings(max_wait_s=0.05, max_batch=16))
    requests = [[f"prompt {i} part {j}" for j in range(1 + i % 3)] for i in range(40)]
    try:
        with ThreadPoolExecutor(40) as pool:
            got = list(pool.map(batcher.encode, requests))
    finally:
        batcher.close()
    for texts, vectors in zip(requests, got):
        np.testing.assert_array_equal(vectors, np.stack([encoder.vector(t) for t in texts]))
    assert sum(encoder.calls) == sum(len(r) for r in requests) == batcher.encoded
    assert max(encoder.calls) <= 16
    assert len(encoder.calls) < len(requests) / 2, encoder.calls  # they did share


def test_a_lone_request_waits_no_longer_than_the_bound():
    wait = 0.2
    encoder = Recording()
    batcher = Batcher(encoder, BatchSettings(max_wait_s=wait, max_batch=64))
    try:
        batcher.encode(["warm"])  # the thread is running
        start = time.monotonic()
        batcher.encode(["alone"])
        took = time.monotonic() - start
    finally:
        batcher.close()
    # it waited for company (about the bound), and not much more: a loaded machine's
    # scheduling is the slack
    assert wait * 0.9 <= took <= wait + 0.15, took
    assert encoder.calls == [1, 1]


def test_without_waiting_a_lone_request_goes_at_once():
    batcher = Batcher(Recording(), BatchSettings(max_wait_s=0.0, max_batch=64))
    try:
        start = time.monotonic()
        batcher.encode(["alone"])
        assert time.monotonic() - start < 0.1
    finally:
        batcher.close()


def test_a_full_batch_starts_at_once_and_a_large_request_is_not_split():
    encoder = Recording()
    batcher = Batcher(encoder, BatchSettings(max_wait_s=1.0, max_batch=4))
    try:
        start = time.monotonic()
        out = batcher.encode([f"t{i}" for i in range(10)])  # over the limit: alone, whole
        assert out.shape == (10, 8) and time.monotonic() - start < 0.5
        with ThreadPoolExecutor(2) as pool:
            start = time.monotonic()
            list(pool.map(batcher.encode, [["a", "b"], ["c", "d"]]))  # fills the batch
        assert time.monotonic() - start < 0.5
    finally:
        batcher.close()
    assert encoder.calls == [10, 4]


def test_an_encoder_failure_reaches_its_batch_and_the_batcher_goes_on():
    encoder = Recording(fail_on="bad")
    batcher = Batcher(encoder, BatchSettings(max_wait_s=0.0, max_batch=8))
    try:
        with pytest.raises(RuntimeError, match="cannot encode 'bad'"):
            batcher.encode(["bad"])
        assert batcher.encode(["good"]).shape == (1, 8)
    finally:
        batcher.close()


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


# --- through serve: concurrent /route requests against one by one -----------------------
pytest.importorskip("fastapi")
from test_serve import TEXTS, _expected, folder, plugins  # noqa: E402, F401


@pytest.mark.parametrize("settings", [BatchSettings(0.02, 64), BatchSettings(0.0, 1)],
                         ids=["batching", "off"])
def test_concurrent_routes_are_the_one_by_one_routes(folder, settings):
    from fastapi.testclient import TestClient

    from routeharness.deploy.serve import create_app

    app = create_app(folder, default_lam=0.0, batching=settings)
    service = app.state.service
    bodies = [{"prompts": [text], "lam": lam} for text in TEXTS for lam in (0.0, 1.0, 5.0)]
    with TestClient(app, raise_server_exceptions=False) as client, \
            ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda body: client.post("/route", json=body), bodies))
    for body, answer in zip(bodies, answers):
        assert answer.status_code == 200, answer.text
        (row,) = answer.json()["routes"]
        assert row["model"] == _expected(folder, body["prompts"], body["lam"])[0]
    if settings.enabled:
        assert service.batcher.encoded == len(bodies)  # every prompt, once
        assert service.batcher.calls < len(bodies), service.batcher.calls
    else:
        assert service.batcher is None
