#!/usr/bin/env bash
# cluster.sh up STATE_DIR | down STATE_DIR: a one-node Slurm 22.05 cluster from Debian's packages (slurm-wlm,
# munge), started by hand (no systemd) for the tests: munged, slurmctld and slurmd as root with every file under
# STATE_DIR, slurm.conf sized from this machine (CPUs, memory), proctrack/linuxproc, task/none, MpiDefault=pmix,
# job completion records in STATE_DIR/jobcomp.txt (what the tests read for a job's final state; no slurmdbd).
# `up` waits until sinfo shows the node idle and prints the environment clients need (SLURM_CONF); `down` stops
# everything it started, by PID. Clients: export SLURM_CONF=STATE_DIR/slurm.conf.
set -euo pipefail
command=$1
STATE=$(realpath -m "$2")
PORT=${SLURM_TEST_PORT:-16817}  # slurmctld; slurmd takes the next one

stop() {  # stop PIDFILE: ends that daemon and waits for it
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

down() {
  stop "$STATE/slurmd.pid"
  stop "$STATE/slurmctld.pid"
  stop "$STATE/munged.pid"
}

write_conf() {
  local host cpus memory
  host=$(hostname -s)
  cpus=$(nproc --all)  # not nproc: it follows OMP_NUM_THREADS, which the tests set to 1
  memory=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024))
  cat >"$STATE/slurm.conf" <<CONF
ClusterName=vesseltune-test
SlurmctldHost=$host
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$STATE/munge.socket
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=pmix
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.txt
AccountingStorageType=accounting_storage/none
JobRequeue=1
KillWait=10
ReturnToService=2
SchedulerType=sched/backfill
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
}

up() {
  mkdir -p "$STATE/ctld" "$STATE/slurmd" "$STATE/munge"
  trap 'echo "cluster.sh: start failed; logs in $STATE"; down' ERR
  munged --force --socket="$STATE/munge.socket" --pid-file="$STATE/munged.pid" --log-file="$STATE/munged.log" \
    --seed-file="$STATE/munge/seed" --key-file=/etc/munge/munge.key
  write_conf
  export SLURM_CONF=$STATE/slurm.conf
  slurmctld -i
  slurmd
  for _ in $(seq 60); do
    sinfo -h -o "%T" 2>/dev/null | grep -qx idle && { trap - ERR; echo "export SLURM_CONF=$SLURM_CONF"; return 0; }
    sleep 0.5
  done
  echo "cluster.sh: the node did not become idle in 30 s"; sinfo 2>&1 || true; tail -5 "$STATE/slurmctld.log" "$STATE/slurmd.log"
  down
  return 1
}

case $command in
  up) up ;;
  down) down ;;
  *) echo "usage: cluster.sh up|down STATE_DIR"; exit 2 ;;
esac
