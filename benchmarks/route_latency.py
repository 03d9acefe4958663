"""Route latency and throughput of saved routers, in-process and over HTTP.

Usage: ``python benchmarks/route_latency.py [--routers linear,knn] [--task routerbench]
[--calls 200] [--batch 1000] [--torch-threads 1] [--out benchmarks/route_latency.md]``

For each router (skipped, with a note, when it does not declare ``saveable``): fitted on
the task as ``routeharness fit`` does (tuned on validation, fitted on train, minilm) and
saved to a temporary folder, then, warm (the encoder loaded and used once first):

- one prompt at a time, ``--calls`` times: in-process (``SavedRouter``: the encoder, then
  ``route_vectors``) and over HTTP (``POST /route`` to ``routeharness serve`` started as a
  subprocess on this machine, one kept-alive connection), the two taking turns on the same
  prompt so both see the same machine load; median and 95th percentile, and the share of
  the in-process time spent in the encoder;
- ``--batch`` prompts in one call: in-process and as one ``POST /route``: prompts per
  second, and the encoder's share.

The prompts are the task's test prompts, then its validation and train prompts (distinct
texts, real lengths). The machine's load (``uptime``) is written before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _prompts(task: Any, n: int) -> list[str]:
    seen: dict[str, None] = {}
    for split in ("test", "validation", "train"):
        for text in task.splits[split].prompts:
            seen.setdefault(text, None)
    texts = list(seen)
    if len(texts) < n:
        raise SystemExit(f"the task has {len(texts)} distinct prompts, fewer than {n}")
    return texts[:n]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(folder: Path, threads: int) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-c", "from routeharness.cli import main; main()", "serve",
               str(folder), "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"serve exited: {server.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            time.sleep(0.3)
    server.terminate()
    raise SystemExit("serve did not start within 180 s")


def measure(folder: Path, prompts: list[str], calls: int, batch: int,
            threads: int) -> dict[str, Any]:
    """The numbers of one saved router (see the module doc); seconds."""
    import httpx

    from routeharness.deploy import saved

    started = time.perf_counter()
    router = saved.load(folder)
    encoder = router.encoder()
    encoder.encode(["warm-up"])
    load_s = time.perf_counter() - started
    server, base = _start_server(folder, threads)
    try:
        with httpx.Client(timeout=600) as client:
            for text in prompts[:5]:  # warm both paths
                router.route_vectors(encoder.encode([text]), 0.0)
                client.post(f"{base}/route", json={"prompts": [text]}).raise_for_status()
            enc_s, local_s, http_s = [], [], []
            for text in prompts[:calls]:
                t0 = time.perf_counter()
                X = encoder.encode([text])
                t1 = time.perf_counter()
                chosen = router.route_vectors(X, 0.0).rows()[0]["model"]
                t2 = time.perf_counter()
                answer = client.post(f"{base}/route", json={"prompts": [text]})
                t3 = time.perf_counter()
                answer.raise_for_status()
                if answer.json()["routes"][0]["model"] != chosen:
                    raise SystemExit(f"HTTP and in-process routes differ on {text[:60]!r}")
                enc_s.append(t1 - t0)
                local_s.append(t2 - t0)
                http_s.append(t3 - t2)
            texts = prompts[:batch]
            t0 = time.perf_counter()
            X = encoder.encode(texts)
            t1 = time.perf_counter()
            local = router.route_vectors(X, 0.0).rows()
            t2 = time.perf_counter()
            answer = client.post(f"{base}/route", json={"prompts": texts})
            t3 = time.perf_counter()
            answer.raise_for_status()
            agree = np.mean([a["model"] == b["model"]
                             for a, b in zip(local, answer.json()["routes"])])
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"load_s": load_s, "enc": np.array(enc_s), "local": np.array(local_s),
            "http": np.array(http_s), "batch_enc": t1 - t0, "batch_local": t2 - t0,
            "batch_http": t3 - t2, "batch_agree": float(agree),
            "label": router.manifest.router.label,
            "auc": router.manifest.training.validation_auc}


def _ms(values: np.ndarray, q: float) -> str:
    return f"{np.percentile(values, q) * 1000:.1f}"


def report(rows: dict[str, dict[str, Any]], skipped: dict[str, str], args: Any,
           before: str, after: str, threads: int, prompts: list[str]) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Route latency and throughput of saved routers",
        "",
        f"Written by `python benchmarks/route_latency.py --routers {args.routers} --task "
        f"{args.task} --calls {args.calls} --batch {args.batch} --torch-threads "
        f"{threads}`. Encoder: minilm on this machine's CPU ({cpu}, {os.cpu_count()} "
        f"cores, torch on {threads} thread(s)), "
        "warm. Routers fitted on the task as `routeharness fit` does, with trade-off 0.",
        "",
        f"Machine load before: `{before}`; after: `{after}` (the cores are shared with "
        "other work: read the ratios, not the absolute times).",
        "",
        f"## One prompt at a time ({args.calls} calls, warm)",
        "",
        "In-process: `SavedRouter` (encoder, then `route_vectors`). HTTP: `POST /route` to "
        "`routeharness serve` (a subprocess, one kept-alive connection); the two take turns "
        "on the same prompt. Encoder share: of the in-process time.",
        "",
        "| router | in-process median ms | in-process p95 ms | HTTP median ms | "
        "HTTP p95 ms | HTTP / in-process (median) | encoder share | routing alone, "
        "median ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows.values():
        share = r["enc"].sum() / r["local"].sum()
        lines.append(f"| {r['label']} | {_ms(r['local'], 50)} | {_ms(r['local'], 95)} | "
                     f"{_ms(r['http'], 50)} | {_ms(r['http'], 95)} | "
                     f"{np.median(r['http']) / np.median(r['local']):.2f} | {share:.1%} | "
                     f"{np.median(r['local'] - r['enc']) * 1000:.3f} |")
    lines += ["", f"## {args.batch} prompts in one call", "",
              "| router | in-process prompts/s | HTTP prompts/s | encoder share "
              "(in-process) | routing alone, ms | HTTP and in-process agree |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in rows.values():
        lines.append(f"| {r['label']} | {args.batch / r['batch_local']:.1f} | "
                     f"{args.batch / r['batch_http']:.1f} | "
                     f"{r['batch_enc'] / r['batch_local']:.2%} | "
                     f"{(r['batch_local'] - r['batch_enc']) * 1000:.1f} | "
                     f"{r['batch_agree']:.0%} |")
    lengths = [len(p) for p in prompts]
    lines += ["", f"Prompts: the task's, {np.median(lengths):.0f} characters at the median "
              f"(95th percentile {np.percentile(lengths, 95):.0f}); minilm reads at most 256 "
              "word pieces of each."]
    lines += ["", "Loading (manifest, state, encoder, one warm-up encode), seconds: "
              + ", ".join(f"{r['label']} {r['load_s']:.1f}" for r in rows.values()) + "."]
    if skipped:
        lines += ["", "Not measured: " + "; ".join(f"`{k}` ({v})"
                                                 for k, v in skipped.items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routers", default="linear,knn")
    parser.add_argument("--task", default="routerbench")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads, here and in the server (default 1: "
                             "the cores are shared)")
    parser.add_argument("--out", default=str(Path(__file__).with_name("route_latency.md")))
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.torch_threads)
    import torch

    torch.set_num_threads(args.torch_threads)
    from routeharness.common.progress import Reporter
    from routeharness.data.tasks import load_task
    from routeharness.deploy import saved
    from routeharness.evaluation.tuning import plan_routers
    from routeharness.routers.base import tags_of

    before = _uptime()
    prompts = _prompts(load_task(args.task), max(args.calls + 5, args.batch))
    work = Path(tempfile.mkdtemp(prefix="route-latency-"))
    rows, skipped = {}, {}
    try:
        for name in args.routers.split(","):
            plan = plan_routers([name], references=False)[0]
            if not tags_of(plan.router_cls).saveable:
                skipped[name] = "not saveable yet"
                continue
            print(f"fitting {name} on {args.task}...", file=sys.stderr)
            folder = saved.save(saved.fit(name, args.task, reporter=Reporter()), work / name)
            print(f"measuring {name}...", file=sys.stderr)
            rows[name] = measure(folder, prompts, args.calls, args.batch, args.torch_threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(rows, skipped, args, before, _uptime(), args.torch_threads,
                  prompts[:args.batch])
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
