"""The README's "real output of the first command" is that: the first run of the README's
first command on an empty cache, written by scripts/readme_output.py, and its tables are
the ones a fresh run prints (the numbers; the status lines depend on the cache)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from screen import check_pipe_lines, in_pipe, tables_in

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def _script():
    spec = importlib.util.spec_from_file_location("readme_output",
                                                  ROOT / "scripts" / "readme_output.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _block() -> list[str]:
    return _script().block(README.read_text("utf-8")).splitlines()


def test_the_block_is_the_first_run_of_the_readmes_first_command():
    script = _script()
    text = README.read_text("utf-8")
    # the first command of the README, after the install, is the one the script runs
    first = re.search(r"```bash\n(.+?)\n```", text).group(1)
    assert first.endswith(".venv/bin/routeharness " + " ".join(script.COMMAND)), first
    lines = _block()
    assert lines[0] == "• loading task routerbench"
    # an empty cache: every prompt from the embeddings shipped with the task, none encoded
    assert "• embeddings for routerbench (minilm): 0 prompts encoded, 3178 loaded from cache " \
        "(nothing encoded)" in lines
    assert any(line.startswith("• 3178 of routerbench's minilm embeddings read from the copy "
                               "shipped with the task") for line in lines)
    assert "results saved to results.json" in lines
    tables = tables_in(lines)
    assert [t.title.split(":")[0] for t in tables] == ["routerbench (v1)", "routerbench"]
    assert [row[0] for row in tables[0].body] == [
        "knn", "best-single (gpt-4-1106-preview)", "random", "oracle (upper bound)",
        "single-model frontier"]
    for line in lines:  # a pipe's lines: never padded, never wrapped
        assert line == line.rstrip()


def test_the_blocks_tables_are_a_fresh_runs(tmp_path, cache_dir):
    """The README's first command run now (on the session's cache: the tables do not
    depend on it) prints the block's tables, number for number; only the final fit's
    seconds (a timing) may differ. In the default tier since RouterBench ships its
    embeddings: about 3 s on an empty cache (it was 60 s of encoding, and marked slow)."""
    done = in_pipe(*_script().COMMAND, cwd=tmp_path,
                   env={"ROUTEHARNESS_CACHE": str(cache_dir)}, timeout=1200)
    assert done.returncode == 0, done.stderr
    check_pipe_lines(done)
    fresh, shown = tables_in(done.stdout.splitlines()), tables_in(_block())
    assert [t.title for t in fresh] == [t.title for t in shown]
    for now, readme in zip(fresh, shown, strict=True):
        assert now.header == readme.header
        timing = [j for j, cell in enumerate(now.header[-1]) if cell == "fit s"]
        assert [[c for j, c in enumerate(row) if j not in timing] for row in now.body] == \
            [[c for j, c in enumerate(row) if j not in timing] for row in readme.body]
        assert now.after == readme.after  # the note
