#!/usr/bin/env bash
# The cleanroom check: the README's two commands, as a new user runs them on a bare
# Debian 12. Builds a minimal Debian 12 root with mmdebstrap (apt and nothing else), puts a clean
# copy of this repository in /root/nmech there and runs, as root inside a chroot,
# `scripts/demo.sh` then `scripts/test.sh`, each logged to a file, then prints a summary.
# The root is like a minimal container: /proc, /sys, /dev, /dev/pts, /dev/shm are mounted but not
# /sys/fs/cgroup, and the commands run under a host name of their own (unshare --uts) that nothing
# resolves.
#
# Too slow for every CI run (about 600 MB of packages, a full build, the demo, the whole test suite:
# about 45 minutes on 2 cores), so it is run by hand; docs/CLEANROOM.md records the last result.
#
#   scripts/cleanroom.sh [--worktree] [--with PATH]... [--keep] [TARGET]
#
#   TARGET      the root to build (default /var/tmp/nmech-cleanroom; removed first if it exists);
#               the logs go to TARGET.logs/ and stay
#   --worktree  copy the working tree (tracked and untracked files git does not ignore) instead of
#               cloning the committed HEAD
#   --with PATH clone HEAD, then copy PATH from the working tree over it (repeatable): tests a change
#               before it is committed without taking everything else in the working tree along
#   --keep      leave the root in place afterwards (it is unmounted either way)
# Needs root, mmdebstrap (apt-get install mmdebstrap), unshare and access to a Debian mirror.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
TARGET=/var/tmp/nmech-cleanroom
WORKTREE=0
KEEP=0
WITH=()
while [ $# -gt 0 ]; do
  case "$1" in
    --worktree) WORKTREE=1 ;;
    --with) WITH+=("$2"); shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "cleanroom: unknown option $1" >&2; exit 2 ;;
    *) TARGET=$1 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "cleanroom: run as root (chroot, mounts)" >&2; exit 2; }
command -v mmdebstrap >/dev/null || { echo "cleanroom: apt-get install mmdebstrap" >&2; exit 2; }
TARGET=$(realpath -m "$TARGET")
LOGS=$TARGET.logs
HOSTNAME_INSIDE=cleanroom-$$  # resolves nowhere: the cluster must not need its own name

MOUNTED=()
cleanup() {
  set +e
  # Daemons the tests leave running inside the root (munged, slurmd) keep its mounts busy: stop
  # the processes whose root is this one, by pid.
  in_root() {
    for p in /proc/[0-9]*; do [ "$(readlink "$p/root" 2>/dev/null)" = "$TARGET" ] && echo "${p#/proc/}"; done
  }
  for pid in $(in_root); do kill -9 "$pid" 2>/dev/null; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do [ -z "$(in_root)" ] && break; sleep 0.5; done
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTED[i]}" || umount -l "${MOUNTED[i]}"
  done
  # Never remove a tree with a file system still mounted in it (it could be the host's /dev).
  if [ "$KEEP" = 0 ] && [ -d "$TARGET" ]; then
    if findmnt -rn -o TARGET | grep -q "^$TARGET/"; then
      echo "cleanroom: something is still mounted under $TARGET; left in place" >&2
    else
      rm -rf --one-file-system "$TARGET"
    fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount_in() {  # mount_in DIR mount-arguments...: mounts and remembers it for cleanup
  local dir=$TARGET/$1; shift
  mkdir -p "$dir"
  mount "$@" "$dir"
  MOUNTED+=("$dir")
  # On a host whose mounts are shared (systemd), the bind of /dev would pass the devpts and tmpfs
  # mounted on it here back to the host's /dev/pts and /dev/shm.
  mount --make-private "$dir"
}

elapsed() { local s=$1; printf '%dm%02ds' $((s / 60)) $((s % 60)); }

rm -rf --one-file-system "$TARGET" "$LOGS"
mkdir -p "$LOGS"
echo "cleanroom: root $TARGET, logs $LOGS"

