"""``serve`` that survives its upstreams (issue 21, item 3): a routed chat request whose
model's upstream fails (429, 5xx, a timeout, a refused connection) is answered by the
next model by predicted utility, with the headers and the request log naming it; a
failure is never an answer; the budget moves routing down the trade-off, then refuses;
the shadow router's choice is logged; and the request log, with outcome labels, becomes
a dataset that ``eval`` reads (the real CLI in a subprocess).

The app runs in-process (``TestClient``) against real local HTTP servers
(``routeharness.testing.upstreams.FakePool``); the router is test_serve's ``linear`` on a
``data synth`` task with the word-hashing encoder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from test_serve import HashWords, _command, _free_port, folder, plugins  # noqa: F401

from routeharness.common.errors import RouteHarnessError
from routeharness.testing.upstreams import FakePool, Faults

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS = ["m0", "m1", "m2", "m3"]
TEXT = "Synthetic question about topic 3."
ALWAYS_429 = Faults(rate_429=1.0)


def chat(text: str = TEXT, **keys) -> dict:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **keys}


def by_utility(folder: Path, text: str, lam: float = 0.0) -> list[str]:
    """The pool by the saved router's predicted utility for ``text``, best first."""
    from routeharness.deploy import saved

    router = saved.load(folder)
    routes = router.route_vectors(HashWords().encode([text]), lam)
    utility = routes.scores[0] - lam * routes.costs_usd[0] / router.cost_scale
    return [MODELS[i] for i in np.argsort(-utility, kind="stable")]


@pytest.fixture()
def pool():
    with FakePool(MODELS, usage=lambda model, text: {
            "prompt_tokens": 10, "completion_tokens": 20,
            "cost": 0.001 * (1 + MODELS.index(model))}) as fake:
        yield fake


def app(folder, tmp_path, pool, section="{max_tries: 3}", timeout=1.0, **proxy):
    from fastapi.testclient import TestClient

    from routeharness.deploy.proxy import ProxyOptions
    from routeharness.deploy.serve import create_app

    config = tmp_path / "up.yaml"
    config.write_text(pool.upstreams_yaml(timeout, section), "utf-8")
    return TestClient(create_app(folder, config, proxy=ProxyOptions(**proxy)),
                      raise_server_exceptions=False)


def log_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_a_failing_upstream_is_answered_by_the_next_model_and_the_header_names_it(
        folder, tmp_path, pool):
    order = by_utility(folder, TEXT)
    pool.set_faults(ALWAYS_429, [order[0]])
    log = tmp_path / "requests.jsonl"
    with app(folder, tmp_path, pool, request_log=log) as client:
        answer = client.post("/v1/chat/completions", json=chat())
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-routeharness-model"] == order[1]
    assert answer.headers["x-routeharness-routed-model"] == order[0]
    assert answer.headers["x-routeharness-fallback"] == f"429 from {order[0]}"
    assert answer.json()["choices"][0]["message"]["content"] == f"answer from {order[1]}"
    assert pool.models[order[0]].requests == 1 and pool.models[order[1]].requests == 1
    [line] = log_lines(log)
    assert line["routed_model"] == order[0] and line["model"] == order[1]
    assert line["answered"] is True and line["status"] == 200
    assert [(a["model"], a["outcome"], a["status"]) for a in line["fallbacks"]] == [
        (order[0], "429", 429)]
    assert line["cost_usd"] == pytest.approx(0.001 * (1 + MODELS.index(order[1])))
    assert line["cost_source"] == "upstream" and line["prompt"] is None
    assert line["id"] == answer.headers["x-routeharness-request-id"]


def test_5xx_timeouts_and_refused_connections_fall_back_too(folder, tmp_path, pool):
    order = by_utility(folder, TEXT)
    pool.set_faults(Faults(rate_5xx=1.0), [order[0]])
    pool.set_faults(Faults(rate_timeout=1.0, hang_s=3.0), [order[1]])
    pool.urls[order[2]] = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    with app(folder, tmp_path, pool, "{max_tries: 4}", timeout=0.5) as client:
        answer = client.post("/v1/chat/completions", json=chat())
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-routeharness-model"] == order[3]
    assert answer.headers["x-routeharness-fallback"] == (
        f"503 from {order[0]}; timeout from {order[1]}; connection failed from {order[2]}")


