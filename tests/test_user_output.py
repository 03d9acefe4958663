"""Output a user sees, tested as a user sees it: every command the README and docs/ show,
run for real in a pipe and under a pseudo-terminal of a fixed size (100 columns,
and a narrow one for tables), on small data (a `data synth` task, routerbench:mbpp, the
committed study parts).

In each: every table has all its rows and every cell whole (however the terminal's width
wrapped them; names on one line), its title and note are one line each, and each status,
warning or error line is one line exactly as long as its content (a pipe's lines are
never padded, and COLUMNS is set narrow in a pipe: its output must not depend on it).
Nothing here asserts a terminal's or a path's length: the expected lines are built from
the paths the test made.

A command the README or a page under docs/ shows (``routeharness <command> ...`` in code)
needs a case here: ``test_every_documented_command_has_a_case`` fails otherwise.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from screen import Shown, check_pipe_lines, check_tables, in_pipe, in_terminal

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
#: commands the docs show that a plugin adds (not built in), and where
PLUGIN_COMMANDS = {"tiny-info": "tests/plugins/routeharness-tiny (docs/plugin-hooks.md)"}
#: terminal widths: a usual one, and a narrow one for tables (narrower than most tables)
WIDE, NARROW = 100, 50

COVERED: set[str] = set()


def case(*commands: str) -> Callable[[Any], Any]:
    """Marks a test as the case of these commands (``"data info"``)."""
    def mark(test: Any) -> Any:
        COVERED.update(commands)
        return test
    return mark


Args = tuple[str, ...] | Callable[[str], tuple[str, ...]]


def look(args: Args, *, widths: tuple[int, ...] = (WIDE,), env: dict[str, str] | None = None,
         cwd: Path | None = None, code: int = 0) -> list[Shown]:
    """The command in a pipe and under a terminal of each width (run side by side: the
    runs are independent); ``args`` may be a function of the run's tag ("pipe",
    "tty100", ...) for commands that write a file."""
    from concurrent.futures import ThreadPoolExecutor

    plan = [("pipe", None), *((f"tty{w}", w) for w in widths)]
    argvs = [args(tag) if callable(args) else args for tag, _ in plan]

    def run(tag: str, width: int | None, argv: tuple[str, ...]) -> Shown:
        shown = (in_pipe(*argv, env=env, cwd=cwd) if width is None
                 else in_terminal(*argv, columns=width, env=env, cwd=cwd))
        shown.tag = tag
        return shown

    with ThreadPoolExecutor(len(plan)) as pool:
        runs = list(pool.map(run, [t for t, _ in plan], [w for _, w in plan], argvs))
    for shown in runs:
        assert shown.returncode == code, \
            f"{shown.tag}: exit {shown.returncode}\n{shown.describe()}"
        if not shown.terminal:
            check_pipe_lines(shown)
    return runs


def table_lines(shown: Shown) -> list[str]:
    """Where tables are: standard output in a pipe, the screen in a terminal."""
    return shown.screen if shown.terminal else shown.stdout.splitlines()


def shows_tables(shown: Shown, expected: list[dict[str, Any]], *,
                 timings: frozenset[str] = frozenset()) -> None:
    check_tables(table_lines(shown), expected, one_line_rows=not shown.terminal,
                 timings=timings)


def shows_line(shown: Shown, line: str | re.Pattern[str], stream: str = "stderr") -> None:
    """``line`` (a string: exactly; a pattern: the whole line) is one line of the output
    (``stream`` in a pipe, the screen in a terminal): never wrapped, never cut."""
    lines = shown.screen if shown.terminal else getattr(shown, stream).splitlines()
    found = any(text == line if isinstance(line, str) else line.fullmatch(text)
                for text in lines)
    assert found, f"{shown.tag}: no line {line!r} in\n{shown.describe()}"


def as_dicts(tables: list[Any]) -> list[dict[str, Any]]:
    return [table.to_dict() for table in tables]


def json_tables(*args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    done = in_pipe(*args, "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# --- the data the cases run on ------------------------------------------------------------------
@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("user-output")


@pytest.fixture(scope="module")
def env(cache_dir) -> dict[str, str]:
    return {"ROUTEHARNESS_CACHE": str(cache_dir)}


def _main(*args: str) -> None:
    from routeharness.cli._app import main

    try:
        main(list(args))
    except SystemExit as exc:
        assert not exc.code, f"routeharness {' '.join(args)}: exit {exc.code}"


SYNTH_OPTIONS = ("--train", "120", "--validation", "60", "--test", "60", "--models", "4",
                 "--clusters", "4", "--dim", "8")


@pytest.fixture(scope="module")
def synth(home) -> Path:
    out = home / "synth"
    _main("data", "synth", str(out), *SYNTH_OPTIONS)
    return out


@pytest.fixture(scope="module")
def mbpp_cached(cache_dir, minilm) -> str:
    """routerbench:mbpp's prompts in the session cache, embedded here with the loaded
    encoder, so that the commands below find them instead of loading the model."""
    from routeharness.data.tasks import load_task
    from routeharness.embedding.cache import EmbeddingCache

    cache = EmbeddingCache(str(cache_dir))
    for data in load_task("routerbench:mbpp").splits.values():
        cache.embed(minilm, data.texts_to_embed())
    return "routerbench:mbpp"


@pytest.fixture(scope="module")
def synth_router(home, synth) -> Path:
    from routeharness.deploy import saved

    folder = home / "synth-knn"
    saved.save(saved.fit("knn", str(synth), encoder="precomputed", tune=False), folder)
    return folder


@pytest.fixture(scope="module")
def synth_results(home, synth) -> Path:
    from routeharness.evaluation.matrix import evaluate
    from routeharness.evaluation.protocol import Protocol

    path = home / "synth-results.json"
    evaluate(["knn", "linear"], [str(synth)], encoder="precomputed",
             protocol=Protocol(n_bootstrap=20, tune=False)).save(path)
    return path


# --- listings ---------------------------------------------------------------------------------
@case("routers", "tasks", "encoders", "plugins", "schema")
@pytest.mark.parametrize("command", ["routers", "tasks", "encoders", "plugins", "schema"])
def test_listings_show_every_entry_whole(command, env):
    expected = json_tables(command, env=env)
    assert expected[0]["rows"]
    for shown in look((command,), widths=(WIDE, NARROW), env=env):
        shows_tables(shown, expected)


# --- eval and results ---------------------------------------------------------------------------
@case("eval")
def test_eval(home, env, mbpp_cached):
    from routeharness.results.records import ResultSet
    from routeharness.results.sets import report_tables

    def args(tag: str) -> tuple[str, ...]:
        return ("eval", "-r", "knn", "-t", mbpp_cached, "--bootstrap", "20",
                "-o", str(home / f"eval-{tag}.json"))

    for shown in look(args, widths=(WIDE, NARROW), env=env, cwd=home):
        output = home / f"eval-{shown.tag}.json"
        shows_tables(shown, as_dicts(report_tables(ResultSet.from_json(output))))
        shows_line(shown, f"• loading task {mbpp_cached}")
        shows_line(shown, re.compile(rf"• embeddings for {mbpp_cached} \(minilm\): .+"))
        shows_line(shown, f"results saved to {output}")


@case("results show")
def test_results_show(synth_results, env):
    expected = json_tables("results", "show", str(synth_results), env=env)
    assert len(expected[0]["rows"]) == 6  # knn, linear, best-single, random, oracle, frontier
    for shown in look(("results", "show", str(synth_results)), widths=(WIDE, NARROW), env=env):
        shows_tables(shown, expected)


# --- data ------------------------------------------------------------------------------------------
@case("data info")
def test_data_info(env):
    from routeharness.cli.data import info_tables
    from routeharness.data.tasks import load_task, task_info

    expected = as_dicts(info_tables(task_info(load_task("routerbench:mbpp", allow_leaks=True))))
    for shown in look(("data", "info", "routerbench:mbpp"), widths=(WIDE, NARROW), env=env):
        shows_tables(shown, expected)
        shows_line(shown, re.compile(r"routerbench:mbpp v1  source: .+"), "stdout")
        shows_line(shown, re.compile(r"warning: \d+ test prompts? also appears? in \w+ "
                                     r"\(duplicated or leaked prompts\)"))


@case("data validate")
def test_data_validate(synth, home):
    for shown in look(("data", "validate", str(synth))):
        shows_line(shown, f"ok: {synth} follows the routeharness dataset schema", "stdout")
    bad = home / "a folder with a long name for bad data" / "outcomes.csv"
    bad.parent.mkdir()
    bad.write_text("id,prompt,group,split,score:a,cost:a\nq1,hello,g,train,0.5,-1\n"
                   "q2,hi,g,validation,7,1\nq3,hey,g,test,0.5,1\n", encoding="utf-8")
    for shown in look(("data", "validate", str(bad)), code=1):
        errors = [line for line in shown.lines if line.startswith("error: ")]
        assert len(errors) == 2 and all(str(bad) in line for line in errors), shown.describe()
        shows_line(shown, f"Error: {bad}: 2 problems found")


@case("data build")
def test_data_build(home):
    source = ROOT / "tests" / "fixtures" / "vhelm"

    def args(tag: str) -> tuple[str, ...]:
        return ("data", "build", "vhelm-mm", "--source", str(source), "--suite", "v2.1.0",
                "--out", str(home / f"vhelm-{tag}"))

    for shown in look(args):
        out = home / f"vhelm-{shown.tag}"
        shows_line(shown, f"built vhelm-mm v1 in {out}: train 30, validation 5, test 15; "
                          f"3 models; loads with --task {out}", "stdout")


@case("data synth")
def test_data_synth(home):
    for shown in look(lambda tag: ("data", "synth", str(home / f"synth-{tag}"), *SYNTH_OPTIONS)):
        out = home / f"synth-{shown.tag}"
        shows_line(shown, f"wrote synthetic to {out}: train 120, validation 60, test 60; "
                          f"4 models, 8-d embeddings; evaluate with --task {out} --encoder "
                          "precomputed", "stdout")


@case("data export")
def test_data_export(synth, home, env):
    for shown in look(lambda tag: ("data", "export", str(synth), "-o", str(home / f"x-{tag}")),
                      env=env):
        out = home / f"x-{shown.tag}"
        shows_line(shown, f"wrote synthetic to {out} in llmrouter's format: train 120, "
                          f"validation 60, test 60; 4 models, 8-d embeddings from "
                          f"precomputed; evaluate with --task {out} --encoder precomputed",
                   "stdout")


@case("data import")
def test_data_import(home, shared_data):
    source = shared_data / "routerarena"
    for shown in look(lambda tag: ("data", "import", "routerarena", str(source),
                                   str(home / f"arena-{tag}"))):
        out = home / f"arena-{shown.tag}"
        shows_line(shown, f"imported routerarena from {source} to {out}: train 567, "
                          "validation 81, test 161; 2 models, 36 groups; cost: the real USD "
                          "per call the source records (evaluation_result.inference_cost); "
                          f"evaluate with --task {out}", "stdout")


@pytest.fixture(scope="module")
def request_log(home) -> tuple[Path, Path]:
    """A request log of 60 routed chat requests (as ``serve --request-log --log-prompts
    --shadow`` writes it) and outcome labels of every prompt x model."""
    from routeharness.deploy.requestlog import SCHEMA, prompt_sha256

    models, lines, labels = ["m0", "m1", "m2"], [], []
    for i in range(60):
        text = f"Logged question {i} about subject {i % 4}."
        routed, shadow = models[i % 3], models[(i // 2) % 3]
        lines.append({"schema": SCHEMA, "id": f"r{i}", "time": 1.7e9 + i, "router": "knn",
                      "prompt_sha256": prompt_sha256(text), "prompt": text, "routed": True,
                      "lam_asked": 0, "lam": 0, "routed_model": routed, "model": routed,
                      "answered": True, "status": 200, "fallbacks": [], "budget": None,
                      "latency_ms": 120.0, "input_tokens": 12, "output_tokens": 40,
                      "cost_usd": 0.001, "cost_source": "upstream",
                      "predicted_score": 0.5 + 0.1 * (i % 3), "predicted_cost_usd": 0.001,
                      "shadow": {"router": "linear with a long label", "model": shadow,
                                 "predicted_score": 0.6, "predicted_cost_usd": 0.002}})
        labels += [{"id": f"r{i}", "model": m, "score": float((i + k) % 2),
                    "group": f"subject {i % 4}", "cost_usd": 0.001 * (k + 1)}
                   for k, m in enumerate(models)]
    log, labelled = home / "requests.jsonl", home / "labels.jsonl"
    log.write_text("".join(json.dumps(x) + "\n" for x in lines), "utf-8")
    labelled.write_text("".join(json.dumps(x) + "\n" for x in labels), "utf-8")
    return log, labelled


@case("data from-log")
def test_data_from_log(request_log, home):
    log, labels = request_log
    for shown in look(lambda tag: ("data", "from-log", str(log), str(labels),
                                   str(home / f"from-log-{tag}"))):
        out = home / f"from-log-{shown.tag}"
        shows_line(shown, re.compile(
            rf"wrote {re.escape(str(out))} from {re.escape(str(log))} and "
            rf"{re.escape(str(labels))}: train \d+, validation \d+, test \d+; 3 models, 4 "
            rf"groups; cost: .+; evaluate with --task {re.escape(str(out))}"), "stdout")
    bad = home / "bad labels.jsonl"
    bad.write_text('{"id": "r1", "model": "m0", "score": 2}\n', "utf-8")
    for shown in look(("data", "from-log", str(log), str(bad), str(home / "never")), code=1):
        shows_line(shown, f"Error: {bad}, line 1: score: must be a number in [0, 1]")


@case("results shadow")
def test_results_shadow(request_log):
    log, _ = request_log
    expected = json_tables("results", "shadow", str(log))
    assert [row["role"] for row in expected[0]["rows"]] == ["live", "shadow"]
    assert "60 routed requests, agreement 33.3%" in expected[0]["title"]
    for shown in look(("results", "shadow", str(log)), widths=(WIDE, NARROW)):
        shows_tables(shown, expected)


# --- fit, route, update, serve -------------------------------------------------------------------
@case("fit")
def test_fit(synth, home, env):
    def args(tag: str) -> tuple[str, ...]:
        return ("fit", "-r", "knn", "-t", str(synth), "-e", "precomputed", "-o",
                str(home / f"fitted-{tag}"))

    for shown in look(args, env=env):
        folder = home / f"fitted-{shown.tag}"
        shows_line(shown, re.compile(rf"saved knn \(fitted on 120 prompts of synthetic, "
                                     rf"validation AUC \d+\.\d\d\) to {re.escape(str(folder))}"))


def _route_table(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What `route` shows of its routes (records as --format json gives them)."""
    headers = ["id", "prompt", "model", "predicted score", "predicted cost (USD)"]
    rows = []
    for record in records:
        text = record["prompt"] if len(record["prompt"]) <= 60 else record["prompt"][:57] + "..."
        rows.append(dict(zip(headers, [record["id"], " ".join(text.split()), record["model"],
                                       f"{record['predicted_score']:.3f}",
                                       f"{record['predicted_cost_usd']:.6f}"], strict=True)))
    return {"title": f"routes at lam = {records[0]['lam']:g}", "headers": headers,
            "rows": rows, "note": ""}


