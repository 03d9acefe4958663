"""The text task suite (alpacaeval, llmrouter, routerdc): fidelity to the upstream numbers,
splits and leak removal, sub-tasks, `data info` / `data build`, and Hub dataset ids."""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from routeharness.common.errors import RouteHarnessError, UnknownNameError
from routeharness.data.cards import load_card
from routeharness.data.columns import SPLITS
from routeharness.data.dataset import find_leaks
from routeharness.data.spec import parse_hub_spec
from routeharness.data.tasks import load_local, load_task, task_info

ROOT = Path(__file__).resolve().parent.parent
TEXT_TASKS = ("alpacaeval", "llmrouter", "routerdc")
#: the text tasks shipped in the package (routerdc's data has no licence: never shipped)
EMBEDDED_TASKS = ("alpacaeval", "llmrouter")


def _all_rows(task):
    scores = np.concatenate([task.splits[s].scores for s in SPLITS])
    costs = np.concatenate([task.splits[s].costs for s in SPLITS])
    groups = np.concatenate([task.splits[s].groups for s in SPLITS])
    return scores, costs, groups


@pytest.fixture(scope="session")
def mirror_tasks(shared_data: Path):
    """Each text task loaded from the upstream mirror in ../shared/data."""
    return {name: load_task(name, data_dir=shared_data) for name in TEXT_TASKS}


@pytest.fixture(scope="session")
def embedded_tasks():
    """Each shipped text task from the canonical copy embedded in the package."""
    return {name: load_task(name) for name in EMBEDDED_TASKS}


def test_cards_are_valid_and_state_their_rules():
    cards = {name: load_card(ROOT / "tasks" / f"{name}.yaml") for name in TEXT_TASKS}
    assert [len(cards[n].models) for n in TEXT_TASKS] == [55, 9, 7]
    for card in cards.values():
        assert all(m.get("description") for m in card.models), card.name
        assert all(m.get("price_output_per_mtok", 0) > 0 for m in card.models), card.name
        assert card.license and card.citation and card.cost.get("definition")
    alpaca = cards["alpacaeval"]
    assert {"NullModel", "gpt4_gamed", "gpt4_1106_preview"}.isdisjoint(
        m["name"] for m in alpaca.models)
    assert alpaca.cost["prices_as_of"] and alpaca.cost["price_sources"]
    assert len(alpaca.groups) == 5 and all(g["description"] for g in alpaca.groups)
    assert "119" in " ".join(cards["llmrouter"].notes)
    assert "value > 0" in cards["routerdc"].score["rule"]


def test_embedded_copies_equal_a_fresh_build_from_the_mirror(mirror_tasks, embedded_tasks):
    assert set(embedded_tasks) == set(EMBEDDED_TASKS)
    for name in EMBEDDED_TASKS:
        assert embedded_tasks[name].fingerprint() == mirror_tasks[name].fingerprint(), name


