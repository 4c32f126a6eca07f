"""A real single-node Slurm cluster on localhost for the job-script tests (ECOSYSTEM.md §4):
munge, slurmctld and slurmd from Debian's packages, run as root with a slurm.conf in a temporary
directory. The daemons this fixture starts are stopped by their process ids, also when a test fails.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NMECH = os.environ.get("NMECH_BIN", str(REPO / "build" / "src" / "apps" / "nmech"))

CONF = """ClusterName=nmech
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=10
MailProg=/bin/true
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=600
{node} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_line() -> str:
    """`slurmd -C`'s line for this machine, with less memory than it has (free for the OS)."""
    line = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    parts = [p for p in line.split() if not p.startswith("RealMemory=")]
    return " ".join(parts + ["RealMemory=4000"])


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _wait_pid(path: Path) -> int | None:
    """The pid a daemon writes once it has started (None if it never does within 5 s)."""
    for _ in range(50):
        if _pid(path):
            break
        time.sleep(0.1)
    return _pid(path)


def _stop(pid: int | None) -> None:
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def _munge_works() -> bool:
    enc = subprocess.run(["munge", "-n"], capture_output=True)
    return enc.returncode == 0 and subprocess.run(["unmunge"], input=enc.stdout, capture_output=True).returncode == 0


class Cluster:
    def __init__(self, d: Path):
        self.dir = d
        self.env = dict(os.environ, SLURM_CONF=str(d / "slurm.conf"), NMECH_BIN=NMECH,
                        OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        for k in [k for k in self.env if k.startswith("SLURM_") and k != "SLURM_CONF"]:
            del self.env[k]

    def run(self, *argv: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{argv} exited {p.returncode}: {p.stdout}{p.stderr}")
        return p

    def job(self, job_id: str) -> dict[str, str]:
        out = self.run("scontrol", "show", "job", "-o", job_id).stdout
        return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)

    def wait_job(self, job_id: str, timeout: float = 300) -> dict[str, str]:
        """Until the job has ended for good (a requeued job passes through PENDING again)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            info = self.job(job_id)
            if info.get("JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
                return info
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} did not end in {timeout} s: {self.job(job_id)}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.dir.glob("*.log")))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    for exe in ("slurmctld", "slurmd", "munged", "sbatch"):
        if shutil.which(exe) is None:
            pytest.fail(f"{exe} not found: scripts/install-deps.sh installs slurm-wlm and munge")
    d = tmp_path_factory.mktemp("slurm")
    (d / "state").mkdir()
    (d / "spool").mkdir()
    host = socket.gethostname()
    (d / "slurm.conf").write_text(CONF.format(host=host, d=d, node=_node_line(), ctld_port=_free_port(),
                                              d_port=_free_port()))
    started: list[int | None] = []
    munge_pid = Path("/run/munge/munged.pid")
    try:
        if not _munge_works():
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True)
            for _ in range(50):
                if _munge_works():
                    break
                time.sleep(0.1)
            started.append(_pid(munge_pid))
        c = Cluster(d)
        for daemon in ("slurmctld", "slurmd"):
            c.run(daemon, "-f", str(d / "slurm.conf"))
            started.append(_wait_pid(d / f"{daemon}.pid"))
        end = time.monotonic() + 60
        while "idle" not in c.run("sinfo", "-h", "-o", "%T", check=False).stdout:
            assert time.monotonic() < end, "the node never became idle:\n" + c.logs()
            time.sleep(0.3)
        yield c
    finally:
        for pid in reversed(started):  # slurmd, slurmctld, then munged
            _stop(pid)