@case("route")
def test_route_a_prompt_as_the_readme_does(home, env, mbpp_cached, minilm):
    """`route FOLDER "a prompt"` on a router fitted with the default encoder: the table
    has its row (it once printed headers and no row)."""
    from routeharness.deploy import saved

    folder = home / "mbpp-knn"
    saved.save(saved.fit("knn", mbpp_cached, tune=False), folder)
    prompt = "Write a SQL query that sums the sales of each region and sorts them by total"
    # what `route --format json` gives, routed here with the session's loaded encoder
    [route] = saved.load(folder).route_vectors(minilm.encode([prompt]), 0.0).rows()
    records = [{"id": "1", "prompt": prompt, **route}]
    for shown in look(("route", str(folder), prompt), env=env):
        shows_tables(shown, [_route_table(records)])


@case("route")
def test_route_a_file_with_a_budget(synth, synth_router, home, env):
    from routeharness.data.readers import load_path

    test = load_path(synth).splits["test"]
    prompts = home / "prompts.jsonl"
    ids = ["first", "a-prompt-id-longer-than-any-column-would-be-on-a-narrow-terminal", "3"]
    prompts.write_text("".join(json.dumps({"id": ids[i], "prompt": test.prompts[i],
                                           "embedding": test.embeddings[i].tolist()}) + "\n"
                               for i in range(3)), encoding="utf-8")
    args = ("route", str(synth_router), "--file", str(prompts), "--budget", "0.5")
    records = json.loads(in_pipe(*args, "--format", "json", env=env).stdout)
    assert [r["id"] for r in records] == ids  # --format json: one array, every route
    lines = in_pipe(*args, "--format", "jsonl", env=env).stdout.splitlines()
    assert [json.loads(line) for line in lines] == records
    for shown in look(args, widths=(WIDE, NARROW), env=env):
        shows_tables(shown, [_route_table(records)])
        shows_line(shown, re.compile(r"--budget 0\.5 USD per 1,000 prompts: lam = \S+ "
                                     r"\(validation: \S+ USD per 1,000 prompts, quality \S+\)"
                                     r"(; no trade-off meets .*)?"))


