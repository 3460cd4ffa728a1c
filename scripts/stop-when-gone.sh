#!/usr/bin/env bash
# Runs COMMAND once process PID is gone: what PID's EXIT trap would have done had PID not been
# SIGKILLed (no trap runs then), such as stopping the daemons it started. Looks once a second.
# PID's trap, having done the work itself, ends the watcher with SIGTERM: it then runs nothing.
# Start it from PID detached (a signal to PID's process group must not reach it) and writing to a
# file (holding PID's stdout open, it would keep a CI log waiting):
#   setsid scripts/stop-when-gone.sh $$ -- COMMAND... </dev/null >>LOG 2>&1 &
#   watcher=$!    (setsid forks only in a process group leader, which a `&` child of a script
#                  without job control never is: $! is the watcher)
# Usage: scripts/stop-when-gone.sh PID -- COMMAND...
set -euo pipefail

[ $# -ge 3 ] && [ "$2" = -- ] || { echo "usage: $0 PID -- COMMAND..." >&2; exit 2; }
pid="$1"
shift 2
trap 'exit 0' TERM

# A zombie counts as gone: it has exited; whoever reaps it may be slow.
alive() {
  local stat
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"  # past the command name, which may hold spaces and parentheses
  [ "${stat%% *}" != Z ]
}

while alive; do sleep 1; done
echo "stop-when-gone: process $pid is gone; running $*"
exec "$@"
