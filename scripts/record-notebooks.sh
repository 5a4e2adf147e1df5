#!/usr/bin/env bash
# Re-records the outputs committed with the tutorial notebooks: runs each one in place, full budget.
# Arguments, if any, name the notebooks; default all of notebooks/*.ipynb.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
export INCEPTION_LAB_BUDGET="${INCEPTION_LAB_BUDGET:-full}"
# A fresh cache for the recording (unless INCEPTION_LAB_CACHE names one): the committed outputs show a first
# run as a new user has it (features computed, graphs recorded), not one warmed by earlier work.
if [ -z "${INCEPTION_LAB_CACHE:-}" ]; then
  INCEPTION_LAB_CACHE="$(mktemp -d "${TMPDIR:-/tmp}/inception-lab-recording-XXXXXX")"
  export INCEPTION_LAB_CACHE
  trap 'rm -rf "$INCEPTION_LAB_CACHE"' EXIT
fi
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=(notebooks/*.ipynb)
for notebook in "${notebooks[@]}"; do
  "$VENV_PY" scripts/run_notebook.py "$notebook"
done