def test_alpacaeval_reproduces_the_upstream_leaderboard(shared_data: Path, mirror_tasks):
    task = mirror_tasks["alpacaeval"]
    scores, costs, groups = _all_rows(task)
    assert scores.shape == (805, 55)
    leaderboard = {}
    with (shared_data / "alpacaeval" / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv").open(
            newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            leaderboard[record[""]] = float(record["win_rate"])
    checked = 0
    for j, model in enumerate(task.models):
        if model.name not in leaderboard:
            continue  # text_davinci_003 is not on the upstream leaderboard file
        win_rate = np.nanmean(scores[:, j]) * 100
        assert abs(win_rate - leaderboard[model.name]) < 0.5, model.name
        checked += 1
    assert checked == 54
    # the 10 cells without an upstream annotation are missing, not zero, and cost nothing known
    assert np.isnan(scores).sum() == 10
    assert np.isnan(costs[np.isnan(scores)]).all()
    known = costs[~np.isnan(scores)]
    assert (known >= 0).all() and (known > 0).mean() > 0.99  # a few answers are empty
    # the split is stratified by sub-dataset: 30% of each is test
    for group in task.groups:
        in_group = (groups == group).sum()
        in_test = (task.splits["test"].groups == group).sum()
        assert abs(in_test - 0.3 * in_group) <= 1, group
    assert not any(find_leaks(task).values())


def test_alpacaeval_cost_is_chars_over_four_times_the_output_price(shared_data: Path,
                                                                    mirror_tasks):
    task = mirror_tasks["alpacaeval"]
    test = task.splits["test"]
    with (shared_data / "alpacaeval" / "weighted_alpaca_eval_gpt4_turbo_output_chars.csv").open(
            newline="", encoding="utf-8") as handle:
        chars = list(csv.DictReader(handle))
    prompts = [json.loads(line) for line in (shared_data / "alpacaeval" /
               "weighted_alpaca_eval_gpt4_turbo_prompts.jsonl").read_text("utf-8").splitlines()]
    row_of_prompt = {p["instruction"]: int(p["prompt_id"]) for p in prompts}
    j = test.model_names.index("gpt4_0613_concise")
    i = 0
    expected = float(chars[row_of_prompt[test.prompts[i]]]["gpt4_0613_concise"]) / 4 * 60.0 / 1e6
    assert math.isclose(test.costs[i, j], expected, rel_tol=1e-12)
    # GPT-4 is the most expensive model on average
    assert test.model_names[int(np.nanargmax(np.nanmean(test.costs, axis=0)))] == \
        "gpt4_0613_concise"


def test_llmrouter_splits_groups_and_leak_removal(shared_data: Path, mirror_tasks):
    task = mirror_tasks["llmrouter"]
    sizes = {s: task.splits[s].n for s in SPLITS}
    assert sizes["train"] + sizes["validation"] == 5608
    assert sizes["test"] == 500 - 119
    assert len(task.groups) == 14 and len(task.models) == 9
    assert not any(find_leaks(task).values())
    upstream_test = json.loads((shared_data / "llmrouter" /
                                "dcrouter_preprocessed__test.json").read_text("utf-8"))
    train_questions = {r["question"] for r in json.loads(
        (shared_data / "llmrouter" / "dcrouter_preprocessed__train.json").read_text("utf-8"))}
    kept = [r for r in upstream_test if r["question"] not in train_questions]
    assert [r["question"] for r in kept] == task.splits["test"].prompts
    # scores are upstream's, unchanged; cost = (ceil(chars/4) x input + 256 x output) / 1e6
    test = task.splits["test"]
    j = test.model_names.index("llama-3.3-nemotron-super-49b-v1")
    assert [r["scores"]["llama-3.3-nemotron-super-49b-v1"] for r in kept] == \
        test.scores[:, j].tolist()
    tokens = math.ceil(len(test.prompts[0]) / 4)
    assert math.isclose(test.costs[0, j], (tokens * 0.9 + 256 * 0.9) / 1e6, rel_tol=1e-12)
    # validation is 10% of each group of the upstream train file
    for group in task.groups:
        n_val = (task.splits["validation"].groups == group).sum()
        n_all = n_val + (task.splits["train"].groups == group).sum()
        assert abs(n_val - 0.1 * n_all) <= 1, group


def test_routerdc_applies_routerdc_score_rule(shared_data: Path, mirror_tasks):
    task = mirror_tasks["routerdc"]
    scores, costs, groups = _all_rows(task)
    assert set(task.groups) == {"mmlu", "gsm8k", "cmmlu", "arc-challenge", "arc-easy",
                                "humaneval"}
    multiple_choice = np.isin(groups, ["mmlu", "cmmlu", "arc-challenge", "arc-easy"])
    assert set(np.unique(scores[multiple_choice])) == {0.0, 1.0}
    generation = scores[~multiple_choice]
    assert ((generation > 0) & (generation < 1)).any()  # fractions of 10 samples, as is
    raw = json.loads((shared_data / "routerdc" / "mmlu_train.json").read_text("utf-8"))
    model = "meta-llama/Meta-Llama-3-8B"
    expected = np.mean([1.0 if r["scores"][model] > 0 else 0.0 for r in raw]) * 100
    j = task.splits["train"].model_names.index(model)
    loaded = np.concatenate([task.splits[s].scores[task.splits[s].groups == "mmlu", j]
                             for s in ("train", "validation")]).mean() * 100
    assert math.isclose(loaded, expected, rel_tol=1e-12)
    assert not any(find_leaks(task).values())
    n_test_upstream = sum(len(json.loads(p.read_text("utf-8")))
                          for p in (shared_data / "routerdc").glob("*test.json"))
    assert task.splits["test"].n == n_test_upstream - 23
    # price by size: the 8B models cost 8/7 of the 7B ones on every prompt
    ratio = costs[:, task.splits["train"].model_names.index(model)] / costs[:, 0]
    assert np.allclose(ratio, 8 / 7)


def _upstream_routerbench_accuracy(directory: Path) -> dict[tuple[str, str], float]:
    """Accuracy per (model, benchmark) straight from the CSVs (blank cells skipped)."""
    csv.field_size_limit(2**31 - 1)
    totals: dict[tuple[str, str], list[float]] = defaultdict(list)
    for path in sorted(directory.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            models = [c for c in reader.fieldnames or [] if "|" not in c and c not in
                      ("", "sample_id", "prompt", "eval_name", "oracle_model_to_route_to")]
            for record in reader:
                for model in models:
                    if record[model].strip():
                        totals[(model, record["eval_name"])].append(float(record[model]))
    return {key: float(np.mean(values)) for key, values in totals.items()}


def test_routerbench_accuracy_per_benchmark_matches_the_csvs(shared_data: Path,
                                                             routerbench_embedded):
    upstream = _upstream_routerbench_accuracy(shared_data / "routerbench")
    assert len(upstream) == 11 * 3
    for task in (load_task("routerbench", data_dir=shared_data), routerbench_embedded):
        scores, _, groups = _all_rows(task)
        for j, model in enumerate(task.models):
            for group in task.groups:
                loaded = np.nanmean(scores[groups == group, j])
                assert math.isclose(loaded, upstream[(model.name, group)], abs_tol=1e-12), \
                    (model.name, group)


def test_group_subtasks(embedded_tasks, shared_data: Path):
    sub = load_task("llmrouter:gsm8k")
    assert sub.name == "llmrouter:gsm8k"
    assert all(set(sub.splits[s].groups) == {"gsm8k"} for s in SPLITS)
    full = embedded_tasks["llmrouter"]
    assert sub.splits["test"].n == int((full.splits["test"].groups == "gsm8k").sum())
    assert set(load_task("alpacaeval:vicuna").groups) == {"vicuna"}
    assert load_task("routerdc:humaneval", data_dir=shared_data).splits["test"].n == 49
    with pytest.raises(UnknownNameError, match="human_eval"):
        load_task("routerdc:human_eval", data_dir=shared_data)


def test_per_group_results_for_every_group(embedded_tasks, mirror_tasks):
    from routeharness.evaluation.protocol import DEFAULT_LAMBDAS
    from routeharness.evaluation.scoring import score_choices

    for name, task in {**embedded_tasks, "routerdc": mirror_tasks["routerdc"]}.items():
        test = task.splits["test"]
        test = test.subset(test.complete_rows())
        choices = np.tile(np.argmax(test.scores, axis=1), (len(DEFAULT_LAMBDAS), 1))
        scored = score_choices(test, choices, DEFAULT_LAMBDAS)
        assert set(scored["per_group"]) == set(map(str, test.groups)), name
        assert sum(g["n"] for g in scored["per_group"].values()) == test.n


@pytest.mark.slow
def test_eval_on_a_subtask_end_to_end(cache_dir: Path):
    from routeharness.evaluation.matrix import evaluate
    from routeharness.evaluation.protocol import Protocol

    result = evaluate(["knn"], ["alpacaeval:vicuna"],
                      protocol=Protocol(n_bootstrap=0, tune=False), references=True)
    reference = result.tasks["alpacaeval:vicuna"]
    assert reference.sizes["test"] == 24 and len(reference.models) == 55
    routers = {r.router: r for r in result.records}
    assert {"knn", "best-single", "random"} <= set(routers)
    assert reference.oracle.quality_at_0 >= routers["knn"].metrics.quality_at_0
    assert list(routers["knn"].per_group) == ["vicuna"]


def test_data_info_reports_sizes_references_and_leaks(cli):
    info = task_info(load_task("llmrouter", allow_leaks=True))
    assert sum(info["sizes"]["test"].values()) == 381
    assert info["sizes"]["test"]["gpqa"] == 0 and info["sizes"]["train"]["gpqa"] > 0
    assert info["leaks"] == {"test-train": 0, "test-validation": 0, "validation-train": 0}
    best = info["best_single"]["test"]
    assert best["model"] == "llama-3.1-nemotron-51b-instruct"
    assert info["oracle"]["test"] > best["score"]
    alpaca = task_info(load_task("alpacaeval", allow_leaks=True))
    assert sum(alpaca["missing_cells"].values()) == 10
    # RouterBench has 2 test prompts that also appear in train: a warning with the count
    result = cli("data", "info", "routerbench")
    assert result.returncode == 0, result.stderr
    assert "2 test prompts also appear in train" in result.stderr
    assert "best single model" in result.stdout and "gpt-4-1106-preview" in result.stdout


def test_data_build_alpacaeval_from_the_upstream_results_layout(tmp_path: Path,
                                                                shared_data: Path,
                                                                mirror_tasks):
    raw = shared_data / "alpacaeval" / "raw_sample"
    model_dir = tmp_path / "alpaca_eval" / "results" / "gemma-2b-it" / \
        "weighted_alpaca_eval_gpt4_turbo"
    model_dir.mkdir(parents=True)
    shutil.copy(raw / "gemma-2b-it.weighted_alpaca_eval_gpt4_turbo.annotations.json",
                model_dir / "annotations.json")
    from routeharness.data.tasks import build_task

    out = tmp_path / "built"
    built = build_task("alpacaeval", tmp_path / "alpaca_eval", out)
    assert (out / "dataset_dict.json").is_file() and (out / "routing.json").is_file()
    card_text = (out / "README.md").read_text("utf-8")
    assert "CC BY-NC 4.0" in card_text and "@misc{alpaca_eval" in card_text
    meta = json.loads((out / "routing.json").read_text("utf-8"))
    assert meta["models"][0]["name"] == "gemma-2b-it"
    assert meta["models"][0]["price_output_per_mtok"] == 0.10
    loaded = load_local(out)
    assert [m.name for m in loaded.models] == ["gemma-2b-it"]
    mirror = mirror_tasks["alpacaeval"]
    j = mirror.splits["train"].model_names.index("gemma-2b-it")
    for split in SPLITS:  # same ids, same split, same scores and costs as the mirror
        assert loaded.splits[split].ids == mirror.splits[split].ids
        assert np.allclose(loaded.splits[split].scores[:, 0], mirror.splits[split].scores[:, j])
        assert np.allclose(loaded.splits[split].costs[:, 0], mirror.splits[split].costs[:, j])
    assert built.fingerprint() == loaded.fingerprint()


def test_data_build_llmrouter_loads_back_identically(tmp_path: Path, shared_data: Path,
                                                     mirror_tasks, cli):
    result = cli("data", "build", "llmrouter", "--source", str(shared_data),
                 "--out", str(tmp_path / "llmrouter"))
    assert result.returncode == 0, result.stderr
    loaded = load_task(str(tmp_path / "llmrouter"))
    assert loaded.fingerprint() == mirror_tasks["llmrouter"].fingerprint()
    assert loaded.models[0].description.startswith("Llama3-ChatQA-1.5-8B")
    from routeharness.data.tasks import build_task

    with pytest.raises(RouteHarnessError, match="not an empty directory"):
        build_task("llmrouter", shared_data, tmp_path / "llmrouter")


def test_hub_spec_parsing():
    assert parse_hub_spec("hub:org/name") == ("org/name", None, None)
    assert parse_hub_spec("hub:org/name@v1.2:gsm8k") == ("org/name", "v1.2", "gsm8k")
    with pytest.raises(RouteHarnessError, match="hub:ORG/NAME"):
        parse_hub_spec("hub:")


def test_hub_dataset_without_network_is_one_clear_line(cli, tmp_path: Path):
    result = cli("eval", "--router", "knn", "--task", "hub:routeharness/no-such-data@v1",
                 "-o", str(tmp_path / "r.json"), env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: cannot load Hub dataset 'routeharness/no-such-data@v1'")
    assert not (tmp_path / "r.json").exists()


@pytest.mark.slow
def test_eval_knn_on_the_three_text_tasks(cli, cache_dir: Path, tmp_path: Path,
                                          shared_data: Path):
    out = tmp_path / "text.json"
    # encoding the three tasks' ~8,000 prompts takes 5-15 minutes on 2 cores
    result = cli("eval", "--router", "knn", "--task", "alpacaeval", "--task", "llmrouter",
                 "--task", "routerdc", "--data-dir", str(shared_data), "-o", str(out),
                 timeout=2400)
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text("utf-8"))
    assert set(saved["tasks"]) == set(TEXT_TASKS)
    for name in TEXT_TASKS:
        records = {r["router"]: r for r in saved["records"] if r["task"] == name}
        assert saved["tasks"][name]["oracle"]["auc"] >= records["knn"]["metrics"]["auc"]
        assert len(records["knn"]["per_group"]) == len(saved["tasks"][name]["groups"]) or \
            name == "llmrouter"  # gpqa and human_eval have no test rows after leak removal
