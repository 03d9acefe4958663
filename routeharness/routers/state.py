"""A fitted router's learned state as plain data: numeric arrays (saved in safetensors)
and JSON values (saved in the manifest). No pickle, ever: a saved router is rebuilt by
constructing its class with its hyper-parameters and calling ``set_state``.

The contract (``Tags.saveable``): ``router.get_state() -> RouterState`` after ``fit``;
``cls(**params).set_state(state)`` returns a router that routes exactly as the fitted one.
``BaseRouter`` provides both for routers whose fitted attributes (names ending in ``_``)
are numpy arrays and JSON values; routers holding anything else (a torch network, a
search index) override them, storing e.g. ``net.state_dict()`` as arrays and rebuilding.
A search index that is slow to build (faiss's ivf and hnsw) is kept as bytes instead:
``RouterState.indexes`` (name -> uint8 array, e.g. ``faiss.serialize_index``), written
beside the state as ``INDEX_FILE`` (safetensors of those byte arrays), so loading reads it
back (``faiss.deserialize_index``) instead of building it again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError

#: array dtypes a state may hold (what safetensors stores)
ARRAY_KINDS = "biuf"


class StateError(RouteHarnessError):
    """A router's state cannot be saved or restored as it stands. ``part``: which part of
    the state is at fault, ``"arrays"`` (the default), ``"values"`` or ``"indexes"``; a
    saved router's message names its file (``STATE_FILES``)."""

    def __init__(self, message: str, part: str = "arrays"):
        super().__init__(message)
        self.part = part


@dataclass(frozen=True)
class RouterState:
    """``arrays``: name -> numeric numpy array; ``values``: name -> JSON value (finite
    numbers, strings, booleans, None, lists and string-keyed dicts of them);
    ``indexes``: name -> a serialised search index, a 1-d uint8 array (``INDEX_FILE``)."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    indexes: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, array in self.arrays.items():
            if not isinstance(array, np.ndarray) or array.dtype.kind not in ARRAY_KINDS:
                raise StateError(f"state array {name!r} must be a numeric numpy array, got "
                                 f"{getattr(array, 'dtype', type(array).__name__)}")
        for name, value in self.values.items():
            problem = json_problem(value)
            if problem:
                raise StateError(f"state value {name!r}: {problem}")
        both = set(self.arrays) & set(self.values)
        if both:
            raise StateError(f"state names {sorted(both)} are both an array and a value")
        for name, blob in self.indexes.items():
            if not isinstance(blob, np.ndarray) or blob.dtype != np.uint8 or blob.ndim != 1:
                raise StateError(f"state index {name!r} must be a 1-d uint8 numpy array "
                                 "(serialised bytes)", "indexes")


def json_problem(value: Any, path: str = "") -> str | None:
    """Why ``value`` is not plain JSON (None when it is)."""
    if value is None or isinstance(value, (bool, str)):
        return None
    if isinstance(value, int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path or 'value'} is {value}"
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            problem = json_problem(item, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path or 'a mapping'} has a key {key!r} that is not text"
            problem = json_problem(item, f"{path}.{key}")
            if problem:
                return problem
        return None
    return f"{path or 'value'} is a {type(value).__name__}, not JSON"


def plain(value: Any) -> Any:
    """numpy scalars as Python numbers, tuples as lists, recursively."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def check_layout(owner: str, state: RouterState,
                 layout: Mapping[str, tuple[str | None, ...] | None], prefixes: tuple[str, ...],
                 sizes: dict[str, int]) -> dict[str, int]:
    """A one-line ``StateError`` unless ``state`` holds exactly ``layout``'s names and
    arrays named with ``prefixes`` (a network's), each array of ``layout`` with the
    dimensions it names (``"n"``, ``"m"``...: equal wherever they appear, seeded from
    ``sizes``; None: any; a layout entry of None is a JSON value). Returns the sizes."""
    names = set(state.arrays) | set(state.values)
    odd = sorted(n for n in names - set(layout) if not n.startswith(prefixes))
    if odd or not set(layout) <= names:
        raise StateError(f"{owner}: the state lacks {sorted(set(layout) - names)} or holds "
                         f"unknown {odd}")
    sizes = dict(sizes)
    for name, dims in layout.items():
        if dims is None:
            continue
        shape = np.shape(state.arrays.get(name))
        ok = len(shape) == len(dims)
        for size, dim in zip(shape, dims):
            ok = ok and (dim is None or sizes.setdefault(dim, size) == size)
        if not ok:
            raise StateError(f"{owner}: the state's {name} has shape {shape}, which does not "
                             f"fit {sizes} (expected {dims})")
    return sizes


