"""A saved router over HTTP (``routeharness serve``; docs/serve.md).

``create_app`` builds a FastAPI application around a folder made by ``routeharness fit``:
``POST /route``, ``GET /health``, ``GET /models`` (and ``/v1/models``), and an
OpenAI-compatible ``POST /v1/chat/completions`` that routes each request on its last user
message and forwards it to the chosen model's endpoint named in an upstreams YAML file,
streams (server-sent events) relayed chunk by chunk; the decision is in the
``x-routeharness-model`` header. The router and encoder load once, at start-up; routing
runs in a worker thread behind one lock (the event loop keeps answering; tokenizers are
not safe to share between threads); upstream calls are async (httpx). Prompts are checked
by ``routing_input``, as ``route`` checks them. Errors are ``{"error": {"message",
"type"}}``: 400 bad request, 404 unknown model or path, 502 upstream failed, 504 upstream
timed out; bad input never reaches 500. FastAPI and httpx are imported only inside this
module's functions: the default install has no web stack (the ``serve`` extra adds it).
"""

import contextlib
import dataclasses
import json
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError, one_line

#: how to get the web stack when it is missing
SERVE_INSTALL = "pip install 'routeharness[serve]'"
#: the keys a ``POST /route`` body may hold
ROUTE_KEYS = ("prompts", "lam", "budget")
#: seconds an upstream may take when its YAML entry names no timeout
DEFAULT_TIMEOUT_S = 60.0
#: ``model`` values of a chat request that mean "route it"
AUTO_MODELS = (None, "auto")
#: the request header that sets a chat request's trade-off (default: ``--lam``)
LAM_HEADER = "x-routeharness-lam"
#: upstream statuses relayed as they are (the caller's to see); other failures are a 502
RELAYED_STATUSES = frozenset({400, 404, 409, 413, 422, 429})


class Problem(RouteHarnessError):
    """A request that fails: its HTTP status, one-line message and error type."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


@dataclass(frozen=True)
class Upstream:
    """A pool model's OpenAI-compatible ``base_url`` (``.../v1``), the NAME of the variable
    holding its API key (never the key), its name there, and the seconds it may take."""

    model: str
    base_url: str
    api_key_env: str | None = None
    upstream_model: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.base_url, "api_key_env":
                self.api_key_env, "upstream_model": self.upstream_model or self.model,
                "timeout_s": self.timeout_s}

    def headers(self) -> dict[str, str]:
        """The request headers: the key read from its variable at call time."""
        out = {"content-type": "application/json", "accept-encoding": "identity"}
        if self.api_key_env:
            out["authorization"] = f"Bearer {os.environ.get(self.api_key_env, '')}"
        return out


def load_upstreams(path: str | Path, pool: Sequence[str],
                   environ: Mapping[str, str] | None = None) -> dict[str, Upstream]:
    """The upstreams YAML (``models: {NAME: {base_url, api_key_env?, model?, timeout?}}``)
    checked strictly: unknown keys, a model not in the pool and an ``api_key_env`` that is
    not set are one-line errors, at start-up rather than at the first request."""
    import yaml

    from routeharness.common.schema import Field, check_mapping

    path = Path(path)
    environ = os.environ if environ is None else environ
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        detail = one_line(exc)
        raise RouteHarnessError(f"{path}: cannot read the upstreams ({detail})") from None
    top = check_mapping(data, {"models": Field(dict, required=True)}, str(path))
    fields = {"base_url": Field(str, required=True, check=lambda v: None if v.startswith(
                  ("http://", "https://")) else "must be an http:// or https:// URL"),
              "api_key_env": Field(str), "model": Field(str),
              "timeout": Field(float, check=lambda v: None if math.isfinite(v) and v > 0
                               else "must be a number of seconds > 0")}
    out = {}
    for name, entry in top["models"].items():
        where = f"{path}: models.{name}"
        if name not in pool:
            raise RouteHarnessError(f"{where}: not a model of the router's pool "
                                    f"({', '.join(pool)})")
        entry = check_mapping(entry, fields, where)
        variable = entry.get("api_key_env")
        if variable is not None and variable not in environ:
            raise RouteHarnessError(f"{where}: the environment variable {variable!r} "
                                    "(api_key_env) is not set")
        out[name] = Upstream(name, entry["base_url"], variable, entry.get("model"),
                             float(entry.get("timeout", DEFAULT_TIMEOUT_S)))
    if not out:
        raise RouteHarnessError(f"{path}: \"models\" names no upstream")
    return out


def _number(value: Any, key: str) -> float | None:
    """A trade-off or budget from a body (or, as text, a header): finite and >= 0."""
    if value is None:
        return None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 \
            or not math.isfinite(value):
        raise Problem(400, f"request: \"{key}\" must be a finite number >= 0")
    return float(value)


def last_user_text(body: Mapping[str, Any]) -> str:
    """What a chat request is routed on: its last user message (the question asked now;
    earlier turns and the system prompt are context the router was not fitted on); a
    list of content parts gives its text parts joined by newlines (images are ignored)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Problem(400, "request: \"messages\" must be a non-empty list")
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "\n".join(p["text"] for p in content if isinstance(p, Mapping) and
                                 p.get("type") == "text" and isinstance(p.get("text"), str))
            return content if isinstance(content, str) else ""
    raise Problem(400, "request: no message with role \"user\" to route on")


