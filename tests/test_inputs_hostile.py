"""Hostile input to ``route`` (issue 18), through the real CLI in a subprocess: each class
a hostile test found gets its own test, which failed before the one text reader
(``routeharness.common.textinput``) existed. Nothing ends in a traceback or a hang, nothing
wrong is accepted in silence, and nothing right is refused: an id of any length is text;
nesting, surrogates, bad UTF-8, /dev/zero, FIFOs, oversized input, invisible prompts,
vectors float32 cannot hold and non-finite trade-offs are one line each. The router is a
``linear`` fitted on a ``data synth`` task with its own vectors (``-e precomputed``), so no
encoder is loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DIM = 8
VECTOR = [round(0.1 * (i + 1), 2) for i in range(DIM)]


@pytest.fixture(scope="module")
def router(tmp_path_factory) -> Path:
    from routeharness.cli._app import main
    from routeharness.deploy import saved

    base = tmp_path_factory.mktemp("hostile")
    try:
        main(["data", "synth", str(base / "synth"), "--train", "120", "--validation", "60",
              "--test", "20", "--models", "4", "--clusters", "4", "--dim", str(DIM)])
    except SystemExit as exc:
        assert not exc.code
    fitted = saved.fit("linear", str(base / "synth"), encoder="precomputed", tune=False)
    return saved.save(fitted, base / "router")


def route(router: Path, *args: str, stdin: bytes | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess:
    """``routeharness route ROUTER ARGS...`` in a subprocess; stdout and stderr as text
    (invalid bytes shown, never raised), standard input the given bytes (else none)."""
    done = subprocess.run([sys.executable, "-m", "routeharness", "route", str(router), *args],
                          input=stdin if stdin is not None else b"", capture_output=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})
    return subprocess.CompletedProcess(done.args, done.returncode,
                                       done.stdout.decode("utf-8", "backslashreplace"),
                                       done.stderr.decode("utf-8", "backslashreplace"))


def one_line_error(done: subprocess.CompletedProcess) -> str:
    """The error of a failed command: exactly one line, no traceback."""
    assert done.returncode != 0, done.stdout[-500:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, done.stderr[-2000:]
    return lines[0]


def line(prompt: str = "a prompt", **keys) -> str:
    return json.dumps({"prompt": prompt, "embedding": VECTOR, **keys})


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- tracebacks and 500s -----------------------------------------------------------------------
def test_an_id_of_5000_digits_is_read_as_text(router, tmp_path):
    digits = "9" * 5000  # Python refuses to make an int of more than 4,300 digits
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "a prompt", "id": ' + digits + ', "embedding": '
                       + json.dumps(VECTOR) + '}\n{"prompt": "b", "id": 7, "embedding": '
                       + json.dumps(VECTOR) + "}\n", encoding="utf-8")
    done = route(router, "--file", str(prompts), "--format", "jsonl")
    assert done.returncode == 0, done.stderr[-2000:]
    assert [json.loads(row)["id"] for row in done.stdout.splitlines()] == [digits, "7"]


def test_json_nested_100000_deep_is_one_line_naming_the_limit(router, tmp_path):
    deep = '{"prompt": "a", "group": ' + "[" * 100_000 + "]" * 100_000 + "}"
    done = route(router, "--file", str(write(tmp_path / "deep.jsonl", deep)))
    assert one_line_error(done) == (f"Error: {tmp_path / 'deep.jsonl'}, line 1: JSON nested "
                                    "more than 64 levels deep")
    # deep, but under Python's own recursion limit: the same rule, the same line
    deep = '{"prompt": "a", "group": ' + "[" * 200 + "]" * 200 + "}"
    done = route(router, stdin=(deep + "\n").encode())
    assert one_line_error(done) == ("Error: standard input, line 1: JSON nested more than 64 "
                                    "levels deep")


def test_a_lone_surrogate_in_a_prompt_is_one_line_not_a_traceback(router, tmp_path):
    prompts = write(tmp_path / "s.jsonl", line("fine"), line("\ud800 alone"))
    assert "\\ud800" in prompts.read_text("utf-8")  # json.dumps escapes it: valid JSON
    done = route(router, "--file", str(prompts), "--format", "jsonl")
    assert one_line_error(done) == (f"Error: {prompts}, line 2: prompt: holds a lone "
                                    "surrogate U+D800 at character 1, which is not text")
    # an escaped pair is one character, and fine
    done = route(router, "--format", "jsonl",
                 stdin=line("\U0001F600 smile").encode("ascii"))  # ensure_ascii: a pair
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["prompt"] == "\U0001F600 smile"
    # bytes that were not UTF-8 in the PROMPT argument arrive as lone surrogates too
    done = subprocess.run([sys.executable, "-m", "routeharness", "route", str(router),
                           b"caf\xe9"], capture_output=True, timeout=60)
    assert b"Traceback" not in done.stderr
    assert done.stderr.decode().strip().splitlines()[-1] == (
        "Error: PROMPT: not UTF-8 text (byte 0xe9 at character 4)")


def test_invalid_utf8_on_standard_input_names_the_line(router):
    data = (line("one") + "\n" + line("two") + "\n").encode() + b'{"prompt": "caf\xe9"}\n'
    done = route(router, "--format", "jsonl", stdin=data)
    assert one_line_error(done) == ("Error: standard input, line 3: not UTF-8 text (byte 0xe9 "
                                    "at column 16)")
    # a UTF-8 byte-order mark is dropped; UTF-16 is named
    done = route(router, "--format", "jsonl", stdin=b"\xef\xbb\xbf" + line().encode())
    assert done.returncode == 0 and json.loads(done.stdout)["prompt"] == "a prompt"
    done = route(router, stdin=line().encode("utf-16"))
    assert one_line_error(done) == ("Error: standard input: UTF-16 text (its byte-order "
                                    "mark): save it as UTF-8")


# --- hangs -------------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and /dev/zero")
def test_dev_zero_a_fifo_and_a_directory_are_refused_unread(router, tmp_path):
    done = route(router, "--file", "/dev/zero", timeout=30)
    assert one_line_error(done) == ("Error: /dev/zero: cannot read the prompts file: it is a "
                                    "character device, not a regular file")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # no writer: reading it would block forever
    done = route(router, "--file", str(fifo), timeout=30)
    assert one_line_error(done) == (f"Error: {fifo}: cannot read the prompts file: it is a "
                                    "FIFO, not a regular file (a pipe goes to standard "
                                    "input: --file -)")
    with open("/dev/zero", "rb") as zero:  # standard input that never ends
        done = subprocess.run([sys.executable, "-m", "routeharness", "route", str(router)],
                              stdin=zero, capture_output=True, text=True, timeout=30)
    assert one_line_error(done) == ("Error: standard input: it is a character device, not a "
                                    "pipe, a file or a terminal")


def test_input_over_the_size_limit_is_one_line_naming_it_and_the_limit(router, tmp_path):
    prompts = write(tmp_path / "p.jsonl", *[line(f"prompt {i}") for i in range(50)])
    size = prompts.stat().st_size
    done = route(router, "--file", str(prompts), "--max-input", "1KB")
    assert one_line_error(done) == (f"Error: {prompts}: {size:,} bytes, more than the limit "
                                    "of 1 kB (--max-input sets it)")
    done = route(router, "--max-input", "1KiB", stdin=prompts.read_bytes())
    assert one_line_error(done) == ("Error: standard input: more than the limit of 1 KiB "
                                    "(--max-input sets it)")
    done = route(router, "--file", str(prompts), "--max-input", str(size), "--format", "jsonl")
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 50
    done = route(router, "--file", str(prompts), "--max-input", "lots")
    assert done.returncode == 2 and "'lots' is not a size" in done.stderr
    from routeharness.cli.deploy import DEFAULT_MAX_INPUT
    from routeharness.common.textinput import DEFAULT_MAX_INPUT_BYTES, parse_size

    assert parse_size(DEFAULT_MAX_INPUT) == DEFAULT_MAX_INPUT_BYTES


# --- silent acceptance -------------------------------------------------------------------------
@pytest.mark.parametrize("invisible", ["\u200b\u200b", "\u2060\ufeff\u200d", " \u3164 ",
                                       "\u2800", "\ufe0f\u200c", "\u00a0\u2028\u200b"])
def test_a_prompt_of_only_invisible_characters_is_refused(router, tmp_path, invisible):
    prompts = write(tmp_path / "p.jsonl", line("fine"), line(invisible))
    done = route(router, "--file", str(prompts))
    assert one_line_error(done) == (f"Error: {prompts}, line 2: prompt: must be non-blank "
                                    "text (it holds only invisible characters)")


def test_an_invisible_prompt_argument_is_refused(router):
    done = route(router, "\u200b\u200b\u200b")
    assert one_line_error(done) == ("Error: PROMPT: prompt: must be non-blank text (it holds "
                                    "only invisible characters)")


def test_vector_values_float32_cannot_hold_are_refused(router, tmp_path):
    vector = [*VECTOR[:3], 1e39, *VECTOR[4:]]
    prompts = write(tmp_path / "p.jsonl", json.dumps({"prompt": "a", "embedding": vector}))
    done = route(router, "--file", str(prompts))
    assert one_line_error(done) == (f"Error: {prompts}, line 1: embedding[3]: 1e+39 is "
                                    "outside float32's range (at most 3.403e+38 in size)")
    assert "overflow" not in done.stderr
    # the largest float32 itself is fine
    vector[3] = -3.4028234663852886e38
    prompts = write(tmp_path / "p.jsonl", json.dumps({"prompt": "a", "embedding": vector}))
    assert route(router, "--file", str(prompts)).returncode == 0


@pytest.mark.parametrize("option, value", [("--lam", "inf"), ("--lam", "Infinity"),
                                           ("--lam", "nan"), ("--lam", "-inf"),
                                           ("--budget", "inf"), ("--budget", "nan")])
def test_a_non_finite_trade_off_or_budget_is_refused_with_a_hint(router, tmp_path, option,
                                                                 value):
    prompts = write(tmp_path / "p.jsonl", line())
    done = route(router, "--file", str(prompts), option, value, "--format", "jsonl")
    assert done.returncode == 2 and not done.stdout
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"Error: Invalid value for '{option}': {value} is not a finite "
                            "number; ")
    hint = "--lam 1e6" if option == "--lam" else "leave --budget out"
    assert hint in error


def test_json_output_never_holds_a_bare_infinity(router, tmp_path):
    """A budget may choose the cost-only trade-off (lam = inf): it is written "inf", as
    every file the harness writes says it, and as serve answers."""
    from routeharness.deploy import saved

    loaded = saved.load(router)
    cheapest = min(loaded.validation, key=lambda p: (p.cost_usd, -p.quality))
    prompts = write(tmp_path / "p.jsonl", line())
    done = route(router, "--file", str(prompts), "--budget", "0", "--format", "json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Infinity" not in done.stdout and "NaN" not in done.stdout
    [row] = json.loads(done.stdout)
    assert row["lam"] == ("inf" if cheapest.lam == float("inf") else cheapest.lam)
    # the record as the router gives it at infinity: "inf" in JSON lines too
    from routeharness.cli.deploy import _print_routes
    from routeharness.deploy.routing_input import read_prompts

    items = read_prompts([line()], "in")
    rows = loaded.route_vectors([VECTOR], float("inf")).rows()
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _print_routes(items, rows, "jsonl")
    assert json.loads(out.getvalue())["lam"] == "inf"


# --- false reject ------------------------------------------------------------------------------
def test_an_id_on_one_prompt_and_none_on_the_next_is_not_given_twice(router, tmp_path):
    prompts = write(tmp_path / "p.jsonl", line("a", id="2"), line("b"), line("c"))
    done = route(router, "--file", str(prompts), "--format", "jsonl")
    assert done.returncode == 0, done.stderr[-2000:]
    # the prompt without an id is named by its position; "2" is taken, so "#2"
    assert [json.loads(row)["id"] for row in done.stdout.splitlines()] == ["2", "#2", "3"]
    # ids given twice are still refused
    prompts = write(tmp_path / "p.jsonl", line("a", id="2"), line("b", id=2))
    assert one_line_error(route(router, "--file", str(prompts))) == (
        f"Error: {prompts}: the id '2' is given twice")


# --- the reader itself -------------------------------------------------------------------------
def test_the_text_reader_splits_json_lines_on_newlines_only():
    """U+2028 (a line separator to ``str.splitlines``) inside a prompt stays in it."""
    from routeharness.deploy.routing_input import read_prompts

    text = json.dumps({"prompt": "one\u2028two"}, ensure_ascii=False) + "\r\n" + \
        json.dumps({"prompt": "three\x85"}, ensure_ascii=False) + "\n"
    items = read_prompts(text, "in")
    assert [item.prompt for item in items] == ["one\u2028two", "three\x85"]


@pytest.mark.parametrize("text, size", [("1000", 1000), ("16MB", 16_000_000),
                                        ("512KiB", 524_288), ("1.5GB", 1_500_000_000),
                                        ("2 mb", 2_000_000)])
def test_sizes_are_read_in_bytes_and_units(text, size):
    from routeharness.common.textinput import parse_size

    assert parse_size(text) == size


def test_a_long_integer_is_text_only_where_text_is_taken():
    from routeharness.common.contract import check
    from routeharness.common.errors import RouteHarnessError
    from routeharness.common.textinput import IntegerText, parse_json
    from routeharness.deploy.routing_input import RouteRequest

    data = parse_json('{"prompts": ["a"], "lam": 1' + "0" * 400 + "}", "request")
    assert isinstance(data["lam"], IntegerText)
    with pytest.raises(RouteHarnessError, match=r"^request: lam: expected a number, got "
                                                r"1000000000"):
        check(RouteRequest, data, "request")
    assert parse_json("[12345678901234567890, -3]", "x") == [12345678901234567890, -3]