def fitted_names(router: Any) -> list[str]:
    """The router's fitted attributes: public names ending in ``_``."""
    return sorted(n for n in vars(router) if n.endswith("_") and not n.startswith("_"))


def default_state(router: Any, skip: tuple[str, ...] = ()) -> RouterState:
    """Every fitted attribute but ``skip``: numeric arrays as arrays, the rest as JSON
    values; anything else is a ``StateError`` saying the router must override
    ``get_state``."""
    arrays, values = {}, {}
    for name in fitted_names(router):
        if name in skip:
            continue
        value = getattr(router, name)
        if isinstance(value, np.ndarray) and value.dtype.kind in ARRAY_KINDS:
            arrays[name] = value
            continue
        value = plain(value)
        if json_problem(value) is not None:
            raise StateError(f"{type(router).__name__}: fitted attribute {name!r} is a "
                             f"{type(getattr(router, name)).__name__}; override get_state() "
                             "and set_state() to save it")
        values[name] = value
    return RouterState(arrays, values)


def restore(router: Any, state: RouterState) -> Any:
    """Sets every array and value of ``state`` as an attribute; returns ``router``."""
    for name, value in {**state.values, **state.arrays}.items():
        if not (name.endswith("_") and not name.startswith("_")):
            raise StateError(f"{type(router).__name__}: state name {name!r} is not a fitted "
                             "attribute (public, ending in '_')")
        setattr(router, name, value)
    return router


#: the files a state is written to, inside a saved router's folder (``INDEX_FILE`` only
#: when the state holds ``indexes``)
ARRAYS_FILE, VALUES_FILE, INDEX_FILE = "state.safetensors", "state.json", "index.safetensors"
#: the file each part of a state is written to (``StateError.part``)
STATE_FILES = {"arrays": ARRAYS_FILE, "values": VALUES_FILE, "indexes": INDEX_FILE}


def write_state(state: RouterState, folder: Any) -> dict[str, str]:
    """``state`` as ``ARRAYS_FILE`` (safetensors) and ``VALUES_FILE`` (JSON) in ``folder``
    (which must exist), and its ``indexes`` as ``INDEX_FILE`` when it has any; returns
    file name -> sha256 of what was written."""
    import hashlib
    import json
    from pathlib import Path

    from safetensors.numpy import save

    folder = Path(folder)
    arrays = {name: np.ascontiguousarray(a).reshape(a.shape)  # 0-d stays 0-d
              for name, a in state.arrays.items()}
    blobs = {ARRAYS_FILE: save(arrays) if arrays else save({}),
             VALUES_FILE: json.dumps(state.values, sort_keys=True, allow_nan=False,
                                     indent=1).encode("utf-8")}
    if state.indexes:
        blobs[INDEX_FILE] = save({name: np.ascontiguousarray(blob)
                                  for name, blob in state.indexes.items()})
    for name, blob in blobs.items():
        (folder / name).write_bytes(blob)
    return {name: hashlib.sha256(blob).hexdigest() for name, blob in blobs.items()}


def read_state(folder: Any, expected: Mapping[str, str] | None = None) -> RouterState:
    """The state ``write_state`` wrote; with ``expected`` (file -> sha256) a file whose
    hash differs is a one-line ``StateError``. Never unpickles: safetensors and JSON."""
    from pathlib import Path

    folder = Path(folder)
    blobs = {}
    for name in (ARRAYS_FILE, VALUES_FILE):
        path = folder / name
        if not path.is_file():
            raise StateError(f"{path}: missing (a saved router holds {ARRAYS_FILE} and "
                             f"{VALUES_FILE})")
        blobs[name] = path.read_bytes()
    if (folder / INDEX_FILE).is_file():
        blobs[INDEX_FILE] = (folder / INDEX_FILE).read_bytes()
    return state_from_bytes(blobs, folder, expected)


