"""Read nmech stores (docs/STORE.md): runs, their hyperparameters and progress, committed rows.

A reader trusts only rows [0, rows_committed) of a run: everything here slices to that, so the
functions work on a store that a sweep is still writing. Files are opened read-only; the writer
changes raw data only after creating the file, so a serial h5py reader sees a consistent layout.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import h5py
import numpy as np

# The store layout this reader reads (the file attribute format_version, store::kFormatVersion).
FORMAT_VERSION = 7

# Attributes that are derived or bookkeeping, never grid axes.
NOT_AXES = {"config", "threads", "classes"}
DERIVED_SUFFIXES = ("_gamma", "_omega", "_damping_regime")


def axis_names(runs: "list[RunInfo]") -> list[str]:
    """Run attributes that can be grid axes: the known hyperparameters first, then any other
    attribute of the runs (e.g. one added to the store later) that is not derived."""
    hyper = list(dict.fromkeys(k for r in runs for k in r.hyperparameters))
    derived = NOT_AXES.union(*(r.closed_forms for r in runs))
    names = [k for k in hyper if k not in derived and any(k in r.attrs for r in runs)]
    extra = sorted({k for r in runs for k in r.attrs} - set(names) - derived)
    return names + [k for k in extra if not k.endswith(DERIVED_SUFFIXES)]


class StoreFormatError(ValueError):
    """The file is not an nmech store."""


@dataclass(frozen=True)
class FamilyTraits:
    """What the store says of a symmetry family (file attributes, from C++'s theory/family.hpp):
    the dataset its predictions follow, and the datasets whose sum per set normalises an error."""

    name: str
    measured: str
    error_scale: tuple[str, ...]


def families_of(runs: "list[RunInfo]") -> list[str]:
    """The families any of the runs has sets of, in the stores' order."""
    return list(dict.fromkeys(fam for r in runs for fam in r.family_traits if fam in r.families))


def read_families(f: h5py.File) -> dict[str, FamilyTraits]:
    """Every family the store knows, in its order (the file attribute "families")."""
    names = str(_plain(f.attrs["families"])).split()
    return {n: FamilyTraits(n, str(_plain(f.attrs[f"{n}_measured"])),
                            tuple(str(_plain(f.attrs[f"{n}_error_scale"])).split(" + "))) for n in names}


@dataclass
class RunInfo:
    """One run of one store: where it is, its attributes and its progress record."""

    key: str  # unique over all opened stores (the run name, qualified by the file if repeated)
    name: str  # group name under /runs
    path: str  # store file
    attrs: dict[str, Any]
    rows_allocated: int
    rows_committed: int
    last_step: int
    status: str  # a name of the store's status enum: pending | running | done | diverged | failed
    diverged_at: int
    heartbeat_utc: float
    families: tuple[str, ...]  # the families the run has sets of, in the store's order
    family_sets: dict[str, int] = field(default_factory=dict)
    family_traits: dict[str, FamilyTraits] = field(default_factory=dict)
    statuses: tuple[str, ...] = ()  # every status the store can record, in code order
    # the run attributes that are hyperparameters (the store's file attribute "hyperparameters",
    # from the config's key table), in the order tables show them
    hyperparameters: tuple[str, ...] = ()
    # the run attributes that are closed forms of the hyperparameters (file attribute
    # "closed_forms", from C++'s theory/closed_forms.hpp): derived, never axes
    closed_forms: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status == "done"

    def attr(self, name: str, default: Any = math.nan) -> Any:
        return self.attrs.get(name, default)


def _plain(v: Any) -> Any:
    """h5py attribute value -> plain Python (str, int, float)."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.reshape(()).item()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _status_names(progress: h5py.Dataset) -> dict[int, str]:
    """Every status by its code, from the store's own HDF5 enum (written from store::Status): the
    one list of statuses, so a status added in C++ is named here without a change."""
    enum = h5py.check_enum_dtype(progress.dtype["status"]) or {}
    return {int(code): name for name, code in enum.items()}


def open_store(path: str) -> h5py.File:
    """Open a store read-only, refusing files that are not nmech stores."""
    f = h5py.File(path, "r")
    fmt = _plain(f.attrs.get("format", ""))
    if fmt != "nmech-store" or "runs" not in f:
        f.close()
        raise StoreFormatError(f"{path}: not an nmech store")
    version = _plain(f.attrs.get("format_version", 0))
    if version != FORMAT_VERSION:
        f.close()
        raise StoreFormatError(f"{path}: store format_version {version} is not supported (this reader reads "
                               f"{FORMAT_VERSION}; docs/STORE.md says what changed)")
    return f


@dataclass(frozen=True)
class StoreFacts:
    """What a store's root attributes say of all its runs, read once per file."""

    families: dict[str, FamilyTraits]
    hyperparameters: tuple[str, ...]
    closed_forms: tuple[str, ...]


def read_store_facts(f: h5py.File) -> StoreFacts:
    def words(name: str) -> tuple[str, ...]:
        return tuple(str(_plain(f.attrs[name])).split())

    return StoreFacts(read_families(f), words("hyperparameters"), words("closed_forms"))


def read_run_info(f: h5py.File, name: str, path: str, facts: StoreFacts) -> RunInfo:
    g = f["runs"][name]
    p = g["progress"][0]
    attrs = {k: _plain(v) for k, v in g.attrs.items()}
    traits = facts.families
    families = tuple(fam for fam in traits if fam in g)
    sets = {}
    for fam in families:
        first = next(iter(g[fam].values()))
        sets[fam] = int(first.shape[1])
    committed = int(p["rows_committed"])
    rows = int(g["step"].shape[0])
    names = _status_names(g["progress"])
    status = names.get(int(p["status"]))
    # What no writer leaves (store.cpp checks the same): a damaged store, named, not a traceback.
    where = f"{path}: /runs/{name}/progress: damaged record"
    if status is None:
        raise StoreFormatError(f"{where} (status code {int(p['status'])} is unknown)")
    if not 0 <= committed <= rows:
        raise StoreFormatError(f"{where} (rows_committed {committed} outside [0, {rows}])")
    if int(p["last_step"]) < -1 or int(p["diverged_at"]) < -1:
        raise StoreFormatError(f"{where} (last_step {int(p['last_step'])}, diverged_at {int(p['diverged_at'])})")
    return RunInfo(
        key=name, name=name, path=path, attrs=attrs, rows_allocated=rows,
        rows_committed=committed, last_step=int(p["last_step"]),
        status=status,
        diverged_at=int(p["diverged_at"]), heartbeat_utc=float(p["heartbeat_utc"]),
        families=families, family_sets=sets, family_traits=traits, statuses=tuple(names[c] for c in sorted(names)),
        hyperparameters=facts.hyperparameters,
        closed_forms=facts.closed_forms,
    )


def list_runs(paths: list[str]) -> list[RunInfo]:
    """Every run of every store, with unique keys (name, or name@file when a name repeats)."""
    runs: list[RunInfo] = []
    for path in paths:
        with open_store(path) as f:
            facts = read_store_facts(f)
            runs.extend(read_run_info(f, name, path, facts) for name in f["runs"])
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.name] = counts.get(r.name, 0) + 1
    for r in runs:
        if counts[r.name] > 1:
            r.key = f"{r.name}@{os.path.basename(r.path)}"
    return runs


