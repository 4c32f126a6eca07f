"""Gradient reducers in a real sweep (issue 5): the bucketed, overlapped reducer trains groups of
2, 3 and 4 ranks to the same bits as the single all-reduce, and a rank that skips a bucket is
named within the watchdog's timeout instead of hanging the job."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import assert_bitwise_equal, sweep, write_config

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
TINY_BUCKETS = "bucket_mb = 0.004\nfirst_bucket_mb = 0.001\n"  # about 20 buckets on this model


@pytest.mark.parametrize("ranks", [2, 3, 4])
def test_overlapped_buckets_train_to_the_bits_of_one_all_reduce(tmp: Path, ranks: int) -> None:
    base = CONFIG + f"ranks_per_run = {ranks}\n"
    single = write_config(tmp / "single.toml", base + 'reducer = "single"\n')
    overlap = write_config(tmp / "overlap.toml", base + 'reducer = "overlap"\n' + TINY_BUCKETS)
    a = sweep(ranks, single, tmp / "single.h5")
    b = sweep(ranks, overlap, tmp / "overlap.h5")
    # Each sweep says which reducer it used, so the comparison is between two different paths.
    assert "gradients: one all-reduce after backward" in a.stdout, a.stdout
    assert "gradients: MPI buckets of 0.004 MiB, first 0.001 MiB, overlapping backward" in b.stdout, b.stdout
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
    assert "waiting in 'scalars'" in lines[0], lines[0]  # where the skipping rank went on to
    # Start-up, the first step, the timeout and the abort: well under the time 200 steps take.
    assert elapsed < timeout + 20, elapsed
