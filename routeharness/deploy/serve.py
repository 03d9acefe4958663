"""A saved router over HTTP (``routeharness serve``; docs/serve.md).

``create_app`` builds a FastAPI application around a folder made by ``routeharness fit``:
``POST /route``, ``GET /health``, ``GET /models`` (and ``/v1/models``), and an
OpenAI-compatible ``POST /v1/chat/completions`` that routes each request on its last user
message and forwards it to the chosen model's endpoint named in an upstreams YAML file,
streams (server-sent events) relayed chunk by chunk; the decision is in the
``x-routeharness-model`` header. The router and encoder load once, at start-up; routing
runs off the event loop, so it keeps answering: with batching on (``batching``), the
requests queued together are awaited while one dedicated thread encodes all their
prompts in one encoder call, predicts once (a utility router) and selects per request at
its own trade-off (``Service.route_batch``); with it off, each
request routes in a worker thread behind one lock (tokenizers are not safe to share
between threads). Upstream calls are async (httpx). Every request and
answer is a contract (``routeharness.common.contract``): ``RouteRequest`` and its
``PromptItem`` s (``routing_input``, the prompts ``route`` reads), ``ChatRequest`` (what is
routed on is checked, every other key forwarded unchanged), ``RouteResponse``, ``Health``,
``ModelsResponse``, ``OpenAIModelList``, ``ErrorBody``; the upstreams YAML is
``UpstreamsFile``. Bodies are read by the one text reader (``common.textinput``: strict
JSON, a key given twice refused, nesting, surrogates, long integers). Every endpoint is
guarded (``guard.Guard``: an optional bearer token, 401; the body limit, 413) and prompts
have a length limit (``guard.ServeLimits``). Errors are ``{"error": {"message",
"type"}}``: 400 bad request (one line naming the key), 401, 404 unknown model or path,
413, 502 upstream failed, 504 upstream timed out; bad input never reaches 500. What an
upstream says in an error body is logged here, one line each (logger
``routeharness.serve``), never relayed: the client gets its status and a fixed reason.
The interactive docs (``/docs``, ``/redoc``, ``/openapi.json``) are off unless asked for.
Around forwarding a chat request, ``proxy`` adds fallback to the next model by predicted
utility when an upstream fails (``fallback``), a hard budget (``budget``), the request
log (``requestlog``) and a shadow router (``shadow``); the answer's headers say which
model answered and why (``x-routeharness-fallback``, ``x-routeharness-budget``).
FastAPI and httpx are imported only inside this module's functions: the default install
has no web stack (the ``serve`` extra adds it).
"""

import contextlib
import http
import json
import logging
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import numpy as np
from pydantic import AfterValidator, ConfigDict, field_validator

from routeharness.common.contract import (
    Contract,
    Field,
    Number,
    OpenContract,
    check,
    read_yaml,
)
from routeharness.common.errors import RouteHarnessError
from routeharness.common.textinput import parse_json
from routeharness.data.cards import CardModel
from routeharness.deploy.batching import Batcher, BatchSettings, Ticket
from routeharness.deploy.fallback import Failure, FallbackSection, all_failed_message
from routeharness.deploy.guard import (
    BadRequest,
    ErrorBody,
    ErrorDetail,
    Guard,
    Problem,
    ServeLimits,
)
from routeharness.deploy.routing_input import (
    COST_ONLY_HINT,
    MAX_PROMPT_CHARS,
    PromptItem,
    RoutedPrompt,
    RouteRequest,
)

#: how to get the web stack when it is missing
SERVE_INSTALL = "pip install 'routeharness[serve]'"
#: the keys a ``POST /route`` body may hold
#: seconds an upstream may take when its YAML entry names no timeout
DEFAULT_TIMEOUT_S = 60.0
#: ``model`` values of a chat request that mean "route it"
AUTO_MODELS = (None, "auto")
#: the request header that sets a chat request's trade-off (default: ``--lam``)
LAM_HEADER = "x-routeharness-lam"
#: upstream statuses passed on as they are (the caller's to see: a rate limit, a request
#: the model refused), with a fixed reason instead of the upstream's body; other
#: failures are a 502
RELAYED_STATUSES = frozenset({400, 404, 409, 413, 422, 429})
#: how much of an upstream's error body the server's log keeps (characters)
LOGGED_BODY_CHARS = 1000
#: where ``serve`` logs what it does not tell clients (upstream error bodies, bugs)
log = logging.getLogger("routeharness.serve")


