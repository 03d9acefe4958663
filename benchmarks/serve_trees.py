"""``serve`` from several checkouts side by side: each ``--tree LABEL=PATH`` (a checkout
of this project, run through PYTHONPATH with this venv) serves FOLDER with batching off
(``--max-batch 1``), and the trees named by ``--batched`` also with ``--batch-wait-ms 5
--max-batch 64``; every server takes each number of clients in turn (1, 8, 64, 200), on
RouterBench's prompts and on them cut to 200 characters, ``--seconds`` per cell, as
``route_latency.py --parts serve`` does. Prints a Markdown table: requests per second and
the median and 95th-percentile latency, and the load beside each row.

Usage: ``python benchmarks/serve_trees.py FOLDER --tree start=/tmp/old --tree now=.
--batched now [--seconds 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    import httpx
    import route_latency as rl

    from routeharness.data.tasks import load_task

    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--tree", action="append", required=True, metavar="LABEL=PATH")
    parser.add_argument("--batched", action="append", default=[], metavar="LABEL")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    prompts = rl._prompts(load_task("routerbench"), 400)
    sets = {"RouterBench's": prompts, "cut to 200 characters": [p[:200] for p in prompts]}
    settings = {"off": ("--max-batch", "1"),
                "batched": ("--batch-wait-ms", "5", "--max-batch", "64")}
    servers = {}
    saved_path = os.environ.get("PYTHONPATH")
    try:
        for spec in args.tree:
            label, path = spec.split("=", 1)
            root = Path(path).resolve()
            for name, options in settings.items():
                if name == "batched" and label not in args.batched:
                    continue
                os.environ["PYTHONPATH"] = f"{root}:{root / 'plugins'}"
                servers[f"{label} {name}"] = rl._start_server(Path(args.folder), 2, *options)
        if saved_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved_path
        for _, base in servers.values():
            for text in prompts[:3]:  # warm
                httpx.post(f"{base}/route", json={"prompts": [text]}, timeout=120)
        print("| prompts | clients | " + " | ".join(f"{k}: req/s (p50 / p95 ms)"
                                                   for k in servers) + " | load |")
        print("|---|---:|" + "---:|" * len(servers) + "---:|")
        for label, texts in sets.items():
            for clients in (1, 8, 64, 200):
                cells = []
                for _, base in servers.values():
                    r = asyncio.run(rl._load(base, clients, args.seconds, texts))
                    cells.append(f"{r['per_s']:.1f} ({1000 * r['p50']:.0f} / "
                                 f"{1000 * r['p95']:.0f})")
                print(f"| {label} | {clients} | " + " | ".join(cells)
                      + f" | {os.getloadavg()[0]:.1f} |", flush=True)
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
