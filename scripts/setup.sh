# Idempotent setup, run before `npm start`, `npm test` and `npm run bench`:
#   1. Python venv (.venv) with JupyterLab, nbclient, plotly and TensorFlow (the tensorflow-cpu wheel, or
#      for the GPU build the tensorflow[and-cuda] wheel, whose CUDA and cuDNN libraries are pip wheels too),
#      at the exact versions of constraints.txt;
#   2. Node packages (npm ci, install scripts off: see .npmrc);
#   3. @tensorflow/tfjs-node (CPU) or @tensorflow/tfjs-node-gpu compiled against the TensorFlow C libraries
#      of that wheel, because their own install scripts download libtensorflow 2.9, which fails offline
#      and behind firewalls and, for the GPU, needs CUDA 11.2;
#   4. the tslab TypeScript kernel registered inside the venv;
#   5. a check that the chosen package really runs on native TensorFlow.
# The build: the GPU one when nvidia-smi answers with a working driver, else the CPU one
# (scripts/device.sh); INCEPTION_LAB_DEVICE=gpu|cpu overrides, INCEPTION_LAB_GPU_WHEEL names the GPU wheel.
# Each step is skipped when its result is already in place, so a second run takes seconds; changing
# the build redoes the steps it changes.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$(dirname "$0")/device.sh"
cd "$ROOT"

step() { echo "[setup] $*"; }
fail() { echo "[setup] FAILED at: $1" >&2; echo "[setup] what to do: $2" >&2; exit 1; }
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

DEVICE="$(choose_device)" || exit 1
GPU_WHEEL="${INCEPTION_LAB_GPU_WHEEL:-tensorflow[and-cuda]==2.21.0}"
[ "$DEVICE" = gpu ] && step "GPU build (TensorFlow from $GPU_WHEEL, @tensorflow/tfjs-node-gpu)"

