"""A real single-node Slurm cluster on localhost for the job-script tests (docs/PLATFORM.md §7):
munge, slurmctld and slurmd from Debian's packages, run as root with a slurm.conf in a temporary
directory. The daemons this fixture starts are stopped by their process ids, also when a test fails.

It must come up in a chroot or a minimal container too: no plugin needs a cgroup file system
(process tracking by /proc, no task plugin, no accounting gather), and every address is 127.0.0.1
with the node named on slurmd's command line, so the host name need not resolve. A daemon that
fails to start is reported with the tail of its own log.
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
# Absolute: job steps run in their own working directories (sbatch --chdir).
NMECH = os.path.abspath(os.environ.get("NMECH_BIN", str(REPO / "build" / "src" / "apps" / "nmech")))

CONF = """ClusterName=nmech
SlurmctldHost={host}(127.0.0.1)
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
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=600
NodeName={host} NodeAddr=127.0.0.1 NodeHostname={host} {node} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_line() -> str:
    """`slurmd -C`'s CPU layout for this machine, with less memory than it has (free for the OS);
    the node's name and address are set in CONF."""
    line = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    parts = [p for p in line.split() if not p.startswith(("NodeName=", "RealMemory="))]
    return " ".join(parts + ["RealMemory=4000"])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError as e:
        return f"(no log: {e})"
    return "\n".join(text) or "(log is empty)"


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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

    def start(self, argv: list[str], pidfile: Path, log: Path) -> int:
        """Starts a daemon that forks and writes `pidfile`; fails with the tail of `log` (its own log,
        where it says why) when it exits non-zero, writes no pid, or dies within its first second."""
        p = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60)
        pid = _wait_pid(pidfile) if p.returncode == 0 else None
        if pid is not None:
            time.sleep(1)  # slurmd checks its config and plugins after it has forked
        if not _alive(pid):
            why = f"exited {p.returncode}" if p.returncode else "did not stay up"
            pytest.fail(f"{' '.join(argv)} {why}: {p.stdout}{p.stderr}\n"
                        f"-- last lines of {log}:\n{_tail(log)}", pytrace=False)
        return pid


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    for exe in ("slurmctld", "slurmd", "munged", "sbatch"):
        if shutil.which(exe) is None:
            pytest.fail(f"{exe} not found: scripts/install-deps.sh installs slurm-wlm and munge")
    d = tmp_path_factory.mktemp("slurm")
    (d / "state").mkdir()
    (d / "spool").mkdir()
    host = socket.gethostname().split(".")[0]  # slurmctld only runs on a host named SlurmctldHost
    (d / "slurm.conf").write_text(CONF.format(host=host, d=d, node=_node_line(), ctld_port=_free_port(),
                                              d_port=_free_port()))
    # Slurm 22.05 loads a cgroup plugin whatever the other plugins are, and its autodetection fails
    # without a cgroup file system (`CgroupPlugin=disabled` exists only from 24.05); cgroup/v1 named
    # explicitly only loads, and with the plugins above nothing asks it to touch /sys/fs/cgroup.
    (d / "cgroup.conf").write_text("CgroupPlugin=cgroup/v1\n")
    started: list[int | None] = []
    c = Cluster(d)
    try:
        if not _munge_works():
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            # --origin: the credentials' origin without resolving the host name
            started.append(c.start(["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--origin=127.0.0.1"],
                                   Path("/run/munge/munged.pid"), Path("/var/log/munge/munged.log")))
            for _ in range(50):
                if _munge_works():
                    break
                time.sleep(0.1)
        conf = str(d / "slurm.conf")
        started.append(c.start(["slurmctld", "-f", conf], d / "slurmctld.pid", d / "slurmctld.log"))
        # -N: this node's name from the config, not from resolving the host name
        started.append(c.start(["slurmd", "-f", conf, "-N", host], d / "slurmd.pid", d / "slurmd.log"))
        end = time.monotonic() + 60
        while "idle" not in c.run("sinfo", "-h", "-o", "%T", check=False).stdout:
            assert time.monotonic() < end, "the node never became idle:\n" + c.logs()
            time.sleep(0.3)
        yield c
    finally:
        for pid in reversed(started):  # slurmd, slurmctld, then munged
            _stop(pid)
