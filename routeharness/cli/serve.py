"""``routeharness serve``: a saved router over HTTP (FastAPI under uvicorn; docs/serve.md)."""

from __future__ import annotations

import ipaddress

import click

from routeharness.cli._app import LAM_HINT, ByteSize, FiniteNumber, cli, say
from routeharness.common.errors import RouteHarnessError

#: ``--max-body`` and ``--max-prompt-chars`` defaults (``deploy.guard``'s, not imported so
#: that ``--help`` stays instant; tests/test_serve_guard.py checks they agree)
DEFAULT_MAX_BODY = "16MB"
DEFAULT_MAX_PROMPT_CHARS = 100_000
#: ``--batch-wait-ms`` and ``--max-batch`` defaults (``deploy.batching``'s; a test checks)
DEFAULT_BATCH_WAIT_MS, DEFAULT_MAX_BATCH = 5.0, 1
#: ``--fallback``'s largest value (``deploy.fallback.MAX_TRIES_LIMIT``; the tests check)
MAX_FALLBACK_TRIES = 20


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@cli.command(name="serve")
@click.argument("folder", type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; set a token then).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="Port to listen on.")
@click.option("--upstreams", type=click.Path(dir_okay=False), default=None,
              help="YAML naming each model's OpenAI-compatible endpoint (base_url, "
                   "api_key_env, model, timeout): enables /v1/chat/completions.")
@click.option("--lam", type=FiniteNumber(0, LAM_HINT), default=0.0, show_default=True,
              help="Default trade-off, a finite number >= 0: utility = score - lam x cost "
                   "(normalised).")
@click.option("--token-env", metavar="VAR", default=None,
              help="Require 'Authorization: Bearer <token>' on every endpoint, the token "
                   "read from the environment variable VAR (never given on the command "
                   "line, where ps shows it).")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="As --token-env, the token read from FILE.")
@click.option("--max-body", type=ByteSize(), default=DEFAULT_MAX_BODY, show_default=True,
              help="The largest request body (larger: 413, refused before it is read): "
                   "16MB, 512KiB, 1000000 (bytes).")
@click.option("--max-prompt-chars", type=click.IntRange(min=1),
              default=DEFAULT_MAX_PROMPT_CHARS, show_default=True,
              help="The longest prompt routed, in characters (longer: 400).")
@click.option("--batch-wait-ms", type=click.FloatRange(0, 1000),
              default=DEFAULT_BATCH_WAIT_MS,
              show_default=True, metavar="MS",
              help="How long the first request of a batch may wait for others to share "
                   "its encoder call, only while another route request is in the server "
                   "(a request alone starts at once).")
@click.option("--max-batch", type=click.IntRange(min=1), default=DEFAULT_MAX_BATCH,
              show_default=True,
              help="The most prompts one encoder call takes; 1 (the default): no batching; "
                   "64: requests arriving together share a call (docs/serve.md).")
@click.option("--docs", is_flag=True,
              help="Serve the interactive API docs: /docs and /redoc (their pages load "
                   "scripts from a CDN) and /openapi.json. Off by default.")
@click.option("--fallback", "fallback", type=click.IntRange(1, MAX_FALLBACK_TRIES),
              default=None, metavar="N",
              help="The most upstreams a routed chat request tries when one fails (429, "
                   "5xx, timeout, refused connection), by predicted utility; 1: none "
                   "(default: the upstreams file's fallback.max_tries, else 1).")
@click.option("--budget-usd-per-hour", "budget_hour", default=None, metavar="USD",
              help="A hard budget of USD per hour of chat answers: routing moves to "
                   "cheaper trade-offs as it nears it, and refuses (429) when it is spent.")
@click.option("--budget-usd-per-1k", "budget_1k", default=None, metavar="USD",
              help="As --budget-usd-per-hour, per window of 1,000 chat requests.")
@click.option("--request-log", type=click.Path(dir_okay=False), default=None,
              help="Append one JSON line per chat request to this file (prompt hash, "
                   "models, fallbacks, latency, tokens, cost).")
@click.option("--log-prompts", is_flag=True,
              help="Keep each prompt's text in the request log (default: its SHA-256 "
                   "only).")
@click.option("--shadow", type=click.Path(file_okay=False), default=None, metavar="FOLDER",
              help="A second saved router that routes the same chat traffic without "
                   "answering; its choice goes to the request log.")
def serve_command(folder: str, host: str, port: int, upstreams: str | None, lam: float,
                  token_env: str | None, token_file: str | None, max_body: int,
                  max_prompt_chars: int, batch_wait_ms: float, max_batch: int,
                  docs: bool, fallback: int | None, budget_hour: str | None,
                  budget_1k: str | None, request_log: str | None, log_prompts: bool,
                  shadow: str | None) -> None:
    """Serve a saved router (routeharness fit): POST /route, GET /health, GET /models and
    an OpenAI-compatible POST /v1/chat/completions that routes and forwards each request.
    Needs the serve extra: pip install 'routeharness[serve]'."""
    import logging

    from routeharness.deploy.batching import BatchSettings
    from routeharness.deploy.budget import BudgetLimit, check_budget
    from routeharness.deploy.guard import ServeLimits, read_token
    from routeharness.deploy.proxy import ProxyOptions
    from routeharness.deploy.serve import SERVE_INSTALL, create_app

    token = read_token(token_env, token_file)  # before the router loads: fail fast
    if budget_hour is not None and budget_1k is not None:
        raise RouteHarnessError("give --budget-usd-per-hour or --budget-usd-per-1k, not both")
    budget = None
    if budget_hour is not None:
        budget = BudgetLimit(check_budget(budget_hour, "--budget-usd-per-hour"), "hour")
    elif budget_1k is not None:
        budget = BudgetLimit(check_budget(budget_1k, "--budget-usd-per-1k"), "1k")
    needs_upstreams = [name for name, value in (("--fallback", fallback), ("--budget", budget),
                                                ("--request-log", request_log),
                                                ("--shadow", shadow)) if value is not None]
    if needs_upstreams and upstreams is None:
        raise RouteHarnessError(f"{needs_upstreams[0]} acts on chat requests: give "
                                "--upstreams too")
    if log_prompts and request_log is None:
        raise RouteHarnessError("--log-prompts keeps prompts in the request log: give "
                                "--request-log FILE too")
    options = ProxyOptions(fallback, budget, request_log, log_prompts, shadow)
    try:
        import uvicorn
    except ImportError:
        raise RouteHarnessError(f"serve needs the web stack (uvicorn is missing): "
                                f"{SERVE_INSTALL}") from None
    # what clients are not told (upstream error bodies, bugs): one line each on stderr
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    served_log = logging.getLogger("routeharness.serve")
    served_log.addHandler(handler)
    served_log.setLevel(logging.INFO)
    served_log.propagate = False
    app = create_app(folder, upstreams, default_lam=lam, token=token, docs=docs,
                     limits=ServeLimits(max_body, max_prompt_chars), proxy=options,
                     batching=BatchSettings(batch_wait_ms / 1000, max_batch))
    service = app.state.service
    say(f"serving {service.label} ({len(service.pool)} models, {len(service.upstreams)} "
        f"with an upstream) on http://{host}:{port}"
        + ("; every request needs the bearer token" if token else ""))
    for line in service.proxy.describe():
        say(line)
    if token is None and not _loopback(host):
        say(f"warning: listening on {host} without --token-env or --token-file: anyone who "
            "can reach the port can route and spend the upstreams' keys")
    uvicorn.run(app, host=host, port=port, log_level="warning")
