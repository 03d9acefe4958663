"""``routeharness fit`` and ``route``: a router saved as a folder (manifest + safetensors,
no pickle) routes exactly as eval's test routing for the same router, seed and trade-off;
loading refuses what it cannot honour; bad prompts are one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from routeharness.common.errors import RouteHarnessError
from routeharness.deploy.routing_input import read_prompts
from routeharness.evaluation.protocol import Protocol
from routeharness.evaluation.run import route_one
from routeharness.evaluation.tuning import plan_routers

SAVEABLE = ["knn", "knn-vote", "linear", "best-single"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> str:
    from routeharness.cli._app import main

    out = tmp_path_factory.mktemp("saved") / "synth"
    try:
        main(["data", "synth", str(out), "--train", "200", "--validation", "80", "--test",
              "80", "--models", "4", "--clusters", "5", "--dim", "12", "--locality", "0.8"])
    except SystemExit as exc:
        assert not exc.code
    return str(out)


def _routes_equal_eval(router: str, task: str, folder: Path, seed: int) -> None:
    from routeharness.data.tasks import load_task
    from routeharness.deploy import saved
    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.embed import embed_task
    from routeharness.embedding.encoders import get_encoder

    loaded = saved.load(folder)
    task_data = load_task(task)
    enc = get_encoder(loaded.manifest.encoder.spec)
    embedded = embed_task(task_data, enc, EmbeddingCache(None), _quiet())
    protocol = Protocol(seeds=(seed,), n_bootstrap=0)
    routed = route_one(plan_routers([router], references=False)[0], embedded, seed, protocol)
    test = task_data.splits["test"]
    X = embedded.X["test"][test.complete_rows()]
    for i, lam in enumerate(protocol.lambdas):
        got = loaded.route_vectors(X, float(lam)).choices
        np.testing.assert_array_equal(got, routed.choices[i], err_msg=f"{router} lam={lam}")


def _quiet():
    from routeharness.common.progress import Reporter

    return Reporter()


@pytest.mark.parametrize("router", SAVEABLE)
def test_fit_then_route_gives_evals_test_routes(router, synth, tmp_path):
    from routeharness.deploy import saved

    folder = tmp_path / router
    saved.save(saved.fit(router, synth, encoder="precomputed", seed=1), folder)
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert manifest["schema"] == "routeharness.router/1"
    assert manifest["training"]["seed"] == 1 and manifest["encoder"]["name"] == "precomputed"
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "state.json",
                                                         "state.safetensors", "train_ids.json"]
    _routes_equal_eval(router, synth, folder, seed=1)


def test_the_cli_fits_and_routes_prompts_with_their_vectors(synth, cli, tmp_path):
    folder = tmp_path / "lin"
    done = cli("fit", "-r", "linear", "-t", synth, "-e", "precomputed", "-o", str(folder), "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "saved linear" in done.stderr
    from routeharness.data.tasks import load_task

    test = load_task(synth).splits["test"]
    lines = [json.dumps({"id": f"p{i}", "prompt": test.prompts[i],
                         "embedding": test.embeddings[i].tolist()}) for i in range(5)]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = cli("route", str(folder), "--file", str(prompts), "--lam", "0.5",
               "--format", "jsonl")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["id"] for r in rows] == [f"p{i}" for i in range(5)]
    from routeharness.deploy import saved

    expected = saved.load(folder).route_vectors(test.embeddings[:5], 0.5).rows()
    assert [r["model"] for r in rows] == [r["model"] for r in expected]
    for row in rows:  # the chosen model's predictions are the best utility at lam 0.5
        assert row["predicted_score"] == row["predicted"][row["model"]]["score"]
    # --format json: the same routes as one array (the table formats every command takes)
    done = cli("route", str(folder), "--file", str(prompts), "--lam", "0.5", "--format", "json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == rows
    # --budget picks a trade-off on validation and says which
    done = cli("route", str(folder), "--file", str(prompts), "--budget", "0", "--format",
               "jsonl")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--budget 0 USD per 1,000 prompts: lam = " in done.stderr
    # bad input: one line, non-zero
    prompts.write_text('{"prompt": "x", "embedding": [1, 2]}\n{"prompt": "y"}\n',
                       encoding="utf-8")
    done = cli("route", str(folder), "--file", str(prompts))
    assert done.returncode != 0
    assert "some prompts have an \"embedding\" and some do not" in done.stderr.splitlines()[-1]


def test_loading_refuses_what_it_cannot_honour(synth, tmp_path):
    from routeharness.deploy import saved

    folder = tmp_path / "lin"
    saved.save(saved.fit("linear", synth, encoder="precomputed"), folder)
    state = folder / "state.safetensors"
    blob = bytearray(state.read_bytes())
    blob[-1] ^= 0xFF
    state.write_bytes(bytes(blob))
    with pytest.raises(RouteHarnessError, match="sha256 is not the one the manifest records"):
        saved.load(folder)
    state.write_bytes(bytes(blob[:-1]) + bytes([blob[-1] ^ 0xFF]))  # restored
    saved.load(folder)
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    manifest["router"]["version"] = "0.0.1"
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(RouteHarnessError, match=r"saved with version '0\.0\.1'.*refit"):
        saved.load(folder)
    with pytest.raises(RouteHarnessError, match="exists and is not an empty directory"):
        saved.save(saved.fit("linear", synth, encoder="precomputed"), folder)
    with pytest.raises(RouteHarnessError, match="not a saved router"):
        saved.load(tmp_path / "nothing")


def _edit(manifest: dict, path: str, value) -> dict:
    """``manifest`` with the value at ``path`` (dots and [i]) set; ``...`` deletes it."""
    import re

    keys = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]
    node = manifest
    for key in keys[:-1]:
        node = node[key]
    if value is ...:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return manifest


@pytest.mark.parametrize("path, value, says", [
    ("colour", "red", "unknown key(s) ['colour']"),
    ("router.kind", "ranking", "router.kind: must be one of 'utility' or 'selection'"),
    ("router.version", 1, "router.version: expected a string, got 1"),
    ("params", [], "params: expected an object, got a list"),
    ("encoder.dimension", 0, "encoder.dimension: must be >= 1, got 0"),
    ("encoder.identity", ..., "encoder: missing required key(s) ['identity']"),
    ("cost_scale_usd", 0, "cost_scale_usd: must be > 0"),
    ("cost_scale_usd", "inf", 'cost_scale_usd: expected a number, got "inf"'),
    ("models[1].name", "m0", "models: name 'm0' is listed twice"),
    ("models[0].price_input_per_mtok", -1, "models[0] ('m0').price_input_per_mtok: must be >= 0"),
    ("models", [], "models: must list at least one model"),
    ("validation", [], "validation: must list at least one operating point"),
    ("validation[0].quality", "nan", 'validation[0].quality: expected a number, got "nan"'),
    ("validation[0].lam", -1, 'validation[0].lam: must be a number >= 0 or "inf"'),
    ("training.n_train", True, "training.n_train: expected an integer, got true"),
    ("state", {"state.json": "not a hash"}, "state.state.json: string should match pattern"),
    ("provenance", ..., "missing required key(s) ['provenance']"),
])
def test_a_malformed_manifest_is_one_line_naming_the_key(synth, tmp_path, path, value, says):
    from routeharness.deploy import saved

    folder = tmp_path / "lin"
    saved.save(saved.fit("linear", synth, encoder="precomputed", tune=False), folder)
    file = folder / "manifest.json"
    manifest = json.loads(file.read_text("utf-8"))
    file.write_text(json.dumps(_edit(manifest, path, value)), encoding="utf-8")
    with pytest.raises(RouteHarnessError) as info:
        saved.load(folder)
    assert str(info.value).startswith(f"{file}: ") and "\n" not in str(info.value)
    assert says in str(info.value), str(info.value)


def test_the_manifest_round_trips_through_its_contract(synth, tmp_path):
    """What save writes is what load reads, and a key given twice is refused."""
    from routeharness.deploy import saved

    folder = tmp_path / "lin"
    saved.save(saved.fit("linear", synth, encoder="precomputed", tune=False), folder)
    file = folder / "manifest.json"
    loaded = saved.load(folder)
    assert loaded.manifest.model_dump(mode="json", by_alias=True) == json.loads(
        file.read_text("utf-8"))
    assert loaded.validation[-1].lam == float("inf")  # "inf" on disk
    text = file.read_text("utf-8")
    file.write_text(text.replace('"cost_scale_usd"', '"cost_scale_usd": 1, "cost_scale_usd"',
                                 1), encoding="utf-8")
    with pytest.raises(RouteHarnessError, match="key 'cost_scale_usd' is given twice"):
        saved.load(folder)


def test_a_router_that_is_not_saveable_is_refused_before_work(cli, tmp_path,
                                                               tmp_path_factory):
    from plugin_site import env_with, plugin_site

    # the third-party test plugin's router declares no saveable tag
    done = cli("fit", "-r", "second-cheapest", "-t", "routerbench", "-o", str(tmp_path / "x"),
               env=env_with(plugin_site(tmp_path_factory)))
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: router 'second-cheapest' cannot be saved: its tags do not declare "
        "saveable=True (see docs/writing-a-router.md)")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("lines, message", [
    (['{"prompt": ""}'], "input, line 1: prompt: must be non-blank text"),
    (['{"prompt": "a", "colour": 1}'], r"input, line 1: unknown key\(s\) \['colour'\]"),
    (['{"prompt": "a", "id": 1}', '{"prompt": "b", "id": 1}'], "given twice"),
    (['{"prompt": "a", "embedding": [1, "x"]}'],
     'input, line 1: embedding\\[1\\]: expected a number, got "x"'),
    (['{"prompt": "a", "embedding": [1, NaN]}'],
     r"input, line 1: embedding\[1\]: must be a finite number, got nan"),
    (['{"prompt": "a", "embedding": [Infinity]}'],
     r"input, line 1: embedding\[0\]: must be a finite number, got inf"),
    (['{"prompt": "a", "embedding": []}'], r"input, line 1: embedding: must not be empty"),
    (['{"prompt": 5}'], "input, line 1: prompt: expected a string, got 5"),
    (['{"prompt": "a", "group": 3}'], "input, line 1: group: expected a string, got 3"),
    (['{"prompt": "a", "id": true}'],
     "input, line 1: id: expected a string or an integer, got true"),
    (['"just text"', '{"prompt": "a", "prompt": "b"}'],
     "input, line 2: not valid JSON \\(key 'prompt' is given twice"),
    (['{"prompt": "a", "lam": "0.5"}'], r"input, line 1: unknown key\(s\) \['lam'\]"),
    (['{"prompt": "a", "embedding": [1, 2]}', '{"prompt": "b", "embedding": [1]}'],
     "different lengths"),
    (['{"prompt": "a"'], "not valid JSON"),
    ([], "no prompt"),
])
def test_prompt_input_problems_are_one_line(lines, message):
    with pytest.raises(RouteHarnessError, match=message) as info:
        read_prompts(lines, "input")
    assert str(info.value).startswith("input") and "\n" not in str(info.value)


def test_plain_lines_are_prompts():
    items = read_prompts(["hello there", "", '{"prompt": "x", "id": "q", "group": "g"}'], "in")
    assert [(i.id, i.prompt, i.group) for i in items] == [("1", "hello there", None),
                                                          ("q", "x", "g")]


#: every built-in router; the learned ones with their defaults (tuning them on top adds
#: minutes, not coverage: tuning is the same code path as eval's, checked above)
BUILT_IN = ["knn", "knn-vote", "linear", "mlp", "mlp-select",
            pytest.param("routerdc", marks=pytest.mark.slow),  # 25 s of training
            "graphrouter", "bandit", "best-single", "cheapest", "random"]


@pytest.mark.parametrize("router", BUILT_IN)
def test_every_built_in_router_routes_routerbench_as_eval_after_fit(router, mbpp, tmp_path):
    """fit then route on RouterBench (its MBPP group, real MiniLM embeddings) gives eval's
    test routes for the same router, seed and trade-off."""
    from routeharness.deploy import saved
    from routeharness.routers.base import one_torch_thread

    tune = router in ("knn", "knn-vote", "linear")
    with one_torch_thread():
        fitted = saved.fit(router, "routerbench:mbpp", encoder="minilm", seed=2, tune=tune)
        saved.save(fitted, tmp_path / "r")
        loaded = saved.load(tmp_path / "r")
        embedded = _embedded(mbpp)
        protocol = Protocol(seeds=(2,), n_bootstrap=0, tune=tune)
        routed = route_one(plan_routers([router], references=False)[0], embedded, 2, protocol)
    rows = mbpp.test.complete_rows()
    X, groups = mbpp.X["test"][rows], list(mbpp.test.groups[rows])
    for i, lam in enumerate(protocol.lambdas):
        got = loaded.route_vectors(X, float(lam), groups=groups).choices
        np.testing.assert_array_equal(got, routed.choices[i], err_msg=f"{router} lam={lam}")


def _embedded(problem):
    from routeharness.embedding.embed import EmbeddedTask

    return EmbeddedTask(problem.task, problem.X, 0, 0, [], problem.train.encode_text,
                        problem.train.encoder_path)


def test_fit_never_writes_into_the_dataset(synth, capsys):
    from routeharness.cli._app import main

    inside = Path(synth) / "train" / "router"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-r", "linear", "-t", synth, "-e", "precomputed", "-o", str(inside), "-q"])
    assert exit_info.value.code == 1
    assert "would overwrite the input" in capsys.readouterr().err
    assert not inside.exists()
