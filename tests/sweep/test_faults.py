"""Faults made on purpose (docs/FAULTS.md is the table of fault -> outcome -> test).

Each ends in bounded time with the documented exit code (src/nmech/util/exit_codes.hpp) and one
line naming what is wrong, and none leaves a run `done` with a row it did not compute in this
store: every resumed run here ends bitwise equal to the same run never interrupted."""
from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import (ENV, MPIEXEC, NMECH, assert_bitwise_equal, progress, rank_pids, sha256, start_sweep, status,
                      sweep, sweep_argv, wait_until, write_config)

FAILED, BAD_INPUT, STOPPED = 1, 2, 3
RUNNING, DONE = 1, 2
REPO = Path(__file__).resolve().parents[2]

# One small run, long enough (a few seconds) that a signal or a kill lands mid-run.
RUN = """
model = "mlp_bn"
classifier_width = 32
dataset = "synthetic"
steps = 3000
batch_size = 16
momentum = 0.9
weight_decay = 5e-4
"""
SWEEP = RUN + "lr = [0.05]\ncheckpoint_every = 50\n"


def nmech(*argv: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([NMECH, *argv], env=env or ENV, capture_output=True, text=True, timeout=timeout)


def errors(p: subprocess.CompletedProcess) -> list[str]:
    return [line for line in p.stderr.splitlines() if line.startswith("nmech")]


def rows_all_computed(store: Path) -> None:
    """The property every fault keeps: a done run's committed rows were all written in this store
    (a fresh store's rows are NaN until written)."""
    with h5py.File(store, "r") as f:
        for name, run in f["runs"].items():
            p = run["progress"][0]
            if p["status"] == DONE:
                assert np.all(np.isfinite(run["step"][: int(p["rows_committed"])])), name


def committed_rows(store: Path, rows: int) -> bool:
    return any(p[2] == RUNNING and p[0] >= rows for p in progress(store).values())


def stop_mid_run(n: int, cfg: Path, store: Path, sig: int = signal.SIGUSR2) -> list[Path]:
    """Runs the sweep until a run has committed 100 rows, stops it with `sig`: exit 3, checkpoints."""
    proc = start_sweep(n, cfg, store)
    try:
        wait_until(lambda: committed_rows(store, 100), 120, "100 committed rows", proc)
        for pid in rank_pids(proc.pid):
            os.kill(pid, sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == STOPPED, out
    ckpts = sorted(Path(f"{store}.ckpt").glob("*.pt"))
    assert ckpts, out
    return ckpts


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("reference")
    store = d / "reference.h5"
    sweep(1, write_config(d / "sweep.toml", SWEEP), store)
    return store


@pytest.fixture
def small_fs(tmp: Path):
    """A tmpfs of its own (root only, as CI runs), so that the disk can be filled on purpose."""
    mnt = tmp / "fs"
    mnt.mkdir()
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], check=True)
        mounted.append(mnt)
        return mnt

    yield mount
    for m in mounted:
        subprocess.run(["umount", "-l", str(m)], check=False)


# ---------------------------------------------------------------- what a resume trusts

def test_a_store_made_anew_never_adopts_the_old_checkpoints(tmp: Path, reference: Path) -> None:
    cfg = write_config(tmp / "sweep.toml", SWEEP)
    store = tmp / "sweep.h5"
    stop_mid_run(1, cfg, store)
    store.unlink()  # "remove the store to start over", as the refusal of a changed config says
    p = sweep(1, cfg, store)
    assert "checkpoint refused" in p.stderr and "belongs to another store" in p.stderr, p.stderr
    assert "starts again from step 0" in p.stderr
    rows_all_computed(store)
    assert assert_bitwise_equal(reference, store) > 20


