#!/usr/bin/env bash
# Compiles @tensorflow/tfjs-node (cpu) or @tensorflow/tfjs-node-gpu (gpu) against the TensorFlow C libraries
# of the wheel in .venv, unless that build is in place already; part of setup.sh, and run on its own by
# the test that loads the -gpu package. Their own install scripts download libtensorflow 2.9, which fails
# offline and behind firewalls (and for the GPU needs CUDA 11.2): building against the wheel needs neither.
# usage: bash scripts/build-binding.sh cpu|gpu
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
step() { echo "[setup] $*"; }
fail() { echo "[setup] FAILED at: $1" >&2; echo "[setup] what to do: $2" >&2; exit 1; }
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

DEVICE="${1:?usage: bash scripts/build-binding.sh cpu|gpu}"
if [ "$DEVICE" = gpu ]; then PACKAGE=@tensorflow/tfjs-node-gpu; else PACKAGE=@tensorflow/tfjs-node; fi
TFJS="node_modules/$PACKAGE"
[ -d "$TFJS" ] || fail "finding $TFJS" "delete node_modules and run 'npm run setup' again"
TF_PKG="$("$VENV_PY" -c 'import os, importlib.util as u; print(os.path.dirname(u.find_spec("tensorflow").origin))')" \
  || fail "locating tensorflow in .venv" "delete .venv and run 'npm run setup' again"
TF_VERSION="$("$VENV_PY" -c '
import importlib.metadata as m
for name in ("tensorflow-cpu", "tensorflow"):
    try:
        print(m.version(name)); break
    except m.PackageNotFoundError:
        pass')"
binding_stamp="$DEVICE $TF_VERSION $(node -p process.versions.node) $TF_PKG"
if ! stamp_ok "$TFJS/deps/.built-against" "$binding_stamp" || [ ! -f "$TFJS/lib/napi-v8/tfjs_binding.node" ]; then
  step "building $PACKAGE against TensorFlow $TF_VERSION from the pip wheel (about 30 s)"
  rm -rf "$TFJS/deps" "$TFJS/lib/napi-v8"
  mkdir -p "$TFJS/deps/lib"
  # Links, not copies: the wheel's libtensorflow_cc is 750 MB.
  ln -s "$TF_PKG/include" "$TFJS/deps/include"
  for lib in libtensorflow_cc.so.2 libtensorflow_framework.so.2; do
    [ -f "$TF_PKG/$lib" ] || fail "finding $lib in $TF_PKG" "reinstall TensorFlow: rm -rf .venv && npm run setup"
    ln -s "$TF_PKG/$lib" "$TFJS/deps/lib/$lib"
  done
  # The binding links against libtensorflow.so; install.js skips its download only when
  # libtensorflow.so.2.9.1 (the version it pins) exists.
  for name in libtensorflow.so libtensorflow.so.2.9.1; do ln -s libtensorflow_cc.so.2 "$TFJS/deps/lib/$name"; done
  for name in libtensorflow_framework.so libtensorflow_framework.so.2.9.1; do ln -s libtensorflow_framework.so.2 "$TFJS/deps/lib/$name"; done
  node_prefix="$(dirname "$(dirname "$(node -p process.execPath)")")"
  [ -f "$node_prefix/include/node/common.gypi" ] \
    || fail "finding Node's headers in $node_prefix/include/node" "install Node with its headers (Debian: the nodejs package, or an official Node tarball)"
  log="$ROOT/.venv/tfjs-node-build.log"
  if [ "$DEVICE" = gpu ]; then
    # The -gpu package's own install script is `install.js gpu download`, whose `download` wipes deps/:
    # its install.js runs here without it (and node-pre-gyp comes from the project's node_modules/.bin).
    (cd "$TFJS" && PATH="$ROOT/node_modules/.bin:$PATH" npm_config_build_from_source=true npm_config_nodedir="$node_prefix" node scripts/install.js gpu) > "$log" 2>&1
  else
    npm_config_build_from_source=true npm_config_nodedir="$node_prefix" npm rebuild @tensorflow/tfjs-node --ignore-scripts=false --foreground-scripts > "$log" 2>&1
  fi || { tail -30 "$log" >&2; fail "compiling the $PACKAGE binding (log: .venv/tfjs-node-build.log)" "install a C++ compiler, make and python3 (Debian: apt-get install g++ make python3), then run 'npm run setup' again"; }
  echo "$binding_stamp" > "$TFJS/deps/.built-against"
fi
