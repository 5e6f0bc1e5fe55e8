#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine (for tests/test_slurm.py and CI).
#
#   .ci/slurm-up.sh          # install slurm-wlm + munge if missing, configure, start, smoke test
#   .ci/slurm-down.sh        # stop the daemons again (by their PID files)
#
# Idempotent: a cluster this script started and that still answers is left as it is.
# Needs root. Never touches a Slurm configuration it did not write (it looks for its marker
# line in /etc/slurm/slurm.conf and gres.conf) and never stops daemons by name, only by PID file.
# No systemd: munged, slurmctld and slurmd run as plain daemons.
# Accounting: none (no slurmdbd); completed jobs are listed in $JOBCOMP_LOG instead, and
# Snakemake must query job states with `squeue` (slurm-status-command: squeue), which sees a
# finished job for MinJobAge (900) seconds.
set -euo pipefail

MARKER="# written by dars .ci/slurm-up.sh"
CONF=/etc/slurm/slurm.conf
GRES=/etc/slurm/gres.conf
RUN=/run/slurm
LOGDIR=/var/log/slurm
JOBCOMP_LOG=$LOGDIR/jobcomp.log
STATE=/var/lib/slurm/slurmctld
SPOOL=/var/lib/slurm/slurmd

say() { echo "slurm-up: $*"; }
die() { echo "slurm-up: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (installs packages, writes $CONF, starts daemons)"

alive() {  # alive PIDFILE: the process named in PIDFILE exists
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

node_state() { timeout 10 sinfo -h -o %T 2>/dev/null | head -n1 || true; }

# 1. Packages.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null || die "apt-get install failed"
fi

# 2. Configuration (ours, or none: never overwrite a real cluster's).
if [ -e "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
    die "$CONF exists and was not written by this script; refusing to replace it"
fi
CPUS=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -n1)
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n1)
[ -n "$CPUS" ] && [ -n "$MEM" ] || die "could not read CPUs/RealMemory from 'slurmd -C'"
MEM=$((MEM * 9 / 10))   # leave some memory to the system
NEW=$(mktemp)
cat >"$NEW" <<EOF
$MARKER
# Single-node test cluster on localhost: no accounting database, no cgroups.
ClusterName=dars-ci
SlurmctldHost=localhost
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# A text record of every finished job (id, user, name, state, partition, ...): the tests read it.
JobCompType=jobcomp/filetxt
JobCompLoc=$JOBCOMP_LOG
# squeue and scontrol keep finished jobs this long: Snakemake's squeue status checks rely on
# it, and the tests read the finished jobs' details (partition, GPUs) with scontrol.
MinJobAge=900
ReturnToService=2
SchedulerType=sched/backfill
# Two stand-in GPUs (gres.conf: /dev/null and /dev/zero, no device behind them) so that jobs
# can ask for --gpus=1 as on a real cluster; Slurm then sets CUDA_VISIBLE_DEVICES for them.
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
NEW_GRES=$(mktemp)
cat >"$NEW_GRES" <<EOF
$MARKER
NodeName=localhost Name=gpu File=/dev/null
NodeName=localhost Name=gpu File=/dev/zero
EOF
if [ -e "$GRES" ] && ! grep -qF "$MARKER" "$GRES"; then
    rm -f "$NEW" "$NEW_GRES"
    die "$GRES exists and was not written by this script; refusing to replace it"
fi
CHANGED=0
if ! cmp -s "$NEW" "$CONF" 2>/dev/null || ! cmp -s "$NEW_GRES" "$GRES" 2>/dev/null; then
    install -m 0644 "$NEW" "$CONF"
    install -m 0644 "$NEW_GRES" "$GRES"
    CHANGED=1
fi
rm -f "$NEW" "$NEW_GRES"

# 3. Already up with this configuration? Then there is nothing to do.
if [ "$CHANGED" = 0 ] && alive "$RUN/slurmctld.pid" && alive "$RUN/slurmd.pid" && alive /run/munge/munged.pid; then
    case "$(node_state)" in
        idle*|mix*|alloc*) say "already running ($(node_state))"; exit 0 ;;
    esac
fi
if [ "$CHANGED" = 1 ] && { alive "$RUN/slurmctld.pid" || alive "$RUN/slurmd.pid"; }; then
    say "configuration changed: restarting"
    "$(dirname "$0")/slurm-down.sh"
fi

# 4. Directories owned by the slurm user.
install -d -o slurm -g slurm -m 0755 "$RUN" "$LOGDIR" "$STATE" "$SPOOL"
touch "$JOBCOMP_LOG" && chown slurm:slurm "$JOBCOMP_LOG"

# 5. munge: key, then the daemon as user munge.
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    say "creating a munge key"
    runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
fi
if ! alive /run/munge/munged.pid; then
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
fi
for _ in $(seq 50); do munge -n </dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
munge -n </dev/null | unmunge >/dev/null 2>&1 || die "munged does not answer"

# 6. slurmctld, then slurmd (both daemonize and write their PID files).
if ! alive "$RUN/slurmctld.pid"; then
    rm -f "$RUN/slurmctld.pid"
    /usr/sbin/slurmctld
fi
for _ in $(seq 50); do timeout 5 scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
if ! alive "$RUN/slurmd.pid"; then
    rm -f "$RUN/slurmd.pid"
    /usr/sbin/slurmd -N localhost
fi

# 7. Wait for the node, bring it back if an earlier run left it down/drained, smoke test.
for i in $(seq 120); do
    state=$(node_state)
    case "$state" in
        idle*|mix*|alloc*) break ;;
        down*|drain*) scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
done
case "$(node_state)" in
    idle*|mix*|alloc*) ;;
    *) die "node not idle after 60 s (state: '$(node_state)'); see $LOGDIR/slurmctld.log and slurmd.log" ;;
esac
out=$(timeout 60 sbatch --wait -p debug -o /dev/null --wrap hostname 2>&1) || die "smoke test failed: $out"
say "up: $(sinfo -h -o '%P %D %T %c cpus %m MB') ($out)"
