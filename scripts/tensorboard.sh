#!/usr/bin/env bash
# TensorBoard on training logs: `npm run tensorboard -- PATH` shows the runs in PATH, resolved against the
# folder npm was run in (npm runs scripts in the project folder and says where it was called in INIT_CWD),
# so `--summaries_dir logs/run-1` and `npm run tensorboard -- logs` run from one folder meet; the command
# line prints the exact command for its own logs. Without PATH (or LOGDIR): the notebooks' logs/
# folder, where their `tensorboard: "logs/run-1"` option writes. PORT changes the port.
set -euo pipefail
source "$(dirname "$0")/env.sh"
caller="${INIT_CWD:-$PWD}"
cd "$ROOT"
if [ $# -gt 1 ]; then echo "[tensorboard] give one folder (npm run tensorboard -- logs), not $#" >&2; exit 2; fi
logdir="${1:-${LOGDIR:-}}"
if [ -n "$logdir" ]; then
  case "$logdir" in /*) ;; *) logdir="$caller/$logdir" ;; esac
  [ -d "$logdir" ] || { echo "[tensorboard] $logdir is not a folder: give the folder of your logs (the command line prints it after a run with --summaries_dir)" >&2; exit 2; }
else
  logdir="$ROOT/notebooks/logs"
  mkdir -p "$logdir"
fi
echo "[tensorboard] http://127.0.0.1:${PORT:-6006}/ (logs in $logdir; Ctrl-C stops it)"
exec tensorboard --logdir "$logdir" --host 127.0.0.1 --port "${PORT:-6006}"
