#!/usr/bin/env bash
# A single-node SLURM cluster on localhost for the workflow's SLURM test
# (tests/test_slurm.py). Debian/Ubuntu, run as root (CI machines, containers).
#
#   tests/slurm/cluster.sh install   apt-get install slurmctld slurmd slurm-client munge
#   tests/slurm/cluster.sh start     write the config, start munged, slurmctld, slurmd;
#                                    wait until the node is idle
#   tests/slurm/cluster.sh stop      stop the daemons started by `start`
#   tests/slurm/cluster.sh status    sinfo
#
# The node offers every CPU of the machine, its memory and one GPU of type `fake`
# (a GRES whose device file is /dev/null: slurmd counts a GPU only with a file): jobs that ask for `--gpus=fake:1` are scheduled as on a
# GPU cluster and then run on the CPU (device `auto` falls back to CPU). There is no
# accounting database (AccountingStorageType=none), so `sacct` cannot see jobs: the
# Snakemake executor needs `--slurm-status-command squeue`.
set -euo pipefail

STATE=${CERTSMOOTH_SLURM_STATE:-/tmp/certsmooth-slurm}
CONF_DIR=/etc/slurm
NODE=localhost

log() { echo "[slurm-cluster] $*" >&2; }

as_root() {
    if [ "$(id -u)" -ne 0 ]; then
        log "must run as root (it installs packages and starts system daemons)"
        exit 1
    fi
}

cmd_install() {
    as_root
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        log "already installed: $(slurmctld -V)"
        return
    fi
    if ! command -v apt-get >/dev/null; then
        log "no apt-get: install slurmctld, slurmd, slurm-client and munge with your package manager"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
    log "installed $(slurmctld -V)"
}

write_config() {
    local cpus mem
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    mkdir -p "$CONF_DIR" "$STATE"/{ctld,d,log}
    cat >"$CONF_DIR/slurm.conf" <<CONF
# written by certsmooth tests/slurm/cluster.sh
ClusterName=certsmooth-test
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
MinJobAge=600
SchedulerParameters=sched_interval=2
MpiDefault=none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:fake:1 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
    cat >"$CONF_DIR/gres.conf" <<CONF
NodeName=$NODE Name=gpu Type=fake File=/dev/null
CONF
    echo "cpus=$cpus mem_mb=$mem" >"$STATE/node"
}

cmd_start() {
    as_root
    command -v slurmctld >/dev/null || cmd_install
    write_config
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
    chown -R munge:munge /etc/munge 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    if ! pgrep -x munged >/dev/null; then
        su -s /bin/sh munge -c "/usr/sbin/munged" 2>/dev/null || /usr/sbin/munged --force
    fi
    pgrep -x slurmctld >/dev/null || slurmctld -i
    pgrep -x slurmd >/dev/null || slurmd
    local state=""
    for _ in $(seq 1 60); do
        state=$(sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)
        case "$state" in
            idle|mixed|allocated) break ;;
            down*|drain*) scontrol update NodeName=$NODE State=RESUME 2>/dev/null || true ;;
        esac
        sleep 1
    done
    if [ "$state" != idle ] && [ "$state" != mixed ] && [ "$state" != allocated ]; then
        log "node did not come up (state '$state'); logs in $STATE/log"
        tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
        exit 1
    fi
    log "up: $(sinfo -h -o '%P %D %T %c cpus %m MB %G' | head -1)"
}

cmd_stop() {
    for d in slurmd slurmctld; do
        if [ -s "$STATE/$d.pid" ] && kill "$(cat "$STATE/$d.pid")" 2>/dev/null; then
            log "stopped $d"
        fi
    done
    pkill -x munged 2>/dev/null && log "stopped munged" || true
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) sinfo ;;
    *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
