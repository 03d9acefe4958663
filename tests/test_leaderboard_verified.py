"""Verified leaderboards (issue 13, item 5): a consistent forgery (curve raised, every
number recomputed from it, file re-signed) passes `leaderboard validate`; only a re-run
catches it. The board ranks only submissions whose verification record matches the file
as it is; the rest are listed apart, and CI (.ci/verify_submissions) re-runs every
submission a commit adds or changes. A small untuned board on routerbench:mbpp keeps
the re-runs short (its prompts embedded once per session); the forgery is built here from
a real run, never committed."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routeharness.boards.definition import LeaderboardError, Submission, checksum, load_board
from routeharness.boards.run import run_board, validate_submission, verify_submission
from routeharness.boards.standings import ranking, render_html
from routeharness.boards.verification import (
    load_record,
    make_record,
    record_path,
    save_record,
    verification_status,
)
from routeharness.cli._app import main
from routeharness.embedding.encoders import EncoderIdentity
from routeharness.evaluation import metrics
from routeharness.results.sets import summarise_scores

ROOT = Path(__file__).resolve().parent.parent
BOARD = "mbpp-v1"
TASK = "routerbench:mbpp"
BOARD_YAML = f"""\
name: {BOARD}
version: 1
description: RouterBench MBPP only, untuned, two seeds (a test board).
tasks:
  - {{name: "{TASK}", version: 1}}
