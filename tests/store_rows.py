"""The rows of nmech stores, compared bit for bit, read with h5py as any user would. Shared by the
suites that run sweeps through Slurm (tests/slurm, tests/cluster)."""
from __future__ import annotations

from pathlib import Path

import h5py


def float_datasets(run: h5py.Group) -> list[str]:
    """Paths of a run's float datasets: its rows (progress, provenance and set indices left out)."""
    names: list[str] = []
    run.visit(lambda p: names.append(p) if isinstance(run[p], h5py.Dataset) and run[p].dtype.kind == "f" else None)
    return names


def rows_of(store: Path, run: str, n: int) -> dict[str, bytes]:
    """The first n rows of every float dataset of a run, as bytes."""
    with h5py.File(store, "r") as f:
        g = f["runs"][run]
        return {p: g[p][:n].tobytes() for p in float_datasets(g)}


def rows_equal(a: Path, b: Path) -> int:
    """Every run's float datasets in a and b are the same bits; returns how many were compared."""
    n = 0
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        assert sorted(fa["runs"]) == sorted(fb["runs"])
        for run in fa["runs"]:
            for p in float_datasets(fa["runs"][run]):
                assert fa["runs"][run][p][()].tobytes() == fb["runs"][run][p][()].tobytes(), f"{run}/{p}"
                n += 1
    return n
