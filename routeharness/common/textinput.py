"""The one reader of text input: JSON lines from a file or standard input (``route``),
request bodies (``serve``), a prompt given as an argument, and every JSON file the harness
reads (``contract.parse_json`` delegates here). Each rule is here once:

- size: a file larger than its limit is refused from its size, before it is read; a
  stream (standard input, a request body) is read up to its limit and refused past it.
  Either is one line naming the input and the limit (``--max-input`` for ``route``).
- files: regular files only; a FIFO, a device (``/dev/zero``) or a directory is refused by
  name and never read (it would hang or never end). Standard input may be a pipe, a
  file or a terminal; another device is refused.
- encoding: UTF-8 only. A UTF-8 byte-order mark is dropped; a UTF-16 or UTF-32 one is
  named; an invalid byte is one line with its line number.
- text: a lone surrogate (``"\\ud800"`` in JSON, or bytes that were not UTF-8 in a
  command-line argument) is not text and is refused where it is. Lines are split on
  ``\\n`` only (JSON lines), so U+2028 inside a prompt stays in it.
- JSON: a key given twice is refused; nesting deeper than ``MAX_JSON_DEPTH`` is refused
  before parsing (so no recursion limit is ever reached); an integer too long to be a
  number (more digits than a float can hold) is kept as its text (``IntegerText``), never
  converted (Python refuses ints of over 4,300 digits): an id of any length is text, and
  a number field refuses it in one line.
- blank text: ``is_blank`` is true for text that shows nothing (whitespace, zero-width and
  other format characters, Hangul fillers, variation selectors).

Errors are raised as ``RouteHarnessError`` or the class a caller passes (``error``).
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from routeharness.common.errors import RouteHarnessError
from routeharness.common.files import FileReadError, file_kind, read_regular_file

__all__ = ["DEFAULT_MAX_INPUT_BYTES", "HIDDEN_CATEGORIES", "MAX_JSON_DEPTH",
           "MAX_NUMBER_DIGITS", "IntegerText", "check_text", "decode", "is_blank",
           "json_depth", "json_lines", "parse_json", "parse_size", "read_file_bytes",
           "read_input", "read_limited", "size_text"]

#: the largest input ``route`` reads (a file or standard input) unless ``--max-input``
#: says otherwise: 100,000 prompts (a batch's maximum) of 10,000 characters, or a
#: few thousand with their own 768-d vectors as JSON text
DEFAULT_MAX_INPUT_BYTES = 1_000_000_000
#: how deep JSON may nest: the deepest file the harness reads nests 6 levels
MAX_JSON_DEPTH = 64
#: the longest integer literal read as a number: a float holds at most 309 digits
#: (1.8e308), so a longer one can only be an id
MAX_NUMBER_DIGITS = 309

_ERROR = RouteHarnessError


class IntegerText(str):
    """An integer literal of JSON too long to be a number (over ``MAX_NUMBER_DIGITS``
    digits), kept as its text: an ``id`` takes it as text, a number field refuses it."""


# --- sizes -----------------------------------------------------------------------------------
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3,
          "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.I)


def parse_size(text: str) -> int:
    """A byte count from ``1000000``, ``16MB``, ``512KiB``, ``1.5GB`` (k/M/G: powers of
    1000, KiB/MiB/GiB: of 1024); ValueError when it is none or not > 0."""
    match = _SIZE.fullmatch(str(text))
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size (e.g. 16MB, 512KiB, 1000000)")
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < 1:
        raise ValueError(f"{text!r}: a size is at least 1 byte")
    return size


def size_text(size: int) -> str:
    """``16000000`` -> ``16 MB``; ``1048576`` -> ``1 MiB``; else bytes."""
    for unit, factor in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000), ("GiB", 1024**3),
                         ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor:,} {unit}"
    return f"{size:,} bytes"


def _too_big(where: str, limit: int, option: str | None, size: int | None = None) -> str:
    how = f"{size:,} bytes, " if size is not None else ""
    return (f"{where}: {how}more than the limit of {size_text(limit)}"
            + (f" ({option} sets it)" if option else ""))


# --- bytes -----------------------------------------------------------------------------------
def read_limited(stream: BinaryIO, where: str, limit: int | None, *,
                 option: str | None = None, error: type[RouteHarnessError] = _ERROR
                 ) -> bytes:
    """A binary stream's bytes, at most ``limit`` of them: one past it is one line naming
    ``where`` and the limit (nothing more is read)."""
    if limit is None:
        return stream.read()
    chunks, total = [], 0
    while True:
        chunk = stream.read(min(1 << 20, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise error(_too_big(where, limit, option))


def read_file_bytes(path: str | Path, what: str = "file", limit: int | None = None, *,
                    option: str | None = None, error: type[RouteHarnessError] = _ERROR
                    ) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes
    (``files.read_regular_file``: a FIFO, device or directory refused by name, a file over
    the limit by its size, neither read). Raises ``FileReadError`` for what the OS or the
    file's kind refuses, ``error`` (one line naming the limit) for its size."""
    try:
        return read_regular_file(path, what, limit)
    except FileReadError as exc:
        if exc.size is None or limit is None:
            raise
        raise error(_too_big(str(path), limit, option, exc.size)) from None