def row_selection(start: int, stop: int, max_rows: int) -> np.ndarray:
    """Indices of at most ~max_rows rows in [start, stop), evenly strided, always with stop-1."""
    if stop <= start:
        return np.zeros(0, dtype=np.int64)
    stride = max(1, math.ceil((stop - start) / max_rows))
    idx = np.arange(start, stop, stride, dtype=np.int64)
    if idx[-1] != stop - 1:
        idx = np.append(idx, stop - 1)
    return idx


def read_rows(dset: h5py.Dataset, idx: np.ndarray) -> np.ndarray:
    """Rows idx (sorted) of a dataset: one strided hyperslab read plus the last row if needed."""
    if idx.size == 0:
        return np.zeros((0,) + dset.shape[1:])
    if idx.size == 1:
        return dset[int(idx[0]):int(idx[0]) + 1]
    stride = int(idx[1] - idx[0])
    regular = idx[:-1] if idx[-1] - idx[-2] != stride else idx
    a = dset[int(regular[0]):int(regular[-1]) + 1:stride]
    if regular.size != idx.size:
        a = np.concatenate([a, dset[int(idx[-1]):int(idx[-1]) + 1]])
    return np.asarray(a, dtype=np.float64)


class RunView:
    """Lazy access to one run's committed rows; keep it short-lived (it holds the file open)."""

    def __init__(self, info: RunInfo, f: h5py.File):
        self.info = info
        self._g = f["runs"][info.name]
        self._f = f

    @property
    def n(self) -> int:
        return self.info.rows_committed

    def has(self, family: str, name: str) -> bool:
        return family in self._g and name in self._g[family]

    def series(self, name: str, idx: np.ndarray | None = None) -> np.ndarray:
        """A [rows] dataset (step, time, loss, accuracy), committed rows (or rows idx)."""
        d = self._g[name]
        return read_rows(d, idx) if idx is not None else np.asarray(d[: self.n], dtype=np.float64)

    def matrix(self, family: str, name: str, idx: np.ndarray | None = None) -> np.ndarray:
        """A [rows, sets] dataset of a family, committed rows (or rows idx)."""
        d = self._g[family][name]
        return read_rows(d, idx) if idx is not None else np.asarray(d[: self.n], dtype=np.float64)

    def set_layers(self, family: str) -> tuple[np.ndarray, list[str]]:
        """Per set, the index of its layer, and per set the layer's name (its set name's prefix)."""
        model = self.info.attrs.get("model")
        path = f"models/{model}/sets/{family}/layer"
        names = self.set_names(family)
        if model is None or path not in self._f:
            return np.zeros(len(names), dtype=np.int64), [family] * len(names)
        return np.asarray(self._f[path][:], dtype=np.int64), [n.split(".")[0] for n in names]

    def set_names(self, family: str) -> list[str]:
        model = self.info.attrs.get("model")
        path = f"models/{model}/sets/{family}/name"
        if model is None or path not in self._f:
            return [f"{family}{i}" for i in range(self.info.family_sets.get(family, 0))]
        return [n.decode() if isinstance(n, bytes) else str(n) for n in self._f[path][:]]


def iter_runs(runs: list[RunInfo]) -> Iterator[RunView]:
    """RunViews in order, opening each store once."""
    by_path: dict[str, list[RunInfo]] = {}
    for r in runs:
        by_path.setdefault(r.path, []).append(r)
    for path, infos in by_path.items():
        with open_store(path) as f:
            for info in infos:
                yield RunView(info, f)


def load_run(info: RunInfo, families: tuple[str, ...] | None = None) -> dict[str, Any]:
    """All committed rows of one run as numpy arrays: {'step': ..., 'scale': {name: [rows, sets]}}.

    Convenient for small runs and notebooks; the report reads lazily through RunView instead.
    """
    out: dict[str, Any] = {}
    with open_store(info.path) as f:
        view = RunView(info, f)
        for name in ("step", "time", "loss", "accuracy"):
            if name in view._g:
                out[name] = view.series(name)
        for fam in families or info.families:
            out[fam] = {k: view.matrix(fam, k) for k in view._g[fam]}
    return out