def test_when_every_attempt_fails_the_502_names_each_and_relays_no_body(folder, tmp_path,
                                                                        pool):
    order = by_utility(folder, TEXT)
    pool.set_faults(ALWAYS_429)
    log = tmp_path / "requests.jsonl"
    with app(folder, tmp_path, pool, "{max_tries: 2}", request_log=log) as client:
        answer = client.post("/v1/chat/completions", json=chat())
    assert answer.status_code == 502
    assert answer.json()["error"] == {"type": "upstream_error", "message": (
        f"every upstream tried failed (2): {order[0]!r} answered HTTP 429; {order[1]!r} "
        "answered HTTP 429 (the server's log has the details)")}
    assert "secret-org" not in answer.text and "x-routeharness-model" not in answer.headers
    assert sum(m.requests for m in pool.models.values()) == 2  # bounded by max_tries
    [line] = log_lines(log)
    assert line["answered"] is False and line["model"] is None and line["cost_usd"] is None


def test_without_fallback_a_429_is_relayed_as_before(folder, tmp_path, pool):
    order = by_utility(folder, TEXT)
    pool.set_faults(ALWAYS_429, [order[0]])
    with app(folder, tmp_path, pool, section="") as client:
        answer = client.post("/v1/chat/completions", json=chat())
    assert answer.status_code == 429 and answer.headers["x-routeharness-model"] == order[0]
    assert "x-routeharness-fallback" not in answer.headers
    # the flag turns it on without the YAML section
    with app(folder, tmp_path, pool, section="", fallback=2) as client:
        answer = client.post("/v1/chat/completions", json=chat())
    assert answer.status_code == 200 and answer.headers["x-routeharness-model"] == order[1]


def test_a_request_naming_a_model_does_not_fall_back(folder, tmp_path, pool):
    pool.set_faults(ALWAYS_429, ["m1"])
    with app(folder, tmp_path, pool) as client:
        answer = client.post("/v1/chat/completions", json=chat(model="m1"))
    assert answer.status_code == 429 and pool.models["m1"].requests == 1
    assert sum(m.requests for m in pool.models.values()) == 1


@pytest.mark.parametrize("section, says", [
    ("{max_tries: 2, models: [m0, gpt-9]}", "fallback.models[1]: 'gpt-9' has no upstream"),
    ("{max_tries: 0}", "fallback.max_tries: must be >= 1"),
    ("{tries: 2}", "fallback: unknown key(s) ['tries']"),
    ("{models: []}", "fallback.models: must name at least one model"),
])
def test_a_bad_fallback_section_is_one_line_at_start(folder, tmp_path, pool, section, says):
    from routeharness.deploy.serve import create_app

    config = tmp_path / "up.yaml"
    config.write_text(pool.upstreams_yaml(1.0, section), "utf-8")
    with pytest.raises(RouteHarnessError) as info:
        create_app(folder, config)
    assert str(info.value).startswith(f"{config}: ") and says in str(info.value)
    assert "\n" not in str(info.value)


def test_the_budget_moves_down_the_trade_off_then_refuses(folder, tmp_path, pool):
    from routeharness.deploy.budget import BudgetLimit

    log = tmp_path / "requests.jsonl"
    # every answer costs 0.001-0.004 USD: a budget of 0.01 is spent within a few requests
    with app(folder, tmp_path, pool, budget=BudgetLimit(0.01, "1k"),
             request_log=log) as client:
        answers = [client.post("/v1/chat/completions", json=chat(f"question {i} topic {i}"))
                   for i in range(12)]
    statuses = [a.status_code for a in answers]
    assert statuses[0] == 200 and 429 in statuses
    downgraded = [a for a in answers if "downgrade" in a.headers.get("x-routeharness-budget",
                                                                     "")]
    assert downgraded, [a.headers.get("x-routeharness-budget") for a in answers]
    assert float(downgraded[0].headers["x-routeharness-lam"]) > 0
    refused = answers[statuses.index(429)]
    assert refused.json()["error"]["type"] == "budget_exceeded"
    assert refused.headers["x-routeharness-budget"].startswith("budget: refused")
    lines = log_lines(log)
    spent = sum(line["cost_usd"] or 0 for line in lines)
    assert spent <= 0.01 + 0.004  # held, but for one answer's cost at most
    assert all(line["budget"] for line in lines if line["status"] == 429)


