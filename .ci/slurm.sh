#!/usr/bin/env bash
# A one-node SLURM cluster on this machine for CI (Debian's slurm-wlm + munge): `start` installs what is missing,
# writes its config under STATE, starts munged, slurmctld and slurmd in the foreground (PIDs in STATE/pids) and
# waits for an idle node; `stop` kills exactly those PIDs. Nothing is written under /etc: every SLURM command
# finds the config through SLURM_CONF=STATE/slurm.conf (print it with `env`).
#   bash .ci/slurm.sh start|stop|env [STATE]     (STATE defaults to /tmp/mergeir-slurm)
set -euo pipefail
cmd=${1:?start, stop or env}
STATE=${2:-/tmp/mergeir-slurm}

stop() {
  [ -f "$STATE/pids" ] || return 0
  while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$STATE/pids"
  for _ in $(seq 50); do
    alive=0
    while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done < "$STATE/pids"
    [ $alive = 0 ] && break
    sleep 0.2
  done
  while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < "$STATE/pids"
  rm -f "$STATE/pids"
}

case "$cmd" in
  env) echo "SLURM_CONF=$STATE/slurm.conf"; exit 0 ;;
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "error: unknown command $cmd (start, stop or env)" >&2; exit 2 ;;
esac

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
fi
stop   # a previous run's daemons, if its stop never ran
mkdir -p "$STATE"/{spool,state,log}
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
cat > "$STATE/slurm.conf" <<CONF
ClusterName=mergeir-ci
SlurmctldHost=$host
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MailProg=/bin/true
ReturnToService=2
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$STATE/slurm.conf
: > "$STATE/pids"
mkdir -p /run/munge
munged --foreground --force > "$STATE/log/munged.out" 2>&1 & echo $! >> "$STATE/pids"
for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.2; done
slurmctld -D -i > "$STATE/log/slurmctld.out" 2>&1 & echo $! >> "$STATE/pids"
slurmd -D > "$STATE/log/slurmd.out" 2>&1 & echo $! >> "$STATE/pids"
for _ in $(seq 150); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
    echo "slurm: node $host idle ($cpus CPUs, ${mem} MB); SLURM_CONF=$SLURM_CONF"; exit 0
  fi
  sleep 0.2
done
echo "error: the SLURM node never became idle; logs in $STATE/log" >&2
sinfo >&2 || true
tail -5 "$STATE"/log/*.log >&2 || true
stop
exit 2