class Service:
    """The loaded router, its encoder and upstreams; what the endpoints share."""

    def __init__(self, folder: str | Path, upstreams: str | Path | None,
                 default_lam: float) -> None:
        from routeharness.deploy import saved

        if not (default_lam >= 0):
            raise RouteHarnessError(f"--lam {default_lam}: a trade-off is a number >= 0")
        self.router = saved.load(folder)
        self.pool = [m.name for m in self.router.models]
        self.manifest = self.router.manifest
        self.label = self.manifest.router.label
        self.precomputed = self.manifest.encoder.name == "precomputed"
        self.encoder = None if self.precomputed else self.router.encoder()
        if self.encoder is not None:
            self.encoder.encode(["warm-up"])  # loaded now, not by the first request
        self.upstreams = {} if upstreams is None else load_upstreams(upstreams, self.pool)
        missing = sorted(set(self.pool) - set(self.upstreams))
        if self.upstreams and missing and self.router.router.kind != "utility":
            raise RouteHarnessError(f"{upstreams}: router {self.label!r} picks a model "
                                    "without predictions, so every model needs an "
                                    f"upstream; missing: {missing}")
        self.default_lam = float(default_lam)
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.client: Any = None

    def route(self, items: list[Any], lam: float, served_only: bool = False) -> Any:
        """``Routes`` of checked prompts (blocking: call it in a worker thread). With
        ``served_only`` a utility router chooses among the models with an upstream."""
        from routeharness.routers.base import select

        vectors = items[0].embedding is not None or self.precomputed
        if vectors and any(item.embedding is None for item in items):
            raise Problem(400, "request: this router routes the dataset's own vectors: "
                               "give an \"embedding\" with every prompt")
        groups = [item.group for item in items] if self.router.tags.needs_groups else None
        if groups is not None and None in groups:
            raise Problem(400, f"request: router {self.label!r} needs a \"group\" with "
                               "every prompt")
        texts = [item.prompt for item in items]
        with self.lock:
            X = (np.asarray([item.embedding for item in items], np.float32) if vectors
                 else self.encoder.encode(texts))
            routes = self.router.route_vectors(X, lam, groups, texts)
        if served_only and routes.scores is not None and routes.costs_usd is not None:
            served = np.array([name in self.upstreams for name in self.pool])
            choices = select(np.where(served, routes.scores, np.nan),
                             routes.costs_usd / self.router.cost_scale, lam)
            routes = dataclasses.replace(routes, choices=np.asarray(choices, np.int64))
        return routes

    def health(self) -> dict[str, Any]:
        task, encoder = self.manifest.task, self.manifest.encoder
        return {"status": "ok", "router": self.label,
                "task": {"name": task.name, "fingerprint": task.fingerprint},
                "encoder": {k: getattr(encoder, k) for k in ("spec", "identity", "revision")},
                "default_lam": self.default_lam, "models": len(self.pool),
                "upstreams": len(self.upstreams),
                "uptime_s": round(time.monotonic() - self.started, 3)}


