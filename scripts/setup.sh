#!/usr/bin/env bash
# Idempotent setup, run before `npm start`, `npm test` and `npm run bench`:
#   1. Python venv (.venv) with JupyterLab, nbclient, plotly and tensorflow-cpu;
#   2. Node packages (npm ci, install scripts off: see .npmrc);
#   3. tfjs-node compiled against the TensorFlow C libraries of the tensorflow-cpu wheel,
#      because its own install script downloads libtensorflow, which fails offline and behind firewalls;
#   4. the tslab TypeScript kernel registered inside the venv;
#   5. a check that tfjs-node really runs on native TensorFlow.
# Each step is skipped when its result is already in place, so a second run takes seconds.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

step() { echo "[setup] $*"; }
fail() { echo "[setup] FAILED at: $1" >&2; echo "[setup] what to do: $2" >&2; exit 1; }
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# --- 1. Python venv --------------------------------------------------------------------------
PYTHON="${PYTHON:-python3}"
req_hash="$(sha1sum requirements.txt | cut -d' ' -f1)"
if ! stamp_ok .venv/.requirements.sha1 "$req_hash"; then
  if [ ! -x "$VENV_PY" ]; then
    step "creating the Python venv in .venv (with $($PYTHON --version 2>&1))"
    "$PYTHON" -m venv .venv || fail "python venv" "install Python 3.10-3.13 with venv support (Debian: apt-get install python3-venv), or set PYTHON=/path/to/python3"
  fi
  step "installing JupyterLab, nbclient, plotly and tensorflow-cpu into .venv (a few minutes the first time)"
  # No retries: where the default index is unreachable but a local mirror is configured, pip would
  # otherwise spend minutes retrying the index for every package. PIP_RETRIES overrides.
  "$VENV_PY" -m pip install --retries "${PIP_RETRIES:-0}" --timeout "${PIP_TIMEOUT:-15}" \
      --disable-pip-version-check -q -r requirements.txt \
    || fail "pip install -r requirements.txt" "check the network or your pip index (PIP_INDEX_URL), then run 'npm run setup' again"
  echo "$req_hash" > .venv/.requirements.sha1
fi

# --- 2. Node packages ------------------------------------------------------------------------
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "installing Node packages (npm ci)"
  npm ci --no-audit --no-fund || fail "npm ci" "check access to the npm registry, then run 'npm run setup' again"
fi

# --- 3. tfjs-node on native TensorFlow -------------------------------------------------------
TFJS=node_modules/@tensorflow/tfjs-node
TF_PKG="$("$VENV_PY" -c 'import os, importlib.util as u; print(os.path.dirname(u.find_spec("tensorflow").origin))')" \
  || fail "locating tensorflow in .venv" "delete .venv and run 'npm run setup' again"
TF_VERSION="$("$VENV_PY" -c 'import importlib.metadata as m; print(m.version("tensorflow-cpu"))')"
binding_stamp="$TF_VERSION $(node -p process.versions.node) $TF_PKG"
if ! stamp_ok "$TFJS/deps/.built-against" "$binding_stamp" || [ ! -f "$TFJS/lib/napi-v8/tfjs_binding.node" ]; then
  step "building tfjs-node against TensorFlow $TF_VERSION from the tensorflow-cpu wheel (about 30 s)"
  rm -rf "$TFJS/deps" "$TFJS/lib/napi-v8"
  mkdir -p "$TFJS/deps/lib"
  # Links, not copies: the wheel's libtensorflow_cc is 750 MB.
  ln -s "$TF_PKG/include" "$TFJS/deps/include"
  for lib in libtensorflow_cc.so.2 libtensorflow_framework.so.2; do
    [ -f "$TF_PKG/$lib" ] || fail "finding $lib in $TF_PKG" "reinstall tensorflow-cpu: rm -rf .venv && npm run setup"
    ln -s "$TF_PKG/$lib" "$TFJS/deps/lib/$lib"
  done
  # The binding links against libtensorflow.so; install.js skips its download only when
  # libtensorflow.so.2.9.1 (the version it pins) exists.
  for name in libtensorflow.so libtensorflow.so.2.9.1; do ln -s libtensorflow_cc.so.2 "$TFJS/deps/lib/$name"; done
  for name in libtensorflow_framework.so libtensorflow_framework.so.2.9.1; do ln -s libtensorflow_framework.so.2 "$TFJS/deps/lib/$name"; done
  node_prefix="$(dirname "$(dirname "$(node -p process.execPath)")")"
  [ -f "$node_prefix/include/node/common.gypi" ] \
    || fail "finding Node's headers in $node_prefix/include/node" "install Node with its headers (Debian: the nodejs package, or an official Node tarball)"
  npm_config_build_from_source=true npm_config_nodedir="$node_prefix" \
    npm rebuild @tensorflow/tfjs-node --ignore-scripts=false --foreground-scripts > .venv/tfjs-node-build.log 2>&1 \
    || { tail -30 .venv/tfjs-node-build.log >&2; fail "compiling the tfjs-node binding (log: .venv/tfjs-node-build.log)" "install a C++ compiler, make and python3 (Debian: apt-get install g++ make python3), then run 'npm run setup' again"; }
  echo "$binding_stamp" > "$TFJS/deps/.built-against"
fi

# --- 4. tslab kernel inside the venv ---------------------------------------------------------
KERNEL_DIR="$ROOT/.venv/share/jupyter/kernels/tslab"
if ! grep -qs "$ROOT/node_modules/.bin/tslab" "$KERNEL_DIR/kernel.json"; then
  step "registering the TypeScript kernel (tslab) in .venv"
  tslab install --python="$VENV_PY" --sys-prefix --binary="$ROOT/node_modules/.bin/tslab" >/dev/null \
    || fail "tslab install" "run 'npm run setup' again; if it persists, delete .venv/share/jupyter/kernels"
  rm -rf "$ROOT/.venv/share/jupyter/kernels/jslab"  # only TypeScript is used
fi

# JupyterLab without the news and update pop-ups (nothing to fetch offline anyway).
mkdir -p .venv/share/jupyter/lab/settings
echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' \
  > .venv/share/jupyter/lab/settings/overrides.json

# --- 5. check ----------------------------------------------------------------------------------
check="$(node -e "
  const tf = require('@tensorflow/tfjs-node');
  process.stdout.write(tf.getBackend() + ' ' + tf.engine().backend.binding.TF_Version);" 2>/dev/null)" \
  || fail "loading @tensorflow/tfjs-node" "delete $TFJS/deps and run 'npm run setup' again (the build log is .venv/tfjs-node-build.log)"
[ "$check" = "tensorflow $TF_VERSION" ] || fail "backend check (got '$check', wanted 'tensorflow $TF_VERSION')" "delete $TFJS/deps and run 'npm run setup' again"
step "ready: tfjs-node on native TensorFlow $TF_VERSION, Python $("$VENV_PY" -c 'import platform; print(platform.python_version())'), tslab kernel in .venv"
