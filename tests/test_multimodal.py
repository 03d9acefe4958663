"""Multimodal routing: the blindtest task, the vhelm-mm builder, image-aware encoders.

Default tests use the BlindTest CI subset (224 items) from ../shared/data and the small
VHELM fixture in tests/fixtures/vhelm (HELM's exact run-output layout, images drawn by
tests/fixtures/vhelm/make_fixture.py). The CLIP test is a mechanics test on a tiny random
checkpoint, not a quality test.
"""

from __future__ import annotations

import http.server
import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest

from routeharness.common.errors import RouteHarnessError

FIXTURE = Path(__file__).parent / "fixtures" / "vhelm"
SKLEARN_IMAGES = Path(__import__("sklearn").__file__).parent / "datasets" / "images"


# --- EfficientNet-Lite0 ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def effnet_model():
    from routeharness_vision.effnet import load_pretrained

    return load_pretrained()


def test_effnet_weights_load_exactly(effnet_model):
    import torch
    from routeharness_vision.effnet import weights_path

    model, report = effnet_model
    assert report.missing_keys == [] and report.unexpected_keys == []
    state = torch.load(str(weights_path()), map_location="cpu", weights_only=True)
    assert len(state) == 296 == len(model.state_dict())


def test_effnet_classifies_real_photos(effnet_model):
    """ImageNet classes of scikit-learn's two sample photos: a Chinese temple and a flower.
    Wrong padding or normalisation gives other classes."""
    import torch
    from PIL import Image
    from routeharness_vision.effnet import preprocess

    model, _ = effnet_model
    images = [Image.open(SKLEARN_IMAGES / name) for name in ("china.jpg", "flower.jpg")]
    with torch.inference_mode():
        probs = model(preprocess(images)).softmax(-1)
    top5 = probs.topk(5).indices.tolist()
    buildings = {442, 449, 483, 497, 663, 698, 832}  # bell cote, boathouse, castle, church, monastery, palace, stupa
    assert top5[0][0] in buildings and len(buildings & set(top5[0])) >= 2
    assert top5[1][0] == 985  # daisy


def test_effnet_encoder_dedups_images_and_zeroes_missing(tmp_path):
    from PIL import Image

    from routeharness.embedding.encoders import get_encoder

    encoder = get_encoder("effnet")
    assert encoder.modalities == frozenset({"image"})
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (64, 64), "red").save(red)
    Image.new("RGB", (64, 64), "blue").save(blue)
    X = encoder.encode(["a", "b", "c", "d"], [str(red), {"bytes": red.read_bytes(), "path": None},
                                             None, Image.open(blue)])
    assert X.shape == (4, 1280)
    np.testing.assert_allclose(X[0], X[1], atol=1e-6)  # same image, as path or bytes
    assert not X[2].any()
    np.testing.assert_allclose(np.linalg.norm(X[[0, 3]], axis=1), 1.0, atol=1e-5)
    assert float(X[0] @ X[3]) < 0.999
    with pytest.raises(RouteHarnessError, match="images only"):
        encoder.encode(["text only"], None)


def test_fused_encoder_rule(tmp_path, minilm):
    """cos(fused) = (1 - w) cos(text) + w cos(image) for prompts with images."""
    from PIL import Image

    from routeharness.embedding.encoders import get_encoder

    paths = []
    for i, colour in enumerate(("red", "green")):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (40, 40), colour).save(paths[-1])
    texts = ["Count the circles.", "Which letter is circled?"]
    fused = get_encoder("effnet-minilm:0.3")
    assert fused.modalities == frozenset({"text", "image"})
    X = fused.encode(texts, [str(p) for p in paths])
    T = minilm.encode(texts)
    images = get_encoder("effnet").encode(texts, [str(p) for p in paths])
    assert X.shape == (2, 384 + 1280)
    expected = 0.7 * float(T[0] @ T[1]) + 0.3 * float(images[0] @ images[1])
    assert float(X[0] @ X[1]) == pytest.approx(expected, abs=1e-5)
    text_only = fused.encode(texts, None)
    assert not text_only[:, 384:].any()
    with pytest.raises(RouteHarnessError, match="image weight"):
        get_encoder("effnet-minilm:1.5")


