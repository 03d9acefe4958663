"""Reading and downloading VHELM's raw files: JSON with one-line errors, images
(local or downloaded), and a suite's run files mirrored from the published bucket, each
download resuming a partial file with an HTTP Range request."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
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
def image_bytes(location: str, root: Path, fetch: Callable[[str, Path], Path] | None,
                cache: Path, base_url: str = BASE_URL) -> tuple[bytes, str]:
    """(bytes, file name) of a MediaObject location: an http(s) URL (downloaded), an
    existing path, or a path under ``benchmark_output/`` resolved against the local
    ``root`` (the benchmark_output directory), else downloaded from ``base_url`` (the
    source URL, or the published bucket), as HELM's frontend serves it."""
    if location.startswith(("http://", "https://")):
        if fetch is None:
            raise DataError(f"image {location} is a URL and downloads are off", source=location)
        target = cache / hashlib.sha256(location.encode()).hexdigest()[:16] / \
            Path(urllib.parse.urlparse(location).path).name
        return fetch(location, target).read_bytes(), target.name
    relative = location.split("benchmark_output/", 1)[1] if "benchmark_output/" in location \
        else location
    for candidate in (Path(location), root / relative):
        if candidate.is_file():
            return candidate.read_bytes(), candidate.name
    if fetch is None:
        raise DataError(f"image not found under {root} (and downloads are off)",
                        source=location)
    url = f"{base_url.rstrip('/')}/" + "/".join(urllib.parse.quote(p) for p in relative.split("/"))
    target = cache / relative
    return fetch(url, target).read_bytes(), target.name


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
        raise RouteHarnessError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RouteHarnessError(f"cannot download {url}: {exc} (offline? build from a local "
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
            with part.open(mode) as handle:
                while True:
                    chunk = response.read(1 << 16)
                    if not chunk:
                        break
                    handle.write(chunk)
                    bar.advance(task, len(chunk))
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
