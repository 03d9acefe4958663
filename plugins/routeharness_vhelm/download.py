"""Reading and downloading VHELM's raw files: JSON with one-line errors, images
(local or downloaded), and a suite's run files mirrored from the published bucket, each
download resuming a partial file with an HTTP Range request."""

from __future__ import annotations

import hashlib
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from routeharness import DataError, RouteHarnessError

BASE_URL = "https://storage.googleapis.com/crfm-helm-public/vhelm/benchmark_output"
RUN_FILES = ("run_spec.json", "per_instance_stats.json", "instances.json")


def read_json(path: Path) -> Any:
    """A JSON file; missing or invalid is a one-line ``DataError`` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("file not found", source=str(path)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"invalid JSON: {exc}", source=str(path)) from None


# --- images ---------------------------------------------------------------------------------
def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def relative_location(location: str) -> str:
    """A MediaObject location relative to ``benchmark_output/`` (HELM writes
    ``benchmark_output/scenarios/<scenario>/...``, relative to where helm-run ran)."""
    return location.split("benchmark_output/", 1)[1] if "benchmark_output/" in location \
        else location


def image_candidates(location: str, root: Path, images_dir: Path | None) -> list[Path]:
    """Where a local image location may be, in order: as written (absolute, or relative to
    the folder holding ``benchmark_output/``, HELM's working directory), under the suite's
    ``benchmark_output/`` (``root``), then under ``images_dir`` as a ``benchmark_output``
    folder, a folder holding ``scenarios/``, or the ``scenarios`` folder itself."""
    path = PurePosixPath(location)
    relative = relative_location(location)
    parts = path.parts
    from_scenarios = PurePosixPath(*parts[parts.index("scenarios"):]) \
        if "scenarios" in parts else None
    candidates = [Path(location)] if path.is_absolute() else [root.parent / location]
    candidates.append(root / relative)
    if from_scenarios is not None:
        candidates.append(root / from_scenarios)
    if images_dir is not None:
        candidates.append(images_dir / relative)
        if from_scenarios is not None:
            candidates += [images_dir / from_scenarios,
                           images_dir / PurePosixPath(*from_scenarios.parts[1:])]
    unique: list[Path] = []
    for candidate in candidates:
        if candidate not in unique:
            unique.append(candidate)
    return unique


def local_image(location: str, root: Path, images_dir: Path | None) -> Path | None:
    """The first existing file among ``image_candidates``, else None."""
    if is_url(location):
        return None
    for candidate in image_candidates(location, root, images_dir):
        if candidate.is_file():
            return candidate
    return None


def image_url(location: str, base_url: str) -> str:
    """The URL of a local location under ``base_url`` (a benchmark_output URL), each path
    component quoted, as HELM's frontend serves it; a URL location as it is."""
    if is_url(location):
        return location
    relative = relative_location(location)
    return f"{base_url.rstrip('/')}/" + "/".join(urllib.parse.quote(p)
                                                 for p in relative.split("/"))


def image_cache_path(location: str, cache: Path) -> Path:
    """Where a downloaded image is kept: a URL under a hash of itself, a relative location
    under its own path."""
    if is_url(location):
        return cache / hashlib.sha256(location.encode()).hexdigest()[:16] / \
            (Path(urllib.parse.urlparse(location).path).name or "image")
    return cache / relative_location(location).lstrip("/")


class DownloadError(RouteHarnessError):
    """A download that failed: ``status`` is the HTTP status, None when the server could
    not be reached (offline, DNS, timeout)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


# --- download with resume -------------------------------------------------------------------
def fetch_url(url: str, target: Path, *, progress: bool = True, timeout: float = 60) -> Path:
    """Download ``url`` to ``target`` (kept if already complete). A partial
    ``target.part`` is resumed with an HTTP Range request; a server that ignores the range
    (200) restarts it. A progress bar shows bytes done."""
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    done = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and done:  # the range starts at the end: the part is complete
            part.replace(target)
            return target
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}",
                            exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"cannot download {url}: {exc} (offline? build from a local "
                            "copy: --source DIR)") from None
    with response:
        resumed = response.status == 206
        length = response.headers.get("Content-Length")
        total = (int(length) + (done if resumed else 0)) if length else None
        mode = "ab" if resumed else "wb"
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), disable=not progress, transient=True) as bar:
            task = bar.add_task(f"downloading {target.name}", total=total,
                                completed=done if resumed else 0)
            try:
                with part.open(mode) as handle:
                    while True:
                        chunk = response.read(1 << 16)
                        if not chunk:
                            break
                        handle.write(chunk)
                        bar.advance(task, len(chunk))
            except (OSError, http.client.HTTPException) as exc:  # the part is kept: resumed
                raise DownloadError(f"cannot download {url}: {exc or type(exc).__name__} "
                                    "(interrupted; run the build again to resume)") from None
    part.replace(target)
    return target


def mirror_suite(base_url: str, suite: str, cache: Path,
                 fetch: Callable[[str, Path], Path]) -> Path:
    """Download a suite's run list and each run's files under ``cache/runs/<suite>/``;
    returns ``cache`` (a local benchmark_output root)."""
    base = base_url.rstrip("/")
    suite_dir = cache / "runs" / suite
    for name in ("run_specs.json", "schema.json"):
        try:
            fetch(f"{base}/runs/{suite}/{name}", suite_dir / name)
        except RouteHarnessError:
            if name == "run_specs.json":
                raise
    specs = read_json(suite_dir / "run_specs.json")
    for spec in specs:
        run = spec["name"]
        quoted = urllib.parse.quote(run, safe="")
        for file in RUN_FILES[:2]:
            fetch(f"{base}/runs/{suite}/{quoted}/{file}", suite_dir / run / file)
        try:  # instances.json is written by helm-summarize; scenario_state.json by helm-run
            fetch(f"{base}/runs/{suite}/{quoted}/instances.json",
                  suite_dir / run / "instances.json")
        except RouteHarnessError:
            fetch(f"{base}/runs/{suite}/{quoted}/scenario_state.json",
                  suite_dir / run / "scenario_state.json")
    return cache
