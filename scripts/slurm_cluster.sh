#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests marked `slurm` and for trying
# `hydra/launcher=slurm` without a cluster (Debian packages slurm-wlm and munge; run as root).
#
#   scripts/slurm_cluster.sh start    # idempotent; prints the SLURM_CONF line to export
#   scripts/slurm_cluster.sh stop     # stops what `start` started; leaves nothing running
#   scripts/slurm_cluster.sh status   # exit 0 when the cluster answers
#
# Everything lives under $DBM_SLURM_DIR (default /tmp/dbm-slurm): slurm.conf, state, spool,
# logs, pid files. The controller and the node daemon listen on the loopback, ports
# $DBM_SLURM_PORT and $DBM_SLURM_PORT+1 (default 16817, 16818); the node offers this machine's
# CPUs (nproc) and 90 % of its memory. Exit status 3: the packages are not installed.
set -euo pipefail

DIR=${DBM_SLURM_DIR:-/tmp/dbm-slurm}
PORT=${DBM_SLURM_PORT:-16817}
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

answers() { [ -f "$CONF" ] && timeout 5 sinfo -h >/dev/null 2>&1; }

start() {
  for bin in slurmctld slurmd munged sinfo; do
    command -v "$bin" >/dev/null || { echo "slurm_cluster: $bin not found (apt-get install slurm-wlm munge)" >&2; exit 3; }
  done
  if answers; then echo "export SLURM_CONF=$CONF"; return 0; fi
  mkdir -p "$DIR"/state "$DIR"/spool "$DIR"/log
  local cpus mem
  cpus=$(nproc)
  mem=$(( $(free -m | awk '/^Mem:/{print $2}') * 9 / 10 ))
  cat > "$CONF" <<EOF
ClusterName=dbm
SlurmctldHost=localhost
SlurmUser=root
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  if ! pgrep -x munged >/dev/null; then
    [ -f /etc/munge/munge.key ] || mungekey --create >/dev/null
    mkdir -p /run/munge
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    su -s /bin/sh munge -c munged 2>/dev/null || munged --force
    touch "$DIR/munged.ours"
  fi
  slurmctld -f "$CONF"
  slurmd -f "$CONF"
  for _ in $(seq 1 50); do
    if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
      echo "export SLURM_CONF=$CONF"
      return 0
    fi
    sleep 0.2
  done
  echo "slurm_cluster: the node did not come up; see $DIR/log/" >&2
  exit 1
}

stop() {
  local f pid
  for f in slurmd slurmctld; do
    if [ -f "$DIR/$f.pid" ]; then
      pid=$(cat "$DIR/$f.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$DIR/$f.pid"
    fi
  done
  if [ -f "$DIR/munged.ours" ]; then
    pkill -x munged 2>/dev/null || true
    for _ in $(seq 1 50); do pgrep -x munged >/dev/null || break; sleep 0.1; done
    pkill -9 -x munged 2>/dev/null || true
    rm -f "$DIR/munged.ours"
  fi
  for _ in $(seq 1 50); do pgrep -x slurmscriptd >/dev/null || break; sleep 0.1; done
  rm -rf "$DIR/state" "$DIR/spool"
}

case ${1:-start} in
  start) start ;;
  stop) stop ;;
  status) answers ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