encoder: minilm
seeds: [0, 1]
protocol: {{tune: false, max_configs: 24, n_bootstrap: 0}}
main_metric: auc
tolerance: 0.0001
"""


def forge(data: dict[str, Any], raise_by: float = 0.4,
          keep_choices: bool = False) -> dict[str, Any]:
    """What a forger does: raise every curve, recompute each record's numbers and the
    scores from it, and re-sign the file (the issue's attack). The per-prompt choices
    would betray the raised curve (validate checks them against the data), so the forger
    drops them: a file without choices is still valid (old files have none)."""
    data = copy.deepcopy(data)
    for record in data["result"]["records"]:
        if not keep_choices:
            record.pop("choices", None)
        cost = np.asarray(record["curve"]["cost"], dtype=float)
        quality = np.minimum(np.asarray(record["curve"]["quality"], dtype=float) + raise_by, 1)
        record["curve"]["quality"] = quality.tolist()
        record["metrics"]["auc"] = metrics.auc(cost, quality)
        record["metrics"]["quality_at_0"] = float(quality[0]) * 100
        hull_c, hull_q = metrics.frontier(cost, quality)
        record["frontier"] = {"cost": hull_c.tolist(), "quality": hull_q.tolist()}
    data["scores"] = summarise_scores(Submission.from_dict(data).result, data["router"]["name"])
    data["checksum"] = checksum(data)
    return data


def verify_into_board(board: Any, path: Path) -> None:
    """`leaderboard verify` on a board's file, through the API: re-run, record."""
    data = Submission.from_json(path)
    rows, rerun = verify_submission(data, board=board)
    save_record(make_record(board, path, data, rows, rerun, board.tolerance), board)


@pytest.fixture(scope="module")
def made(tmp_path_factory, cache_dir, minilm) -> dict[str, Any]:
    """Real runs of knn, cheapest and knn-vote on the test board, the forgery of knn-vote,
    and a board folder (``root``) holding knn and cheapest, each verified (re-run, record
    written), and the forged knn-vote, unverified. The prompts are embedded once, in the
    session cache that subprocesses read too."""
    from routeharness.data.tasks import load_task
    from routeharness.embedding.cache import EmbeddingCache

    cache = EmbeddingCache()
    for split in load_task(TASK).splits.values():
        cache.embed(minilm, split.texts_to_embed())
    root = tmp_path_factory.mktemp("made")
    folder = root / BOARD / "submissions"
    folder.mkdir(parents=True)
    (root / BOARD / "board.yaml").write_text(BOARD_YAML, encoding="utf-8")
    board = load_board(BOARD, root)
    runs = {name: run_board(board, name).to_dict() for name in ("knn", "cheapest", "knn-vote")}
    for name in ("knn", "cheapest"):
        Submission.from_dict(runs[name]).save(folder / f"{name}.json")
        verify_into_board(board, folder / f"{name}.json")
    forged = forge(runs["knn-vote"])
    Submission.from_dict(forged).save(folder / "knn-vote.json")
    return {"root": root, **runs, "forged": forged}


@pytest.fixture
def boards(made, tmp_path) -> Path:
    """A fresh copy of the made board folder, for tests that edit it."""
    shutil.copytree(made["root"] / BOARD, tmp_path / "boards" / BOARD)
    return tmp_path / "boards"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# --- the forgery ---------------------------------------------------------------------------------
def test_the_forgery_passes_validate_and_would_rank_first(made, boards, capsys):
    forged = made["forged"]
    assert validate_submission(forged, board=load_board(BOARD, boards)) == []
    code, out, _ = run(capsys, "leaderboard", "validate",
                       str(boards / BOARD / "submissions" / "knn-vote.json"), "--boards-dir",
                       str(boards))
    assert code == 0 and out.startswith("valid ") and "fingerprints match" in out
    mains = {name: made[name]["scores"]["overall"]["auc"] for name in ("knn", "cheapest")}
    assert forged["scores"]["overall"]["auc"] > max(mains.values())  # first, if ranked
    assert forged["scores"]["overall"]["auc"] > made["knn-vote"]["scores"]["overall"]["auc"]


def test_a_forgery_that_keeps_its_choices_fails_validate(made, boards):
    """Raised curves with the run's own per-prompt choices left in: the choices no longer
    give the curves on the local data, and validate says so."""
    forged = forge(made["knn-vote"], keep_choices=True)
    problems = validate_submission(forged, board=load_board(BOARD, boards))
    assert problems and all("do not reproduce its curve's quality on the local data" in p
                            for p in problems), problems


def test_show_json_ranks_the_verified_and_lists_the_forgery_apart(boards, capsys):
    code, out, _ = run(capsys, "leaderboard", "show", BOARD, "--boards-dir", str(boards),
                       "--format", "json")
    assert code == 0
    shown = json.loads(out)
    board = [(row["router"], row["rank"]) for row in shown["ranking"]]
    assert board == [("knn", 1), ("cheapest", 2), ("oracle", None)]
    assert all(row["verified"] for row in shown["ranking"][:2])
    oracle = shown["ranking"][-1]
    assert oracle["upper_bound"] and oracle["file"] is None and "verified" not in oracle
    [forged] = shown["unverified"]
    assert (forged["router"], forged["rank"], forged["verified"]) == ("knn-vote", None, False)
    assert forged["verification"]["reason"] == "not verified: no verification record"
    assert forged["main"] > shown["ranking"][0]["main"] and shown["rejected"] == []


def test_show_markdown_puts_the_forgery_in_its_own_section(boards, capsys):
    code, out, _ = run(capsys, "leaderboard", "show", BOARD, "--boards-dir", str(boards),
                       "--format", "markdown")
    assert code == 0
    tables = re.split(r"\n### ", out)
    assert len(tables) == 3 and "unverified submissions (not ranked)" in tables[2]
    board_rows = [line for line in tables[1].splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[:2] for row in board_rows[1:]] == [
        ["| 1", "knn"], ["| 2", "cheapest"], ["| -", "oracle (upper bound)"]]
    apart = [line for line in tables[2].splitlines() if line.startswith("| knn-vote |")]
    assert len(apart) == 1 and "no verification record" in apart[0]
    assert "knn-vote" not in tables[1]


def test_html_puts_the_forgery_in_its_own_section(boards):
    page = render_html(ranking(load_board(BOARD, boards)))
    top, _, bottom = page.partition('<h2 id="unverified">')
    assert bottom and "knn-vote" not in top and "<td>knn-vote</td>" in bottom
    assert "<td>knn</td>" in top and "<td>cheapest</td>" in top
    assert "no verification record" in bottom and 'src="data:image/png;base64,' in top


# --- records -------------------------------------------------------------------------------------
def _status(boards: Path, name: str) -> Any:
    board = load_board(BOARD, boards)
    path = board.submissions_dir / name
    return verification_status(board, path, Submission.from_json(path))


def test_a_submission_edited_after_verify_is_unverified(boards):
    path = boards / BOARD / "submissions" / "knn.json"
    assert _status(boards, "knn.json").verified
    data = json.loads(path.read_text())
    data["provenance"]["created"] = "2099-01-01T00:00:00+00:00"  # still valid, re-signed
    data["checksum"] = checksum(data)
    path.write_text(json.dumps(data))
    status = _status(boards, "knn.json")
    assert not status.verified
    assert status.reason == "not verified: the submission changed after it was verified"
    shown = ranking(load_board(BOARD, boards))
    assert [r["router"] for r in shown.board_rows] == ["cheapest", "oracle"]
    assert [r["router"] for r in shown.unverified_rows] == ["knn-vote", "knn"]


@pytest.mark.parametrize("edit, reason", [
    (lambda r: {**r, "differing": 0, "matched": True, "numbers": 1},
     "verifications/knn.json was edited after verify wrote it (its checksum does not match)"),
    (lambda r: "{not json", "verification record unreadable:"),
    (lambda r: {**r, "extra": 1}, "unknown key(s) ['extra']"),
], ids=["hand-edited", "not-json", "unknown-key"])
def test_a_tampered_record_is_unverified(boards, edit, reason):
    where = boards / BOARD / "verifications" / "knn.json"
    record = json.loads(where.read_text())
    changed = edit(record)
    where.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    status = _status(boards, "knn.json")
    assert not status.verified and reason in status.reason
    assert "\n" not in status.reason
    if not isinstance(changed, str) and "extra" in changed:
        with pytest.raises(LeaderboardError, match=r"verifications/knn\.json: unknown key"):
            load_record(where)


def _resigned(boards: Path, **changes: Any) -> str:
    board = load_board(BOARD, boards)
    path = board.submissions_dir / "knn.json"
    record = load_record(record_path(board, path)).model_copy(update=changes)
    save_record(record.model_copy(update={"checksum": record.computed_checksum()}), board)
    return _status(boards, "knn.json").reason


def test_a_record_counts_only_for_the_claimed_versions_and_a_matching_rerun(boards):
    claimed = Submission.from_json(
        boards / BOARD / "submissions" / "knn.json").provenance.routeharness_version
    assert _resigned(boards, routeharness_version="9.9") == (
        f"not verified: verified with routeharness 9.9, the submission claims {claimed}")
    assert "verified with encoder revision 'other'" in _resigned(
        boards, routeharness_version=claimed,
        encoder=EncoderIdentity(name="minilm", identity="x", revision="other"))
    assert _resigned(boards, encoder=load_record(
        boards / BOARD / "verifications" / "cheapest.json").encoder,
        matched=False, differing=3).startswith("not verified: the re-run differed in 3 of ")
    assert "looser than the board's 0.0001" in _resigned(boards, matched=True, tolerance=0.5)


def test_verify_writes_the_record_and_check_record_demands_it(boards, capsys):
    folder = boards / BOARD / "submissions"
    shutil.copy(folder / "cheapest.json", folder / "copy.json")
    code, _, err = run(capsys, "leaderboard", "verify", str(folder / "copy.json"), "-q",
                       "--check-record", "--format", "json")
    assert code == 1 and err.splitlines()[-1].startswith(
        "not verified: no verification record; commit the record")
    assert not (boards / BOARD / "verifications" / "copy.json").exists()
    code, _, err = run(capsys, "leaderboard", "verify", str(folder / "copy.json"), "-q",
                       "--format", "json", "--record")
    assert code == 0 and "verification record written to" in err
    record = load_record(boards / BOARD / "verifications" / "copy.json")
    assert record.matched and record.differing == 0 and record.numbers > 0
    assert record.submission_checksum == Submission.from_json(folder / "copy.json").checksum
    assert {(p.role, p.name) for p in record.plugins} == {
        ("router", "cheapest"), ("encoder", "minilm"), (f"task:{TASK}", "routerbench")}
    assert _status(boards, "copy.json").verified


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``root``: its mtime (ns), size and content."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size, p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_verify_leaves_the_checkout_as_it_was_unless_asked(boards, capsys, tmp_path,
                                                           monkeypatch):
    """By default verify re-runs and reports, and writes nothing: no record, no other file,
    every file's mtime unchanged (the board folder and the working directory); --record
    writes the board's record, and only it."""
    folder = boards / BOARD / "submissions"
    shutil.copy(folder / "cheapest.json", folder / "copy.json")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before, here = _snapshot(boards), _snapshot(work)
    code, out, err = run(capsys, "leaderboard", "verify", str(folder / "copy.json"), "-q")
    assert code == 0, err
    assert "verified: all" in out and "no verification record written (--record writes " \
        "it to the board's verifications/ folder)" in out
    assert _snapshot(boards) == before and _snapshot(work) == here
    code, _, err = run(capsys, "leaderboard", "verify", str(folder / "copy.json"), "-q",
                       "--no-record", "--format", "json")  # the old flag: the same
    assert code == 0 and _snapshot(boards) == before and "no verification record" in err
    code, out, _ = run(capsys, "leaderboard", "verify", str(folder / "copy.json"), "-q",
                       "--record")
    assert code == 0 and "verification record written to" in out
    after = _snapshot(boards)
    assert set(after) - set(before) == {f"{BOARD}/verifications/copy.json"}
    assert {k: v for k, v in after.items() if k in before} == before
    assert _status(boards, "copy.json").verified


