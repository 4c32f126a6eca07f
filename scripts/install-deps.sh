#!/usr/bin/env bash
# The one list of Debian packages nmech needs (build, tests, analysis, Slurm tests).
# Idempotent: installs only what is missing. Used by the README's commands, CI and containers/.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev hdf5-tools
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  zlib1g-dev libjpeg62-turbo-dev libopenblas0-openmp
  dataset-fashion-mnist
  python3-h5py-mpi python3-numpy python3-matplotlib python3-pytest python3-torch
  chromium
  slurm-wlm munge
  iproute2  # tests/cluster: nodes as network namespaces on a bridge
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0  # nothing to do: silent, as on every run after the first

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: missing ${#missing[@]} of ${#PACKAGES[@]}: ${missing[*]}" >&2
$SUDO apt-get update -qq
# How many packages apt adds with their dependencies and how much it downloads, said before it starts
# (a first install is several hundred MB). A dry run: `--assume-no` would not stop an install that
# needs no confirmation.
n=$(LC_ALL=C apt-get install -s --no-install-recommends "${missing[@]}" 2>/dev/null | grep -c '^Inst ' || true)
mb=$(LC_ALL=C apt-get install -qq --print-uris --no-install-recommends "${missing[@]}" 2>/dev/null |
     awk '{ s += $3 } END { printf "%.1f", s / 1e6 }' || true)
echo "install-deps: apt installs $n packages (with dependencies), downloading $mb MB" >&2
# Progress as plain lines (one per download, unpack and setup), readable in a log as on a terminal.
$SUDO apt-get install -y --no-install-recommends -o quiet=1 -o Dpkg::Progress-Fancy=0 -o Dpkg::Use-Pty=0 \
  "${missing[@]}"
echo "install-deps: done" >&2