def _new_outcomes(synth: Path, path: Path, rows: range, score: str | None = None) -> Path:
    """Rows of synth's test split (prompts the router has not seen) as new outcomes."""
    from routeharness.data.readers import load_path

    test = load_path(synth).splits["test"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "group",
                         *(f"{k}:{m}" for m in test.model_names for k in ("score", "cost")),
                         "embedding"])
        for i in rows:
            cells = [f"new-{test.ids[i]}", test.prompts[i], test.groups[i]]
            for j in range(len(test.model_names)):
                cells += [score or test.scores[i, j], test.costs[i, j]]
            writer.writerow([*cells, json.dumps(test.embeddings[i].tolist())])
    return path


@case("update")
def test_update(synth, synth_router, home):
    new = _new_outcomes(synth, home / "new outcomes.csv", range(5))

    def args(tag: str) -> tuple[str, ...]:
        folder = home / f"updated-{tag}"
        shutil.copytree(synth_router, folder)
        return ("update", str(folder), str(new))

    for shown in look(args):
        shows_line(shown, f"updated {home / f'updated-{shown.tag}'}: 5 new prompt(s), 0 "
                          "cell(s) filled on known prompts; 125 training prompts now")
        shows_line(shown, re.compile(r"coverage \(outcomes / training prompts\): "
                                     r"\S+ 100\.0% \(125\)(, \S+ 100\.0% \(125\))+"))
    bad = _new_outcomes(synth, home / "bad outcomes.csv", range(5, 7), score="3")
    for shown in look(("update", str(synth_router), str(bad)), code=1):
        errors = [line for line in shown.lines if line.startswith("Error: ")]
        assert len(errors) == 1 and str(bad) in errors[0], shown.describe()


