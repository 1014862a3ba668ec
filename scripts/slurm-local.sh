#!/usr/bin/env bash
# A real single-node SLURM cluster on localhost for cellsim's queue tests (Debian's slurm-wlm + munge).
# Installs the packages when missing (needs root and apt-get), writes a minimal slurm.conf (no cgroups,
# no accounting), starts munged, slurmctld and slurmd, and waits until the node is idle. Idempotent:
# running it again with the daemons up does nothing. Usage: scripts/slurm-local.sh [start|stop|status]
set -euo pipefail
action=${1:-start}
conf=/etc/slurm/slurm.conf

stop() {
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
}

if [ "$action" = stop ]; then stop; exit 0; fi
if [ "$action" = status ]; then sinfo -h -o '%T' 2>/dev/null; exit 0; fi

if [ "$(id -u)" != 0 ]; then echo "slurm-local: needs root" >&2; exit 1; fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

cpus=$(nproc)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/lib/munge /var/log/munge
if [ ! -f "$conf" ] || ! grep -q cellsim "$conf"; then
  cat > "$conf" <<CONF
# written by cellsim scripts/slurm-local.sh
ClusterName=cellsim
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
NodeName=localhost CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
fi
[ -f /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; }
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
chmod 700 /etc/munge; chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || munged --force
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 50); do
  state=$(sinfo -h -o '%T' 2>/dev/null | head -1 || true)
  case "$state" in idle|mixed|allocated) echo "slurm-local: node $state"; exit 0;; esac
  [ "$state" = "down" ] || [ "$state" = "drained" ] && scontrol update nodename=localhost state=resume 2>/dev/null || true
  sleep 0.2
done
echo "slurm-local: the node did not come up (see /var/log/slurm/)" >&2
exit 1
