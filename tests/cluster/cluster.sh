#!/bin/bash
# A virtual Slurm cluster of N nodes on this one machine.
#
#   tests/cluster/cluster.sh up N      start it; prints `source $CLUSTER_DIR/env`
#   tests/cluster/cluster.sh status    what is running
#   tests/cluster/cluster.sh cut K     node K is lost, as on power loss: every process in it is frozen
#                                      (SIGSTOP) and its interface goes down; nothing is told
#   tests/cluster/cluster.sh mend K    the node comes back: what it ran for jobs is killed, its slurmd
#                                      resumes, and Slurm takes the node back into service
#   tests/cluster/cluster.sh down      stop everything `up` started, by PID, and remove what it made
#
# Each node is a network namespace (its own interface and address on a bridge this script makes,
# in a private range; nothing outside the machine is addressed) entered together with new UTS and
# mount namespaces (its own host name, its own /tmp and /dev/shm). One slurmd per node runs inside
# its namespaces as `slurmd -N nodeK`; one slurmctld runs on the host side of the bridge. The file
# system is otherwise shared, as a cluster's parallel file system would be: the repository and the
# stores are seen by every node under the same paths.
#
# Needs root, iproute2, util-linux (nsenter, unshare), slurm-wlm and munge. docs/PLATFORM.md §9 says
# what it took to make this work here.
#
# Settings (environment):
#   CLUSTER_DIR     state: slurm.conf, logs, spool, the env file     [/var/tmp/nmech-cluster]
#   CLUSTER_NET     first three octets of the bridge's /24           [10.77.0]
#                   (host side .254, nodeK .K)
#   CLUSTER_BRIDGE  bridge name                                      [nmbr0]
#   CLUSTER_SHARE   colon-separated folders under /tmp that the nodes must still see (each node's
#                   /tmp is private); CLUSTER_DIR and the current folder are added when under /tmp
set -Eeuo pipefail

D=${CLUSTER_DIR:-/var/tmp/nmech-cluster}
NET=${CLUSTER_NET:-10.77.0}
BR=${CLUSTER_BRIDGE:-nmbr0}
REC=$D/created          # one line per thing `up` made, in order; `down` undoes them in reverse
HOSTNAME_S=$(hostname -s)

die() { echo "cluster.sh: $*" >&2; exit 1; }
say() { echo "cluster.sh: $*"; }
rec() { echo "$*" >>"$REC"; }

tail_log() {  # the last lines of a daemon's own log: where it says why it failed
    echo "---- last lines of $1:" >&2
    if [ -s "$1" ]; then tail -n "${2:-25}" "$1" >&2; else echo "(missing or empty)" >&2; fi
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# A PID is only ours while it still runs the program we started: a recycled PID is never signalled.
runs() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$2"; }

stop_pid() {  # stop_pid PID NAME: TERM, up to 10 s, then KILL
    local pid=$1 name=$2 i
    alive "$pid" && runs "$pid" "$name" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 100); do alive "$pid" || return 0; sleep 0.1; done
    echo "cluster.sh: $name ($pid) ignored SIGTERM; SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])'; }

munge_works() {  # munge_works [SOCKET]
    local s=()
    [ -n "${1:-}" ] && s=(--socket="$1")
    munge -n "${s[@]}" 2>/dev/null | unmunge "${s[@]}" >/dev/null 2>&1
}

# start_daemon NAME PIDFILE LOG CMD...: runs CMD (a daemon that forks and writes PIDFILE), records
# its PID, and fails with the tail of LOG when it exits non-zero, writes no PID or dies at once.
start_daemon() {
    local name=$1 pidfile=$2 log=$3 pid="" i
    shift 3
    rm -f "$pidfile"
    if ! "$@" >"$D/log/$name.start.out" 2>&1; then
        echo "cluster.sh: $name failed to start: $*" >&2
        cat "$D/log/$name.start.out" >&2
        tail_log "$log"
        return 1
    fi
    for i in $(seq 100); do
        pid=$(cat "$pidfile" 2>/dev/null || true)
        [ -n "$pid" ] && break
        sleep 0.1
    done
    [ -n "$pid" ] && sleep 1  # slurmd reads its config and plugins after forking
    if ! alive "$pid"; then
        echo "cluster.sh: $name did not stay up: $*" >&2
        cat "$D/log/$name.start.out" >&2
        tail_log "$log"
        return 1
    fi
    rec "pid $name $pid"
}

# ---- inside a node: called by `up` through nsenter + unshare, never by hand -------------------
node_init() {  # node_init K: in the node's fresh UTS + mount namespaces, then exec slurmd
    local k=$1 p
    hostname "node$k"
    # PMIx makes /tmp/spmix_appdir_<uid>_<job>.<step> on every node: with one /tmp for all nodes the
    # second node fails with "File exists". A real node has its own /tmp and /dev/shm too. Each shared
    # folder under /tmp is opened before the tmpfs covers it and bound back in through its open file
    # descriptor; -c (no canonicalising) so that mount(8) does not turn /proc/self/fd/N back into a
    # path name, which would now resolve inside the new tmpfs.
    local fds=() rels=() fd j
    IFS=: read -ra shares <<<"$SHARES"
    for p in "${shares[@]}"; do
        case $p in /tmp/?*) ;; *) continue;; esac  # folders elsewhere are shared anyway
        [ -d "$p" ] || continue
        exec {fd}<"$p"
        fds+=("$fd"); rels+=("${p#/tmp/}")
    done
    mount -t tmpfs -o mode=1777,size=2g "tmp-node$k" /tmp
    for j in "${!fds[@]}"; do
        fd=${fds[$j]}
        mkdir -p "/tmp/${rels[$j]}"
        mount -c --bind "/proc/self/fd/$fd" "/tmp/${rels[$j]}"
        exec {fd}<&-
    done
    mount -t tmpfs -o mode=1777 "shm-node$k" /dev/shm
    mount --bind "$D/hosts" /etc/hosts  # node names resolve on the nodes, as on a cluster
    export SLURM_CONF=$D/slurm.conf
    exec slurmd -f "$D/slurm.conf" -N "node$k"
}