# --- the upstreams file ----------------------------------------------------------------------
def _http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        host, parts = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def _seconds(value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise ValueError("must be a number of seconds > 0")
    return value


class UpstreamEntry(Contract):
    """One pool model's endpoint in the upstreams YAML."""

    base_url: Annotated[str, AfterValidator(_http_url)] = Field(
        description="the OpenAI-compatible base URL (.../v1); /chat/completions is added")
    api_key_env: str | None = Field(None, description="the NAME of the environment "
                                    "variable holding its API key (never the key)")
    model: str | None = Field(None, description="the upstream's own name for the model "
                              "(default: the pool's)")
    timeout: Annotated[float, AfterValidator(_seconds)] | None = Field(
        None, description=f"seconds it may take (default {DEFAULT_TIMEOUT_S:g})")


class UpstreamsFile(Contract):
    """The upstreams YAML of ``serve --upstreams``: pool model name -> its endpoint."""

    model_config = ConfigDict(title="routeharness serve: the upstreams file")

    models: dict[str, UpstreamEntry] = Field(description="model names of the saved "
                                             "router's pool -> their endpoints")
    fallback: FallbackSection | None = Field(None, description="where a routed request "
                                             "goes when its model's upstream fails")


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
    """The upstreams of an upstreams YAML (``read_upstreams``)."""
    return read_upstreams(path, pool, environ)[0]


def read_upstreams(path: str | Path, pool: Sequence[str],
                   environ: Mapping[str, str] | None = None
                   ) -> tuple[dict[str, Upstream], FallbackSection | None]:
    """The upstreams YAML (``UpstreamsFile``: ``models: {NAME: {base_url, api_key_env?,
    model?, timeout?}}``) read strictly: a key given twice, an unknown key, a URL that is
    not http(s) with a host, a model not in the pool and an ``api_key_env`` that is not set
    are one-line errors, at start-up rather than at the first request."""
    path = Path(path)
    environ = os.environ if environ is None else environ
    upstreams_file = read_yaml(path, UpstreamsFile, "upstreams file")
    entries = upstreams_file.models
    out = {}
    for name, entry in entries.items():
        where = f"{path}: models.{name}"
        if name not in pool:
            raise RouteHarnessError(f"{where}: not a model of the router's pool "
                                    f"({', '.join(pool)})")
        if entry.api_key_env is not None and entry.api_key_env not in environ:
            raise RouteHarnessError(f"{where}: the environment variable "
                                    f"{entry.api_key_env!r} (api_key_env) is not set")
        out[name] = Upstream(name, entry.base_url, entry.api_key_env, entry.model,
                             DEFAULT_TIMEOUT_S if entry.timeout is None else entry.timeout)
    if not out:
        raise RouteHarnessError(f"{path}: \"models\" names no upstream")
    return out, upstreams_file.fallback


# --- requests and responses ------------------------------------------------------------------
class ContentPart(OpenContract):
    """A part of a chat message's content (``{"type": "text", "text": ...}``, an image,
    ...); other keys kept."""

    type: str = Field(description="text, image_url, ...")
    text: str | None = Field(None, description="the text of a text part")


class ChatMessage(OpenContract):
    """A chat message: its role and content (text, or a list of parts); other keys
    (name, tool calls, ...) kept."""

    role: str = Field(description="system, user, assistant, tool, ...")
    content: str | list[ContentPart] | None = Field(None, description="text, or a list "
                                                    "of content parts")


class ChatRequest(OpenContract):
    """An OpenAI chat completion request as ``serve`` reads it: what it routes on is
    checked, every other key is forwarded unchanged."""

    model_config = ConfigDict(title="routeharness serve: POST /v1/chat/completions")

    model: str | None = Field(None, description='a pool model, or "auto" / absent: routed')
    messages: list[ChatMessage] = Field(description="the conversation (not empty)")
    stream: bool | None = Field(None, description="relay the answer as server-sent events")

    @field_validator("messages")
    @classmethod
    def _some(cls, value: list[ChatMessage]) -> list[ChatMessage]:
        if not value:
            raise ValueError("must be a non-empty list")
        return value


def last_user_text(request: ChatRequest) -> str:
    """What a chat request is routed on: its last user message (the question asked now;
    earlier turns and the system prompt are context the router was not fitted on); a
    list of content parts gives its text parts joined by newlines (images are ignored)."""
    for message in reversed(request.messages):
        if message.role == "user":
            if isinstance(message.content, list):
                return "\n".join(part.text for part in message.content
                                 if part.type == "text" and part.text is not None)
            return message.content or ""
    raise Problem(400, "request: no message with role \"user\" to route on")


class BudgetChoice(Contract):
    """The trade-off a budget chose on the validation split."""

    usd_per_1k: float = Field(description="the budget asked for")
    met_on_validation: bool = Field(description="whether a trade-off met it on validation "
                                    "(else the cheapest is used)")
    validation_usd_per_1k: float = Field(description="the chosen trade-off's mean cost "
                                         "per 1,000 validation prompts")
    validation_quality: float = Field(description="its validation quality (score x100)")


class RouteResponse(Contract):
    """The answer of ``POST /route``."""

    model_config = ConfigDict(title="routeharness serve: the answer of POST /route")

    router: str = Field(description="the saved router's label")
    lam: Number = Field(description="the trade-off used")
    budget: BudgetChoice | None = Field(None, description="with a budget: what it chose")
    routes: list[RoutedPrompt] = Field(description="one per prompt, in order")


class TaskFacts(Contract):
    name: str
    fingerprint: str


class EncoderFacts(Contract):
    spec: str
    identity: str
    revision: str


class Health(Contract):
    """The answer of ``GET /health``."""

    status: Literal["ok"] = "ok"
    router: str = Field(description="the saved router's label")
    task: TaskFacts = Field(description="the task it was fitted on")
    encoder: EncoderFacts = Field(description="the encoder it routes with")
    default_lam: Number = Field(description="the trade-off when a request names none")
    models: int = Field(description="models in the pool")
    upstreams: int = Field(description="models with an upstream")
    uptime_s: float = Field(description="seconds since start")


class ServedModel(CardModel):
    """A pool model as ``GET /models`` lists it: the task card's record and whether it
    has an upstream."""

    upstream: bool = Field(description="whether chat requests can be forwarded to it")


class ModelsResponse(Contract):
    """The answer of ``GET /models``."""

    models: list[ServedModel]


class OpenAIModel(Contract):
    id: str
    object: Literal["model"] = "model"
    owned_by: str = "routeharness"


class OpenAIModelList(Contract):
    """The answer of ``GET /v1/models``: what a chat request may name."""

    object: Literal["list"] = "list"
    data: list[OpenAIModel]


def _header_lam(text: str) -> float:
    """The trade-off of a chat request's ``x-routeharness-lam`` header: a finite number
    >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise Problem(400, f"request: \"{LAM_HEADER}\" must be a finite number >= 0; "
                           f"{COST_ONLY_HINT}")
    return value


@dataclass
class RouteWork:
    """One request's routing (``Service.work``): its prompts, trade-off, groups (when the
    router needs them), embeddings (when sent, else encoded) and the models it may choose
    (``served``, (m,) bool; None: all)."""

    texts: list[str]
    lam: float
    groups: list[str] | None = None
    vectors: np.ndarray | None = None
    served: np.ndarray | None = None

    def size(self) -> int:
        return len(self.texts)


class Service:
    """The loaded router, its encoder and upstreams; what the endpoints share."""

    def __init__(self, folder: str | Path, upstreams: str | Path | None,
                 default_lam: float, limits: ServeLimits | None = None,
                 batching: BatchSettings | None = None) -> None:
        from routeharness.deploy import saved

        if not (math.isfinite(default_lam) and default_lam >= 0):
            raise RouteHarnessError(f"--lam {default_lam}: a trade-off is a finite number "
                                    f">= 0; {COST_ONLY_HINT}")
        self.limits = ServeLimits() if limits is None else limits
        self.router = saved.load(folder)
        self.pool = [m.name for m in self.router.models]
        self.manifest = self.router.manifest
        self.label = self.manifest.router.label
        self.precomputed = self.manifest.encoder.name == "precomputed"
        # its idle threads sleep: the event loop and the batching thread share the cores
        self.encoder = None if self.precomputed else self.router.encoder(spin=False)
        if self.encoder is not None:
            self.encoder.encode(["warm-up"])  # loaded now, not by the first request
            note = self.router.stored_encoder_note()
            if note is not None:
                log.warning("%s", note)
        # requests close together share one call (deploy/batching.py)
        self.batching = BatchSettings() if batching is None else batching
        self.batcher: Batcher[RouteWork, Any] | None = (
            Batcher(self.route_batch, self.batching, RouteWork.size)
            if self.batching.enabled else None)
        self.upstreams, self.fallback = ({}, None) if upstreams is None else \
            read_upstreams(upstreams, self.pool)
        missing = sorted(set(self.pool) - set(self.upstreams))
        if self.upstreams and missing and self.router.router.kind != "utility":
            raise RouteHarnessError(f"{upstreams}: router {self.label!r} picks a model "
                                    "without predictions, so every model needs an "
                                    f"upstream; missing: {missing}")
        self.default_lam = float(default_lam)
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.client: Any = None
        self.proxy: Any = None  # proxy.Proxy: fallback, budget, request log, shadow

    def work(self, items: list[PromptItem], lam: float, served_only: bool = False
             ) -> RouteWork:
        """What routing checked prompts needs (``route_batch``); 400 when a prompt lacks
        the embedding or group this router needs. With ``served_only`` a utility router
        chooses among the models with an upstream."""
        vectors = items[0].embedding is not None or self.precomputed
        if vectors and any(item.embedding is None for item in items):
            raise Problem(400, "request: this router routes the dataset's own vectors: "
                               "give an \"embedding\" with every prompt")
        groups = [item.group for item in items] if self.router.tags.needs_groups else None
        if groups is not None and None in groups:
            raise Problem(400, f"request: router {self.label!r} needs a \"group\" with "
                               "every prompt")
        served = None
        if served_only:
            served = np.array([name in self.upstreams for name in self.pool])
        return RouteWork(texts=[item.prompt for item in items], lam=lam, groups=groups,
                         vectors=np.asarray([item.embedding for item in items], np.float32)
                         if vectors else None, served=served)

    def route(self, items: list[PromptItem], lam: float, served_only: bool = False) -> Any:
        """``Routes`` of checked prompts (blocking: call it in a worker thread); see
        ``work``."""
        (routes,) = self.route_batch([self.work(items, lam, served_only)])
        if isinstance(routes, BaseException):
            raise routes
        return routes

    async def route_async(self, items: list[PromptItem], lam: float,
                          served_only: bool = False, ticket: Ticket | None = None) -> Any:
        """``route`` from the event loop: in the next batch (``batcher``, ``ticket``: the
        request's arrival), or in a worker thread when batching is off."""
        if self.batcher is None:
            from starlette.concurrency import run_in_threadpool

            return await run_in_threadpool(self.route, items, lam, served_only)
        return await self.batcher.submit(self.work(items, lam, served_only), ticket)

    def arrival(self) -> contextlib.AbstractContextManager[Ticket | None]:
        """A route request's time in the server (``Batcher.arrival``; nothing when
        batching is off)."""
        if self.batcher is None:
            return contextlib.nullcontext()
        return self.batcher.arrival()

    def route_batch(self, works: list[RouteWork]) -> list[Any]:
        """The ``Routes`` of each work (blocking), computed together: every prompt without
        an embedding in one encoder call; a utility router's predictions once for all
        rows, then each work's own selection at its own trade-off (``routes_of``); a
        selection router routes each work's rows apart (a failure is that work's own).
        An encoder or prediction failure is raised (it reaches every work)."""
        from routeharness.routers.base import UTILITY

        with self.lock:
            texts = [text for work in works if work.vectors is None for text in work.texts]
            encoded = None
            if texts:
                encoded = np.asarray(self.encoder.encode(texts), np.float32)
                if encoded.shape[0] != len(texts):
                    raise RouteHarnessError(f"the encoder returned {encoded.shape[0]} "
                                            f"vectors for {len(texts)} prompts")
            blocks, start = [], 0
            for work in works:
                if work.vectors is not None:
                    blocks.append(work.vectors)
                else:
                    assert encoded is not None
                    blocks.append(encoded[start:start + len(work.texts)])
                    start += len(work.texts)
            if self.router.router.kind != UTILITY:
                out: list[Any] = []
                for work, X in zip(works, blocks):
                    try:
                        out.append(self.router.route_vectors(X, work.lam, work.groups,
                                                             work.texts))
                    except Exception as exc:  # this work's own failure
                        out.append(exc)
                return out
            groups = None
            if self.router.tags.needs_groups:
                groups = [g for work in works for g in (work.groups or [])]
            scores, costs = self.router.predict_vectors(
                np.concatenate(blocks) if len(blocks) > 1 else blocks[0], groups,
                [text for work in works for text in work.texts])
        out, start = [], 0
        for work in works:
            end = start + len(work.texts)
            out.append(self.router.routes_of(scores[start:end], costs[start:end], work.lam,
                                             work.served))
            start = end
        return out

    def health(self) -> Health:
        task, encoder = self.manifest.task, self.manifest.encoder
        return Health(router=self.label,
                      task=TaskFacts(name=task.name, fingerprint=task.fingerprint),
                      encoder=EncoderFacts(spec=encoder.spec, identity=encoder.identity,
                                           revision=encoder.revision),
                      default_lam=self.default_lam, models=len(self.pool),
                      upstreams=len(self.upstreams),
                      uptime_s=round(time.monotonic() - self.started, 3))


async def _body(request: Any) -> dict[str, Any]:
    """The request's JSON object (strict: a key given twice is refused); 400 otherwise."""
    body = parse_json(await request.body(), "request", BadRequest)
    if isinstance(body, dict):
        return body
    raise BadRequest("request: the body must be a JSON object, got "
                     f"{'a list' if isinstance(body, list) else type(body).__name__}")


def _route_request(service: Service, body: dict[str, Any]
                   ) -> tuple[list[PromptItem], float, BudgetChoice | None]:
    """A ``/route`` body as (prompts, trade-off, what a budget chose)."""
    request = check(RouteRequest, body, "request", BadRequest,
                    context={MAX_PROMPT_CHARS: service.limits.max_prompt_chars})
    if request.budget is None:
        lam = service.default_lam if request.lam is None else request.lam
        return request.items(), lam, None
    point, met = service.router.lam_for_budget(request.budget)
    return request.items(), point.lam, BudgetChoice(
        usd_per_1k=request.budget, met_on_validation=met,
        validation_usd_per_1k=point.cost_usd * 1000, validation_quality=point.quality)


def create_app(folder: str | Path, upstreams: str | Path | None = None, *,
               default_lam: float = 0.0, limits: ServeLimits | None = None,
               token: str | None = None, docs: bool = False,
               proxy: Any = None, batching: BatchSettings | None = None) -> Any:
    """The FastAPI application serving the saved router in ``folder`` (see the module
    doc); ``upstreams``: the YAML naming each model's endpoint, or None (no chat
    completions); ``limits``: the body and prompt limits (default ``ServeLimits()``);
    ``token``: the bearer token every request must carry (None: none); ``docs``: serve
    ``/docs``, ``/redoc`` and ``/openapi.json``; ``proxy``: the chat path's settings
    (``proxy.ProxyOptions``: fallback, budget, request log, shadow router); ``batching``:
    how requests share encoder calls (default ``BatchSettings()``; ``max_batch=1``:
    none). Bad folders,
    encoders or YAML are one-line errors here, at start-up."""
    try:
        import httpx  # noqa: F401
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse, Response
        from starlette.exceptions import HTTPException
    except ImportError as exc:
        raise RouteHarnessError(f"serve needs the web stack ({exc.name} is missing): "
                                f"{SERVE_INSTALL}") from None
    limits = ServeLimits() if limits is None else limits
    service = Service(folder, upstreams, default_lam, limits, batching)
    from routeharness.deploy.proxy import Proxy, ProxyOptions

    service.proxy = Proxy(proxy or ProxyOptions(), service, upstreams, service.fallback)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        if service.batcher is not None:
            service.batcher.close()  # waits for the call in progress
        if service.client is not None:
            await service.client.aclose()
        service.proxy.close()

    app = FastAPI(title=f"routeharness: {service.label}", lifespan=lifespan,
                  docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
                  openapi_url="/openapi.json" if docs else None)
    app.state.service = service
    app.add_middleware(Guard, token=token, max_body_bytes=limits.max_body_bytes)

    def error(status: int, message: str, kind: str) -> Any:
        body = ErrorBody(error=ErrorDetail(message=message, type=kind))
        return JSONResponse(body.model_dump(mode="json"), status_code=status)

    def answer(model: Contract) -> Any:
        """A response model as JSON: keys that are None left out (a selection router's
        routes have no predictions), non-finite numbers as "inf"/"nan" (``Number``)."""
        return Response(model.model_dump_json(exclude_none=True),
                        media_type="application/json")

    errors = {status: {"model": ErrorBody} for status in (400, 401, 404, 413, 429, 502,
                                                          504)}

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
        # the client learns nothing of the server's insides; the log has the traceback
        log.error("internal error on %s %s", request.method, _printable(request.url.path),
                  exc_info=exc)
        return error(500, "internal error (the server's log has the details)",
                     "internal_error")

    @app.post("/route", responses={200: {"model": RouteResponse}, **errors})
    async def route(request: Request) -> Any:
        with service.arrival() as ticket:
            items, lam, budget = _route_request(service, await _body(request))
            routes = await service.route_async(items, lam, ticket=ticket)
        # the router's own numbers (Routes.rows), not validated again: up to 100,000 rows
        rows = [RoutedPrompt.model_construct(id=item.id, **row)
                for item, row in zip(items, routes.rows())]
        return answer(RouteResponse(router=service.label, lam=lam, budget=budget,
                                    routes=rows))

    @app.get("/health", responses={200: {"model": Health}})
    async def health() -> Any:
        return answer(service.health())

    @app.get("/models", responses={200: {"model": ModelsResponse}})
    async def models() -> Any:
        return answer(ModelsResponse(models=[
            ServedModel.model_validate({**m.to_dict(), "upstream": m.name in service.upstreams})
            for m in service.router.models]))

    @app.get("/v1/models", responses={200: {"model": OpenAIModelList}})
    async def openai_models() -> Any:
        return answer(OpenAIModelList(data=[OpenAIModel(id=name) for name in
                                            ["auto", *service.upstreams]]))

    @app.post("/v1/chat/completions", responses=errors)
    async def chat(request: Request) -> Any:
        with service.arrival() as ticket:  # left once routed (or refused)
            return await _chat(service, request, ticket)

    return app


async def _chat(service: Service, request: Any, ticket: Ticket | None) -> Any:
    """``POST /v1/chat/completions`` (``create_app``)."""
    from routeharness.deploy.routing_input import prompt_item

    body = await _body(request)
    chat_request = check(ChatRequest, body, "request", BadRequest)
    model, lam = chat_request.model, service.default_lam
    if LAM_HEADER in request.headers:
        lam = _header_lam(request.headers[LAM_HEADER])
    try:  # what is routed on, and what the request log hashes
        text = last_user_text(chat_request)
    except Problem:
        if model in AUTO_MODELS:
            raise
        text = ""  # a request naming a model needs no user message
    item = None
    if model in AUTO_MODELS:
        item = prompt_item(text, "request: the last user message", 1,
                           service.limits.max_prompt_chars)
        if not service.upstreams:
            raise Problem(404, "no model has an upstream: start serve with --upstreams",
                          "not_found")
        if service.precomputed:
            raise Problem(400, "this router routes the dataset's own vectors, not "
                               "text: name a model instead of \"auto\"")
    elif model not in service.pool:
        raise Problem(404, f"model {model!r} is not in the router's pool "
                           f"({', '.join(service.pool)}) and is not \"auto\"", "not_found")
    elif model not in service.upstreams:
        raise Problem(404, f"model {model!r} has no upstream in the upstreams file",
                      "not_found")
    return await _exchange(service, body, text, lam, None if model in AUTO_MODELS
                           else model, item, ticket)


async def _exchange(service: Service, body: dict[str, Any], text: str, lam: float,
                    named: str | None, item: PromptItem | None,
                    ticket: Ticket | None = None) -> Any:
    """A chat request routed (``named`` None: on ``item`` at ``lam``) or sent to the model
    it names, with fallback, the budget, the shadow router and the request log
    (``proxy``); its answer, or its failure, with the decision in headers."""
    import asyncio

    from fastapi.responses import Response
    from starlette.concurrency import run_in_threadpool

    from routeharness.deploy.budget import BudgetExceeded
    from routeharness.deploy.fallback import order
    from routeharness.deploy.proxy import Exchange

    proxy = service.proxy
    exchange = Exchange(text=text, lam_asked=lam, routed=named is None, lam=lam)
    shadow_task = None
    try:
        if named is None:
            if proxy.budget is not None:
                decision = proxy.budget.before(lam)
                exchange.lam = decision.lam
                if decision.statement:
                    exchange.budget.append(decision.statement)
            if proxy.shadow is not None:
                shadow_task = asyncio.ensure_future(run_in_threadpool(
                    proxy.shadow.choose, text, exchange.lam))
            routes = await service.route_async([item], exchange.lam, True, ticket)
            chosen = routes.models[int(routes.choices[0])]
            exchange.routed_model = chosen
            scores = costs = None
            if routes.scores is not None and routes.costs_usd is not None:
                scores, costs = routes.scores[0], routes.costs_usd[0]
                exchange.predicted = {m: (float(scores[k]), float(costs[k]))
                                      for k, m in enumerate(routes.models)}
                costs = costs / service.router.cost_scale
            tries = order(chosen, service.pool, service.upstreams, proxy.policy, scores,
                          costs, exchange.lam)
            if proxy.budget is not None:
                tries, statement = proxy.budget.fit(
                    tries, {m: c for m, (_, c) in exchange.predicted.items()})
                if statement:
                    exchange.budget.append(statement)
        else:
            if proxy.budget is not None:
                proxy.budget.before(lam, routed=False)
            tries = [named]
        if ticket is not None:
            ticket.leave()  # routed: no batch waits for it while it is forwarded
    except BudgetExceeded as refused:
        if ticket is not None:
            ticket.leave()
        exchange.budget.append(refused.message)
        exchange.status = 429
        extra = {} if refused.retry_after is None else {"retry-after": str(refused.retry_after)}
        response = Response(ErrorBody(error=ErrorDetail(message=refused.message,
                                                        type=refused.kind)).model_dump_json(),
                            status_code=429, media_type="application/json",
                            headers={**exchange.headers(None), **extra, LAM_HEADER:
                                     f"{exchange.lam:g}"})
        await _finish(service, exchange, shadow_task)
        return response
    fallback = len(tries) > 1
    response = None
    for name in tries:
        headers = {**exchange.headers(name),
                   "x-routeharness-routed": str(named is None).lower(),
                   LAM_HEADER: f"{exchange.lam:g}"}
        attempt = await _forward(service, service.upstreams[name], body, headers, fallback)
        if isinstance(attempt, Failure):
            exchange.failures.append(attempt)
            continue
        response, content, status = attempt
        exchange.model, exchange.status = name, status
        exchange.answered = status < 400
        if exchange.answered:
            predicted = exchange.predicted.get(name, (None, None))[1]
            exchange.cost = proxy.cost_of(content, name, predicted)
        break
    if response is None:  # every attempt failed: never an answer
        exchange.status = 502
        response = Response(ErrorBody(error=ErrorDetail(
            message=all_failed_message(exchange.failures), type="upstream_error"))
            .model_dump_json(), status_code=502, media_type="application/json",
            headers={**exchange.headers(None), "x-routeharness-routed":
                     str(named is None).lower(), LAM_HEADER: f"{exchange.lam:g}"})
    await _finish(service, exchange, shadow_task)
    return response


async def _finish(service: Service, exchange: Any, shadow_task: Any) -> None:
    """The budget charged with what was spent, the shadow's choice awaited, the log line
    written."""
    proxy = service.proxy
    usd = exchange.cost[2]
    if proxy.budget is not None and usd is not None:
        proxy.budget.spend(usd)
    if shadow_task is not None:
        exchange.shadow = await shadow_task
    exchange.latency_ms = round((time.monotonic() - exchange.started) * 1000, 1)
    if proxy.log is not None:
        proxy.log.write(exchange.line(proxy))


async def _forward(service: Service, upstream: Upstream, body: dict[str, Any],
                   headers: dict[str, str], fallback: bool = False) -> Any:
    """The request sent on to ``upstream`` under its own model name: (its answer relayed,
    streamed chunk by chunk when ``stream`` is true; the body read, None for a stream;
    the status), or, with ``fallback``, a ``Failure`` when another model may mend it
    (429, 5xx, a timeout, a connection that failed)."""
    import httpx
    from fastapi.responses import Response, StreamingResponse

    if service.client is None:
        service.client = httpx.AsyncClient()
    name, seconds = upstream.model, upstream.timeout_s
    payload = {**body, "model": upstream.upstream_model or upstream.model}
    url = upstream.base_url.rstrip("/") + "/chat/completions"
    request = service.client.build_request("POST", url, json=payload, timeout=seconds,
                                           headers=upstream.headers())
    started = time.monotonic()

    def failed(exc: Exception, what: str = "could not be reached") -> Problem:
        if isinstance(exc, httpx.TimeoutException):
            return Problem(504, f"upstream of {name!r} did not answer within {seconds:g} s",
                           "upstream_timeout")
        log.warning("upstream of %r at %s failed: %s", name, url, _printable(repr(exc)))
        return Problem(502, f"upstream of {name!r} {what} (the server's log has the "
                            "details)", "upstream_error")

    def failure(exc: Exception) -> Any:
        problem = failed(exc)
        if fallback:
            kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "connect"
            return Failure(name, kind, None, time.monotonic() - started, seconds)
        return (Response(ErrorBody(error=ErrorDetail(message=problem.message,
                                                     type=problem.kind)).model_dump_json(),
                         status_code=problem.status, media_type="application/json",
                         headers=headers), None, problem.status)

    try:
        response = await service.client.send(request, stream=True)
    except httpx.HTTPError as exc:
        return failure(exc)
    kind = response.headers.get("content-type", "application/json")
    if response.status_code >= 400 or not body.get("stream"):
        try:
            content = await response.aread()
        except httpx.HTTPError as exc:
            return failure(exc)
        finally:
            await response.aclose()
        status = response.status_code
        if status >= 400:
            # the body may hold what the client must not see (keys, organisations,
            # internal host names): logged here, one line; the client gets a fixed reason
            text = content[:LOGGED_BODY_CHARS * 4].decode("utf-8", "replace")
            log.warning("upstream of %r at %s answered HTTP %d: %s", name, url, status,
                        _printable(text)[:LOGGED_BODY_CHARS])
            attempt = Failure(name, "status", status, time.monotonic() - started, seconds)
            if fallback and attempt.retryable:
                return attempt
            reason = _reason(status)
            message = (f"upstream of {name!r} answered HTTP {status}{reason} (its body is in "
                       "the server's log)")
            relayed = status in RELAYED_STATUSES
            retry = response.headers.get("retry-after", "")
            extra = {"retry-after": retry} if relayed and retry.isdigit() and \
                len(retry) <= 8 else {}
            sent = status if relayed else 502
            return (Response(ErrorBody(error=ErrorDetail(message=message,
                                                         type="upstream_error"))
                             .model_dump_json(), status_code=sent,
                             media_type="application/json", headers={**headers, **extra}),
                    None, sent)
        return (Response(content, status_code=response.status_code, media_type=kind,
                         headers=headers), content, response.status_code)

    async def relay() -> Any:
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:  # the status is sent: the error becomes an event
            problem = failed(exc, "broke off its answer")
            event = {"error": {"message": problem.message, "type": problem.kind}}
            yield f"data: {json.dumps(event)}\n\n".encode()
        finally:
            await response.aclose()

    return (StreamingResponse(relay(), media_type=kind, headers=headers), None,
            response.status_code)


def _reason(status: int) -> str:
    try:
        return f" ({http.HTTPStatus(status).phrase})"
    except ValueError:
        return ""


def _printable(text: str) -> str:
    """``text`` as one printable line for the log: runs of whitespace one space, other
    control characters escaped (a body cannot forge a log line)."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256
                   else f"\\u{ord(ch):04x}" for ch in " ".join(text.split()))