def state_from_bytes(blobs: Mapping[str, bytes], folder: Any,
                     expected: Mapping[str, str] | None = None) -> RouterState:
    """``read_state`` of files already read (``ARRAYS_FILE`` and ``VALUES_FILE`` -> their
    bytes; ``folder`` names them in messages)."""
    import hashlib
    import json
    from pathlib import Path

    from safetensors.numpy import load

    folder = Path(folder)
    for name in (ARRAYS_FILE, VALUES_FILE, INDEX_FILE):
        if name not in blobs:
            if name == INDEX_FILE and (expected is None or name not in expected):
                continue  # a state without indexes
            raise StateError(f"{folder / name}: missing (a saved router holds {ARRAYS_FILE} "
                             f"and {VALUES_FILE}, and {INDEX_FILE} when its manifest "
                             "records one)")
        if expected is not None and hashlib.sha256(blobs[name]).hexdigest() != expected.get(name):
            raise StateError(f"{folder / name}: its sha256 is not the one the manifest "
                             "records (the file was changed after it was saved)")
    try:
        arrays = load(blobs[ARRAYS_FILE])
    except Exception as exc:  # safetensors raises its own error types
        raise StateError(f"{folder / ARRAYS_FILE}: not a safetensors file ({exc})") from None
    try:
        values = json.loads(blobs[VALUES_FILE].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"{folder / VALUES_FILE}: not JSON ({exc})") from None
    if not isinstance(values, dict):
        raise StateError(f"{folder / VALUES_FILE}: not a JSON object")
    indexes = {}
    if INDEX_FILE in blobs:
        try:
            indexes = dict(load(blobs[INDEX_FILE]))
        except Exception as exc:  # safetensors raises its own error types
            raise StateError(f"{folder / INDEX_FILE}: not a safetensors file ({exc})",
                             "indexes") from None
        odd = sorted(n for n, a in indexes.items() if a.dtype != np.uint8 or a.ndim != 1)
        if odd:
            raise StateError(f"{folder / INDEX_FILE}: {odd[0]!r} is not a 1-d uint8 array "
                             "(serialised bytes)", "indexes")
    return RouterState(dict(arrays), values, indexes)


def module_arrays(prefix: str, module: Any) -> dict[str, np.ndarray]:
    """A torch module's ``state_dict()`` as numpy arrays named ``<prefix>.<key>``."""
    return {f"{prefix}.{key}": value.detach().cpu().numpy().copy()
            for key, value in module.state_dict().items()}


def load_module(owner: str, prefix: str, module: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Loads the ``<prefix>.*`` arrays into ``module`` (strict: every key, every shape) and
    returns it in eval mode; a mismatch is a one-line ``StateError``, not torch's text."""
    import torch

    own = module.state_dict()
    mine = {name[len(prefix) + 1:]: torch.from_numpy(np.array(value))
            for name, value in arrays.items() if name.startswith(prefix + ".")}
    for key, value in mine.items():  # a number saved before 0-d arrays were kept 0-d
        if key in own and value.numel() == own[key].numel() == 1:
            mine[key] = value.reshape(own[key].shape)
    wrong = [key for key, value in mine.items() if key in own and value.shape != own[key].shape]
    if wrong:  # checked here: torch would quietly take the first of several numbers
        raise StateError(f"{owner}: the state's {prefix}.{wrong[0]} has shape "
                         f"{tuple(mine[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}")
    try:
        module.load_state_dict(mine, strict=True)
    except RuntimeError as exc:
        raise StateError(f"{owner}: the state's {prefix}.* arrays do not fit the network: "
                         + " ".join(str(exc).split())) from None
    return module.eval()
