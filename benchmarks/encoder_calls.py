"""Milliseconds per prompt of a saved router's stored ONNX encoder by prompts per call,
for RouterBench's prompts as they are (most truncated at 256 tokens) and cut to 200
characters (about 50 tokens): what ``TOKENS_PER_CALL`` in routeharness/embedding/onnx.py
rests on. The encoder's own chunking is bypassed: each call holds exactly N prompts.

Usage: ``python benchmarks/encoder_calls.py FOLDER [--threads 2]`` (FOLDER: a router saved
with ``routeharness fit --store-encoder``); prints a Markdown table and the load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def per_prompt_ms(encoder: object, texts: list[str], size: int, rounds: int = 3) -> float:
    """Median over ``rounds`` of the time per prompt, ``size`` prompts a call."""
    session = encoder._session  # type: ignore[attr-defined]
    calls = [encoder.tokenize(texts[i:i + size])  # type: ignore[attr-defined]
             for i in range(0, len(texts), size)]
    session.run(None, calls[0])
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for feed in calls:
            session.run(None, feed)
        times.append((time.perf_counter() - start) / len(texts) * 1000)
    return float(np.median(times))


def main() -> None:
    from route_latency import _prompts

    from routeharness.data.tasks import load_task
    from routeharness.deploy import saved

    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    encoder = saved.load(args.folder).encoder(args.threads, spin=False)
    prompts = _prompts(load_task("routerbench"), 64)
    sets = {"RouterBench's prompts (most 256 tokens)": (prompts[:32], (1, 2, 4, 8, 32)),
            "cut to 200 characters (~50 tokens)": ([p[:200] for p in prompts],
                                                   (1, 2, 4, 8, 16, 64))}
    print(f"load before: {os.getloadavg()[0]:.2f}; onnxruntime threads {args.threads}")
    print("| prompts | prompts per call | ms per prompt | x one a call |")
    print("|---|---:|---:|---:|")
    for label, (texts, sizes) in sets.items():
        one = None
        for size in sizes:
            ms = per_prompt_ms(encoder, texts, size)
            one = one or ms
            print(f"| {label} | {size} | {ms:.1f} | {one / ms:.2f} |", flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