# Only Debian's mirrors are reachable: the host's apt sources that point there.
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -s "$f" ] && grep -q 'debian\.org' "$f" && sources+=("$f")
done
[ ${#sources[@]} -gt 0 ] || sources=(http://deb.debian.org/debian)

t0=$(date +%s)
echo "cleanroom: mmdebstrap bookworm (variant apt) from ${sources[*]}"
mmdebstrap --variant=apt bookworm "$TARGET" "${sources[@]}" >"$LOGS/mmdebstrap.log" 2>&1 ||
  { tail -30 "$LOGS/mmdebstrap.log" >&2; exit 1; }
t_root=$(( $(date +%s) - t0 ))

dest=$TARGET/root/nmech
commit=$(git -C "$REPO" rev-parse --short=12 HEAD)
if [ "$WORKTREE" = 1 ]; then
  mkdir -p "$dest"
  # Deleted but not yet committed files are listed too: --ignore-failed-read skips them.
  (cd "$REPO" && git ls-files -co --exclude-standard -z |
     tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -C "$dest" -xf -
  source_desc="working tree at $commit (uncommitted changes included)"
else
  git clone --quiet "$REPO" "$dest"
  source_desc="clone of HEAD $commit"
  for p in "${WITH[@]}"; do
    mkdir -p "$(dirname "$dest/$p")"
    cp -a "$REPO/$p" "$dest/$p"
    source_desc+=", $p from the working tree"
  done
fi
echo "cleanroom: repository: $source_desc"

mount_in proc -t proc proc
mount_in sys -t sysfs sysfs  # a new sysfs: the host's cgroup mounts under it do not come along
mount_in dev --bind /dev
mount_in dev/pts -t devpts -o newinstance,ptmxmode=0666 devpts
mount_in dev/shm -t tmpfs -o mode=1777 tmpfs

# run_phase NAME COMMAND: runs COMMAND in /root/nmech inside the root with a clean environment and
# the made-up host name; the output goes to LOGS/NAME.log.
declare -A STATUS DURATION
run_phase() {
  local name=$1 cmd=$2 t rc=0
  echo "cleanroom: $name: $cmd (log $LOGS/$name.log)"
  t=$(date +%s)
  # In the background, waited for: a TERM to this script then ends it at once (the trap stops what
  # runs in the root), not only once the phase is over.
  unshare --uts sh -c "hostname $HOSTNAME_INSIDE && exec chroot '$TARGET' /usr/bin/env -i \
      HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
      bash -c 'cd /root/nmech && $cmd'" >"$LOGS/$name.log" 2>&1 &
  wait $! || rc=$?
  DURATION[$name]=$(( $(date +%s) - t ))
  STATUS[$name]=$([ $rc = 0 ] && echo pass || echo "FAIL (exit $rc)")
  echo "cleanroom: $name: ${STATUS[$name]} in $(elapsed "${DURATION[$name]}")"
}
run_phase demo scripts/demo.sh
run_phase test scripts/test.sh

echo
echo "== cleanroom summary ($(date -u +%Y-%m-%dT%H:%MZ), $(lscpu | sed -n 's/^Model name: *//p'))"
echo "repository:   $source_desc"
echo "bare root:    $(elapsed "$t_root") (mmdebstrap)"
echo "install-deps: $(grep -h '^install-deps: apt installs' "$LOGS/demo.log" | sed 's/^install-deps: //' || echo 'no install seen')"
grep -h -m1 '^After this operation' "$LOGS/demo.log" | sed 's/^/              /' || true
for name in demo test; do
  printf '%-13s %s in %s\n' "$name:" "${STATUS[$name]}" "$(elapsed "${DURATION[$name]}")"
done
grep -h -E 'tests passed|tests failed' "$LOGS/test.log" || true
sed -n '/The following tests FAILED/,$p' "$LOGS/test.log" | grep -E '^\s+[0-9]+ - ' || true
[ "${STATUS[demo]}" = pass ] && [ "${STATUS[test]}" = pass ]
