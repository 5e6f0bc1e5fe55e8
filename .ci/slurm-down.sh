#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by .ci/slurm-up.sh: slurmd, slurmctld, munged,
# each by its PID file (never by process name). Its configuration and state stay in place.
set -euo pipefail

stop() {  # stop NAME PIDFILE
    local pid
    [ -s "$2" ] || return 0
    pid=$(cat "$2")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "slurm-down: $1 ($pid) did not stop after 10 s, killing it" >&2
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$2"
    echo "slurm-down: stopped $1"
}

stop slurmd /run/slurm/slurmd.pid
stop slurmctld /run/slurm/slurmctld.pid
stop munged /run/munge/munged.pid