# --- CI ------------------------------------------------------------------------------------------
def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def test_ci_rejects_the_forgery_and_passes_a_real_submission(boards, tmp_path):
    """A repository whose base commit holds the board and knn (verified); the pull request
    adds the forged knn-vote with a forged record claiming it verified, and a real
    cheapest with its real record. The script re-runs both: one line each."""
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "verify_submissions", repo / ".ci" / "verify_submissions")
    board_dir = repo / "leaderboards" / BOARD
    shutil.copytree(boards / BOARD, board_dir)
    pr = {p: p.read_bytes() for p in [board_dir / "submissions" / "knn-vote.json",
                                      board_dir / "submissions" / "cheapest.json",
                                      board_dir / "verifications" / "cheapest.json"]}
    for path in pr:
        path.unlink()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    env = {**os.environ, "ROUTEHARNESS_VERIFY_BASE": _git(repo, "rev-parse", "HEAD"),
           "ROUTEHARNESS_PYTHON": sys.executable}
    script = [str(repo / ".ci" / "verify_submissions")]
    nothing = subprocess.run(script, capture_output=True, text=True, env=env, timeout=60)
    assert nothing.returncode == 0 and "no submission added or changed" in nothing.stdout
    for path, content in pr.items():
        path.write_bytes(content)
    board = load_board(board_dir / "board.yaml")
    forged = Submission.from_json(board_dir / "submissions" / "knn-vote.json")
    claim = make_record(board, board_dir / "submissions" / "knn-vote.json", forged, [], forged,
                        board.tolerance).model_copy(update={"matched": True, "numbers": 9})
    save_record(claim.model_copy(update={"checksum": claim.computed_checksum()}),
                board)  # signed by hand
    assert verification_status(board, board_dir / "submissions" / "knn-vote.json",
                               forged).verified  # the board alone would believe it
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "pull request")
    done = subprocess.run(script, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"verified leaderboards/{BOARD}/submissions/cheapest.json"
    assert re.fullmatch(rf"FAILED leaderboards/{BOARD}/submissions/knn-vote\.json: not "
                        rf"verified: \d+ of \d+ number\(s\) differ \(first: {TASK} seed 0 "
                        r"auc\)", lines[1]), lines[1]
    assert len(lines) == 2 and "1 submission(s) not verified" in done.stderr


def test_a_forgery_with_a_non_ascii_name_is_caught_by_ci_and_refused_by_the_board(boards,
                                                                                 tmp_path):
    """git quotes a path that is not ASCII in its line output (``"...\\303\\266..."``), so
    CI's pattern once never matched it while the board still read the file by glob: a
    forged row, its record signed by hand, ranked first as verified. CI now reads git's
    paths NUL-separated and unquoted (and re-runs it: FAILED), and the board refuses a
    submission file name that is not plain ASCII whatever its record says."""
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "verify_submissions", repo / ".ci" / "verify_submissions")
    board_dir = repo / "leaderboards" / BOARD
    shutil.copytree(boards / BOARD, board_dir)
    forged_at = board_dir / "submissions" / "knn-vöte.json"
    shutil.move(board_dir / "submissions" / "knn-vote.json", tmp_path / "knn-vote.json")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    env = {**os.environ, "ROUTEHARNESS_VERIFY_BASE": _git(repo, "rev-parse", "HEAD"),
           "ROUTEHARNESS_PYTHON": sys.executable}
    data = json.loads((tmp_path / "knn-vote.json").read_text("utf-8"))
    forged_at.write_text(json.dumps(forge(data, raise_by=0.5)), "utf-8")
    board = load_board(board_dir / "board.yaml")
    forged = Submission.from_json(forged_at)
    claim = make_record(board, forged_at, forged, [], forged, board.tolerance).model_copy(
        update={"matched": True, "numbers": 9})
    save_record(claim.model_copy(update={"checksum": claim.computed_checksum()}), board)
    assert record_path(board, forged_at).exists()
    # the board: the file is rejected by name, never ranked, whatever its record says
    assert not verification_status(board, forged_at, forged).verified
    shown = ranking(board)
    assert "knn-vöte.json" not in {row["file"] for row in shown.rows}
    assert any(name == "knn-vöte.json" and "not plain ASCII" in problems[0]
               for name, problems in shown.rejected)
    # CI: git lists the paths quoted; the script still finds and fails the submission
    quoted = _git(repo, "status", "--porcelain")
    assert '"leaderboards/' in quoted and "\\303\\266" in quoted
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "pull request")
    done = subprocess.run([str(repo / ".ci" / "verify_submissions")], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"FAILED leaderboards/{BOARD}/submissions/knn-vöte.json: "), lines
    assert "not plain ASCII" in lines[0]