@pytest.mark.parametrize("damage, says", [("flip", "damaged: its bytes do not match"), ("truncate", "truncated")])
def test_a_damaged_checkpoint_is_refused_and_the_run_starts_over(tmp: Path, reference: Path, damage: str,
                                                                  says: str) -> None:
    cfg = write_config(tmp / "sweep.toml", SWEEP)
    store = tmp / "sweep.h5"
    [ckpt] = stop_mid_run(1, cfg, store)
    data = bytearray(ckpt.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01  # one bit inside a tensor
    else:
        del data[len(data) // 3:]
    ckpt.write_bytes(bytes(data))
    p = sweep(1, cfg, store)
    [line] = [l for l in p.stderr.splitlines() if "checkpoint refused" in l]
    assert str(ckpt.name) in line and says in line, line
    rows_all_computed(store)
    assert assert_bitwise_equal(reference, store) > 20


def fashion_copy(tmp: Path) -> Path:
    d = tmp / "fashion"
    shutil.copytree("/usr/share/datasets/fashion-mnist", d)
    return d


def test_a_changed_data_file_is_refused_by_sweep_and_run(tmp: Path) -> None:
    data = fashion_copy(tmp)
    text = RUN.replace('dataset = "synthetic"', f'dataset = "fashion-mnist"\ndata_dir = "{data}"')
    text = text.replace("steps = 3000", "steps = 5")
    cfg = write_config(tmp / "sweep.toml", text + "lr = [0.05]\n")
    store = tmp / "sweep.h5"
    sweep(1, cfg, store)
    one = write_config(tmp / "run.toml", text + "lr = 0.05\n")
    single = tmp / "run.h5"
    assert nmech("run", str(one), "-o", str(single)).returncode == 0
    digests = sha256(store), sha256(single)
    labels = data / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[8] = (raw[8] + 1) % 10  # the first image's label
    labels.write_bytes(gzip.compress(bytes(raw)))

    p = sweep(1, cfg, store, check=False)
    assert p.returncode == BAD_INPUT, p.stdout + p.stderr
    assert "made from other training data" in errors(p)[0], p.stderr
    r = nmech("run", str(one), "-o", str(single))
    assert r.returncode == BAD_INPUT and "other training data" in errors(r)[0], r.stderr
    assert (sha256(store), sha256(single)) == digests


# ---------------------------------------------------------------- nothing overwritten unasked

def test_prepare_data_never_replaces_a_file_unasked(tmp: Path) -> None:
    out = tmp / "packed.h5"
    out.write_bytes(b"a finished store, say")
    p = nmech("prepare-data", "cifar10", str(tmp / "no-such-source"), str(out))
    assert p.returncode == BAD_INPUT and "exists; pass --overwrite" in errors(p)[0], p.stderr
    # Told to, but the source is bad: refused before anything is written, OUT intact.
    p = nmech("prepare-data", "cifar10", str(tmp / "no-such-source"), str(out), "--overwrite")
    assert p.returncode == BAD_INPUT and len(errors(p)) == 1, p.stderr
    assert out.read_bytes() == b"a finished store, say"
    assert not list(tmp.glob("packed.h5.*"))


def test_paths_a_command_cannot_use_are_refused_before_writing(tmp: Path) -> None:
    cfg = write_config(tmp / "sweep.toml", SWEEP.replace("steps = 3000", "steps = 10"))
    store = tmp / "sweep.h5"
    Path(f"{store}.ckpt").write_text("not a directory")
    p = sweep(1, cfg, store, check=False)
    assert p.returncode == BAD_INPUT and "is not a directory" in errors(p)[0], p.stderr
    run_cfg = write_config(tmp / "run.toml", RUN.replace("steps = 3000", "steps = 10") + "lr = 0.05\n")
    r = nmech("run", str(run_cfg), "-o", str(store))
    assert r.returncode == BAD_INPUT and "is not a directory" in errors(r)[0], r.stderr
    assert not store.exists() and not list(tmp.glob("*.partial"))
    folder = tmp / "results"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    r = nmech("run", str(run_cfg), "-o", str(folder), "--overwrite")
    assert r.returncode == BAD_INPUT and "is a directory" in errors(r)[0], r.stderr
    assert (folder / "keep.txt").read_text() == "mine"


def test_a_damaged_progress_record_is_named_by_every_reader(tmp: Path) -> None:
    cfg = write_config(tmp / "sweep.toml", SWEEP.replace("steps = 3000", "steps = 10"))
    store = tmp / "sweep.h5"
    sweep(1, cfg, store)
    with h5py.File(store, "r+") as f:
        [run] = list(f["runs"])
        rec = f[f"runs/{run}/progress"][0]
        rec["rows_committed"] = 10**6
        f[f"runs/{run}/progress"][0] = rec
    s = status(store)
    assert s.returncode == BAD_INPUT, s.stdout + s.stderr
    assert errors(s) == [f"nmech: {store}: /runs/{run}/progress: damaged record (rows_committed 1000000 outside [0, 11])"]
    p = sweep(1, cfg, store, check=False)
    assert p.returncode == BAD_INPUT and "damaged record" in errors(p)[0], p.stderr
    a = subprocess.run(["/usr/bin/python3", "-m", "nmech_analysis",
                        "summary", str(store)], env=dict(ENV, PYTHONPATH=str(REPO / "analysis")),
                       capture_output=True, text=True, timeout=120)
    assert a.returncode == BAD_INPUT and "Traceback" not in a.stderr, a.stderr
    assert a.stderr.strip().splitlines() == [f"nmech_analysis: {store}: /runs/{run}/progress: damaged record "
                                             "(rows_committed 1000000 outside [0, 11])"]


# ---------------------------------------------------------------- every fault ends, bounded

@pytest.mark.parametrize("ranks", [1, 2])
def test_no_room_for_the_store_is_exit_1_before_writing(tmp: Path, small_fs, ranks: int) -> None:
    fs = small_fs("256k")
    cfg = write_config(tmp / "sweep.toml", SWEEP)
    p = sweep(ranks, cfg, fs / "sweep.h5", check=False)
    assert p.returncode == FAILED, p.stdout + p.stderr
    assert "the store needs about" in errors(p)[0] and "MiB free" in errors(p)[0], p.stderr
    assert sorted(x.name for x in fs.iterdir() if x.name != "sweep.h5.lock") == []


@pytest.mark.parametrize("ranks", [1, 2])
def test_a_disk_that_fills_during_creation_ends_the_job(tmp: Path, small_fs, ranks: int) -> None:
    """Without the up-front check (a test hook), HDF5 meets the full disk itself: rank 0, which
    builds the store alone, says why and every rank exits 1 (not a crash in MPI_Finalize)."""
    fs = small_fs("256k")
    cfg = write_config(tmp / "sweep.toml", SWEEP)
    t0 = time.monotonic()
    p = sweep(ranks, cfg, fs / "sweep.h5", "--collective-timeout", "5", env={"NMECH_TEST_SKIP_SPACE_CHECK": "1"},
              check=False)
    assert p.returncode == FAILED, p.stdout + p.stderr
    assert time.monotonic() - t0 < 90
    said = "\n".join(errors(p))
    assert "file write failed" in said, said
    assert not [x for x in fs.iterdir() if x.suffix in (".partial", ".h5")]


def fill(fs: Path) -> Path:
    """Fills the file system to the last byte: unbuffered, so that no partly written chunk is left
    in a buffer for close() to fail on, then in smaller chunks down to a byte."""
    filler = fs / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 16, 1 << 12, 1):
            try:
                while f.write(b"\0" * chunk):
                    pass
            except OSError:
                pass
    return filler


def test_a_full_disk_at_a_checkpoint_is_exit_1_and_the_rerun_resumes(tmp: Path, small_fs) -> None:
    """A group of two ranks: the leader's checkpoint write fails, and the whole job ends."""
    cfg = write_config(tmp / "sweep.toml", SWEEP + "ranks_per_run = 2\n")
    sweep(2, cfg, tmp / "reference.h5")
    fs = small_fs("64m")
    store = fs / "sweep.h5"
    stop_mid_run(2, cfg, store)
    filler = fill(fs)
    t0 = time.monotonic()
    p = sweep(2, cfg, store, check=False)
    assert p.returncode == FAILED and time.monotonic() - t0 < 120, p.stdout + p.stderr
    [line] = [l for l in errors(p) if "I/O error" in l]
    assert "cannot write the checkpoint: No space left on device" in line, line
    s = status(store)  # the store is intact and says where the run stands
    assert s.returncode == 0 and "running" in s.stdout, s.stdout + s.stderr
    filler.unlink()
    sweep(2, cfg, store)
    rows_all_computed(store)
    assert assert_bitwise_equal(tmp / "reference.h5", store) > 20


def test_a_second_sweep_on_a_store_in_use_is_refused_naming_the_first(tmp: Path) -> None:
    cfg = write_config(tmp / "sweep.toml", SWEEP.replace("steps = 3000", "steps = 100000"))
    store = tmp / "sweep.h5"
    first = start_sweep(1, cfg, store)
    try:
        wait_until(lambda: committed_rows(store, 50), 120, "the first sweep training", first)
        [holder] = rank_pids(first.pid)
        second = sweep(1, cfg, store, check=False)
        assert second.returncode == BAD_INPUT, second.stdout + second.stderr
        [line] = errors(second)
        assert f"{store}: in use by another nmech (host " in line and f"pid {holder}," in line, line
        assert nmech("run", str(write_config(tmp / "run.toml", RUN + "lr = 0.05\n")), "-o", str(store)).returncode \
            == BAD_INPUT
        os.kill(holder, signal.SIGUSR2)
        first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == STOPPED
    # The lock went with its holder: another config is now refused for what it is, not as in use.
    other = sweep(1, write_config(tmp / "other.toml", SWEEP), store, check=False)
    assert other.returncode == BAD_INPUT and "holds a sweep of another config" in errors(other)[0], other.stderr


def test_two_sweeps_started_at_once_one_trains_the_other_is_refused(tmp: Path) -> None:
    cfg = write_config(tmp / "sweep.toml", SWEEP)
    store = tmp / "sweep.h5"
    procs = [subprocess.Popen(sweep_argv(1, cfg, store), env=dict(ENV, OMPI_MCA_orte_tmpdir_base=str(tmp / f"o{i}")),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        outs = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            p.kill()
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, BAD_INPUT], outs
    refused = outs[[p.returncode for p in procs].index(BAD_INPUT)][1]
    assert "in use by another nmech" in refused, refused
    rows_all_computed(store)


@pytest.mark.parametrize("sig", [signal.SIGUSR2, signal.SIGTERM, signal.SIGKILL])
def test_nmech_run_stops_on_a_signal_and_the_same_command_resumes(tmp: Path, sig: int) -> None:
    # Long enough that rows are committed (every second) well before the end on any machine:
    # 3000 steps train in about a second here, so the signal could land after the last step.
    cfg = write_config(tmp / "run.toml", RUN.replace("steps = 3000", "steps = 10000") + "lr = 0.05\n")
    assert nmech("run", str(cfg), "-o", str(tmp / "reference.h5")).returncode == 0
    store = tmp / "run.h5"
    proc = subprocess.Popen([NMECH, "run", str(cfg), "-o", str(store)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: committed_rows(store, 100), 120, "100 committed rows", proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL  # no checkpoint: the rerun starts the run over
    else:
        assert proc.returncode == STOPPED, out + err
        assert f"stopped by SIG{signal.Signals(sig).name[3:]}" in out and "rerun the same command to resume" in out
    s = status(store)
    assert s.returncode == 0 and "running" in s.stdout, s.stdout
    again = nmech("run", str(cfg), "-o", str(store))
    assert again.returncode == 0 and again.stdout.startswith(f"resuming {store}"), again.stdout + again.stderr
    rows_all_computed(store)
    assert assert_bitwise_equal(tmp / "reference.h5", store) > 20
    assert not Path(f"{store}.ckpt").exists()
    finished = nmech("run", str(cfg), "-o", str(store))
    assert finished.returncode == BAD_INPUT and "is finished (done)" in errors(finished)[0]


def test_a_stopped_rank_is_named_and_the_job_ends_within_the_timeout(tmp: Path) -> None:
    cfg = write_config(tmp / "sweep.toml", SWEEP + "ranks_per_run = 2\n")
    store = tmp / "sweep.h5"
    proc = start_sweep(2, cfg, store, "--collective-timeout", "5")
    pids: list[int] = []
    try:
        wait_until(lambda: committed_rows(store, 50), 120, "training", proc)
        pids = rank_pids(proc.pid)
        env = Path(f"/proc/{pids[-1]}/environ").read_bytes().split(b"\0")
        stopped = int(next(e for e in env if e.startswith(b"OMPI_COMM_WORLD_RANK=")).split(b"=")[1])
        os.kill(pids[-1], signal.SIGSTOP)
        t0 = time.monotonic()
        out, _ = proc.communicate(timeout=120)
        waited = time.monotonic() - t0
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.kill()
    assert proc.returncode == FAILED and waited < 60, (proc.returncode, waited, out)
    [line] = [l for l in out.splitlines() if "timed out" in l]
    assert "no progress for 5 s; rank " + str(stopped) + " (" in line, line
    assert "stopped answering" in line or "did not arrive" in line, line
    rows_all_computed(store)


@pytest.mark.parametrize("hook, says", [
    ({"NMECH_TEST_STALL": "1:store_create"}, "on world rank 0 (another rank did not arrive)"),
    ({"NMECH_TEST_STALL": "0:store_create"}, "on world rank 1 (another rank did not arrive)"),
    ({"NMECH_TEST_STALL_BUILD": "1"}, "on world rank 1 (rank 0, which builds it, stopped, or the file system hangs)"),
], ids=["rank 1 never arrives", "rank 0 never arrives", "rank 0 stops building"])
def test_a_rank_that_never_joins_the_store_creation_ends_the_job(tmp: Path, hook: dict, says: str) -> None:
    """Rank 0 builds the store while the others wait: a rank that never arrives, or a rank 0 that
    stops mid-build, ends the job within the timeout, naming where it waited; nothing is left."""
    cfg = write_config(tmp / "sweep.toml", SWEEP)
    store = tmp / "sweep.h5"
    t0 = time.monotonic()
    p = sweep(2, cfg, store, "--collective-timeout", "5", env=hook, check=False)
    assert p.returncode == FAILED and time.monotonic() - t0 < 90, p.stdout + p.stderr
    assert f"store creation made no progress for 5 s {says}" in p.stderr, p.stderr
    assert not store.exists() and not Path(f"{store}.partial").exists()


# ---------------------------------------------------------------- sizes and numbers

@pytest.mark.parametrize("argv, says", [
    (["--set", "width=1e9"], "key 'width': must be <= 64"),
    (["--set", "threads=100000"], "key 'threads': must be <= 1024"),
    (["--set", "lr=1e39"], "key 'lr': 1e+39 overflows float32"),
    (["--set", "weight_decay=1e-40"], "underflows float32"),
    (["--set", 'model="vgg16_bn"', "--set", "width=64", "--set", "batch_size=512"], "needs about"),
])
def test_sizes_and_numbers_out_of_reach_are_bad_input(tmp: Path, argv: list[str], says: str) -> None:
    cfg = write_config(tmp / "run.toml", RUN + "lr = 0.05\n")
    t0 = time.monotonic()
    p = nmech("run", str(cfg), "-o", str(tmp / "x.h5"), *argv, timeout=60)
    assert p.returncode == BAD_INPUT and time.monotonic() - t0 < 30, p.stderr
    [line] = errors(p)
    assert says in line, line
    assert not (tmp / "x.h5").exists()


def test_verify_refuses_a_depth_out_of_reach(tmp: Path) -> None:
    p = nmech("verify", "--model", "mlp", "--set", "mlp_depth=100000", timeout=60)
    assert p.returncode == BAD_INPUT and "key 'mlp_depth': must be <= 256" in errors(p)[0], p.stderr
