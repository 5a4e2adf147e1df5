#!/usr/bin/env bash
# Which TensorFlow build setup puts in place: the GPU build when an NVIDIA GPU with a working driver is
# visible (nvidia-smi answers), the CPU build otherwise; INCEPTION_LAB_DEVICE=gpu|cpu overrides. A GPU
# asked for by the user and not usable is an error with the fix, never a quiet fall back to the CPU; a
# fall back that setup chose is said in one line. Sourced by setup.sh; `bash scripts/device.sh choose`
# prints the choice (the tests run it with a fake nvidia-smi on PATH).

# The CUDA 12 that TensorFlow 2.21's GPU wheel is built for needs an NVIDIA driver of at least 525.60.
MIN_DRIVER="525.60"

# What nvidia-smi says of the driver: its version, or nothing when it does not answer.
driver_version() {
  command -v nvidia-smi >/dev/null 2>&1 || return 1
  nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' '
}

# Whether version $1 is at least version $2 (dotted numbers).
at_least() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]
}

# Prints "gpu" or "cpu"; exits 1 with a message when the GPU was asked for and cannot be used.
choose_device() {
  local wanted="${INCEPTION_LAB_DEVICE:-auto}" version
  case "$wanted" in auto | gpu | cpu) ;; *)
    echo "[setup] INCEPTION_LAB_DEVICE is \"$wanted\": use gpu, cpu, or leave it unset to choose by what this machine has." >&2
    return 1 ;;
  esac
  if [ "$wanted" = cpu ]; then echo cpu; return 0; fi
  version="$(driver_version)"
  if [ -z "$version" ]; then
    if [ "$wanted" = gpu ]; then
      if command -v nvidia-smi >/dev/null 2>&1; then
        echo "[setup] INCEPTION_LAB_DEVICE=gpu, but nvidia-smi does not answer: the NVIDIA driver is not loaded or not working. Fix the driver (nvidia-smi must list the GPU), or use INCEPTION_LAB_DEVICE=cpu." >&2
      else
        echo "[setup] INCEPTION_LAB_DEVICE=gpu, but there is no nvidia-smi: no NVIDIA driver is installed here. Install the driver (525.60 or newer), or use INCEPTION_LAB_DEVICE=cpu." >&2
      fi
      return 1
    fi
    command -v nvidia-smi >/dev/null 2>&1 && echo "[setup] nvidia-smi is here but does not answer (no working driver): using the CPU build." >&2
    echo cpu
    return 0
  fi
  if ! at_least "$version" "$MIN_DRIVER"; then
    if [ "$wanted" = gpu ]; then
      echo "[setup] INCEPTION_LAB_DEVICE=gpu, but the NVIDIA driver is $version, too old for CUDA 12 (TensorFlow 2.21 needs $MIN_DRIVER or newer). Update the driver, or use INCEPTION_LAB_DEVICE=cpu." >&2
      return 1
    fi
    echo "[setup] NVIDIA driver $version is too old for CUDA 12 (needs $MIN_DRIVER): using the CPU build. Update the driver to train on the GPU." >&2
    echo cpu
    return 0
  fi
  echo gpu
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    choose) choose_device ;;
    *) echo "usage: bash scripts/device.sh choose" >&2; exit 2 ;;
  esac
fi
