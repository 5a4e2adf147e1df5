#!/usr/bin/env bash
# Opens JupyterLab on notebooks/ with the TypeScript kernel; all Jupyter state stays in the project.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT/notebooks"
port="${PORT:-8888}"
token="${JUPYTER_TOKEN:-$("$VENV_PY" -c 'import secrets; print(secrets.token_hex(16))')}"
echo "[lab] JupyterLab: http://127.0.0.1:$port/lab?token=$token   (Ctrl-C stops it)"
exec jupyter lab --no-browser --ip="${JUPYTER_IP:-127.0.0.1}" --port="$port" --IdentityProvider.token="$token" \
  --ServerApp.port_retries=0 --MappingKernelManager.default_kernel_name=tslab $([ "$(id -u)" = 0 ] && echo --allow-root)