@pytest.mark.parametrize("value, says", [
    ("-1", "--budget-usd-per-hour -1: a budget is a finite number of USD > 0"),
    ("nan", "--budget-usd-per-hour nan: a budget is a finite number of USD > 0"),
    ("ten", "--budget-usd-per-hour 'ten': not a number of USD"),
])
def test_a_bad_budget_is_one_line(folder, tmp_path, value, says):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    config = tmp_path / "up.yaml"
    config.write_text("models:\n  m0: {base_url: 'http://127.0.0.1:9/v1'}\n", "utf-8")
    done = subprocess.run([sys.executable, "-m", "routeharness", "serve", str(folder),
                           "--upstreams", str(config), "--budget-usd-per-hour", value],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"Error: {says}"]


def test_a_shadow_router_s_choice_is_logged_and_compared(folder, tmp_path, pool):
    from routeharness.deploy.requestlog import read_log
    from routeharness.deploy.shadow import compare

    log = tmp_path / "requests.jsonl"
    texts = [f"Synthetic prompt {i} about topic {i % 5}." for i in range(6)]
    with app(folder, tmp_path, pool, request_log=log, shadow=folder,
             log_prompts=True) as client:
        for text in texts:
            assert client.post("/v1/chat/completions", json=chat(text)).status_code == 200
    lines = [line for _, line in read_log(log)]
    assert [line.prompt for line in lines] == texts
    assert all(line.shadow is not None and line.shadow.model == line.routed_model
               for line in lines)  # the same router as its own shadow agrees
    table = compare(lines)
    assert table["requests"] == 6 and table["agreement"] == 1.0