# ---- up -------------------------------------------------------------------------------------------
fail_up() {
    echo "cluster.sh: up failed (line $1); cleaning up" >&2
    trap - ERR
    down || true
    exit 1
}

up() {
    local n=$1 k port host_if cpus share p
    [[ $n =~ ^[1-9][0-9]?$ ]] || die "N must be 1..99, got '$n'"
    [ "$(id -u)" = 0 ] || die "needs root (namespaces, bridge, daemons)"
    for exe in ip nsenter unshare slurmctld slurmd munged munge sinfo; do
        command -v "$exe" >/dev/null || die "$exe not found (scripts/install-deps.sh)"
    done
    [ ! -s "$REC" ] || die "$D/created exists: the cluster is up (or was not brought down); run down first"
    ! ip link show "$BR" >/dev/null 2>&1 || die "a link named $BR exists already (not ours); set CLUSTER_BRIDGE"
    ! ip -4 route show | grep -q "^$NET\.0/24" || die "$NET.0/24 is already routed here; set CLUSTER_NET"
    for k in $(seq "$n"); do
        [ ! -e "/run/netns/node$k" ] || die "network namespace node$k exists already (not ours)"
    done

    # Fresh state on every up: old job state or spool would only confuse a new cluster.
    case $D in /|"") die "refusing CLUSTER_DIR='$D'";; esac
    mkdir -p "$D"
    rm -rf "$D/state" "$D/spool" "$D/log" "$D/run" "$D/munge" "$D/env"
    mkdir -p "$D/state" "$D/spool" "$D/log" "$D/run"
    : >"$REC"
    trap 'fail_up $LINENO' ERR

    # The bridge: the host side is .254, where slurmctld and srun on the host are reached.
    ip link add "$BR" type bridge
    rec "link $BR"
    ip addr add "$NET.254/24" dev "$BR"
    ip link set "$BR" up

    # Hosts file seen by the nodes (bound over /etc/hosts inside each node).
    { echo "127.0.0.1 localhost"; echo "$NET.254 $HOSTNAME_S"
      for k in $(seq "$n"); do echo "$NET.$k node$k"; done; } >"$D/hosts"

    for k in $(seq "$n"); do
        ip netns add "node$k"
        rec "netns node$k"
        host_if="${BR}v$k"   # the host end of the veth pair; deleting it deletes both ends
        ip link add "$host_if" type veth peer name "${BR}p$k"
        rec "link $host_if"
        ip link set "${BR}p$k" netns "node$k"
        ip -n "node$k" link set "${BR}p$k" name eth0
        ip -n "node$k" addr add "$NET.$k/24" dev eth0
        ip -n "node$k" link set eth0 up
        ip -n "node$k" link set lo up  # PMIx and Open MPI talk to themselves over loopback
        ip link set "$host_if" master "$BR"
        ip link set "$host_if" up
    done

    # munge: reuse a munged whose socket works; else start one on a socket of our own, so that
    # stopping it never takes a munged from under anyone else (tests/slurm reuses /run/munge's).
    local authinfo="cred_expire=10"
    if munge_works; then
        say "reusing the running munged (/run/munge/munge.socket.2)"
    else
        mkdir -p "$D/munge"
        chown munge:munge "$D/munge"
        chmod 755 "$D/munge"
        start_daemon munged "$D/munge/munged.pid" "$D/munge/munged.log" \
            runuser -u munge -- munged --socket="$D/munge/munge.socket.2" \
            --pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" \
            --seed-file="$D/munge/munged.seed" --origin=127.0.0.1
        for k in $(seq 50); do munge_works "$D/munge/munge.socket.2" && break; sleep 0.1; done
        munge_works "$D/munge/munge.socket.2" || { tail_log "$D/munge/munged.log"; false; }
        authinfo="socket=$D/munge/munge.socket.2,cred_expire=10"
    fi

    # Each node gets this machine's CPU layout (they share its cores) and a modest RealMemory.
    cpus=$(slurmd -C | head -1 | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
    port=$(free_port)
    cat >"$D/slurm.conf" <<EOF
# written by tests/cluster/cluster.sh up $n
ClusterName=nmcluster
# slurmctld only runs on a host of this name; nodes reach it at the bridge's host address
SlurmctldHost=$HOSTNAME_S($NET.254)
SlurmctldPort=$port
# each node has its own network stack, so the default slurmd port is free on every node
SlurmdPort=6818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=$authinfo
MailProg=/bin/true
StateSaveLocation=$D/state
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmctldLogFile=$D/log/slurmctld.log
# %n: the node's name, so the nodes' slurmds do not share spool, PID file or log
SlurmdSpoolDir=$D/spool/%n
SlurmdPidFile=$D/run/slurmd.%n.pid
SlurmdLogFile=$D/log/slurmd.%n.log
# no cgroup file system inside the nodes: track processes by parentage, bind no tasks
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
SlurmdTimeout=30
EOF
    for k in $(seq "$n"); do
        echo "NodeName=node$k NodeAddr=$NET.$k NodeHostname=node$k ${cpus}RealMemory=2000 State=UNKNOWN" >>"$D/slurm.conf"
    done
    echo "PartitionName=nodes Nodes=node[1-$n] Default=YES MaxTime=INFINITE State=UP" >>"$D/slurm.conf"
    # Slurm 22.05 loads a cgroup plugin whatever the other plugins are, and autodetection fails
    # without a cgroup file system; cgroup/v1 named explicitly only loads (tests/slurm does the same).
    echo "CgroupPlugin=cgroup/v1" >"$D/cgroup.conf"
    export SLURM_CONF=$D/slurm.conf

    start_daemon slurmctld "$D/run/slurmctld.pid" "$D/log/slurmctld.log" slurmctld -f "$D/slurm.conf"

    # Folders under /tmp that the nodes must still see through their private /tmp.
    SHARES=${CLUSTER_SHARE:-}
    for p in "$D" "$PWD"; do
        case $p in /tmp/*) SHARES="$SHARES:$p";; esac
    done
    export SHARES D

    for k in $(seq "$n"); do
        mkdir -p "$D/spool/node$k"
        # nsenter --net, not `ip netns exec`: the latter remounts /sys without the cgroup file
        # system and slurmd then fails. unshare --mount makes mounts private to the node.
        start_daemon "slurmd.node$k" "$D/run/slurmd.node$k.pid" "$D/log/slurmd.node$k.log" \
            nsenter --net="/run/netns/node$k" -- unshare --uts --mount --propagation private -- \
            "$(readlink -f "$0")" _node-init "$k"
    done

    local end=$((SECONDS + 60)) idle
    while :; do
        idle=$(sinfo -h -N -o '%N %T' 2>/dev/null | grep -c ' idle$' || true)
        [ "$idle" = "$n" ] && break
        if [ $SECONDS -ge $end ]; then
            echo "cluster.sh: only $idle of $n nodes idle after 60 s:" >&2
            sinfo -N >&2 || true
            tail_log "$D/log/slurmctld.log"
            for k in $(seq "$n"); do tail_log "$D/log/slurmd.node$k.log" 10; done
            false
        fi
        sleep 0.3
    done
    trap - ERR

    cat >"$D/env" <<EOF
# source this to use the virtual cluster (tests/cluster/cluster.sh)
export SLURM_CONF=$D/slurm.conf
export CLUSTER_DIR=$D
EOF
    say "up: $n nodes (node1..node$n on $NET.0/24, bridge $BR), state in $D"
    say "use it with: source $D/env"
}

# ---- down ---------------------------------------------------------------------------------------
down() {
    [ "$(id -u)" = 0 ] || die "needs root"
    [ -f "$REC" ] || { say "down: nothing recorded in $D (not up)"; return 0; }
    export SLURM_CONF=$D/slurm.conf
    # Cancel jobs first, so their steps end while the slurmds can still clean up after them.
    if grep -q '^pid slurmctld ' "$REC" && [ -f "$SLURM_CONF" ]; then
        local jobs
        jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
        [ -z "$jobs" ] || { timeout 10 scancel $jobs 2>/dev/null || true; sleep 2; }
    fi
    local kind a b ns pid
    tac "$REC" | while read -r kind a b; do
        case $kind in
            pid)
                stop_pid "$b" "${a%%.*}"
                ;;
            netns)
                # Whatever still runs in the node (a job step that outlived its slurmd) is ours:
                # it lives in a namespace this script made. Stop it by PID before deleting it.
                for pid in $(ip netns pids "$a" 2>/dev/null); do
                    kill -TERM "$pid" 2>/dev/null || true
                done
                sleep 0.5
                for pid in $(ip netns pids "$a" 2>/dev/null); do
                    kill -KILL "$pid" 2>/dev/null || true
                done
                ip netns del "$a" 2>/dev/null || echo "cluster.sh: could not delete netns $a" >&2
                ;;
            link)
                ip link del "$a" 2>/dev/null || true
                ;;
        esac
    done
    rm -f "$REC" "$D/env"
    say "down: stopped (logs kept in $D/log)"
}

# ---- status -------------------------------------------------------------------------------------
status() {
    [ -f "$REC" ] || { say "down (nothing recorded in $D)"; return 3; }
    local kind a b bad=0
    while read -r kind a b; do
        case $kind in
            pid)   if alive "$b"; then echo "  $a: pid $b running"; else echo "  $a: pid $b NOT running"; bad=1; fi ;;
            netns) if [ -e "/run/netns/$a" ]; then echo "  netns $a"; else echo "  netns $a MISSING"; bad=1; fi ;;
            link)  ip link show "$a" >/dev/null 2>&1 || { echo "  link $a MISSING"; bad=1; } ;;
        esac
    done <"$REC"
    SLURM_CONF=$D/slurm.conf sinfo -N 2>&1 | sed 's/^/  /' || bad=1
    return $bad
}

# ---- cut / mend ---------------------------------------------------------------------------------
node_arg() {
    [[ ${1:-} =~ ^[1-9][0-9]?$ ]] || die "K must be a node number, got '${1:-}'"
    [ -e "/run/netns/node$1" ] || die "node$1 is not up"
}

cut() {
    node_arg "$1"
    # Frozen as well as unplugged: the nodes share one kernel, so a rank could still reach the others
    # through shared memory or process_vm_readv, which Open MPI's one-sided and UCX transports use
    # between processes they take for neighbours; a lost node does neither.
    local pid
    for pid in $(ip netns pids "node$1" 2>/dev/null); do kill -STOP "$pid" 2>/dev/null || true; done
    ip -n "node$1" link set eth0 down
    say "node$1 lost (its processes frozen, eth0 down); \`$0 mend $1\` brings it back"
}

mend() {
    node_arg "$1"
    local k=$1 pid slurmd
    slurmd=$(awk -v n="slurmd.node$k" '$1 == "pid" && $2 == n {print $3}' "$REC")
    # Job steps stranded on the node while it was cut off: their jobs have ended elsewhere.
    for pid in $(ip netns pids "node$k" 2>/dev/null); do
        [ "$pid" = "$slurmd" ] || kill -KILL "$pid" 2>/dev/null || true
    done
    [ -z "$slurmd" ] || kill -CONT "$slurmd" 2>/dev/null || true
    ip -n "node$k" link set eth0 up
    export SLURM_CONF=$D/slurm.conf
    local end=$((SECONDS + 60)) state
    while :; do
        scontrol update nodename="node$k" state=resume >/dev/null 2>&1 || true
        state=$(sinfo -h -n "node$k" -o %T 2>/dev/null || true)
        [ "$state" = idle ] && break
        [ $SECONDS -lt $end ] || die "node$k is '$state', not idle, 60 s after mend"
        sleep 0.5
    done
    say "node$k back in service"
}

case ${1:-} in
    up)          up "${2:-2}" ;;
    down)        down ;;
    status)      status ;;
    cut)         cut "${2:-}" ;;
    mend)        mend "${2:-}" ;;
    _node-init)  node_init "$2" ;;
    *)           echo "usage: $0 up [N] | down | status | cut K | mend K   (state in \$CLUSTER_DIR, default /var/tmp/nmech-cluster)" >&2; exit 2 ;;
esac