# --- CLIP (mechanics on a tiny random checkpoint) ------------------------------------------
def make_tiny_clip(path: Path) -> Path:
    """A CLIP with random weights (32-d, 2 layers), a byte-level tokenizer without merges
    and a PIL image processor: everything transformers needs, built offline."""
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
    text = dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37,
                num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=64,
                bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                pad_token_id=vocab["<|endoftext|>"])
    vision = dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=37,
                  num_hidden_layers=2, num_attention_heads=2)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)) \
        .save_pretrained(path)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 32},
                                              crop_size={"height": 32, "width": 32}),
        tokenizer=CLIPTokenizer(vocab=vocab, merges=[]))
    processor.save_pretrained(path)
    return path


def test_clip_loads_and_encodes_a_local_checkpoint(tmp_path):
    """Mechanics only: random weights, so the vectors mean nothing."""
    from PIL import Image

    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.encoders import get_encoder

    path = make_tiny_clip(tmp_path / "tiny-clip")
    encoder = get_encoder(f"clip:{path}")
    assert encoder.modalities == frozenset({"text", "image"})
    assert encoder.revision.startswith("local-") and encoder.identity == "tiny-clip"
    texts = ["a red square", "a blue circle", "no image here"]
    images = [Image.new("RGB", (50, 40), "red"), Image.new("RGB", (30, 30), "blue"), None]
    X = encoder.encode(texts, images)
    assert X.shape == (3, 16) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    T = encoder.encode(texts, None)
    np.testing.assert_allclose(X[2], T[2], atol=1e-6)  # no image: the text embedding
    assert not np.allclose(X[0], T[0], atol=1e-4)  # the image moves the vector
    cache = EmbeddingCache(tmp_path / "cache")
    first = cache.embed(encoder, texts, images)
    again = cache.embed(get_encoder(f"clip:{path}"), texts, images)
    assert not first.from_cache and again.from_cache
    np.testing.assert_array_equal(first.embeddings, again.embeddings)


def test_clip_rejects_a_non_clip_directory(tmp_path):
    from routeharness.embedding.encoders import get_encoder

    (tmp_path / "empty").mkdir()
    with pytest.raises(RouteHarnessError, match="cannot load CLIP/SigLIP checkpoint"):
        get_encoder(f"clip:{tmp_path / 'empty'}").encode(["x"])


# --- blindtest ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blindtest_ci(shared_data):
    from routeharness.data.tasks import load_task

    return load_task("blindtest-ci", data_dir=shared_data)


def test_blindtest_ci_loads_real_items(blindtest_ci, shared_data):
    import csv

    task = blindtest_ci
    assert task.name == "blindtest-ci"
    assert sum(d.n for d in task.splits.values()) == 224
    assert sorted(task.groups) == sorted(["CircledWord", "CountingCircles",
                                          "CountingRowsAndColumns", "LineIntersection",
                                          "NestedSquares", "SubwayMap", "TouchingCircle"])
    assert task.splits["train"].model_names == ["gpt-4o", "gemini-1.5-pro", "claude-3-sonnet",
                                                 "claude-3.5-sonnet"]
    with (shared_data / "blindtest" / "ci_subset" / "items.csv").open() as handle:
        rows = {f"blindtest-{r['item_id']}": r for r in csv.DictReader(handle)}
    card = {m["name"]: m for m in task.card.models}
    images = {}
    for split, data in task.splits.items():
        assert data.has_images
        for i, identifier in enumerate(data.ids):
            row = rows[identifier]
            assert data.prompts[i] == row["question"] and data.groups[i] == row["task"]
            assert data.scores[i, 3] == float(row["claude-3.5-sonnet"])
            image = data.images[i]  # datasets.Image storage: {"bytes", "path"}
            assert Path(image["path"]).name == Path(row["image"]).name
            images.setdefault(Path(image["path"]).name, set()).add(split)
            price = card["gpt-4o"]
            expected = (price["price_per_image"] + math.ceil(len(row["question"]) / 4)
                        * price["price_input_per_mtok"] / 1e6
                        + 50 * price["price_output_per_mtok"] / 1e6)
            assert data.costs[i, 0] == pytest.approx(expected)
    assert all(len(splits) == 1 for splits in images.values())  # an image is in one split
    for split in ("validation", "test"):
        assert set(task.splits[split].groups) == set(task.groups)  # stratified by task


def test_blindtest_without_data_fails_with_one_clear_message(monkeypatch):
    from routeharness.data.tasks import load_task

    monkeypatch.delenv("ROUTEHARNESS_DATA", raising=False)
    with pytest.raises(RouteHarnessError, match=r"--data-dir DIR.*ROUTEHARNESS_DATA"):
        load_task("blindtest")