def _stdin_bytes(limit: int | None, option: str | None,
                 error: type[RouteHarnessError]) -> bytes:
    where = "standard input"
    stream = sys.stdin.buffer if sys.stdin is not None else None
    if stream is None:
        raise error(f"{where}: there is none")
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        info = None  # not a real descriptor (a test's stream): read it as it is
    if info is not None:
        mode = info.st_mode
        devnull = _same_file(info, os.devnull)
        if stat.S_ISDIR(mode) or (stat.S_ISCHR(mode) and not devnull
                                  and not os.isatty(stream.fileno())) or stat.S_ISBLK(mode):
            raise error(f"{where}: it is {file_kind(mode)}, not a pipe, a file or a "
                        "terminal")
        if stat.S_ISREG(mode) and limit is not None and info.st_size > limit:
            raise error(_too_big(where, limit, option, info.st_size))
    return read_limited(stream, where, limit, option=option, error=error)


def _same_file(info: os.stat_result, path: str) -> bool:
    try:
        return os.path.samestat(info, os.stat(path))
    except OSError:
        return False


# --- text ------------------------------------------------------------------------------------
_UTF16_32 = ((b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe\x00\x00", "UTF-32"),
             (b"\xfe\xff", "UTF-16"), (b"\xff\xfe", "UTF-16"))


def decode(raw: bytes, where: str, error: type[RouteHarnessError] = _ERROR) -> str:
    """UTF-8 bytes as text: a UTF-8 byte-order mark dropped; a UTF-16/32 one, or a byte
    that is not UTF-8, one line naming ``where``, the line and the byte."""
    for mark, name in _UTF16_32:
        if raw.startswith(mark):
            raise error(f"{where}: {name} text (its byte-order mark): save it as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(f"{where}, line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                    f"column {column})") from None
    return text[1:] if text.startswith("\ufeff") else text


_SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogate_problem(text: str) -> str | None:
    found = _SURROGATE.search(text)
    if found is None:
        return None
    code = ord(found.group())
    if 0xDC80 <= code <= 0xDCFF:  # how Python keeps a byte of an argument that is not UTF-8
        return f"not UTF-8 text (byte 0x{code - 0xDC00:02x} at character {found.start() + 1})"
    return (f"holds a lone surrogate U+{code:04X} at character {found.start() + 1}, which is "
            "not text")


def check_text(text: str, where: str, error: type[RouteHarnessError] = _ERROR) -> str:
    """``text`` if it is Unicode text (no lone surrogate); one line naming ``where``."""
    problem = _surrogate_problem(text)
    if problem:
        raise error(f"{where}: {problem}")
    return text


def json_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of JSON-lines text: split on ``\\n`` only (a ``\\r`` before it
    dropped), so U+2028 and other Unicode line breaks inside a value stay in it."""
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line[:-1] if line.endswith("\r") else line


def read_input(source: str | Path | None, what: str = "input", *,
               limit: int | None = DEFAULT_MAX_INPUT_BYTES, option: str | None = None,
               error: type[RouteHarnessError] = _ERROR) -> tuple[str, str]:
    """(text, the name to give it in messages) of a file (a regular one) or of standard
    input (``source`` None or ``-``), read through every rule above."""
    if source is None or str(source) == "-":
        where = "standard input"
        raw = _stdin_bytes(limit, option, error)
    else:
        where = str(source)
        try:
            raw = read_file_bytes(source, what, limit, option=option, error=error)
        except FileReadError as exc:
            hint = " (a pipe goes to standard input: --file -)" if "FIFO" in exc.reason \
                else ""
            if exc.unreadable and not Path(source).exists():
                raise error(f"{source}: no such {what}") from None
            raise error(f"{source}: cannot read the {what}: {exc.reason}{hint}") from None
    return check_text(decode(raw, where, error), where, error), where


# --- JSON ------------------------------------------------------------------------------------
def _unique(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} is given twice")
        out[key] = value
    return out


def _integer(text: str) -> int | IntegerText:
    return int(text) if len(text.lstrip("-")) <= MAX_NUMBER_DIGITS else IntegerText(text)


#: a JSON string, escapes included (the unrolled form: no backtracking per character)
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
#: an escaped surrogate (``\\ud800``-``\\udfff``); a lone one is looked for among these
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
#: an escaped surrogate pair (one character)
_PAIR_ESCAPE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _lone_escape(text: str) -> bool:
    """Whether JSON text may hold an escaped lone surrogate: one left when the escaped
    pairs are taken out (a candidate only: an escaped backslash before it is not looked
    at; the parsed strings are then searched)."""
    return _SURROGATE_ESCAPE.search(text) is not None and \
        _SURROGATE_ESCAPE.search(_PAIR_ESCAPE.sub("", text)) is not None


def json_depth(text: str) -> int:
    """How deep JSON text nests (strings skipped), without parsing it."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _json_path(path: list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _lone_surrogate(data: Any) -> tuple[str, str] | None:
    """(JSON path, problem) of the first string (or key) of ``data`` holding a lone
    surrogate; None when there is none."""
    stack: list[tuple[list[Any], Any]] = [([], data)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            problem = _surrogate_problem(node)
            if problem:
                return _json_path(path), problem
        elif isinstance(node, dict):
            for key, value in reversed(list(node.items())):
                problem = _surrogate_problem(key)
                if problem:
                    return _json_path(path), f"a key {problem.replace('holds a', 'holding a')}"
                stack.append(([*path, key], value))
        elif isinstance(node, list):
            stack.extend(([*path, i], node[i]) for i in range(len(node) - 1, -1, -1))
    return None


def parse_json(raw: bytes | str, where: str, error: type[RouteHarnessError] = _ERROR, *,
               max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON text (UTF-8 bytes or text) as data, through every rule above: a repeated key,
    bad UTF-8, nesting deeper than ``max_depth``, a lone surrogate or bad JSON is one line
    naming ``where``; a very long integer is ``IntegerText``."""
    text = decode(raw, where, error) if isinstance(raw, (bytes, bytearray)) else \
        check_text(raw, where, error)
    if text.count("[") + text.count("{") > max_depth and json_depth(text) > max_depth:
        raise error(f"{where}: JSON nested more than {max_depth} levels deep")
    try:
        data = json.loads(text, object_pairs_hook=_unique, parse_int=_integer)
    except RecursionError:  # not reached after the depth check; kept as a guard
        raise error(f"{where}: JSON nested more than {max_depth} levels deep") from None
    except ValueError as exc:
        raise error(f"{where}: not valid JSON ({str(exc)[:120]})") from None
    if _lone_escape(text):
        found = _lone_surrogate(data)
        if found:
            at, problem = found
            raise error(f"{where}: {at + ': ' if at else ''}{problem}")
    return data


# --- blank text ------------------------------------------------------------------------------
#: Unicode categories that show nothing: control (ESC, newline), format (the zero-width
#: space U+200B, bidi marks), surrogates, and the line and paragraph separators
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
#: letters, symbols and marks that render as blank (Hangul fillers, the braille blank,
#: the combining grapheme joiner, variation selectors)
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f"
                           + "".join(map(chr, range(0xFE00, 0xFE10)))
                           + "".join(map(chr, range(0xE0100, 0xE01F0))))
_BLANK_CATEGORIES = HIDDEN_CATEGORIES | {"Zs"}
#: an ASCII letter or digit: a text holding one shows something (the fast answer for
#: nearly every prompt, without a Unicode lookup per character)
_VISIBLE_ASCII = re.compile(r"[A-Za-z0-9]")


def is_blank(text: str) -> bool:
    """True when ``text`` shows nothing: empty, whitespace, or only invisible characters
    (the zero-width space U+200B and other format or control characters, separators,
    blank-looking letters, variation selectors)."""
    if _VISIBLE_ASCII.search(text):
        return False
    return all(ch.isspace() or ch in _BLANK_LOOKING
               or unicodedata.category(ch) in _BLANK_CATEGORIES for ch in text)