def test_an_unauthenticated_chat_request_is_401_with_a_token(folder, tmp_path, pool):
    from fastapi.testclient import TestClient

    from routeharness.deploy.serve import create_app

    config = tmp_path / "up.yaml"
    config.write_text(pool.upstreams_yaml(1.0, "{max_tries: 2}"), "utf-8")
    token = "a-token-of-enough-characters-123"
    with TestClient(create_app(folder, config, token=token)) as client:
        for path in ("/v1/chat/completions", "/route", "/health", "/v1/models"):
            answer = client.post(path, json=chat()) if path != "/health" and \
                path != "/v1/models" else client.get(path)
            assert answer.status_code == 401, path
        # a body cannot name where the request goes: base_url keys are forwarded, unused
        answer = client.post("/v1/chat/completions", json=chat(base_url="http://evil.test"),
                             headers={"authorization": f"Bearer {token}"})
        assert answer.status_code == 200
    assert sum(m.requests for m in pool.models.values()) == 1


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "routeharness", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_a_log_and_labels_become_a_dataset_that_eval_and_update_read(folder, tmp_path,
                                                                      pool):
    log = tmp_path / "requests.jsonl"
    topics = ["python code", "chemistry", "history", "poetry", "algebra", "geography"]
    texts = [f"Question {i} on {topics[i % 6]}: explain item {i} of {topics[i % 6]}."
             for i in range(48)]
    with app(folder, tmp_path, pool, request_log=log, log_prompts=True) as client:
        for text in texts:
            assert client.post("/v1/chat/completions", json=chat(text)).status_code == 200
    lines = log_lines(log)
    labels = []
    for i, line in enumerate(lines):
        for k, model in enumerate(MODELS):
            label = {"id": line["id"] if i % 2 else line["prompt_sha256"], "model": model,
                     "score": float((i + k) % 3 != 0), "group": topics[i % 6]}
            if model != line["model"]:  # the answering model's cost comes from the log
                label["cost_usd"] = 0.001 * (1 + k)
            labels.append(json.dumps(label))
    (tmp_path / "labels.jsonl").write_text("\n".join(labels) + "\n", "utf-8")
    done = _cli("data", "from-log", str(log), str(tmp_path / "labels.jsonl"),
                str(tmp_path / "ds"), "--outcomes", str(tmp_path / "outcomes.jsonl"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {tmp_path / 'ds'} from {log}")
    from routeharness.data.tasks import load_task

    task = load_task(str(tmp_path / "ds"))
    assert sum(s.n for s in task.splits.values()) == 48 and [m.name for m in task.models] == MODELS
    train = task.splits["train"]
    line = next(line for line in lines if line["prompt_sha256"] in train.ids)
    row = list(train.ids).index(line["prompt_sha256"])
    # the answering model's cost is the log's, the others' the labels'
    assert train.costs[row, MODELS.index(line["model"])] == pytest.approx(line["cost_usd"])
    other = next(k for k, m in enumerate(MODELS) if m != line["model"])
    assert train.costs[row, other] == pytest.approx(0.001 * (1 + other))
    done = _cli("eval", "-r", "knn:k=3", "-t", str(tmp_path / "ds"), "-e", "lexical",
                "--no-tune", "--bootstrap", "0", "-q", "-o", str(tmp_path / "res.json"),
                "--format", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "res.json").read_text("utf-8"))
    assert any(r["router"] == "knn:k=3" for r in result["records"])
    # update: a kNN fitted on the dataset's train split takes the other rows
    # (fitted here with the word-hashing encoder, which the subprocess registers too)
    from routeharness.deploy import saved

    saved.save(saved.fit("knn:k=3", str(tmp_path / "ds"), encoder="serve-hash", tune=False,
                         cache_dir=str(tmp_path / "cache")), tmp_path / "knn")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    rows = [json.loads(x) for x in (tmp_path / "outcomes.jsonl").read_text().splitlines()]
    assert len(rows) == 48 and {"id", "prompt", "group", "score:m0", "cost:m3"} <= set(rows[0])
    unseen = [json.dumps(r) for r in rows if r["id"] not in train.ids]  # validation, test
    (tmp_path / "new.jsonl").write_text("\n".join(unseen) + "\n", "utf-8")
    done = subprocess.run(_command("update", str(tmp_path / "knn"), str(tmp_path / "new.jsonl")),
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    new = 48 - train.n
    assert f"{new} new prompt" in done.stdout + done.stderr, done.stdout + done.stderr


@pytest.mark.parametrize("edit, says", [
    (lambda d: d.pop("model"), "line 2: missing required key(s) ['model']"),
    (lambda d: d.update(cost_usd="cheap"), "line 2: cost_usd: expected a number"),
])
def test_a_log_line_with_a_missing_field_is_one_line_naming_it(tmp_path, edit, says):
    base = {"schema": "routeharness.request-log/1", "id": "r1", "time": 1.0,
            "router": "knn", "prompt_sha256": "0" * 64, "prompt": "hi", "routed": True,
            "lam_asked": 0, "lam": 0, "routed_model": "m0", "model": "m0",
            "answered": True, "status": 200, "fallbacks": [], "budget": None,
            "latency_ms": 1.0, "input_tokens": None, "output_tokens": None,
            "cost_usd": 0.1, "cost_source": "upstream", "predicted_score": None,
            "predicted_cost_usd": None, "shadow": None}
    bad = dict(base, id="r2")
    edit(bad)
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(base) + "\n" + json.dumps(bad) + "\n", "utf-8")
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"id": "r1", "model": "m0", "score": 1}\n', "utf-8")
    done = _cli("data", "from-log", str(log), str(labels), str(tmp_path / "ds"))
    assert done.returncode == 1
    [message] = done.stderr.strip().splitlines()
    assert message.startswith(f"Error: {log}, {says}")
    assert not (tmp_path / "ds").exists()
    done = _cli("results", "shadow", str(log))
    assert done.returncode == 1 and f"{log}, {says}" in done.stderr


