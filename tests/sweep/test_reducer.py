"""Gradient reducers in a real sweep: the bucketed, overlapped reducer trains groups of
2, 3 and 4 ranks to the same traces as the single all-reduce, and a rank that skips a bucket is
named within the watchdog's timeout instead of hanging the job.

Same traces: the same bits for 2 and 4 ranks. For 3 ranks Open MPI sums small buffers (a tiny
bucket) in another order than large ones, so gradients may differ in the last bit (measured
3e-18 of the largest element, tests/mpi/reducer_check.cpp) and 12 steps carry that to at most
1e-12 here."""
from __future__ import annotations

import json
import time
from pathlib import Path

import h5py

import pytest

import numpy as np

from conftest import assert_bitwise_equal, run_rows, sweep, write_config

CONFIG = """
model = "vgg11_bn"
width = 0.0625
classifier_width = 16
dataset = "synthetic"
dtype = "float64"
bn_eps = 1e-12
steps = 12
batch_size = 24
lr = 0.1
momentum = 0.9
weight_decay = 5e-4
"""
# About 20 buckets on this model; its gradients of 2 KiB or more are summed in place.
TINY_BUCKETS = "bucket_mb = 0.004\nfirst_bucket_mb = 0.001\nin_place_mb = 0.002\n"


def max_relative_difference(a: Path, b: Path) -> float:
    """Worst difference of any dataset relative to its largest value. Datasets that are zero
    by symmetry up to rounding (a translation set's gradient sum, ⟨θ, g⟩ of a scale set: at
    most 1e-12 here) are measured against 1e-3 instead, so rounding noise is not divided by
    rounding noise."""
    ra, rb = run_rows(a), run_rows(b)
    assert len(ra) == len(rb)
    worst = 0.0
    for (run, data), other in zip(sorted(ra.items()), sorted(rb)):  # runs in name order
        for ds, x in data.items():
            y = rb[other][ds]
            ok = np.isfinite(y)
            assert np.array_equal(np.isfinite(x), ok), f"{run}/{ds}: NaN rows differ"
            scale = float(np.max(np.abs(y[ok]), initial=0.0))
            scale = 1e-3 if scale <= 1e-12 else scale
            worst = max(worst, float(np.max(np.abs(x[ok] - y[ok]), initial=0.0)) / scale)
    return worst


@pytest.mark.parametrize("ranks", [2, 3, 4])
def test_overlapped_buckets_train_to_the_bits_of_one_all_reduce(tmp: Path, ranks: int) -> None:
    base = CONFIG + f"ranks_per_run = {ranks}\n"
    single = write_config(tmp / "single.toml", base + 'reducer = "single"\n')
    overlap = write_config(tmp / "overlap.toml", base + 'reducer = "overlap"\n' + TINY_BUCKETS)
    a = sweep(ranks, single, tmp / "single.h5")
    b = sweep(ranks, overlap, tmp / "overlap.h5")
    # Each sweep says which reducer it used, so the comparison is between two different paths.
    assert "gradients: one all-reduce after backward" in a.stdout, a.stdout
    assert "gradients: MPI buckets of 0.004 MiB, first 0.001 MiB, from 0.002 MiB in place, overlapping backward" in b.stdout, b.stdout
    # The provenance says how the gradients were summed (docs/PLATFORM.md §4's list).
    with h5py.File(tmp / "overlap.h5", "r") as f:
        (run,) = f["runs"].values()
        prov = json.loads([x for x in run["provenance"][()] if x][0].decode())
    dp = prov["data_parallel"]
    assert (dp["group_size"], dp["reducer"], dp["bucket_mb"], dp["first_bucket_mb"], dp["in_place_mb"]) == (
        ranks, "overlap", 0.004, 0.001, 0.002)
    assert (dp["backend"], prov["device"]) == ("mpi", "cpu")
    assert dp["batch"] == 24 and dp["per_rank_batch"] == [24 // ranks, -(-24 // ranks)]
    if ranks == 3:
        assert max_relative_difference(tmp / "overlap.h5", tmp / "single.h5") <= 1e-12
        # Teeth: a different learning rate is far outside that tolerance.
        other = write_config(tmp / "other.toml", base.replace("lr = 0.1", "lr = 0.09") + 'reducer = "single"\n')
        sweep(ranks, other, tmp / "other.h5")
        assert max_relative_difference(tmp / "other.h5", tmp / "single.h5") > 1e-6
    else:
        assert assert_bitwise_equal(tmp / "single.h5", tmp / "overlap.h5") > 20
    if ranks == 2:  # the same buckets started after backward
        after = write_config(tmp / "after.toml", base + 'reducer = "buckets"\n' + TINY_BUCKETS)
        sweep(ranks, after, tmp / "after.h5")
        assert_bitwise_equal(tmp / "single.h5", tmp / "after.h5")


def test_a_rank_that_skips_a_bucket_is_named_within_the_timeout(tmp: Path) -> None:
    cfg = write_config(tmp / "sweep.toml", CONFIG.replace("steps = 12", "steps = 200") + "ranks_per_run = 2\n" +
                       'reducer = "overlap"\n' + TINY_BUCKETS)
    timeout = 2.0
    t0 = time.monotonic()
    p = sweep(2, cfg, tmp / "sweep.h5", "--collective-timeout", str(timeout),
              env={"NMECH_TEST_SKIP": "1:grad bucket 3/*"}, check=False)
    elapsed = time.monotonic() - t0
    assert p.returncode == 1, p.stdout + p.stderr
    lines = [l for l in p.stderr.splitlines() if l.startswith("nmech: collective 'grad bucket 3/")]
    assert lines, p.stderr
    assert "timed out: no progress for 2 s" in lines[0], lines[0]
    assert "rank 1 (" in lines[0] and "did not arrive" in lines[0] and "(world rank 0 waited)" in lines[0], lines[0]
    # Where the skipping rank went on to: a later bucket (its own transport thread is stuck
    # there too, since the others never finish bucket 3) or the step's scalars.
    assert "waiting in 'grad bucket 4/" in lines[0] or "waiting in 'scalars'" in lines[0], lines[0]
    # Start-up, the first step, the timeout and the abort: well under the time 200 steps take.
    assert elapsed < timeout + 20, elapsed


def test_a_rank_that_hangs_in_a_bucket_is_named_within_the_timeout(tmp: Path) -> None:
    # Rank 1 stops for good (no heartbeat) where it would start bucket 3: a hung rank, not a buggy
    # one. The bucket transports take the same stall hook as every other collective.
    cfg = write_config(tmp / "sweep.toml", CONFIG.replace("steps = 12", "steps = 200") + "ranks_per_run = 2\n" +
                       'reducer = "overlap"\n' + TINY_BUCKETS)
    t0 = time.monotonic()
    p = sweep(2, cfg, tmp / "sweep.h5", "--collective-timeout", "2",
              env={"NMECH_TEST_STALL": "1:grad bucket 3/*"}, check=False)
    elapsed = time.monotonic() - t0
    assert p.returncode == 1, p.stdout + p.stderr
    lines = [l for l in p.stderr.splitlines() if l.startswith("nmech: collective 'grad bucket 3/")]
    assert len(lines) == 1, p.stderr
    assert "timed out: no progress for 2 s" in lines[0] and "rank 1 (" in lines[0] and "did not arrive" in lines[0], lines[0]
    assert "rank 0 (" not in lines[0]  # only the missing rank is named
    assert elapsed < 2 + 20, elapsed