async def _body(request: Any) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Problem(400, "request: the body is not valid JSON") from None
    if isinstance(body, dict):
        return body
    raise Problem(400, f"request: the body must be a JSON object, got {type(body).__name__}")


def _route_request(service: Service, body: dict[str, Any]) -> tuple[list[Any], float,
                                                                       dict[str, Any]]:
    from routeharness.deploy.routing_input import check_items, prompt_item

    unknown = sorted(set(body) - set(ROUTE_KEYS))
    if unknown:
        raise Problem(400, f"request: unknown key(s) {unknown} (a /route body has "
                           f"{', '.join(ROUTE_KEYS)})")
    prompts = body.get("prompts")
    if not isinstance(prompts, list):
        raise Problem(400, "request: \"prompts\" must be a list of prompts (text or "
                           "{\"prompt\": ...} objects)")
    items = [prompt_item(p, f"request: prompts[{i}]", i + 1) for i, p in enumerate(prompts)]
    check_items(items, "request")
    lam, budget = _number(body.get("lam"), "lam"), _number(body.get("budget"), "budget")
    if lam is not None and budget is not None:
        raise Problem(400, "request: give \"lam\" or \"budget\", not both")
    extra: dict[str, Any] = {}
    if budget is not None:
        point, met = service.router.lam_for_budget(budget)
        lam = point.lam
        extra["budget"] = {"usd_per_1k": budget, "met_on_validation": met,
                           "validation_usd_per_1k": point.cost_usd * 1000,
                           "validation_quality": point.quality}
    return items, service.default_lam if lam is None else lam, extra


