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

``--parts`` chooses what runs (default ``cold,serve``; ``latency`` is the part above):

- ``cold``: kNN fitted once with ``--store-encoder`` and saved twice, with the stored ONNX
  encoder and without it (the torch path: minilm rebuilt from its package); then
  ``routeharness route FOLDER PROMPT --format json`` in a fresh process, ``--cold`` times
  each, the two taking turns: wall times and their ratio, the routes compared;
- ``serve``: ``routeharness serve`` on the stored-encoder folder, with batching
  (``--batch-wait-ms 5 --max-batch`` this script's ``--max-batch``, serve's default unless
  given) and without (``--max-batch 1``); for each number of concurrent clients
  (``--clients``) every client posts one prompt at a time for ``--seconds``: requests per
  second and the latency's median and 95th percentile; with the task's prompts, and again
  with them cut to ``--short-chars`` characters (a chat turn is often short).
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


def _start_server(folder: Path, threads: int, *options: str) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-c", "from routeharness.cli import main; main()", "serve",
               str(folder), "--port", str(port), *options]
    log = tempfile.TemporaryFile()  # never a pipe nobody reads (a full one blocks serve)
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise SystemExit(f"serve exited: {log.read().decode()[-2000:]}")
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


def fit_pair(router: str, task: str, work: Path) -> tuple[Path, Path, Any]:
    """``router`` fitted once with its encoder stored, saved with it and without it:
    (the stored-encoder folder, the torch folder, the manifest's stored_encoder)."""
    from routeharness.common.progress import Reporter
    from routeharness.deploy import saved

    fitted = saved.fit(router, task, reporter=Reporter(), store_encoder=True)
    stored = fitted.manifest.stored_encoder
    plain = saved.SavedRouter(fitted.manifest.model_copy(update={"stored_encoder": None}),
                              fitted.router, fitted.models, fitted.rows)
    return saved.save(fitted, work / "onnx"), saved.save(plain, work / "torch"), stored