def test_text_only_encoder_says_images_are_ignored(blindtest_ci, minilm, cache_dir):
    from routeharness.common.progress import Reporter
    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.embed import embed_task

    embedded = embed_task(blindtest_ci, minilm, EmbeddingCache(cache_dir), Reporter())
    assert any("text-only" in note and "images are ignored" in note for note in embedded.notes)
    # only 30 question texts: many prompts share one text embedding
    assert len(np.unique(embedded.X["train"].round(5), axis=0)) <= 30


@pytest.fixture(scope="module")
def ci_fused(blindtest_ci, cache_dir):
    """blindtest-ci embedded once with the offline default (effnet-minilm)."""
    from routeharness.common.progress import Reporter
    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.embed import embed_task
    from routeharness.embedding.encoders import get_encoder

    return embed_task(blindtest_ci, get_encoder("effnet-minilm"), EmbeddingCache(cache_dir),
                      Reporter())


def _run(names, embedded):
    from routeharness.evaluation.protocol import Protocol
    from routeharness.evaluation.run import route_one
    from routeharness.evaluation.tuning import plan_routers

    protocol = Protocol(tune=False, n_bootstrap=0)
    return {plan.label: route_one(plan, embedded, 0, protocol).record
            for plan in plan_routers(names, references=False)}


def test_the_images_study_runs_end_to_end_and_its_file_loads_back(ci_fused, shared_data,
                                                                   cache_dir, tmp_path):
    """`study images` through the library on blindtest-ci with the encoder the session
    already embedded it with: routing and locality per encoder, a file that loads back
    and prints (it once crashed at its last line: a study file is frozen)."""
    from routeharness.common.contract import dump_json
    from routeharness.evaluation.protocol import Protocol
    from routeharness.study import images
    from routeharness.study.common import StudySettings
    from routeharness.study.record import StudyResult

    settings = StudySettings(protocol=Protocol(seeds=(0,), tune=False, n_bootstrap=0),
                             data_dir=str(shared_data), cache_dir=str(cache_dir),
                             paired_bootstrap=20)
    result = images.run(["knn"], ["blindtest-ci"], encoders=["effnet-minilm"], n_pairs=500,
                        settings=settings)
    task = next(iter(result.results))
    assert set(result.results[task]) == {"routing", "locality"}
    assert "effnet-minilm" in result.results[task]["locality"]
    assert result.params["n_pairs"] == 500
    result.save(tmp_path / "images.json")
    back = StudyResult.load(tmp_path / "images.json")
    assert dump_json(back) == dump_json(result) and images.tables(back)


def test_knn_on_image_features_alone_beats_random(ci_fused):
    """The image half of effnet-minilm is exactly the effnet encoder's output: kNN on it
    alone beats random routing on the CI subset's test split."""
    from dataclasses import replace

    assert not ci_fused.notes  # images were read
    image_only = replace(ci_fused, X={s: X[:, 384:] for s, X in ci_fused.X.items()},
                         encode_text=None)
    norms = np.linalg.norm(image_only.X["test"], axis=1)
    np.testing.assert_allclose(norms, np.sqrt(0.5), atol=1e-5)  # every item has an image
    records = _run(["knn", "random"], image_only)
    assert records["knn"].metrics.auc > records["random"].metrics.auc + 5


FAST_PLUGINS = ("knn", "baselines")  # the learned routers train for minutes on 2 cores


def test_knn_and_baseline_routers_run_on_blindtest(ci_fused):
    from routeharness.plugins.registry import get_registry

    registry = get_registry("router")
    names = [n for n in registry.names() if registry.get(n).plugin in FAST_PLUGINS]
    assert {"knn", "knn-vote", "random"} <= set(names)
    records = _run(names, ci_fused)
    for name in names:
        assert np.isfinite(records[name].metrics.auc), name


@pytest.mark.slow
def test_every_router_runs_on_blindtest(ci_fused):
    from routeharness.plugins.registry import get_registry

    names = get_registry("router").names()
    records = _run(names, ci_fused)
    for name in names:
        assert np.isfinite(records[name].metrics.auc), name
    from routeharness.evaluation import metrics
    from routeharness.evaluation.protocol import Protocol, seed_streams
    from routeharness.evaluation.scoring import oracle_reference

    test = ci_fused.task.splits["test"]
    train_scale = metrics.cost_scale(ci_fused.task.splits["train"].costs)
    oracle = oracle_reference(test.subset(test.complete_rows()), train_scale,
                              Protocol(n_bootstrap=0), seed_streams(0))
    assert oracle.auc >= max(r.metrics.auc for r in records.values()) - 1e-9


