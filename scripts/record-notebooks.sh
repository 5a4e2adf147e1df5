#!/usr/bin/env bash
# Re-records the outputs committed with the tutorial notebooks: runs each one in place, full budget.
# Arguments, if any, name the notebooks; default all of notebooks/*.ipynb.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
export INCEPTION_LAB_BUDGET="${INCEPTION_LAB_BUDGET:-full}"
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=(notebooks/*.ipynb)
for notebook in "${notebooks[@]}"; do
  "$VENV_PY" scripts/run_notebook.py "$notebook"
done
