"""The container recipes build nmech exactly as CI does: Apptainer cannot run on this
machine, so this test pins the recipes to CI's commands and fails when they drift apart."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO

DEFS = sorted((REPO / "containers").glob("*.def"))


def sections(text: str) -> dict[str, list[str]]:
    """A definition file's %sections, each as its stripped, non-comment lines."""
    out: dict[str, list[str]] = {}
    current = "header"
    for line in text.splitlines():
        m = re.match(r"^%(\w+)", line)
        if m:
            current = m.group(1)
            out[current] = []
            continue
        s = line.strip()
        if s and not s.startswith("#"):
            out.setdefault(current, []).append(s)
    return out


def ci_build_commands() -> list[str]:
    """The commands CI runs before its tests: .ci/run runs scripts/test.sh, whose `bash scripts/...`
    lines set up and build (scripts/build.sh runs scripts/install-deps.sh)."""
    ci = (REPO / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci
    test_sh = (REPO / "scripts" / "test.sh").read_text().splitlines()
    cmds = [line.strip() for line in test_sh if line.strip().startswith("bash scripts/")]
    assert cmds == ["bash scripts/build.sh"], cmds
    assert "bash scripts/install-deps.sh" in (REPO / "scripts" / "build.sh").read_text()
    return cmds


def drift(def_text: str) -> list[str]:
    """What a definition does differently from CI ([] when nothing)."""
    s = sections(def_text)
    problems = []
    if ". /opt/nmech" not in s.get("files", []):
        problems.append("%files does not copy the repository to /opt/nmech")
    post = s.get("post", [])
    if "cd /opt/nmech" not in post:
        problems.append("%post does not build in /opt/nmech")
    for cmd in ci_build_commands():
        if cmd not in post:
            problems.append(f"%post does not run CI's '{cmd}'")
    for line in post:  # no second way of installing nmech's packages or building it
        if re.search(r"\bcmake\b|\bninja\b|\bmake\b", line) or ("apt-get install" in line and "nccl" not in line
                                                                 and "ca-certificates" not in line):
            problems.append(f"%post builds or installs on its own: '{line}'")
    for sec in ("environment", "runscript", "test", "labels"):
        if not s.get(sec):
            problems.append(f"no %{sec}")
    if "exec nmech \"$@\"" not in s.get("runscript", []):
        problems.append("%runscript does not exec nmech")
    if not any(l.startswith("nmech --version") for l in s.get("test", [])) or \
            not any(l.startswith("nmech verify") for l in s.get("test", [])):
        problems.append("%test does not check the version and run a tiny verify")
    return problems


def test_there_is_a_cpu_and_a_cuda_recipe():
    assert [d.name for d in DEFS] == ["nmech-cpu.def", "nmech-cuda.def"]
    assert "From: debian:12" in DEFS[0].read_text()
    cuda = DEFS[1].read_text()
    assert "cuda-toolkit" in cuda and "libnccl-dev" in cuda and "libtorch" in cuda and "--nv" in cuda


@pytest.mark.parametrize("path", DEFS, ids=lambda p: p.name)
def test_recipe_builds_exactly_as_ci(path: Path):
    assert drift(path.read_text()) == []


def test_drift_is_caught():
    """Teeth: a recipe that builds its own way, or skips CI's script, fails the check."""
    text = DEFS[0].read_text()
    assert drift(text.replace("bash scripts/build.sh", "cmake -B build && cmake --build build"))
    assert drift(text.replace("    bash scripts/build.sh\n", "    apt-get install -y libtorch-dev\n"))
    assert drift(text.replace("%test", "%nottest"))


def test_the_tiny_verify_in_test_sections_runs_here():
    """The %test command is a real one: run it with this checkout's binary."""
    import os
    import subprocess
    line = next(l for l in sections(DEFS[0].read_text())["test"] if l.startswith("nmech verify"))
    argv = [os.environ.get("NMECH_BIN", str(REPO / "build" / "src" / "apps" / "nmech"))] + line.split()[1:]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "PASS" in p.stdout, p.stdout + p.stderr
