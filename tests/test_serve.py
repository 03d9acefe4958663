"""``routeharness serve``: a saved router over HTTP. ``/route``, ``/health`` and ``/models``
answer with the saved router's own routes; bad requests are JSON errors with their status
(never 500); and, end to end, ``routeharness serve`` in a subprocess forwards chat
completions (plain and streamed) to a fake OpenAI-compatible upstream started here (no
network), turning an upstream failure into 502 and a hang into 504 while staying up.

The router is the built-in ``linear``; the encoder a word-hashing one registered by this
file (``register``), so the tests load no model; the subprocess registers it the same way
before calling the real CLI entry point."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from routeharness.common.errors import RouteHarnessError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DIM = 16


class HashWords:
    """Words hashed into 16 buckets, rows normalised: deterministic, no model."""

    name, identity, revision, dimension = "serve-hash", "serve-hash-words", "1", DIM
    modalities = frozenset({"text"})

    def encode(self, texts, images=None, *, progress=None) -> np.ndarray:
        out = np.zeros((len(texts), DIM), np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, hashlib.md5(word.encode()).digest()[0] % DIM] += 1.0
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        if progress:
            progress(len(texts))
        return out


def register() -> None:
    """Registers the ``serve-hash`` encoder in this process (the subprocess too)."""
    from routeharness import hookimpl
    from routeharness.plugins.host import get_host, reset_plugin_manager

    module = types.ModuleType("serve_test_plugin")
    module.register_encoders = hookimpl(lambda register: register(
        name="serve-hash", target=HashWords, description="test"))
    reset_plugin_manager()
    get_host().add(module, "serve-test")


@pytest.fixture(scope="module")
def plugins() -> Iterator[None]:
    from routeharness.plugins.host import reset_plugin_manager

    register()
    yield
    reset_plugin_manager()


@pytest.fixture(scope="module")
def folder(plugins, tmp_path_factory) -> Path:
    from routeharness.cli._app import main
    from routeharness.deploy import saved

    base = tmp_path_factory.mktemp("serve")
    try:
        main(["data", "synth", str(base / "synth"), "--train", "160", "--validation", "60",
              "--test", "20", "--models", "4", "--clusters", "5", "--dim", "8"])
    except SystemExit as exc:
        assert not exc.code
    fitted = saved.fit("linear", str(base / "synth"), encoder="serve-hash", tune=False,
                       cache_dir=str(base / "cache"))
    return saved.save(fitted, base / "router")


def _expected(folder: Path, texts: list[str], lam: float) -> list[str]:
    from routeharness.deploy import saved

    routes = saved.load(folder).route_vectors(HashWords().encode(texts), lam)
    return [row["model"] for row in routes.rows()]


TEXTS = [f"Synthetic test prompt {i} about topic {i % 5}." for i in range(10)]


@pytest.fixture(scope="module")
def client(folder):
    from fastapi.testclient import TestClient

    from routeharness.deploy.serve import create_app

    with TestClient(create_app(folder, default_lam=0.0), raise_server_exceptions=False) as c:
        yield c


def test_route_health_and_models_answer_with_the_saved_router(client, folder):
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["router"] == "linear"
    assert health["task"]["fingerprint"] == manifest["task"]["fingerprint"]
    assert health["encoder"] == {"spec": "serve-hash", "identity": "serve-hash-words",
                                 "revision": "1"}
    models = client.get("/models").json()["models"]
    assert [m["name"] for m in models] == ["m0", "m1", "m2", "m3"]
    assert not any(m["upstream"] for m in models)
    body = {"prompts": TEXTS[:5] + [{"prompt": t, "id": f"q{i}"}
                                    for i, t in enumerate(TEXTS[5:])], "lam": 2.0}
    answer = client.post("/route", json=body)
    assert answer.status_code == 200, answer.text
    routes = answer.json()["routes"]
    assert [r["model"] for r in routes] == _expected(folder, TEXTS, 2.0)
    assert [r["id"] for r in routes] == ["1", "2", "3", "4", "5", "q0", "q1", "q2", "q3",
                                         "q4"]
    assert answer.json()["lam"] == 2.0 and routes[0]["lam"] == 2.0
    first = routes[0]
    assert first["predicted_score"] == first["predicted"][first["model"]]["score"]
    # a budget picks the validation trade-off route's --budget picks
    from routeharness.deploy import saved

    point, met = saved.load(folder).lam_for_budget(0.0)
    answer = client.post("/route", json={"prompts": TEXTS, "budget": 0.0}).json()
    assert answer["lam"] == point.lam and answer["budget"]["met_on_validation"] == met
    assert [r["model"] for r in answer["routes"]] == _expected(folder, TEXTS, point.lam)


@pytest.mark.parametrize("body, status, says", [
    ({}, 400, "request: missing required key(s) ['prompts']"),
    ({"prompts": "a"}, 400, "request: prompts: expected a list, got \"a\""),
    ({"prompts": []}, 400, "no prompt to route"),
    ({"prompts": ["ok"], "lambda": 1}, 400, "request: unknown key(s) ['lambda']"),
    ({"prompts": [{"text": "x"}]}, 400, "request: prompts[0]: unknown key(s) ['text']"),
    ({"prompts": ["  "]}, 400, "request: prompts[0].prompt: must be non-blank text"),
    ({"prompts": [{"prompt": "a", "id": 1.5}]}, 400,
     "request: prompts[0].id: expected a string or an integer, got 1.5"),
    ({"prompts": [{"prompt": "a", "id": 1}, {"prompt": "b", "id": "1"}]}, 400,
     "the id '1' is given twice"),
    ({"prompts": ["a"], "lam": -1}, 400, "request: lam: must be >= 0"),
    ({"prompts": ["a"], "lam": "0.5"}, 400, "request: lam: expected a number, got \"0.5\""),
    ({"prompts": ["a"], "lam": 1, "budget": 1}, 400, "give \"lam\" or \"budget\""),
    ({"prompts": [{"prompt": "a", "embedding": [1.0, 2.0]}]}, 400, "fitted on 16-d"),
    ([1, 2], 400, "must be a JSON object"),
])
def test_a_bad_route_request_is_a_json_error_with_its_status(client, body, status, says):
    answer = client.post("/route", json=body)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert says in error["message"] and error["type"] == "invalid_request_error"
    assert client.get("/health").status_code == 200


def test_other_bad_requests_are_json_errors(client):
    answer = client.post("/route", content=b"{not json", headers={"content-type":
                                                                  "application/json"})
    assert answer.status_code == 400 and "not valid JSON" in answer.json()["error"]["message"]
    answer = client.get("/nowhere")
    assert answer.status_code == 404 and answer.json()["error"]["type"] == "not_found"
    chat = {"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}
    answer = client.post("/v1/chat/completions", json=chat)
    assert answer.status_code == 404 and "'gpt-9' is not in the router's pool" in \
        answer.json()["error"]["message"]
    answer = client.post("/v1/chat/completions", json={"messages": [
        {"role": "system", "content": "be brief"}]})
    assert answer.status_code == 400 and "no message with role \"user\"" in \
        answer.json()["error"]["message"]
    answer = client.post("/v1/chat/completions", json={"messages": [
        {"role": "user", "content": "hello"}]})  # no --upstreams: nothing to forward to
    assert answer.status_code == 404 and "--upstreams" in answer.json()["error"]["message"]


@pytest.mark.parametrize("body, says", [
    ({"messages": "hi"}, "request: messages: expected a list, got \"hi\""),
    ({"messages": []}, "request: messages: must be a non-empty list"),
    ({"messages": [{"content": "hi"}]}, "request: messages[0]: missing required key(s) "
                                        "['role']"),
    ({"model": 5, "messages": [{"role": "user", "content": "hi"}]},
     "request: model: expected a string, got 5"),
    ({"stream": "yes", "messages": [{"role": "user", "content": "hi"}]},
     "request: stream: expected true or false, got \"yes\""),
    ({"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
     "request: messages[0].content[0]: missing required key(s) ['type']"),
    ({"messages": [{"role": "user", "content": "  "}]},
     "request: the last user message: prompt: must be non-blank text"),
])
def test_a_bad_chat_request_is_a_400_naming_the_key(client, body, says):
    answer = client.post("/v1/chat/completions", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"error": {"message": says, "type": "invalid_request_error"}}


def test_a_key_given_twice_in_a_body_is_refused(client):
    for path in ("/route", "/v1/chat/completions"):
        answer = client.post(path, content=b'{"prompts": ["a"], "prompts": ["b"]}',
                             headers={"content-type": "application/json"})
        assert answer.status_code == 400
        assert "request: not valid JSON (key 'prompts' is given twice)" in \
            answer.json()["error"]["message"]


def test_a_selection_router_s_routes_and_the_models_keep_their_shape(client):
    """Keys that are None are left out of an answer: no null predictions, no null
    provider; ``/v1/models`` is the OpenAI list."""
    models = client.get("/models").json()["models"]
    assert all(None not in m.values() for m in models)
    assert client.get("/v1/models").json() == {"object": "list", "data": [
        {"id": "auto", "object": "model", "owned_by": "routeharness"}]}
    answer = client.post("/route", json={"prompts": ["a"]}).json()
    assert "budget" not in answer and set(answer["routes"][0]) == {
        "id", "model", "lam", "predicted_score", "predicted_cost_usd", "predicted"}


@pytest.mark.parametrize("text, says", [
    ("models: {m9: {base_url: 'http://x'}}", "models.m9: not a model of the router's pool"),
    ("models: {m0: {base_url: 'http://x', key: k}}", "models.m0: unknown key(s) ['key']"),
    ("models: {m0: {base_url: 'http://x', api_key_env: RH_SERVE_UNSET_VAR}}",
     "'RH_SERVE_UNSET_VAR' (api_key_env) is not set"),
    ("models: {m0: {base_url: 'ftp://x'}}", "must be an http:// or https:// URL"),
    ("models: {m0: {base_url: 'http://x', timeout: 0}}", "must be a number of seconds > 0"),
    ("models: [m0]", "models: expected an object, got a list"),
    ("models: {m0: {base_url: 'http://'}}", "models.m0.base_url: must be an http:// or "
                                            "https:// URL with a host"),
    ("models: {m0: {base_url: 'http://x'}, m0: {base_url: 'http://y'}}",
     "key 'm0' is given twice"),
    ("models: {m0: {base_url: 'http://x', timeout: '5'}}",
     "models.m0.timeout: expected a number, got \"5\""),
])
def test_the_upstreams_file_is_checked_at_start(folder, tmp_path, text, says):
    from routeharness.deploy.serve import create_app

    path = tmp_path / "up.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RouteHarnessError) as info:
        create_app(folder, path)
    assert str(info.value).startswith(f"{path}: ")
    assert says in str(info.value) and "\n" not in str(info.value)


def test_an_unreachable_upstream_is_a_502_and_a_bad_lam_header_a_400(folder, tmp_path):
    from fastapi.testclient import TestClient

    from routeharness.deploy.serve import create_app

    config = tmp_path / "up.yaml"
    config.write_text(f"models:\n  m1: {{base_url: 'http://127.0.0.1:{_free_port()}/v1'}}\n",
                      "utf-8")
    chat = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    with TestClient(create_app(folder, config), raise_server_exceptions=False) as client:
        assert [m["upstream"] for m in client.get("/models").json()["models"]] == [
            False, True, False, False]
        answer = client.post("/v1/chat/completions", json={**chat, "model": "m1"})
        assert answer.status_code == 502, answer.text
        assert answer.json()["error"]["type"] == "upstream_error"
        answer = client.post("/v1/chat/completions", json={**chat, "model": "m2"})
        assert answer.status_code == 404 and "'m2' has no upstream" in answer.text
        answer = client.post("/v1/chat/completions", json=chat,
                             headers={"x-routeharness-lam": "cheap"})
        assert answer.status_code == 400 and "x-routeharness-lam" in answer.text
        # routed among the models with an upstream: the only one
        answer = client.post("/v1/chat/completions", json=chat)
        assert answer.status_code == 502 and "'m1'" in answer.json()["error"]["message"]
        assert client.get("/health").json()["upstreams"] == 1


def test_without_the_web_stack_the_error_names_the_extra(folder, monkeypatch):
    from routeharness.deploy.serve import create_app

    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(RouteHarnessError, match=r"pip install 'routeharness\[serve\]'"):
        create_app(folder)


# --- end to end: routeharness serve in a subprocess, a fake upstream in a thread ----------

class FakeUpstream(BaseHTTPRequestHandler):
    """OpenAI-compatible chat completions: echoes the model; ``metadata.test`` "fail"
    answers 500, "busy" 429 and "hang" sleeps 5 s; streams three chunks 0.5 s apart."""

    seen: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        FakeUpstream.seen.append({"path": self.path, "model": body["model"],
                                  "auth": self.headers.get("authorization")})
        behaviour = (body.get("metadata") or {}).get("test")
        if behaviour == "hang":
            time.sleep(5)
        if behaviour == "busy":
            data = b'{"error": {"message": "slow down", "type": "rate_limit"}}'
            self.send_response(429)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if behaviour == "fail":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'{"error": "upstream exploded at db-7.internal.example '
                             b'with key sk-SECRET\n\x1b[31mforged log line"}')
            return
        self.send_response(200)
        if body.get("stream"):
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            for i in range(3):
                chunk = {"object": "chat.completion.chunk", "model": body["model"],
                         "choices": [{"index": 0, "delta": {"content": f"part{i} "}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(0.5)
            self.wfile.write(b"data: [DONE]\n\n")
            return
        answer = {"object": "chat.completion", "model": body["model"], "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hello back"},
             "finish_reason": "stop"}]}
        data = json.dumps(answer).encode()
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BOOT = ("import sys; sys.path.insert(0, {here!r}); import test_serve; test_serve.register(); "
        "from routeharness.cli import main; main(sys.argv[1:])")


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeUpstream)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _command(*args: str) -> list[str]:
    return [sys.executable, "-c", BOOT.format(here=str(HERE)), *args]


def test_serve_forwards_chat_completions_to_the_routed_upstream(folder, upstream, tmp_path):
    import httpx

    lines = [f"  {m}: {{base_url: '{upstream}', api_key_env: RH_SERVE_KEY, model: up-{m}, "
             f"timeout: 1.5}}" for m in ("m0", "m1", "m2", "m3")]
    config = tmp_path / "upstreams.yaml"
    config.write_text("models:\n" + "\n".join(lines) + "\n", encoding="utf-8")
    port = _free_port()
    env = {**os.environ, "RH_SERVE_KEY": "sekret", "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    server = subprocess.Popen(_command("serve", str(folder), "--port", str(port),
                                       "--upstreams", str(config), "--lam", "0.5"),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "serve did not start in 40 s"
            time.sleep(0.2)
        text = "Synthetic question about topic 3."
        expected = _expected(folder, [text], 0.5)[0]
        chat = {"model": "auto", "messages": [{"role": "system", "content": "be brief"},
                                              {"role": "user", "content": text}]}
        FakeUpstream.seen.clear()
        answer = httpx.post(f"{base}/v1/chat/completions", json=chat, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-routeharness-model"] == expected
        assert answer.headers["x-routeharness-routed"] == "true"
        assert answer.json()["choices"][0]["message"]["content"] == "hello back"
        assert FakeUpstream.seen == [{"path": "/v1/chat/completions", "model": f"up-{expected}",
                                      "auth": "Bearer sekret"}]
        # streamed: the chunks are relayed as they come, not after the last one
        arrivals, received = [], b""
        with httpx.stream("POST", f"{base}/v1/chat/completions", timeout=10,
                          json={**chat, "model": "m2", "stream": True}) as streamed:
            assert streamed.status_code == 200
            assert streamed.headers["x-routeharness-model"] == "m2"
            assert streamed.headers["x-routeharness-routed"] == "false"
            for chunk in streamed.iter_bytes():
                arrivals.append(time.monotonic())
                received += chunk
        events = [line[6:] for line in received.decode().splitlines() if line]
        assert events[-1] == "[DONE]"
        parts = [json.loads(e)["choices"][0]["delta"]["content"] for e in events[:-1]]
        assert parts == ["part0 ", "part1 ", "part2 "]
        assert json.loads(events[0])["model"] == "up-m2"
        assert arrivals[-1] - arrivals[0] > 0.6  # the first chunk came ~1 s before the last
        # an upstream that fails: 502; one that hangs: 504 within its 1.5 s timeout
        answer = httpx.post(f"{base}/v1/chat/completions", timeout=10,
                            json={**chat, "metadata": {"test": "fail"}})
        assert answer.status_code == 502
        # the upstream's body is logged on the server, never relayed: a fixed reason
        assert answer.json()["error"] == {"type": "upstream_error", "message": (
            f"upstream of {expected!r} answered HTTP 500 (Internal Server Error) (its body "
            "is in the server's log)")}
        assert "SECRET" not in answer.text and "internal" not in answer.text
        assert httpx.get(f"{base}/health", timeout=5).status_code == 200
        answer = httpx.post(f"{base}/v1/chat/completions", timeout=10,
                            json={**chat, "metadata": {"test": "busy"}})
        assert answer.status_code == 429  # the caller's to see: its status kept
        assert answer.json()["error"]["message"] == (
            f"upstream of {expected!r} answered HTTP 429 (Too Many Requests) (its body is in "
            "the server's log)")
        assert "slow down" not in answer.text
        assert answer.headers["x-routeharness-model"] == expected
        # the trade-off of one request, from its header
        at_50 = _expected(folder, [text], 50.0)[0]
        assert at_50 != expected  # cost matters at 50: another model
        answer = httpx.post(f"{base}/v1/chat/completions", json=chat, timeout=10,
                            headers={"x-routeharness-lam": "50"})
        assert answer.status_code == 200 and answer.headers["x-routeharness-model"] == at_50
        started = time.monotonic()
        answer = httpx.post(f"{base}/v1/chat/completions", timeout=10,
                            json={**chat, "metadata": {"test": "hang"}})
        took = time.monotonic() - started
        assert answer.status_code == 504 and 1.4 < took < 4.5
        assert answer.json()["error"] == {"message": f"upstream of {expected!r} did not "
                                          "answer within 1.5 s", "type": "upstream_timeout"}
        assert httpx.get(f"{base}/health", timeout=5).json()["default_lam"] == 0.5
        routed = httpx.post(f"{base}/route", json={"prompts": [text]}, timeout=10).json()
        assert routed["routes"][0]["model"] == expected and routed["lam"] == 0.5
    finally:
        server.terminate()
        _, log = server.communicate(timeout=10)
    # the server's log: each upstream error body on one line, control characters escaped
    lines = log.decode().splitlines()
    failed = [line for line in lines if "answered HTTP 500" in line]
    assert len(failed) == 1 and "db-7.internal.example with key sk-SECRET" in failed[0]
    assert "\\x1b[31mforged log line" in failed[0]
    assert not any(line.startswith("forged") or "\x1b" in line for line in lines)
    assert any("answered HTTP 429" in line and "slow down" in line for line in lines)


def test_serve_refuses_a_bad_upstreams_file_in_one_line(folder, tmp_path):
    config = tmp_path / "up.yaml"
    config.write_text("models:\n  gpt-9: {base_url: 'http://127.0.0.1:9/v1'}\n", "utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(_command("serve", str(folder), "--upstreams", str(config)),
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Error: {config}: models.gpt-9: not a model of the router's pool (m0, m1, m2, m3)"]
