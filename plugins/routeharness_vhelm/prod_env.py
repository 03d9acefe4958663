"""HELM's local model configuration: ``prod_env/model_deployments.yaml`` and
``prod_env/model_metadata.yaml``, the files a suite with custom or new models is run with
(HELM's ``--local-path``, ``./prod_env/`` beside ``benchmark_output/`` by default).

Only these two files are read (never ``credentials.conf``). ``model_deployments.yaml``:
``{model_deployments: [{name, model_name?, tokenizer_name?, max_sequence_length?,
client_spec, ...}]}`` (a deployment without ``model_name`` serves the model of its own
name). ``model_metadata.yaml``: ``{models: [{name, display_name, description,
creator_organization_name, access, release_date, num_parameters?, tags, ...}]}``. Keys HELM
adds later are ignored; a file that is not this shape is one ``DataError`` line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routeharness import DataError, RouteHarnessError
from routeharness_vhelm.prices import unique_key_yaml, yaml_problem

DEPLOYMENTS_FILE = "model_deployments.yaml"
METADATA_FILE = "model_metadata.yaml"


@dataclass(frozen=True)
class HelmModels:
    """What a ``prod_env`` says about models: deployments by name, metadata by model."""

    folder: Path | None = None
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)

    def model_of(self, deployment: str) -> str:
        """The model a deployment serves (its own name when not configured)."""
        entry = self.deployments.get(deployment) or {}
        return str(entry.get("model_name") or deployment)

    def describe(self, model: str, deployments: list[str]) -> dict[str, Any]:
        """A model record (``description``, ``provider``, ``size``, ``notes``) from the
        metadata of ``model`` and its ``deployments``; empty keys left out."""
        meta = self.metadata.get(model) or {}
        record: dict[str, Any] = {}
        display = str(meta.get("display_name") or "").strip()
        description = str(meta.get("description") or "").strip()
        text = f"{display}: {description}" if display and description and \
            description != display else (display or description)
        if text:
            record["description"] = text
        if meta.get("creator_organization_name"):
            record["provider"] = str(meta["creator_organization_name"])
        size = _size(meta.get("num_parameters"))
        if size:
            record["size"] = size
        notes = []
        for name in deployments:
            entry = self.deployments.get(name)
            if entry is None:
                continue
            facts = [f"HELM deployment {name}"]
            for key in ("tokenizer_name", "max_sequence_length", "max_request_length"):
                if entry.get(key) is not None:
                    facts.append(f"{key} {entry[key]}")
            notes.append(", ".join(facts))
        if meta.get("release_date"):
            notes.append(f"released {meta['release_date']}")
        if notes:
            record["notes"] = notes
        return record


def _size(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return str(int(value))


def read_prod_env(folder: str | Path | None) -> HelmModels:
    """The two model files of ``folder`` (each optional); ``None``: nothing known."""
    if folder is None:
        return HelmModels()
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise RouteHarnessError(f"{folder}: --prod-env is not a folder (HELM's prod_env, "
                                f"holding {DEPLOYMENTS_FILE} and {METADATA_FILE})")
    deployments = _entries(folder / DEPLOYMENTS_FILE, "model_deployments")
    metadata = _entries(folder / METADATA_FILE, "models")
    return HelmModels(folder, deployments, metadata)


def _entries(path: Path, key: str) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    if not path.is_file():
        raise DataError("not a regular file", source=str(path))
    try:
        data = unique_key_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read: {exc}", source=str(path)) from None
    except Exception as exc:  # yaml's errors: one line
        raise DataError(yaml_problem(exc), source=str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get(key, []), list):
        raise DataError(f"must be a mapping with a list under {key!r} (HELM's format)",
                        source=str(path))
    entries: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(data.get(key) or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or not entry["name"].strip():
            raise DataError(f"{key}[{i}]: must be a mapping with a 'name'", source=str(path))
        if entry["name"] in entries:
            raise DataError(f"{key}[{i}]: {entry['name']!r} is listed twice", source=str(path))
        entries[entry["name"]] = entry
    return entries