def create_app(folder: str | Path, upstreams: str | Path | None = None, *,
               default_lam: float = 0.0) -> Any:
    """The FastAPI application serving the saved router in ``folder`` (see the module
    doc); ``upstreams``: the YAML naming each model's endpoint, or None (no chat
    completions). Bad folders, encoders or YAML are one-line errors here, at start-up."""
    try:
        import httpx  # noqa: F401
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse
        from starlette.concurrency import run_in_threadpool
        from starlette.exceptions import HTTPException
    except ImportError as exc:
        raise RouteHarnessError(f"serve needs the web stack ({exc.name} is missing): "
                                f"{SERVE_INSTALL}") from None
    service = Service(folder, upstreams, default_lam)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        if service.client is not None:
            await service.client.aclose()

    app = FastAPI(title=f"routeharness: {service.label}", lifespan=lifespan)
    app.state.service = service

    def error(status: int, message: str, kind: str) -> Any:
        return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)

    @app.exception_handler(RouteHarnessError)  # Problem, or bad input found deeper down
    async def on_problem(request: Any, exc: RouteHarnessError) -> Any:
        return error(getattr(exc, "status", 400), str(exc),
                     getattr(exc, "kind", "invalid_request_error"))

    @app.exception_handler(HTTPException)
    async def on_http(request: Any, exc: Any) -> Any:
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}",
                     "not_found" if exc.status_code == 404 else "invalid_request_error")

    @app.exception_handler(Exception)
    async def on_bug(request: Any, exc: Exception) -> Any:
        return error(500, f"internal error: {type(exc).__name__}: {exc}", "internal_error")

    @app.post("/route")
    async def route(request: Request) -> Any:
        items, lam, extra = _route_request(service, await _body(request))
        routes = await run_in_threadpool(service.route, items, lam)
        rows = [{"id": item.id, **row} for item, row in zip(items, routes.rows())]
        return {"router": service.label, "lam": lam, **extra, "routes": rows}

    @app.get("/health")
    async def health() -> Any:
        return service.health()

    @app.get("/models")
    async def models() -> Any:
        return {"models": [{**m.to_dict(), "upstream": m.name in service.upstreams}
                           for m in service.router.models]}

    @app.get("/v1/models")
    async def openai_models() -> Any:
        names = ["auto", *service.upstreams]
        return {"object": "list", "data": [{"id": n, "object": "model",
                                            "owned_by": "routeharness"} for n in names]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        from routeharness.deploy.routing_input import prompt_item

        body = await _body(request)
        model, lam = body.get("model"), service.default_lam
        if LAM_HEADER in request.headers:
            lam = _number(request.headers[LAM_HEADER], LAM_HEADER)
        if model in AUTO_MODELS:
            item = prompt_item({"prompt": last_user_text(body)},
                               "request: the last user message", 1)
            if not service.upstreams:
                raise Problem(404, "no model has an upstream: start serve with --upstreams",
                              "not_found")
            if service.precomputed:
                raise Problem(400, "this router routes the dataset's own vectors, not "
                                   "text: name a model instead of \"auto\"")
            routes = await run_in_threadpool(service.route, [item], lam, True)
            chosen, routed = routes.models[int(routes.choices[0])], True
        elif not isinstance(model, str) or model not in service.pool:
            raise Problem(404, f"model {model!r} is not in the router's pool "
                               f"({', '.join(service.pool)}) and is not \"auto\"", "not_found")
        else:
            chosen, routed = model, False
        upstream = service.upstreams.get(chosen)
        if upstream is None:
            raise Problem(404, f"model {chosen!r} has no upstream in the upstreams file",
                          "not_found")
        headers = {"x-routeharness-model": chosen, "x-routeharness-routed": str(routed).lower(),
                   LAM_HEADER: f"{lam:g}"}
        return await _forward(service, upstream, body, headers)

    return app


async def _forward(service: Service, upstream: Upstream, body: dict[str, Any],
                   headers: dict[str, str]) -> Any:
    """The request sent on to ``upstream`` under its own model name; its answer relayed
    (streamed chunk by chunk when ``stream`` is true)."""
    import httpx
    from fastapi.responses import Response, StreamingResponse

    if service.client is None:
        service.client = httpx.AsyncClient()
    name, seconds = upstream.model, upstream.timeout_s
    payload = {**body, "model": upstream.upstream_model or upstream.model}
    url = upstream.base_url.rstrip("/") + "/chat/completions"
    request = service.client.build_request("POST", url, json=payload, timeout=seconds,
                                           headers=upstream.headers())

    def failed(exc: Exception) -> Problem:
        if isinstance(exc, httpx.TimeoutException):
            return Problem(504, f"upstream of {name!r} did not answer within {seconds:g} s",
                           "upstream_timeout")
        return Problem(502, f"upstream of {name!r} failed: {exc!r}", "upstream_error")

    try:
        response = await service.client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise failed(exc) from None
    kind = response.headers.get("content-type", "application/json")
    if response.status_code >= 400 or not body.get("stream"):
        try:
            content = await response.aread()
        except httpx.HTTPError as exc:
            raise failed(exc) from None
        finally:
            await response.aclose()
        status = response.status_code
        if status >= 400 and status not in RELAYED_STATUSES:
            text = " ".join(content[:300].decode("utf-8", "replace").split())
            raise Problem(502, f"upstream of {name!r} answered HTTP {status}: {text}",
                          "upstream_error")
        return Response(content, status_code=response.status_code, media_type=kind,
                        headers=headers)

    async def relay() -> Any:
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:  # the status is sent: the error becomes an event
            problem = {"message": failed(exc).message, "type": failed(exc).kind}
            yield f"data: {json.dumps({'error': problem})}\n\n".encode()
        finally:
            await response.aclose()

    return StreamingResponse(relay(), media_type=kind, headers=headers)
