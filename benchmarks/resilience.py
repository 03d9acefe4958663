"""Resilience of ``serve`` when its upstreams fail: fallback on and off, and the budget.

Usage: ``python benchmarks/resilience.py [--task routerbench] [--router knn]
[--requests 120] [--rates 0,0.05,0.2] [--timeout 0.5] [--out benchmarks/resilience.md]``

Set-up (all on this machine, nothing leaves it):

- the router: ``--router`` fitted on the task's train split as ``routeharness fit`` does
  (untuned: the router's defaults; the task card's encoder), served in-process by
  ``serve``'s application (``create_app``, driven by Starlette's ``TestClient``);
- the upstreams: ``routeharness.testing.upstreams.FakePool``, one local HTTP server per
  pool model, each answering with ``usage.cost`` = the task's recorded cost of that model
  on that prompt, and failing at the stated rate, split evenly between 429, 503 and a
  hang longer than the upstream's ``--timeout``;
- the workload: ``--requests`` test prompts (a seeded sample, the same for every row),
  sent one after another as chat completions with ``model: auto`` at trade-off 0.

Reported per failure rate, fallback off (``max_tries`` 1) and on (``max_tries`` 3):
the share of requests answered (HTTP 200), the answered quality (the task's recorded
score of the model that answered, x100, over the answered requests), the quality over
all requests (a failure scores 0), the share of answered requests answered by a model
weaker than the routed one (a lower mean validation score), and p50/p95 of the client's
latency. A second table repeats the runs under a budget (``--budget-usd-per-1k`` of
60% of what the fallback-off run at the first rate spent, so its one window holds the
whole run):
refused and downgraded requests, what was spent, and whether it held (spent <= budget).
The machine's load (``uptime``) is written before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _run(client: Any, texts: list[str]) -> list[tuple[int, str | None, str | None, float]]:
    """(status, answering model, routed model, seconds) per request."""
    out = []
    for text in texts:
        started = time.perf_counter()
        answer = client.post("/v1/chat/completions", json={
            "model": "auto", "messages": [{"role": "user", "content": text}]})
        took = time.perf_counter() - started
        out.append((answer.status_code, answer.headers.get("x-routeharness-model"),
                    answer.headers.get("x-routeharness-routed-model"), took))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="routerbench")
    parser.add_argument("--router", default="knn")
    parser.add_argument("--requests", type=int, default=120)
    parser.add_argument("--rates", default="0,0.05,0.2")
    parser.add_argument("--timeout", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "resilience.md"))
    args = parser.parse_args(argv)
    rates = [float(x) for x in args.rates.split(",")]

    from fastapi.testclient import TestClient

    from routeharness.data.tasks import load_task
    from routeharness.deploy import saved
    from routeharness.deploy.budget import BudgetLimit
    from routeharness.deploy.proxy import Proxy, ProxyOptions
    from routeharness.deploy.serve import create_app
    from routeharness.testing.upstreams import FakePool, Faults

    load_before = _uptime()
    wall = time.perf_counter()
    task = load_task(args.task)
    test, validation = task.splits["test"], task.splits["validation"]
    models = [m.name for m in task.models]
    row_of: dict[str, int] = {}
    for i, text in enumerate(test.prompts):
        row_of.setdefault(text, i)
    rng = np.random.default_rng(args.seed)
    rows = sorted(rng.choice(sorted(row_of.values()), size=args.requests, replace=False))
    texts = [test.prompts[i] for i in rows]
    mean_val = {m: float(np.nanmean(validation.scores[:, k])) for k, m in enumerate(models)}

    def usage(model: str, text: str) -> dict[str, Any]:
        cost = float(test.costs[row_of[text], models.index(model)])
        return {"prompt_tokens": 0, "completion_tokens": 0, "cost": cost}

    work = Path(tempfile.mkdtemp(prefix="resilience-"))
    started = time.perf_counter()
    fitted = saved.fit(args.router, args.task, tune=False)
    folder = saved.save(fitted, work / "router")
    fit_s = time.perf_counter() - started
    results: list[dict[str, Any]] = []
    with FakePool(models, usage=usage, seed=args.seed) as pool:
        config = work / "upstreams.yaml"
        config.write_text(pool.upstreams_yaml(args.timeout), "utf-8")
        app = create_app(folder, config)
        service = app.state.service
        with TestClient(app, raise_server_exceptions=False) as client:
            _run(client, texts[:3])  # warm: the encoder's first calls, the connections
            budget_usd = None
            for with_budget in (False, True):
                for rate in rates:
                    for tries in (1, 3):
                        faults = Faults(rate / 3, rate / 3, rate / 3, hang_s=args.timeout * 3)
                        for model in pool.models.values():  # the same draws in every run
                            model.faults = faults
                            model.rng.seed(f"{args.seed}:{model.name}")
                        log = work / f"log-{with_budget}-{rate}-{tries}.jsonl"
                        limit = BudgetLimit(budget_usd, "1k") if with_budget else None
                        service.proxy.close()
                        service.proxy = Proxy(ProxyOptions(fallback=tries, budget=limit,
                                                           request_log=log),
                                              service, config, None)
                        outcomes = _run(client, texts)
                        service.proxy.close()
                        results.append(_summary(outcomes, texts, row_of, test, models,
                                                mean_val, rate, tries, with_budget,
                                                budget_usd, log))
                        if not with_budget and rate == rates[0] and tries == 1:
                            budget_usd = 0.6 * results[-1]["spent"]
                        print(results[-1], file=sys.stderr, flush=True)
    wall_s = time.perf_counter() - wall
    _report(args, results, load_before, _uptime(), wall_s, fit_s, fitted, budget_usd)


def _summary(outcomes: list[tuple[int, str | None, str | None, float]], texts: list[str],
             row_of: dict[str, int], test: Any, models: list[str],
             mean_val: dict[str, float], rate: float, tries: int, with_budget: bool,
             budget_usd: float | None, log: Path) -> dict[str, Any]:
    from routeharness.deploy.requestlog import read_log

    answered = [(text, o) for text, o in zip(texts, outcomes) if o[0] == 200]
    scores = [float(test.scores[row_of[text], models.index(o[1])]) for text, o in answered]
    weaker = sum(1 for _, o in answered if o[1] != o[2] and mean_val[o[1]] < mean_val[o[2]])
    latencies = np.array([o[3] for o in outcomes]) * 1000
    lines = [line for _, line in read_log(log)]
    spent = sum(line.cost_usd or 0.0 for line in lines if line.answered)
    return {"rate": rate, "tries": tries, "budget": with_budget, "n": len(outcomes),
            "answered": len(answered) / len(outcomes),
            "quality_answered": 100 * float(np.mean(scores)) if scores else float("nan"),
            "quality_all": 100 * float(np.sum(scores)) / len(outcomes),
            "weaker": weaker / len(answered) if answered else float("nan"),
            "fell_back": sum(1 for line in lines if line.fallbacks and line.answered),
            "p50_ms": float(np.percentile(latencies, 50)),
            "p95_ms": float(np.percentile(latencies, 95)),
            "refused": sum(1 for line in lines if line.budget and "refused" in line.budget),
            "downgraded": sum(1 for line in lines if line.budget and "downgrade" in
                              line.budget),
            "spent": spent,
            "held": None if budget_usd is None or not with_budget else spent <= budget_usd,
            "unlogged_failures_as_answers": sum(
                1 for line, o in zip(lines, outcomes) if line.answered != (o[0] == 200))}


def _report(args: Any, results: list[dict[str, Any]], load_before: str, load_after: str,
            wall_s: float, fit_s: float, fitted: Any, budget_usd: float | None) -> None:
    import routeharness

    encoder = fitted.manifest.encoder.spec
    lines = [
        "# Resilience of `serve`: fallback and the budget when upstreams fail",
        "",
        f"Made by `python benchmarks/resilience.py --task {args.task} --router {args.router} "
        f"--requests {args.requests} --rates {args.rates} --timeout {args.timeout:g}` "
        f"(routeharness {routeharness.__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}). The set-up is the script's docstring: the router "
        f"({args.router}, untuned, encoder {encoder}, fitted in {fit_s:.0f} s) served by "
        "`serve`'s application in-process, one fake OpenAI-compatible upstream per pool "
        "model on 127.0.0.1 (`routeharness.testing.upstreams.FakePool`) answering with the "
        "task's recorded cost of that model on that prompt and failing at each rate, split "
        f"evenly between 429, 503 and a hang past the {args.timeout:g} s timeout; "
        f"{args.requests} test prompts (seed {args.seed}) sent one after another as "
        "`model: auto` chat completions at trade-off 0. Each run draws the same failures "
        "(seeded per model).",
        "",
        f"Load before: `{load_before}`; after: `{load_after}`. Wall time {wall_s:.0f} s on a "
        "shared 2-core machine: latencies are this machine's, not a server's.",
        "",
        "## Fallback off (1 upstream per request) and on (up to 3)",
        "",
        "| failure rate | fallback | answered | quality of answers | quality, failures as 0 "
        "| fell back | answered by a weaker model than routed | p50 ms | p95 ms |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r["budget"]:
            continue
        lines.append(f"| {r['rate']:.0%} | {'on' if r['tries'] > 1 else 'off'} | "
                     f"{r['answered']:.1%} | {r['quality_answered']:.1f} | "
                     f"{r['quality_all']:.1f} | {r['fell_back']} | {r['weaker']:.1%} | "
                     f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} |")
    lines += [
        "",
        "\"weaker\": the model that answered has a lower mean validation score than the "
        "model the router chose. \"fell back\": requests answered after at least one "
        "failed attempt. In every run the request log's `answered` agreed with the "
        "client's status on every request (a failure was never logged as an answer): "
        f"{sum(r['unlogged_failures_as_answers'] for r in results)} disagreements in all.",
        "",
        f"## Under a budget of ${budget_usd:.4g} per 1,000 requests",
        "",
        f"60% of what the fallback-off run at {float(args.rates.split(',')[0]):.0%} "
        "failures spent on the whole workload; the workload is one window.",
        "",
        "| failure rate | fallback | answered | quality of answers | downgraded | refused "
        "| spent (USD) | held |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if not r["budget"]:
            continue
        lines.append(f"| {r['rate']:.0%} | {'on' if r['tries'] > 1 else 'off'} | "
                     f"{r['answered']:.1%} | {r['quality_answered']:.1f} | "
                     f"{r['downgraded']} | {r['refused']} | {r['spent']:.4f} | "
                     f"{'yes' if r['held'] else 'no'} |")
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
