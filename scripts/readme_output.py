"""Regenerate the README's "real output of the first command" block.

    python scripts/readme_output.py            # rewrite the block in README.md
    python scripts/readme_output.py --check    # print the fresh output, change nothing

Runs the README's first command, ``routeharness eval --router knn --task routerbench``,
as a new user's first run: in a new temporary directory, with a new, empty embedding
cache (``ROUTEHARNESS_CACHE``), its standard output and standard error going to one pipe
as they are written (what a log or ``2>&1 | tee`` shows: plain progress lines, no bar).
The output replaces the fenced block between ``<!-- OUTPUT: eval knn routerbench -->``
and ``<!-- /OUTPUT: eval knn routerbench -->``. ``tests/test_readme_output.py`` checks
the block's tables against a fresh run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: the README's first command, after ``.venv/bin/routeharness``
COMMAND = ("eval", "--router", "knn", "--task", "routerbench")
MARKER = "eval knn routerbench"
BEGIN, END = f"<!-- OUTPUT: {MARKER} -->", f"<!-- /OUTPUT: {MARKER} -->"


def first_run() -> tuple[str, float]:
    """The command's output (standard output and error interleaved) on an empty cache,
    and its wall time in seconds."""
    with tempfile.TemporaryDirectory(prefix="routeharness-readme-") as tmp:
        cache = Path(tmp) / "cache"
        work = Path(tmp) / "work"
        work.mkdir()
        env = {key: value for key, value in os.environ.items()
               if key not in ("COLUMNS", "LINES", "ROUTEHARNESS_CACHE", "ROUTEHARNESS_DATA")}
        env.update(ROUTEHARNESS_CACHE=str(cache), PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), str(ROOT / "plugins"), *filter(None, [env.get("PYTHONPATH")])])
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "routeharness", *COMMAND], cwd=work,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, encoding="utf-8")
        elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"routeharness {' '.join(COMMAND)} failed ({done.returncode}):\n"
                         f"{done.stdout}")
    return done.stdout, elapsed


def block(text: str) -> str:
    """The README's block, without its fences (``text``: the README)."""
    start, end = text.index(BEGIN), text.index(END)
    body = text[start + len(BEGIN):end].strip("\n")
    if not (body.startswith("```\n") and body.endswith("\n```")):
        raise ValueError(f"README.md: the block between {BEGIN} and {END} is not one fenced "
                         "code block")
    return body[len("```\n"):-len("\n```")]


def replace_block(text: str, output: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return f"{text[:start]}\n```\n{output.rstrip()}\n```\n{text[end:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="print the fresh output; leave README.md as it is")
    args = parser.parse_args()
    output, elapsed = first_run()
    if args.check:
        print(output, end="")
    else:
        text = README.read_text("utf-8")
        README.write_text(replace_block(text, output), "utf-8")
        print(f"README.md: block {MARKER!r} rewritten", file=sys.stderr)
    print(f"routeharness {' '.join(COMMAND)}: {elapsed:.0f} s on an empty cache",
          file=sys.stderr)


if __name__ == "__main__":
    main()
