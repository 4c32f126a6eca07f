"""The HTML report: files, marks for runs that are not fitted, a live store (the page in a real
browser: test_page.py)."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import h5py
import pytest

from conftest import REPO, _command

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ENV = {**os.environ, "PYTHONPATH": str(REPO / "analysis")}


class Refs(HTMLParser):
    """Every <img src>, every href/src of any element, and whether a <script> appears."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.urls: list[str] = []
        self.scripts = 0
        self.body_attrs: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "script":
            self.scripts += 1
        if tag == "body":
            self.body_attrs = a
        for k in ("src", "href"):
            if k in a:
                self.urls.append(a[k])


def parse(text: str) -> Refs:
    p = Refs()
    p.feed(text)
    return p


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    return struct.unpack(">II", data[16:24])


def test_report_writes_every_figure(report_dir, all_paths):
    page = (report_dir / "index.html").read_text()
    refs = parse(page)
    assert refs.scripts == 0
    names = set(refs.imgs)
    for fam in ("translation", "scale", "rescale"):
        for m in ("exact_median", "exact_worst", "paper_median", "paper_worst"):
            assert f"heatmap_{fam}_{m}.png" in names
    for name in ("heatmap_status.png", "heatmap_translation_rate_ratio.png", "heatmap_scale_angle_ratio.png",
                 "heatmap_scale_equilibrium_ratio.png", "parallel.png", "rates.png"):
        assert name in names
    assert sum(1 for n in names if n.startswith("run_")) == len(all_paths)  # every run has committed rows
    for n in names:
        assert png_size(report_dir / n)[0] > 100
    assert (report_dir / "summary.csv").stat().st_size > 0


def test_page_marks_diverged_and_unfinished(report_dir):
    page = (report_dir / "index.html").read_text()
    skipped = page[page.index('id="skipped"'):page.index('id="grid"')]
    assert "diverged at step" in skipped and "running, 30 of" in skipped
    assert 'class="diverged"' in page and 'class="running"' in page


def test_heatmap_cells_letter_runs_that_are_not_fitted(all_paths):
    from nmech_analysis import figures
    from nmech_analysis.summary import analyse
    results = analyse(all_paths)
    xs = figures._sort_values({r.row["lr"] for r in results})
    ys = figures._sort_values({r.row["batch_size"] for r in results})
    marks: dict[str, str] = {}
    for _, runs in figures.panels(results, "lr", "batch_size"):
        cells = figures.heat_cells(runs, "scale_paper_median", "lr", "batch_size", xs, ys)
        for r in runs:
            ij = (ys.index(r.row["batch_size"]), xs.index(r.row["lr"]))
            if r.info.status != "done":
                marks[r.info.status] = cells.marks[ij]
                assert ij not in cells.text  # not coloured, not labelled with a value
            else:
                assert cells.values[ij] == pytest.approx(r.row["scale_paper_median"])
    assert marks == {"diverged": "D", "running": "R"}


def test_report_with_one_run(stores, tmp_path):
    out = tmp_path / "one"
    r = subprocess.run([sys.executable, "-m", "nmech_analysis", "report", str(stores["osc"].path), "-o", str(out),
                        "--jobs", "1"], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    refs = parse((out / "index.html").read_text())
    assert refs.imgs
    for n in refs.imgs:
        png_size(out / n)


# ---------------------------------------------------------------------------------------------
# a store that is being written right now


def test_summary_while_a_run_is_writing(tmp_path):
    store = tmp_path / "live.h5"
    proc = subprocess.Popen(_command(store, {"lr": "0.05", "batch_size": "16", "momentum": "0.9",
                                             "weight_decay": "0.01", "steps": "100000"}),
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        rows = 0
        while time.time() < deadline and rows < 32:
            time.sleep(0.5)
            assert proc.poll() is None, "nmech run ended early"
            if store.exists():
                try:
                    with h5py.File(store, "r") as f:
                        (run,) = f["runs"].values()
                        rows = int(run["progress"][0]["rows_committed"])
                except OSError:
                    pass  # the file is being created
        assert rows >= 32, "the run never committed rows"
        r = subprocess.run([sys.executable, "-m", "nmech_analysis", "summary", str(store)], capture_output=True,
                           text=True, env=ENV, timeout=120)
        assert r.returncode == 0, r.stderr
        fields = r.stdout.splitlines()[1].split()
        assert fields[1] == "running"
        assert proc.poll() is None  # still writing while we read
    finally:
        proc.kill()
        proc.wait()