def test_the_budget_s_hour_window_downgrades_refuses_and_rolls_over():
    import math

    from routeharness.deploy.budget import Budget, BudgetExceeded, BudgetLimit

    now = [100.0]
    budget = Budget(BudgetLimit(1.0, "hour"), [10.0, 0.0, math.inf, 1.0],
                    clock=lambda: now[0])
    assert budget.before(0.0).lam == 0.0 and budget.before(0.0).statement is None
    budget.spend(0.6)  # 60% spent: a fifth of the way from 1/2 to 1 -> the second point
    decision = budget.before(0.0)
    assert decision.downgraded and decision.lam == 1.0
    assert decision.statement == "downgrade: lam 0 -> 1 ($0.6 of $1 per hour spent)"
    assert budget.before(5.0).lam == 5.0  # a request asking for more than the floor keeps it
    assert budget.fit(["a", "b"], {"a": 0.5, "b": 0.1}) == (
        ["b"], "downgrade: a (predicted $0.5) is over the $0.4 left; b instead")
    budget.spend(0.45)
    now[0] = 1900.0
    with pytest.raises(BudgetExceeded) as info:
        budget.before(0.0)
    assert info.value.retry_after == 1800 and "refused: $1.05 of $1 per hour" in str(info.value)
    now[0] = 3700.0  # the next hour's window
    assert budget.before(0.0).lam == 0.0 and budget.left() == 1.0


def test_the_fallback_flag_s_range_is_the_policy_s():
    from routeharness.cli.serve import MAX_FALLBACK_TRIES
    from routeharness.deploy.fallback import MAX_TRIES_LIMIT

    assert MAX_FALLBACK_TRIES == MAX_TRIES_LIMIT
    done = _cli("serve", "/nowhere", "--upstreams", "up.yaml", "--fallback", "0")
    assert done.returncode == 2 and "'--fallback': 0 is not in the range 1<=x<=20" in \
        done.stderr


def test_serve_in_a_subprocess_falls_back_logs_and_says_what_is_on(folder, tmp_path, pool):
    """The real command: its flags reach the app, its start-up lines say what is on."""
    import time

    import httpx

    order = by_utility(folder, TEXT)
    pool.set_faults(Faults(rate_5xx=1.0), [order[0]])
    config = tmp_path / "up.yaml"
    config.write_text(pool.upstreams_yaml(2.0), "utf-8")
    log, port = tmp_path / "requests.jsonl", _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    server = subprocess.Popen(_command("serve", str(folder), "--port", str(port), "--upstreams",
                                       str(config), "--fallback", "2", "--request-log",
                                       str(log), "--log-prompts", "--budget-usd-per-1k", "5"),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "serve did not start in 60 s"
            time.sleep(0.2)
        answer = httpx.post(f"{base}/v1/chat/completions", json=chat(), timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-routeharness-model"] == order[1]
        assert answer.headers["x-routeharness-fallback"] == f"503 from {order[0]}"
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    said = err.decode().splitlines()
    assert "fallback: up to 2 upstreams per routed request" in said
    assert "budget: $5 per 1,000 requests" in said
    assert f"request log: {log} (prompt text)" in said
    [line] = log_lines(log)
    assert line["prompt"] == TEXT and line["model"] == order[1]
    assert line["fallbacks"][0]["outcome"] == "503"


def test_log_lines_serve_writes_and_labels_validate_against_their_schemas(folder, tmp_path,
                                                                         pool):
    jsonschema = pytest.importorskip("jsonschema")
    schemas = ROOT / "docs" / "schemas"
    order = by_utility(folder, TEXT)
    pool.set_faults(ALWAYS_429, [order[0]])
    log = tmp_path / "requests.jsonl"
    with app(folder, tmp_path, pool, request_log=log, shadow=folder) as client:
        assert client.post("/v1/chat/completions", json=chat()).status_code == 200
        assert client.post("/v1/chat/completions", json=chat(model="m2")).status_code == 200
    schema = json.loads((schemas / "request-log.schema.json").read_text("utf-8"))
    lines = log_lines(log)
    assert len(lines) == 2 and lines[0]["shadow"] is not None and lines[1]["shadow"] is None
    for line in lines:
        jsonschema.validate(line, schema)
    label = {"id": lines[0]["id"], "model": "m1", "score": 0.5, "cost_usd": 0.002}
    jsonschema.validate(label, json.loads((schemas / "outcome-label.schema.json")
                                          .read_text("utf-8")))