def cold_routes(folders: dict[str, Path], prompt: str, times: int,
                pycache: Path) -> dict[str, Any]:
    """``routeharness route FOLDER PROMPT`` in a fresh process, ``times`` times per
    folder, taking turns, after one untimed run each (bytecode written to ``pycache``, as
    an installed package has it, and the files in the page cache): wall seconds per
    folder, and the routes each gave."""
    import json

    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(pycache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    import resource

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    walls: dict[str, list[float]] = {name: [] for name in folders}
    cpus: dict[str, list[float]] = {name: [] for name in folders}
    routes: dict[str, set[str]] = {name: set() for name in folders}
    for run in range(times + 1):
        for name, folder in folders.items():
            t0, c0 = time.perf_counter(), cpu()
            done = subprocess.run([sys.executable, "-m", "routeharness", "route", str(folder),
                                   prompt, "--format", "json"], capture_output=True, text=True,
                                  env=env)
            if run:
                walls[name].append(time.perf_counter() - t0)
                cpus[name].append(cpu() - c0)
            if done.returncode:
                raise SystemExit(f"route {folder} failed: {done.stderr[-2000:]}")
            routes[name].add(json.loads(done.stdout)[0]["model"])
    return {"walls": {k: np.array(v) for k, v in walls.items()},
            "cpus": {k: np.array(v) for k, v in cpus.items()}, "routes": routes}


async def _load(base: str, clients: int, seconds: float, prompts: list[str]) -> dict[str, Any]:
    import asyncio

    import httpx

    latencies: list[float] = []
    dropped = [0]
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        stop = time.perf_counter() + seconds

        async def worker(k: int) -> None:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                try:
                    answer = await client.post(f"{base}/route",
                                               json={"prompts": [prompts[k % len(prompts)]]})
                except httpx.TransportError:  # a kept-alive connection the server closed
                    dropped[0] += 1
                    continue
                answer.raise_for_status()
                latencies.append(time.perf_counter() - t0)
                k += clients

        start = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        elapsed = time.perf_counter() - start
    return {"requests": len(latencies), "per_s": len(latencies) / elapsed,
            "dropped": dropped[0],
            "p50": float(np.percentile(latencies, 50)),
            "p95": float(np.percentile(latencies, 95))}


def serve_load(folder: Path, prompt_sets: dict[str, list[str]], clients: list[int],
               seconds: float, threads: int, max_batch: int = 64
               ) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Requests per second and latency under ``clients`` concurrent clients, batching on
    (``--batch-wait-ms 5 --max-batch MAX_BATCH``) and off (``--max-batch 1``): two servers started together, measured in
    turns (on, then off, for each number of clients) so both see the same load."""
    import asyncio

    import httpx

    servers = {}
    try:
        for setting, options in (("on", ("--batch-wait-ms", "5", "--max-batch",
                                         str(max_batch))),
                                 ("off", ("--max-batch", "1"))):
            servers[setting] = _start_server(folder, threads, *options)
            for text in next(iter(prompt_sets.values()))[:3]:  # warm
                httpx.post(f"{servers[setting][1]}/route", json={"prompts": [text]},
                           timeout=120)
        out = {}
        for label, prompts in prompt_sets.items():
            for n in clients:
                for setting, (_, base) in servers.items():
                    print(f"serve, {label}, batching {setting}, {n} clients...",
                          file=sys.stderr)
                    out[(label, setting, n)] = {
                        **asyncio.run(_load(base, n, seconds, prompts)),
                        "load": os.getloadavg()[0]}
        return out
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)


def report_cold(cold: dict[str, Any], stored: Any, times: int) -> list[str]:
    walls = cold["walls"]
    onnx, torch_ = np.median(walls["onnx"]), np.median(walls["torch"])
    same = cold["routes"]["onnx"] == cold["routes"]["torch"] and len(cold["routes"]["onnx"]) == 1
    check = stored.check
    return [
        f"## Cold `route FOLDER \"prompt\"`: stored ONNX encoder against torch ({times} "
        "runs each, taking turns)", "",
        "A fresh `python -m routeharness route FOLDER PROMPT --format json` process per run, "
        "after one untimed run of each (so the folder is in the page cache and Python's "
        "bytecode is written, as an installed package has it): the same kNN fitted once, "
        "saved with `--store-encoder` and without it.", "",
        "| encoder path | median s | min s | max s | CPU s (user + system), median |",
        "|---|---:|---:|---:|---:|",
        f"| stored ONNX (onnxruntime, no torch) | {onnx:.2f} | {walls['onnx'].min():.2f} | "
        f"{walls['onnx'].max():.2f} | {np.median(cold['cpus']['onnx']):.2f} |",
        f"| torch (minilm rebuilt from its package) | {torch_:.2f} | "
        f"{walls['torch'].min():.2f} | {walls['torch'].max():.2f} | "
        f"{np.median(cold['cpus']['torch']):.2f} |",
        "", f"Ratio of the medians: **{torch_ / onnx:.1f}x** faster with the stored encoder "
        f"(CPU time: {np.median(cold['cpus']['torch']) / np.median(cold['cpus']['onnx']):.1f}x); "
        f"the two gave {'the same route' if same else 'different routes'} "
        f"({', '.join(sorted(cold['routes']['onnx'] | cold['routes']['torch']))}).",
        "", f"The fit's check (`stored_encoder.check`): {check.prompts} test prompts, largest "
        f"embedding difference {check.max_abs_diff:.2g}, smallest cosine "
        f"{check.min_cosine:.7f}, {check.routes_differing} of {check.routes} routes "
        "(prompts x trade-offs) differ."]


def report_serve(rows: dict[tuple[str, str, int], dict[str, Any]],
                 seconds: float, max_batch: int = 64) -> list[str]:
    from routeharness.deploy.batching import DEFAULT_MAX_BATCH

    lines = [f"## `serve` under concurrent clients ({seconds:g} s per row)", "",
             "`routeharness serve` on the stored-encoder folder; each client posts one prompt "
             "per request (`POST /route`) and waits for the answer before the next. Batching "
             f"on: `--batch-wait-ms 5 --max-batch {max_batch}`; off: `--max-batch 1` "
             f"(serve's default: `--max-batch {DEFAULT_MAX_BATCH}`). "
             "Two servers, measured in turns (on, then off, at each number of clients); load: "
             "the 1-minute load average after the row.",
             "Connections the server closed under a client (its keep-alive timeout) are "
             "counted, not timed, and the request sent again.",
             "", "| prompts | clients | batching | requests | requests/s | p50 ms | p95 ms "
             "| load | connections closed |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for (label, setting, n), r in rows.items():
        lines.append(f"| {label} | {n} | {setting} | {r['requests']} | {r['per_s']:.1f} | "
                     f"{r['p50'] * 1000:.0f} | {r['p95'] * 1000:.0f} | {r['load']:.1f} | "
                     f"{r['dropped']} |")
    return lines


def _ms(values: np.ndarray, q: float) -> str:
    return f"{np.percentile(values, q) * 1000:.1f}"


def report(rows: dict[str, dict[str, Any]], skipped: dict[str, str], args: Any,
           threads: int, prompts: list[str]) -> list[str]:
    lines = [
        f"Encoder: as each router was fitted (minilm, torch on {threads} thread(s)), warm. "
        "Routers fitted on the task as `routeharness fit` does, with trade-off 0.",
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
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="cold,serve",
                        help="what to run: cold, serve, latency (comma-separated)")
    parser.add_argument("--routers", default="linear,knn", help="latency: the routers")
    parser.add_argument("--task", default="routerbench")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--cold", type=int, default=3, help="cold: runs per encoder path")
    parser.add_argument("--clients", default="1,8,64,200", help="serve: concurrent clients")
    parser.add_argument("--seconds", type=float, default=6.0, help="serve: seconds per row")
    parser.add_argument("--max-batch", type=int, default=None,
                        help="serve: --max-batch of the server with batching on (default: "
                             "serve's)")
    parser.add_argument("--short-chars", type=int, default=200,
                        help="serve: also with the prompts cut to this many characters "
                             "(0: not)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads, here and in the server (default 1: "
                             "the cores are shared)")
    parser.add_argument("--out", default=str(Path(__file__).with_name("route_latency.md")))
    args = parser.parse_args()
    if args.max_batch is None:
        from routeharness.deploy.batching import DEFAULT_MAX_BATCH

        args.max_batch = max(DEFAULT_MAX_BATCH, 2)
    parts = set(args.parts.split(","))
    os.environ["OMP_NUM_THREADS"] = str(args.torch_threads)
    from routeharness.common.progress import Reporter
    from routeharness.data.tasks import load_task
    from routeharness.deploy import saved
    from routeharness.evaluation.tuning import plan_routers
    from routeharness.routers.base import tags_of

    before = _uptime()
    prompts = _prompts(load_task(args.task), max(args.calls + 5, args.batch))
    work = Path(tempfile.mkdtemp(prefix="route-latency-"))
    argv = " ".join(sys.argv[1:])
    lines = ["# Route latency and throughput of saved routers", "",
             f"Written by `python benchmarks/route_latency.py {argv}`".rstrip() + f" on "
             f"this machine's CPU ({platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores). Prompts: the task's (test, then validation and "
             "train), real lengths.", ""]
    sections: list[str] = []
    try:
        if parts & {"cold", "serve"}:
            print(f"fitting knn on {args.task} with its encoder stored...", file=sys.stderr)
            onnx_dir, torch_dir, stored = fit_pair("knn", args.task, work / "pair")
            if "cold" in parts:
                cold = cold_routes({"onnx": onnx_dir, "torch": torch_dir}, prompts[0],
                                   args.cold, work / "pycache")
                sections += [""] + report_cold(cold, stored, args.cold)
            if "serve" in parts:
                clients = [int(n) for n in args.clients.split(",")]
                sets = {"the task's": prompts}
                if args.short_chars:
                    sets[f"cut to {args.short_chars} characters"] = [
                        p[:args.short_chars] for p in prompts]
                rows = serve_load(onnx_dir, sets, clients, args.seconds, args.torch_threads,
                                  args.max_batch)
                sections += [""] + report_serve(rows, args.seconds, args.max_batch)
        if "latency" in parts:
            import torch

            torch.set_num_threads(args.torch_threads)
            rows, skipped = {}, {}
            for name in args.routers.split(","):
                plan = plan_routers([name], references=False)[0]
                if not tags_of(plan.router_cls).saveable:
                    skipped[name] = "not saveable yet"
                    continue
                print(f"fitting {name} on {args.task}...", file=sys.stderr)
                folder = saved.save(saved.fit(name, args.task, reporter=Reporter()),
                                    work / name)
                print(f"measuring {name}...", file=sys.stderr)
                rows[name] = measure(folder, prompts, args.calls, args.batch,
                                     args.torch_threads)
            sections += [""] + report(rows, skipped, args, args.torch_threads,
                                      prompts[:args.batch])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines += [f"Machine load before: `{before}`; after: `{_uptime()}` (the two cores are "
              "shared with other work: read the ratios, not the absolute times)."]
    text = "\n".join(lines + sections) + "\n"
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