# --- vhelm-mm -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vhelm_built(tmp_path_factory):
    from routeharness_vhelm.build import build

    return build(str(FIXTURE), tmp_path_factory.mktemp("vhelm") / "built", suite="v2.1.0")


def _fixture_runs():
    for run_dir in sorted((FIXTURE / "benchmark_output" / "runs" / "v2.1.0").iterdir()):
        if run_dir.is_dir():
            yield run_dir, json.loads((run_dir / "run_spec.json").read_text())


def test_vhelm_builder_reads_the_helm_layout(vhelm_built):
    from routeharness.data.tasks import load_local

    task = load_local(vhelm_built)
    data = {s: task.splits[s] for s in task.splits}
    models = task.splits["train"].model_names
    assert sorted(task.groups) == ["flickr30k", "mm_safety_bench", "pope", "vqa"]  # no pairs
    rows = {i: (s, k) for s, d in data.items() for k, i in enumerate(d.ids)}
    # independently recompute a few cells from the raw files
    checked = 0
    for run_dir, spec in _fixture_runs():
        scenario = spec["name"].split(":")[0]
        if scenario == "pairs":
            continue
        model = spec["adapter_spec"]["model"]
        entries = json.loads((run_dir / "per_instance_stats.json").read_text())
        by_id: dict = {}
        for entry in entries:  # two entries per instance (one per metric class)
            if "perturbation" in entry and entry["perturbation"]["name"] != "dialect":
                continue
            key = (entry["instance_id"], "perturbation" in entry)
            by_id.setdefault(key, {}).update({s["name"]["name"]: s.get("mean")
                                              for s in entry["stats"]})
        augmented = "data_augmentation=" in spec["name"]
        for (instance_id, perturbed), stats in by_id.items():
            if augmented and not perturbed:
                assert not any(f"|{instance_id}|original" in i and "dialect" in i
                               for i in rows)  # original copies in augmented runs are dropped
                continue
            match = [i for i in rows if i.split("|")[1] == instance_id
                     and i.split("|")[0].split(":")[0] == scenario
                     and ("data_augmentation" in i) == augmented
                     and (i.endswith("|original") != perturbed)]
            assert len(match) == 1, (spec["name"], instance_id)
            split, k = rows[match[0]]
            j = models.index(model)
            metric = {"pope": "exact_match", "vqa": "quasi_exact_match",
                      "flickr30k": "prometheus_vision", "mm_safety_bench": "toxic_frac"}[scenario]
            raw = stats[metric]
            expected = {"prometheus_vision": (raw - 1) / 4, "toxic_frac": 1 - raw}.get(metric, raw)
            assert data[split].scores[k, j] == pytest.approx(expected)
            price = next(m for m in task.models if m.name == model)
            cost = (stats["num_prompt_tokens"] * price.price_input_per_mtok
                    + stats["num_output_tokens"] * price.price_output_per_mtok) / 1e6
            assert data[split].costs[k, j] == pytest.approx(cost)
            checked += 1
    assert checked == 50 * 3
    # every perturbation of an instance lands in the same split
    units: dict = {}
    for identifier, (split, _) in rows.items():
        run, instance_id, _ = identifier.split("|")
        units.setdefault((run.split(":")[0], instance_id), set()).add(split)
    assert all(len(s) == 1 for s in units.values())
    # images are embedded PNGs
    image = data["train"].images[0]
    assert image["bytes"][:8] == b"\x89PNG\r\n\x1a\n"


def test_vhelm_build_then_eval_end_to_end(cli, tmp_path, cache_dir):
    out = tmp_path / "vhelm-built"
    built = cli("data", "build", "vhelm-mm", "--source", str(FIXTURE), "--suite", "v2.1.0",
                "--out", str(out))
    assert built.returncode == 0, built.stderr
    assert "train 30, validation 5, test 15" in built.stdout
    result = tmp_path / "result.json"
    run = cli("eval", "--router", "knn", "--task", "vhelm-mm", "--data-dir", str(out),
              "--bootstrap", "0", "-o", str(result), env={"ROUTEHARNESS_CACHE": str(cache_dir)})
    assert run.returncode == 0, run.stderr
    # no --encoder: the card's default, the offline image + text encoder, reads the images
    assert "images are ignored" not in run.stderr + run.stdout
    record = json.loads(result.read_text())
    assert record["tasks"]["vhelm-mm"]["sizes"] == {"train": 30, "validation": 5, "test": 15}
    assert record["encoder"]["name"] == "effnet-minilm"
    assert record["encoder"]["modalities"] == ["image", "text"]
    knn = next(r for r in record["records"] if r["router"] == "knn")
    assert 0 < knn["metrics"]["auc"] <= 100


