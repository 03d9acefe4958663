"""``serve`` safe by default (issue 18): hostile bodies are one-line 400s (never a 500, never
accepted in silence); a body over the limit is 413 before it is read (a real uvicorn in a
thread, spoken to over a raw socket); a prompt over the length limit is 400; an upstream's
error body is logged on the server, never relayed; the interactive docs are off unless
asked for; with a bearer token every endpoint answers 401 without it. The app runs
in-process (``TestClient``) on a ``linear`` router fitted on a ``data synth`` task with its
own vectors, so no encoder is loaded."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from routeharness.common.errors import RouteHarnessError

DIM = 8
VECTOR = [round(0.1 * (i + 1), 2) for i in range(DIM)]
TOKEN = "s3cret-token-for-tests-0123456789"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    from routeharness.cli._app import main
    from routeharness.deploy import saved

    base = tmp_path_factory.mktemp("guard")
    try:
        main(["data", "synth", str(base / "synth"), "--train", "120", "--validation", "60",
              "--test", "20", "--models", "4", "--clusters", "4", "--dim", str(DIM)])
    except SystemExit as exc:
        assert not exc.code
    fitted = saved.fit("linear", str(base / "synth"), encoder="precomputed", tune=False)
    return saved.save(fitted, base / "router")


def app_of(folder: Path, **options):
    from routeharness.deploy.serve import create_app

    return create_app(folder, **options)


@pytest.fixture(scope="module")
def client(folder):
    from fastapi.testclient import TestClient

    with TestClient(app_of(folder), raise_server_exceptions=False) as c:
        yield c


def item(prompt: str = "a prompt", **keys) -> dict:
    return {"prompt": prompt, "embedding": VECTOR, **keys}


def post(client, body: bytes | str | dict, path: str = "/route", headers=None):
    content = json.dumps(body) if isinstance(body, dict) else body
    return client.post(path, content=content, headers={**JSON, **(headers or {})})


def error_of(answer, status: int = 400) -> str:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert "\n" not in error["message"]
    return error["message"]


# --- hostile bodies: tracebacks and 500s ---------------------------------------------------------
def test_an_id_of_5000_digits_in_a_body_is_text(client):
    digits = "7" * 5000
    body = '{"prompts": [{"prompt": "a", "id": ' + digits + ', "embedding": ' + \
        json.dumps(VECTOR) + '}]}'
    answer = post(client, body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["routes"][0]["id"] == digits


def test_a_body_nested_100000_deep_is_a_400_naming_the_limit(client):
    body = '{"prompts": ["a"], "lam": ' + "[" * 100_000 + "]" * 100_000 + "}"
    for path in ("/route", "/v1/chat/completions"):
        assert error_of(post(client, body, path)) == ("request: JSON nested more than 64 "
                                                      "levels deep")
    assert client.get("/health").status_code == 200


def test_a_lone_surrogate_in_a_body_is_a_400(client):
    answer = post(client, '{"prompts": [{"prompt": "x \\udfff", "embedding": '
                  + json.dumps(VECTOR) + "}]}")
    assert error_of(answer) == ("request: prompts[0].prompt: holds a lone surrogate U+DFFF "
                                "at character 3, which is not text")
    answer = post(client, '{"messages": [{"role": "user", "content": "\\ud800"}]}',
                  "/v1/chat/completions")
    assert error_of(answer) == ("request: messages[0].content: holds a lone surrogate U+D800 "
                                "at character 1, which is not text")


def test_a_body_that_is_not_utf8_is_a_400_naming_the_line(client):
    answer = post(client, b'{"prompts":\n ["caf\xe9"]}')
    assert error_of(answer) == "request, line 2: not UTF-8 text (byte 0xe9 at column 7)"


# --- silent acceptance ------------------------------------------------------------------------
def test_an_invisible_prompt_in_a_body_is_a_400(client):
    answer = post(client, {"prompts": [item("ok"), item("\u200b\u2060\u200b")]})
    assert error_of(answer) == ("request: prompts[1].prompt: must be non-blank text (it holds "
                                "only invisible characters)")
    answer = post(client, {"messages": [{"role": "user", "content": "\u200b"}]},
                  "/v1/chat/completions")
    assert error_of(answer) == ("request: the last user message: prompt: must be non-blank "
                                "text (it holds only invisible characters)")


def test_vector_values_float32_cannot_hold_are_a_400(client):
    answer = post(client, {"prompts": [item(embedding=[1e39, *VECTOR[1:]])]})
    assert error_of(answer) == ("request: prompts[0].embedding[0]: 1e+39 is outside float32's "
                                "range (at most 3.403e+38 in size)")


def test_a_non_finite_trade_off_is_refused_with_a_hint(client, folder):
    hint = ("for cost-only routing give a large trade-off (e.g. 1e6) or a budget of 0 (the "
            "cheapest validation trade-off)")
    body = '{"prompts": [{"prompt": "a", "embedding": ' + json.dumps(VECTOR) + \
        '}], "lam": Infinity}'
    assert error_of(post(client, body)) == f"request: lam: must be a finite number, got inf; {hint}"
    answer = post(client, {"messages": [{"role": "user", "content": "hi"}]},
                  "/v1/chat/completions", {"x-routeharness-lam": "inf"})
    assert error_of(answer) == ("request: \"x-routeharness-lam\" must be a finite number >= 0; "
                                + hint)
    with pytest.raises(RouteHarnessError, match=r"--lam inf: a trade-off is a finite number "
                                                r">= 0; for cost-only routing"):
        app_of(folder, default_lam=float("inf"))


def test_serve_refuses_lam_inf_before_it_starts(folder):
    """``serve --lam inf`` used to start and route every request at infinity."""
    done = subprocess.run([sys.executable, "-m", "routeharness", "serve", str(folder), "--lam",
                           "inf", "--port", str(_free_port())], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: Invalid value for '--lam': inf is not a finite number; for cost-only routing "
        "give a large trade-off (e.g. --lam 1e6) or a budget of 0 (the cheapest validation "
        "trade-off)")


# --- false reject ----------------------------------------------------------------------------
def test_an_id_on_one_prompt_and_none_on_the_next_is_not_given_twice(client):
    answer = post(client, {"prompts": [item(id="2"), item(), item("c")]})
    assert answer.status_code == 200, answer.text
    assert [r["id"] for r in answer.json()["routes"]] == ["2", "#2", "3"]


# --- the limits ------------------------------------------------------------------------------
def test_a_prompt_over_the_length_limit_is_a_400(folder):
    from fastapi.testclient import TestClient

    from routeharness.deploy.guard import ServeLimits

    with TestClient(app_of(folder, limits=ServeLimits(max_prompt_chars=10)),
                    raise_server_exceptions=False) as small:
        assert post(small, {"prompts": [item("x" * 10)]}).status_code == 200
        assert error_of(post(small, {"prompts": [item("ok"), item("x" * 11)]})) == (
            "request: prompts[1].prompt: 11 characters, more than the limit of 10")
        answer = post(small, {"messages": [{"role": "user", "content": "y" * 12}]},
                      "/v1/chat/completions")
        assert error_of(answer) == ("request: the last user message: prompt: 12 characters, "
                                    "more than the limit of 10")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def uvicorn_serving(app) -> Iterator[int]:
    """``app`` under a real uvicorn in a thread; yields its port."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield server.config.port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _answer(sock: socket.socket) -> bytes:
    """What the server sent until it closed or paused for 5 s."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
            if b"\r\n\r\n" in received and b'"error"' in received:
                break
    except TimeoutError:
        pass
    return received


def test_a_body_over_the_limit_is_413_before_it_is_read(folder):
    """Content-Length over the limit (the default, 16 MB): 413 at once, with 1 byte of the
    100 MB sent. A body in chunks: 413 as soon as what was read passes the limit (100 kB
    here), the rest never sent. Under the limit, the same server answers."""
    import httpx

    with uvicorn_serving(app_of(folder)) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"POST /route HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                         b"\r\nContent-Length: 100000000\r\n\r\n{")
            answer = _answer(sock)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
        assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {"error": {
            "message": "request: the body is larger than the limit of 16 MB (serve "
                       "--max-body)", "type": "request_too_large"}}
        assert httpx.post(f"http://127.0.0.1:{port}/route", json={"prompts": [item()]},
                          timeout=10).status_code == 200
    from routeharness.deploy.guard import ServeLimits

    with uvicorn_serving(app_of(folder, limits=ServeLimits(max_body_bytes=100_000))) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"POST /route HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                         b"\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b'{"prompts": ["' + b"a" * 65_522
            for _ in range(2):  # 131,072 bytes of an unfinished body
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                chunk = b"a" * 65_536
            answer = _answer(sock)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
        assert b"larger than the limit of 100 kB" in answer
        assert httpx.post(f"http://127.0.0.1:{port}/route", json={"prompts": [item()]},
                          timeout=10).status_code == 200


def test_the_cli_defaults_are_the_guard_s_and_serve_binds_to_loopback(capsys):
    from routeharness.cli._app import main
    from routeharness.cli.serve import DEFAULT_MAX_BODY, DEFAULT_MAX_PROMPT_CHARS
    from routeharness.common.textinput import parse_size
    from routeharness.deploy import guard

    assert parse_size(DEFAULT_MAX_BODY) == guard.DEFAULT_MAX_BODY_BYTES
    assert DEFAULT_MAX_PROMPT_CHARS == guard.DEFAULT_MAX_PROMPT_CHARS
    main(["serve", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for default in ("[default: 127.0.0.1]", "[default: 16MB]", "[default: 100000;"):
        assert default in shown


# --- what clients are not told -----------------------------------------------------------------
def test_an_upstream_error_body_is_logged_not_relayed(folder, tmp_path, caplog):
    from fastapi.testclient import TestClient
    from test_serve import FakeUpstream

    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeUpstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = tmp_path / "up.yaml"
    config.write_text(f"models:\n  m1: {{base_url: 'http://127.0.0.1:{server.server_address[1]}"
                      f"/v1'}}\n  m2: {{base_url: 'http://127.0.0.1:{_free_port()}/v1'}}\n",
                      "utf-8")
    chat = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
    try:
        with caplog.at_level(logging.WARNING, "routeharness.serve"), \
                TestClient(app_of(folder, upstreams=config),
                           raise_server_exceptions=False) as client:
            answer = post(client, {**chat, "metadata": {"test": "fail"}}, "/v1/chat/completions")
            assert error_of(answer, 502) == ("upstream of 'm1' answered HTTP 500 (Internal "
                                             "Server Error) (its body is in the server's log)")
            answer = post(client, {**chat, "metadata": {"test": "busy"}}, "/v1/chat/completions")
            assert error_of(answer, 429) == ("upstream of 'm1' answered HTTP 429 (Too Many "
                                             "Requests) (its body is in the server's log)")
            answer = post(client, {**chat, "model": "m2"}, "/v1/chat/completions")
            assert error_of(answer, 502) == ("upstream of 'm2' could not be reached (the "
                                             "server's log has the details)")
    finally:
        server.shutdown()
    logged = [r.getMessage() for r in caplog.records if r.name == "routeharness.serve"]
    assert len(logged) == 3 and all("\n" not in m and "\x1b" not in m for m in logged)
    assert "answered HTTP 500: {\"error\": \"upstream exploded at db-7.internal.example with " \
        "key sk-SECRET \\x1b[31mforged log line\"}" in logged[0]
    assert "slow down" in logged[1] and "ConnectError" in logged[2]


def test_an_internal_error_says_nothing_of_the_server_s_insides(folder, caplog):
    from fastapi.testclient import TestClient

    app = app_of(folder)

    def broken(*args, **kwargs):
        raise RuntimeError("secret detail /srv/keys/prod.pem")

    app.state.service.router.predict_vectors = broken  # batched or not, routing calls it
    with caplog.at_level(logging.ERROR, "routeharness.serve"), \
            TestClient(app, raise_server_exceptions=False) as client:
        answer = post(client, {"prompts": [item()]})
    assert answer.status_code == 500 and "secret" not in answer.text
    assert answer.json() == {"error": {"message": "internal error (the server's log has the "
                                                  "details)", "type": "internal_error"}}
    assert any("secret detail" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


# --- the interactive docs ----------------------------------------------------------------------
def test_the_interactive_docs_are_off_unless_asked_for(client, folder):
    from fastapi.testclient import TestClient

    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        assert client.get(path).status_code == 404, path
    with TestClient(app_of(folder, docs=True)) as documented:
        assert documented.get("/openapi.json").json()["paths"].keys() >= {"/route", "/health"}
        page = documented.get("/docs")
        assert page.status_code == 200 and "cdn.jsdelivr.net" in page.text  # docs/serve.md
        assert documented.get("/redoc").status_code == 200


# --- the bearer token ----------------------------------------------------------------------------
ENDPOINTS = [("GET", "/health", 200), ("GET", "/models", 200), ("GET", "/v1/models", 200),
             ("POST", "/route", 200), ("POST", "/v1/chat/completions", 404),
             ("GET", "/nowhere", 404)]


def test_with_a_token_every_endpoint_needs_it(folder):
    from fastapi.testclient import TestClient

    body = {"prompts": [item()], "messages": [{"role": "user", "content": "hi"}]}
    with TestClient(app_of(folder, token=TOKEN, docs=True),
                    raise_server_exceptions=False) as client:
        for method, path, status in ENDPOINTS + [("GET", "/openapi.json", 200)]:
            content = json.dumps({k: body[k] for k in body if (k == "prompts") ==
                                  (path == "/route")}) if method == "POST" else None
            for auth in (None, "Bearer wrong-token-of-enough-length", f"Basic {TOKEN}",
                         f"Bearer {TOKEN}x", TOKEN, "Bearer"):
                headers = {**JSON, **({"authorization": auth} if auth else {})}
                answer = client.request(method, path, content=content, headers=headers)
                assert answer.status_code == 401, (path, auth)
                assert answer.headers["www-authenticate"] == "Bearer"
                assert answer.json()["error"]["type"] == "unauthorized"
                assert TOKEN not in answer.text
            for auth in (f"Bearer {TOKEN}", f"bearer {TOKEN}"):
                answer = client.request(method, path, content=content,
                                        headers={**JSON, "authorization": auth})
                assert answer.status_code == status, (path, answer.text)
        # a body over the limit without the token: 401, the body never looked at
        answer = client.post("/route", content=b"x" * 20_000_000, headers=JSON)
        assert answer.status_code == 401


def test_the_token_comes_from_a_variable_or_a_file_never_the_command_line(tmp_path, capsys):
    from routeharness.cli._app import main
    from routeharness.deploy.guard import read_token

    assert read_token() is None
    assert read_token(env="RH_T", environ={"RH_T": f" {TOKEN}\n"}) == TOKEN
    (tmp_path / "token").write_text(TOKEN + "\n", encoding="utf-8")
    assert read_token(file=tmp_path / "token") == TOKEN
    for kwargs, says in [
        ({"env": "RH_T", "environ": {}}, "--token-env RH_T: the environment variable is not set"),
        ({"env": "RH_T", "environ": {"RH_T": "  "}}, "--token-env RH_T: the token is empty"),
        ({"env": "RH_T", "environ": {"RH_T": "short"}}, "the token has 5 characters, fewer "
                                                       "than 16"),
        ({"env": "RH_T", "environ": {"RH_T": "a token with spaces!!"}}, "printable ASCII"),
        ({"env": "RH_T", "file": "x"}, "give --token-env or --token-file, not both"),
        ({"file": tmp_path}, "it is a directory, not a regular file"),
        ({"file": tmp_path / "none"}, "cannot read it"),
    ]:
        with pytest.raises(RouteHarnessError, match=re.escape(says)) as info:
            read_token(**kwargs)
        assert "\n" not in str(info.value)
    with pytest.raises(SystemExit) as exit_info:  # there is no option taking the token itself
        main(["serve", str(tmp_path), "--token", TOKEN])
    assert exit_info.value.code == 2 and "No such option '--token'" in capsys.readouterr().err
    env = {k: v for k, v in os.environ.items() if k != "RH_UNSET_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "routeharness", "serve", str(tmp_path),
                           "--token-env", "RH_UNSET_TOKEN"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        "Error: --token-env RH_UNSET_TOKEN: the environment variable is not set"]