@case("serve")
def test_serve_says_where_it_listens(synth_router):
    pytest.importorskip("uvicorn")
    pytest.importorskip("fastapi")

    def port() -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    def line(number: int) -> str:
        return f"serving knn (4 models, 0 with an upstream) on http://127.0.0.1:{number}"

    number = port()
    server = subprocess.Popen([sys.executable, "-m", "routeharness", "serve", str(synth_router),
                               "--port", str(number)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        first = server.stderr.readline()
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert first == line(number) + "\n"
    number = port()
    shown = in_terminal("serve", str(synth_router), "--port", str(number), columns=NARROW,
                        until=line(number), timeout=120)
    shown.tag = "tty"
    shows_line(shown, line(number))


# --- leaderboards ---------------------------------------------------------------------------------
BOARD = "mbpp-v1"


@pytest.fixture(scope="module")
def boards(home, mbpp_cached) -> Path:
    """A one-task board (routerbench:mbpp, one seed, untuned) with knn's submission,
    verified."""
    root = home / "boards"
    (root / BOARD).mkdir(parents=True)
    (root / BOARD / "board.yaml").write_text(
        f"name: {BOARD}\nversion: 1\ndescription: RouterBench MBPP, one seed (a test board).\n"
        f'tasks:\n  - {{name: "{mbpp_cached}", version: 1}}\nencoder: minilm\nseeds: [0]\n'
        "protocol: {tune: false, max_configs: 24, n_bootstrap: 0}\nmain_metric: auc\n"
        "tolerance: 0.0001\n", encoding="utf-8")
    made = home / "submission-knn.json"
    _main("leaderboard", "run", BOARD, "-r", "knn", "--boards-dir", str(root), "-o", str(made),
          "-q")
    (root / BOARD / "submissions").mkdir()
    shutil.copy(made, root / BOARD / "submissions" / "knn.json")
    _main("leaderboard", "verify", str(root / BOARD / "submissions" / "knn.json"),
          "--boards-dir", str(root), "-q", "--record")
    return root


@case("leaderboard list")
def test_leaderboard_list(boards, env):
    args = ("leaderboard", "list", "--boards-dir", str(boards))
    expected = json_tables(*args, env=env)
    for shown in look(args, widths=(WIDE, NARROW), env=env):
        shows_tables(shown, expected)


@case("leaderboard run")
def test_leaderboard_run(boards, home, env):
    from routeharness.boards.run import load_submission
    from routeharness.results.sets import report_tables

    def args(tag: str) -> tuple[str, ...]:
        return ("leaderboard", "run", BOARD, "-r", "knn", "--boards-dir", str(boards), "-o",
                str(home / f"submission-{tag}.json"))

    for shown in look(args, env=env):
        path = home / f"submission-{shown.tag}.json"
        shows_tables(shown, as_dicts(report_tables(load_submission(path).result)))
        shows_line(shown, f"submission saved to {path}")
        shows_line(shown, re.compile(rf"{BOARD}: knn mean auc = \d+\.\d\d over 1 task\(s\) x "
                                     r"1 seed\(s\)"), "stdout")


@case("leaderboard validate")
def test_leaderboard_validate(boards, env):
    path = boards / BOARD / "submissions" / "knn.json"
    for shown in look(("leaderboard", "validate", str(path), "--boards-dir", str(boards)),
                      env=env):
        shows_line(shown, re.compile(rf"valid {re.escape(str(path))}: router knn \(\S+ \S+\) on "
                                     rf"{BOARD} v1, 1 record\(s\), data fingerprints match"),
                   "stdout")


@case("leaderboard verify")
def test_leaderboard_verify(boards, env):
    path = boards / BOARD / "submissions" / "knn.json"
    args = ("leaderboard", "verify", str(path), "--boards-dir", str(boards))
    expected = json_tables(*args, env=env)
    record = boards / BOARD / "verifications" / "knn.json"
    for shown in look((*args, "--record"), widths=(WIDE, NARROW), env=env):
        shows_tables(shown, expected)
        shows_line(shown, f"verification record written to {record}", "stdout")
        shows_line(shown, re.compile(r"verified: all \d+ numbers reproduce"), "stdout")


@case("leaderboard show")
def test_leaderboard_show(boards, env):
    from routeharness.boards.definition import load_board
    from routeharness.boards.standings import ranking, ranking_tables

    expected = as_dicts(ranking_tables(ranking(load_board(BOARD, str(boards)))))
    assert any(row["router"] == "knn" for row in expected[0]["rows"])  # verified: ranked
    for shown in look(("leaderboard", "show", BOARD, "--boards-dir", str(boards)),
                      widths=(WIDE, NARROW), env=env):
        shows_tables(shown, expected)


# --- the conformance kit --------------------------------------------------------------------------
@case("check")
def test_check(env):
    expected = json_tables("check", "best-single", env=env)
    for shown in look(("check", "best-single"), widths=(WIDE, NARROW), env=env):
        shows_tables(shown, expected, timings=frozenset({"seconds"}))


# --- studies ----------------------------------------------------------------------------------------
STUDIES = {
    "locality": ("-t", "{synth}", "-e", "precomputed", "--pairs", "500"),
    "sample-efficiency": ("-r", "linear", "-t", "{synth}", "-e", "precomputed",
                          "--fractions", "0.5,1", "--seeds", "0", "--no-tune"),
    "encoders": ("-r", "linear", "-t", "{synth}", "-e", "precomputed", "-e", "lexical",
                 "--seeds", "0", "--no-tune"),
    "shift": ("-r", "linear", "-t", "{synth}", "-e", "precomputed", "--seeds", "0", "--no-tune"),
    "sweep": ("-r", "knn", "-t", "{synth}", "-e", "precomputed", "--param", "k=1,5",
              "--seeds", "0"),
    "online": ("-r", "knn", "-r", "linear", "-t", "{synth}", "-e", "precomputed",
               "--seeds", "0,1", "--warmup", "20", "--batch", "20"),
}


@case(*(f"study {name}" for name in STUDIES))
@pytest.mark.parametrize("name", list(STUDIES))
def test_study(name, synth, home, env):
    from routeharness.study import study_module
    from routeharness.study.record import StudyResult

    options = tuple(part.format(synth=synth) for part in STUDIES[name])

    def args(tag: str) -> tuple[str, ...]:
        return ("study", name, *options, "--bootstrap", "50", "-o",
                str(home / f"study-{name}-{tag}.json"))

    for shown in look(args, env=env):
        path = home / f"study-{name}-{shown.tag}.json"
        shows_tables(shown, as_dicts(study_module(name).tables(StudyResult.load(path))))
        shows_line(shown, f"study saved to {path}")


@case("study images")
def test_study_images_on_a_task_without_images_is_one_line(synth, home, env):
    args = ("study", "images", "-r", "linear", "-t", str(synth), "-o", str(home / "images.json"))
    for shown in look(args, env=env, code=1):
        shows_line(shown, "Error: study images needs a task with images: 'synthetic' has none "
                          "(try blindtest or vhelm-mm)")


@case("study transfer")
def test_study_transfer(synth, home, env):
    """The synthetic task's models matched to two of RouterBench's through an alias
    table; fitted on the synthetic task, tested on routerbench:mbpp (lexical: nothing to
    download). Then the one line when the pools share too few models."""
    from routeharness.study import transfer
    from routeharness.study.record import StudyResult

    aliases = home / "transfer-aliases.yaml"
    aliases.write_text("aliases:\n  m0: mistralai/mistral-7b-chat\n  m3: gpt-4-1106-preview\n")
    common = ("study", "transfer", "-t", str(synth), "-t", "routerbench:mbpp", "-e",
              "lexical", "-r", "knn", "--seeds", "0")

    def args(tag: str) -> tuple[str, ...]:
        return (*common, "--aliases", str(aliases), "--bootstrap", "50", "-o",
                str(home / f"study-transfer-{tag}.json"))

    for shown in look(args, widths=(WIDE, NARROW), env=env):
        path = home / f"study-transfer-{shown.tag}.json"
        shows_tables(shown, as_dicts(transfer.tables(StudyResult.load(path))))
        shows_line(shown, f"study saved to {path}")
    refused = (*common, "-o", str(home / "study-transfer-refused.json"))
    for shown in look(refused, env=env, code=1):
        shows_line(shown, "Error: tasks 'synthetic' (4 models) and 'routerbench:mbpp' (11 "
                          "models) share 0 model(s) (none); a transfer needs at least 2: "
                          "match names with --aliases FILE")
    assert not (home / "study-transfer-refused.json").exists()


@case("study show")
@pytest.mark.parametrize("part", ["images", "shift", "sample-efficiency"])
def test_study_show_of_the_committed_parts(part, env):
    """The committed parts of the paper's reproduction: real task, group and model names."""
    from routeharness.study import study_module
    from routeharness.study.record import StudyResult

    path = ROOT / "benchmarks" / "paper" / f"{part}.json"
    result = StudyResult.load(path)
    expected = as_dicts(study_module(result.study).tables(result))
    for shown in look(("study", "show", str(path)), env=env):
        shows_tables(shown, expected)


@case("study paper")
def test_study_paper_report(home, env):
    from routeharness.study.paper import load_parts
    from routeharness.study.report import claim_table, claims

    def args(tag: str) -> tuple[str, ...]:  # each run writes its report in its own folder
        parts = home / f"paper-{tag}"
        parts.mkdir()
        for part in (ROOT / "benchmarks" / "paper").glob("*.json"):
            if part.name != "report.json":
                shutil.copy(part, parts / part.name)
        return ("study", "paper", "--report-only", "-o", str(parts))

    expected = None
    for shown in look(args, widths=(WIDE, NARROW), env=env):
        parts = home / f"paper-{shown.tag}"
        expected = expected or as_dicts([claim_table(claims(load_parts(parts)))])
        shows_tables(shown, expected)
        shows_line(shown, f"report written to {parts / 'report.md'}")


# --- every documented command has a case ---------------------------------------------------------
_FENCED = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
_INLINE = re.compile(r"`([^`\n]+)`")
#: ``routeharness`` where a command starts: at the start of a line (after a prompt
#: ``$``), after ``&&``, ``|``, ``;``, ``(``, ``-m`` or a path (``.venv/bin/``)
_INVOCATION = re.compile(r"(?:^[ \t]*(?:\$[ \t]*)?|[;|&(][ \t]*|-m[ \t]+|/)"
                         r"routeharness((?:[ \t]+[a-z][a-z0-9-]*)+)", re.M)


def documented_commands() -> dict[str, list[str]]:
    """Each ``routeharness <command> [<subcommand>]`` run in code (fenced blocks and
    inline code) in the README and the pages under docs/ -> the files showing it. A group shown
    alone (``routeharness study ...``) is ``"study"``; a first word that is no command
    is kept as it is (a documented command that does not exist fails the test)."""
    import click

    from routeharness.cli._app import cli

    found: dict[str, list[str]] = {}
    for document in DOCUMENTS:
        text = document.read_text("utf-8")
        code = _FENCED.findall(text) + _INLINE.findall(_FENCED.sub("", text))
        for snippet in code:
            for match in _INVOCATION.finditer(snippet):
                words, command, path = match.group(1).split(), cli, []
                for word in words:
                    if not isinstance(command, click.Group) or word not in command.commands:
                        break
                    path.append(word)
                    command = command.commands[word]
                name = " ".join(path) if path else words[0]
                found.setdefault(name, [])
                if document.name not in found[name]:
                    found[name].append(document.name)
    return found


def test_every_documented_command_has_a_case():
    documented = documented_commands()
    assert {"eval", "route", "fit", "data info", "leaderboard show"} <= set(documented)
    missing = []
    for name, documents in sorted(documented.items()):
        if name in PLUGIN_COMMANDS:
            continue
        covered = name in COVERED or any(c.startswith(f"{name} ") for c in COVERED)
        if not covered:
            missing.append(f"{name} (shown in {', '.join(documents)})")
    assert not missing, ("documented commands without a case in tests/test_user_output.py: "
                         + "; ".join(missing))


def test_every_case_is_a_command():
    import click

    from routeharness.cli._app import cli

    for name in COVERED:
        command = cli
        for word in name.split():
            assert isinstance(command, click.Group) and word in command.commands, name
            command = command.commands[word]
