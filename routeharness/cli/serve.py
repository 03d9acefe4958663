"""``routeharness serve``: a saved router over HTTP (FastAPI under uvicorn; docs/serve.md)."""

from __future__ import annotations

import math

import click

from routeharness.cli._app import cli, say
from routeharness.common.errors import RouteHarnessError


@cli.command(name="serve")
@click.argument("folder", type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="Port to listen on.")
@click.option("--upstreams", type=click.Path(dir_okay=False), default=None,
              help="YAML naming each model's OpenAI-compatible endpoint (base_url, "
                   "api_key_env, model, timeout): enables /v1/chat/completions.")
@click.option("--lam", type=float, default=0.0, show_default=True,
              help="Default trade-off: utility = score - lam x cost (normalised).")
def serve_command(folder: str, host: str, port: int, upstreams: str | None,
                  lam: float) -> None:
    """Serve a saved router (routeharness fit): POST /route, GET /health, GET /models and
    an OpenAI-compatible POST /v1/chat/completions that routes and forwards each request.
    Needs the serve extra: pip install 'routeharness[serve]'."""
    from routeharness.deploy.serve import SERVE_INSTALL, create_app

    if math.isnan(lam) or lam < 0:
        raise click.BadParameter(f"{lam}: a trade-off is a number >= 0", param_hint="--lam")
    try:
        import uvicorn
    except ImportError:
        raise RouteHarnessError(f"serve needs the web stack (uvicorn is missing): "
                                f"{SERVE_INSTALL}") from None
    app = create_app(folder, upstreams, default_lam=lam)
    service = app.state.service
    say(f"serving {service.label} ({len(service.pool)} models, {len(service.upstreams)} "
        f"with an upstream) on http://{host}:{port}")
    uvicorn.run(app, host=host, port=port, log_level="warning")
