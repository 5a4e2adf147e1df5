# Sourced by every project script: keeps Jupyter, IPython and Python caches inside the project,
# so nothing lands in the user's home folder or system-wide.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export JUPYTER_CONFIG_DIR="$ROOT/.jupyter/config"
export JUPYTER_DATA_DIR="$ROOT/.jupyter/data"
export JUPYTER_RUNTIME_DIR="$ROOT/.jupyter/runtime"
export JUPYTER_PLATFORM_DIRS=1
export IPYTHONDIR="$ROOT/.jupyter/ipython"
export PATH="$ROOT/.venv/bin:$ROOT/node_modules/.bin:$PATH"
# TensorFlow prints a oneDNN notice and absl warnings on every start; keep the notebooks readable.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
VENV_PY="$ROOT/.venv/bin/python"
mkdir -p "$IPYTHONDIR" "$JUPYTER_RUNTIME_DIR"
# The GPU build's CUDA and cuDNN libraries (pip wheels in .venv), noted by setup; nothing for the CPU build.
_build_note="$ROOT/node_modules/.inception-lab-build.json"
if [ -f "$_build_note" ] && grep -q '"device": "gpu"' "$_build_note"; then
  _library_path="$(sed -n 's/^ *"\(\/[^"]*\)",*$/\1/p' "$_build_note" | paste -sd: -)"
  case ":${LD_LIBRARY_PATH:-}:" in *":$_library_path:"*) ;; *) export LD_LIBRARY_PATH="$_library_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;; esac
fi
unset _build_note _library_path