# --- 1. Python venv --------------------------------------------------------------------------
PYTHON="${PYTHON:-python3}"
requirements() {
  if [ "$DEVICE" = gpu ]; then grep -v '^tensorflow-cpu' requirements.txt; echo "$GPU_WHEEL"; else cat requirements.txt; fi
}
req_hash="$({ requirements; cat constraints.txt; } | sha1sum | cut -d' ' -f1)"
if ! stamp_ok .venv/.requirements.sha1 "$req_hash"; then
  if [ ! -x "$VENV_PY" ]; then
    step "creating the Python venv in .venv (with $($PYTHON --version 2>&1))"
    "$PYTHON" -m venv .venv || fail "python venv" "install Python 3.10-3.13 with venv support (Debian: apt-get install python3-venv), or set PYTHON=/path/to/python3"
  fi
  requirements > .venv/requirements-in-use.txt
  # The exact versions apply with the Python they were resolved for, and not to a GPU wheel named by
  # INCEPTION_LAB_GPU_WHEEL (its own versions may differ); setup says when it installs without them.
  python_version="$("$VENV_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  frozen_for="$(sed -n 's/^# python: //p' constraints.txt)"
  : > .venv/constraints-in-use.txt
  if [ "$DEVICE" = gpu ] && [ -n "${INCEPTION_LAB_GPU_WHEEL:-}" ]; then
    step "installing $GPU_WHEEL without constraints.txt (the versions there were resolved for tensorflow 2.21.0)"
  elif [ "$python_version" != "$frozen_for" ]; then
    step "Python $python_version: installing without constraints.txt (its exact versions were resolved for Python $frozen_for); versions may differ from the tested ones"
  else
    grep -v '^#' constraints.txt > .venv/constraints-in-use.txt
  fi
  # No retries: where the default index is unreachable but a local mirror is configured, pip would
  # otherwise spend minutes retrying the index for every package. PIP_RETRIES overrides.
  pip_install() { "$VENV_PY" -m pip install --retries "${PIP_RETRIES:-0}" --timeout "${PIP_TIMEOUT:-15}" --disable-pip-version-check -q "$@"; }
  cannot_install() {
    if [ "$DEVICE" = gpu ]; then
      fail "installing the GPU wheel $GPU_WHEEL" "it needs the network (its CUDA and cuDNN wheels are large) and a platform TensorFlow builds GPU wheels for (Linux x86_64 or aarch64, Python 3.10-3.13). Try again online, point PIP_INDEX_URL at an index that has it, or use the CPU build: INCEPTION_LAB_DEVICE=cpu npm run setup"
    fi
    fail "pip install -r requirements.txt" "check the network or your pip index (PIP_INDEX_URL), then run 'npm run setup' again"
  }
  # tensorflow and tensorflow-cpu install the same files: the other build's goes first, but only once
  # pip has found everything the new one needs (a GPU wheel that cannot be had leaves the venv as it was).
  others=()
  for other in tensorflow-cpu tensorflow; do
    if ! grep -q "^${other}[=\[<>]" .venv/requirements-in-use.txt && "$VENV_PY" -m pip show -q "$other" >/dev/null 2>&1; then others+=("$other"); fi
  done
  if [ ${#others[@]} -gt 0 ]; then
    pip_install --dry-run -r .venv/requirements-in-use.txt -c .venv/constraints-in-use.txt >/dev/null || cannot_install
    step "removing ${others[*]} (the other build's TensorFlow)"
    "$VENV_PY" -m pip uninstall -y -q "${others[@]}" >/dev/null
  fi
  step "installing JupyterLab, nbclient, plotly and TensorFlow into .venv (a few minutes the first time)"
  pip_install -r .venv/requirements-in-use.txt -c .venv/constraints-in-use.txt || cannot_install
  echo "$req_hash" > .venv/.requirements.sha1
fi

# --- 2. Node packages ------------------------------------------------------------------------
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "installing Node packages (npm ci)"
  npm ci --no-audit --no-fund || fail "npm ci" "check access to the npm registry, then run 'npm run setup' again"
fi

# --- 3. tfjs-node (or tfjs-node-gpu) on native TensorFlow -------------------------------------
if [ "$DEVICE" = gpu ]; then PACKAGE=@tensorflow/tfjs-node-gpu; else PACKAGE=@tensorflow/tfjs-node; fi
TFJS="node_modules/$PACKAGE"
bash scripts/build-binding.sh "$DEVICE" || exit 1
TF_VERSION="$(cat "node_modules/$PACKAGE/deps/.built-against" | cut -d' ' -f2)"
# The note the library reads to load the built package (kernel-helpers/runtime/build.ts); the GPU build
# needs the CUDA and cuDNN libraries of the venv's nvidia wheels on LD_LIBRARY_PATH.
LIBRARY_PATH=""
[ "$DEVICE" = gpu ] && LIBRARY_PATH="$("$VENV_PY" -c 'import glob, os, site; print(":".join(sorted(glob.glob(os.path.join(site.getsitepackages()[0], "nvidia", "*", "lib")))))')"
node -e 'const [device, pkg, dirs] = process.argv.slice(1); require("fs").writeFileSync("node_modules/.inception-lab-build.json", JSON.stringify({ device, package: pkg, libraryPath: dirs ? dirs.split(":") : [] }, null, 1))' "$DEVICE" "$PACKAGE" "$LIBRARY_PATH"
[ -n "$LIBRARY_PATH" ] && export LD_LIBRARY_PATH="$LIBRARY_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# --- 4. tslab kernel inside the venv ---------------------------------------------------------
KERNEL_DIR="$ROOT/.venv/share/jupyter/kernels/tslab"
if ! grep -qs "$ROOT/node_modules/.bin/tslab" "$KERNEL_DIR/kernel.json"; then
  step "registering the TypeScript kernel (tslab) in .venv"
  tslab install --python="$VENV_PY" --sys-prefix --binary="$ROOT/node_modules/.bin/tslab" >/dev/null \
    || fail "tslab install" "run 'npm run setup' again; if it persists, delete .venv/share/jupyter/kernels"
  rm -rf "$ROOT/.venv/share/jupyter/kernels/jslab"  # only TypeScript is used
fi
# The kernel gets the GPU build's library path however Jupyter was started (or none for the CPU build).
"$VENV_PY" - "$KERNEL_DIR/kernel.json" "$LIBRARY_PATH" <<'PYTHON'
import json, sys
file, library_path = sys.argv[1], sys.argv[2]
spec = json.load(open(file))
env = spec.pop("env", {})
env.pop("LD_LIBRARY_PATH", None)
if library_path:
    env["LD_LIBRARY_PATH"] = library_path
if env:
    spec["env"] = env
json.dump(spec, open(file, "w"), indent=1)
PYTHON

# JupyterLab without the news and update pop-ups (nothing to fetch offline anyway).
mkdir -p .venv/share/jupyter/lab/settings
echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' \
  > .venv/share/jupyter/lab/settings/overrides.json

# --- 5. check ----------------------------------------------------------------------------------
check="$(node -e "
  const tf = require('$PACKAGE');
  process.stdout.write(tf.getBackend() + ' ' + tf.engine().backend.binding.TF_Version);" 2>/dev/null)" \
  || fail "loading $PACKAGE" "delete $TFJS/deps and run 'npm run setup' again (the build log is .venv/tfjs-node-build.log)"
[ "$check" = "tensorflow $TF_VERSION" ] || fail "backend check (got '$check', wanted 'tensorflow $TF_VERSION')" "delete $TFJS/deps and run 'npm run setup' again"
step "ready: $PACKAGE on native TensorFlow $TF_VERSION ($DEVICE build), Python $("$VENV_PY" -c 'import platform; print(platform.python_version())'), tslab kernel in .venv"
