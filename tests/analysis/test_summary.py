"""summary.csv against the store read directly with h5py, the terminal table, and odd inputs."""
from __future__ import annotations

import csv
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import REPO, UNFINISHED_ROWS

FAMILIES = ("translation", "scale", "rescale")
ENV = {**os.environ, "PYTHONPATH": str(REPO / "analysis")}


@pytest.fixture(scope="module")
def rows(report_dir: Path) -> dict[str, dict[str, str]]:
    with open(report_dir / "summary.csv", newline="") as fh:
        return {r["store"]: r for r in csv.DictReader(fh)}


def direct_errors(path: str, row: int | None = None, run_name: str | None = None) -> dict[str, float]:
    """Median and worst relative error per family at the last committed row (or at `row`) of the
    store's one run (or of `run_name`), straight from the file: |pred − measured| / normaliser,
    median = sorted[n // 2]."""
    out: dict[str, float] = {}
    with h5py.File(path, "r") as f:
        (run,) = f["runs"].values() if run_name is None else (f["runs"][run_name],)
        n = int(run["progress"][0]["rows_committed"])
        k = n - 1 if row is None else row
        for fam in FAMILIES:
            g = run[fam]
            if fam == "translation":
                meas, norm = g["translation_sum"][k], g["translation_abs_sum"][k]
            elif fam == "scale":
                meas = norm = g["scale_sq_norm"][k]
            else:
                meas, norm = g["rescale_diff"][k], g["sq_norm_in"][k] + g["sq_norm_out"][k]
            norm = np.where(norm > 0, norm, 1.0)
            for pred in ("exact", "paper"):
                err = np.sort(np.abs(g[f"pred_{pred}"][k] - meas) / norm)
                out[f"{fam}_{pred}_median"] = float(err[err.size // 2])
                out[f"{fam}_{pred}_worst"] = float(err[-1])
    return out


def test_csv_errors_equal_those_computed_from_the_store(rows, stores):
    assert len(rows) == len(stores)
    for made in stores.values():
        row = rows[str(made.path)]
        for key, value in direct_errors(str(made.path)).items():
            assert float(row[key]) == pytest.approx(value, rel=1e-12, abs=0, nan_ok=True), (made.path.name, key)


def test_errors_agree_with_the_nmech_printout(rows, stores):
    """`nmech run` prints the same statistics (%.3e) when it finishes; the conventions agree."""
    line = re.compile(r"^(translation|scale|rescale)\s+\d+\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", re.M)
    checked = 0
    for name, made in stores.items():
        if not name.startswith("grid_"):
            continue
        row = rows[str(made.path)]
        for fam, *vals in line.findall(made.stdout):
            for key, printed in zip(("exact_median", "exact_worst", "paper_median", "paper_worst"), vals):
                assert float(row[f"{fam}_{key}"]) == pytest.approx(float(printed), rel=6e-4), (name, fam, key)
                checked += 1
    assert checked == 8 * 3 * 4


def test_unfinished_run_reads_committed_rows_only(rows, stores):
    path = str(stores["unfinished"].path)
    row = rows[path]
    assert row["status"] == "running" and int(row["rows_committed"]) == UNFINISHED_ROWS
    at_commit = direct_errors(path, UNFINISHED_ROWS - 1)
    past = direct_errors(path, int(row["rows"]) - 1)  # written by the source run, not committed here
    for key, value in at_commit.items():
        assert float(row[key]) == pytest.approx(value, rel=1e-12)
    assert any(not math.isclose(at_commit[k], past[k], rel_tol=1e-6) for k in at_commit)


def test_diverged_run_is_marked(rows, stores):
    row = rows[str(stores["diverged"].path)]
    assert row["status"] == "diverged"
    assert 0 <= int(row["diverged_at"]) < 60
    assert int(row["rows_committed"]) >= 1


def test_summary_command_prints_every_run(all_paths):
    r = subprocess.run([sys.executable, "-m", "nmech_analysis", "summary", *all_paths], capture_output=True,
                       text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["run", "status"]
    assert len(lines) == 1 + len(all_paths)
    statuses = [ln.split()[1] for ln in lines[1:]]
    assert sorted(set(statuses)) == ["diverged", "done", "running"]


def test_summary_all_columns_match_csv_header(all_paths, report_dir):
    r = subprocess.run([sys.executable, "-m", "nmech_analysis", "summary", "--all", all_paths[0]],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    with open(report_dir / "summary.csv", newline="") as fh:
        header = next(csv.reader(fh))
    printed = r.stdout.splitlines()[0].split()
    assert set(printed) <= set(header) and "translation_rate_fit" in printed


def test_not_a_store_is_refused(tmp_path):
    bogus = tmp_path / "plain.h5"
    with h5py.File(bogus, "w") as f:
        f["x"] = [1.0]
    r = subprocess.run([sys.executable, "-m", "nmech_analysis", "summary", str(bogus)], capture_output=True,
                       text=True, env=ENV, timeout=120)
    assert r.returncode == 2
    assert "not an nmech store" in r.stderr


def test_a_store_of_another_format_is_refused_naming_its_version(all_paths, tmp_path):
    """The reader takes the families, statuses, hyperparameters and closed forms from the store's
    own attributes (format 6); a store of format 5 lacks the closed forms and is refused in one line."""
    old = tmp_path / "format5.h5"
    shutil.copy(all_paths[0], old)
    with h5py.File(old, "a") as f:
        f.attrs["format_version"] = np.int64(5)
    r = subprocess.run([sys.executable, "-m", "nmech_analysis", "summary", str(old)], capture_output=True,
                       text=True, env=ENV, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "format_version 5 is not supported" in r.stderr, r.stderr
    assert str(old) in r.stderr
