#!/usr/bin/env bash
# TensorBoard on the training logs (the `tensorboard: "logs/run-1"` training option writes them);
# LOGDIR to point elsewhere (default: logs/ beside the notebooks), PORT to change the port.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
logdir="${LOGDIR:-notebooks/logs}"
mkdir -p "$logdir"
echo "[tensorboard] http://127.0.0.1:${PORT:-6006}/ (logs in $logdir; Ctrl-C stops it)"
exec tensorboard --logdir "$logdir" --host 127.0.0.1 --port "${PORT:-6006}"