def test_vhelm_eval_without_a_build_says_how_to_build(tmp_path, monkeypatch):
    from routeharness.data.tasks import load_task

    monkeypatch.delenv("ROUTEHARNESS_DATA", raising=False)
    with pytest.raises(RouteHarnessError, match="routeharness data build vhelm-mm --source"):
        load_task("vhelm-mm")
    with pytest.raises(RouteHarnessError, match="no built vhelm-mm dataset here"):
        load_task("vhelm-mm", data_dir=tmp_path)


def test_vhelm_builder_errors(tmp_path):
    from routeharness_vhelm.build import build

    with pytest.raises(RouteHarnessError, match="no suite 'v9'"):
        build(str(FIXTURE), tmp_path / "a", suite="v9")
    with pytest.raises(RouteHarnessError, match="not a HELM benchmark_output"):
        build(str(tmp_path), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "keep.txt").write_text("mine")
    with pytest.raises(RouteHarnessError, match="exists and is not an empty directory"):
        build(str(FIXTURE), tmp_path / "c", suite="v2.1.0")
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["keep.txt"]


def test_vhelm_helpers():
    from routeharness_vhelm.build import base_key, normalise_score, run_key

    name = ("vqa:model=openai_gpt-4o-2024-05-13,data_augmentation=dialect_prob=1.0_source=SAE_"
            "target=AAVE,groups=vqa_dialect")
    assert run_key(name) == ("vqa:data_augmentation=dialect_prob=1.0_source=SAE_target=AAVE,"
                             "groups=vqa_dialect", "vqa")
    assert base_key(name) == base_key("vqa:model=x_y,groups=vqa_base") == "vqa:"
    assert normalise_score("prometheus_vision", 5.0) == 1.0
    assert normalise_score("prometheus_vision", 2.0) == 0.25
    assert normalise_score("toxic_frac", 0.25) == 0.75
    assert math.isnan(normalise_score("exact_match", float("nan")))


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = bytes(range(256)) * 64
    ranges: list = []

    def do_GET(self):
        header = self.headers.get("Range")
        self.ranges.append(header)
        start = int(header.split("=")[1].rstrip("-")) if header else 0
        body = self.payload[start:]
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_download_resumes_a_partial_file(tmp_path):
    from routeharness_vhelm.build import fetch_url

    server = http.server.HTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        target = tmp_path / "per_instance_stats.json"
        (tmp_path / "per_instance_stats.json.part").write_bytes(_RangeHandler.payload[:1000])
        url = f"http://127.0.0.1:{server.server_port}/runs/v2.1.0/x/per_instance_stats.json"
        fetch_url(url, target, progress=False)
        assert target.read_bytes() == _RangeHandler.payload
        assert _RangeHandler.ranges == ["bytes=1000-"]
        assert not (tmp_path / "per_instance_stats.json.part").exists()
        fetch_url(url, target, progress=False)  # complete: not fetched again
        assert len(_RangeHandler.ranges) == 1
    finally:
        server.shutdown()


def test_vhelm_build_from_a_url_downloads_runs_and_images(tmp_path, vhelm_built, cache_dir):
    """The URL path end to end, against a local HTTP server holding the fixture; the raw
    files are downloaded under the routeharness cache (where a next build resumes them),
    never into --out, and removed once the dataset is written."""
    import functools

    from routeharness_vhelm.build import build, download_cache

    from routeharness.data.tasks import load_local

    handler = functools.partial(_QuietFiles, directory=str(FIXTURE / "benchmark_output"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        out = build(url, tmp_path / "from-url", suite="v2.1.0")
    finally:
        server.shutdown()
    from_url, local = load_local(out), load_local(vhelm_built)
    assert from_url.fingerprint() == local.fingerprint()
    assert from_url.splits["test"].images[0]["bytes"] == local.splits["test"].images[0]["bytes"]
    assert not (out / ".download").exists()
    assert download_cache(url).parent == cache_dir / "vhelm-downloads"
    assert not download_cache(url).exists()


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_image_knn_beats_random_on_full_blindtest(shared_data, cache_dir):
    from routeharness.evaluation.matrix import evaluate
    from routeharness.evaluation.protocol import Protocol

    result = evaluate(["knn"], ["blindtest"], encoder="effnet", data_dir=str(shared_data),
                      cache_dir=str(cache_dir), protocol=Protocol(n_bootstrap=0))
    auc = {r.router: r.metrics.auc for r in result.records}
    assert auc["knn"] > auc["random"] + 5
