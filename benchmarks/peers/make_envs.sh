#!/usr/bin/env bash
# Make one virtual environment per peer method (and the reference aestetik==0.3.1) beside the
# checkout: ../venv-ref, ../venv-graphst, ../venv-stagate, ../venv-spagcn, ../venv-banksy.
# Each gets the CPU torch wheel first, so that no CUDA build is pulled in.
#   bash benchmarks/peers/make_envs.sh [ref graphst stagate spagcn banksy]
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
torch_pin="${TORCH_PIN:-torch==2.13.0}"
wanted=("${@:-ref graphst stagate spagcn banksy}")
# shellcheck disable=SC2206
wanted=(${wanted[*]})

make_env() {  # name, packages...
  local name="$1"; shift
  local venv="$root/venv-$name"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import sys" 2>/dev/null && [ -f "$venv/.done" ]; then
    echo "== $venv exists"; return
  fi
  echo "== $venv: $*"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  "$venv/bin/pip" install -q "$torch_pin" "$@" 2>&1 | grep -v "^WARNING: Location" || true
  # torchvision from PyPI does not import beside the CPU torch wheel and none of them uses it
  "$venv/bin/pip" uninstall -y -q torchvision 2>/dev/null || true
  touch "$venv/.done"
}

for w in "${wanted[@]}"; do
  case "$w" in
    ref) make_env ref "aestetik[graph]==0.3.1" "setuptools<81" ;;
    graphst) make_env graphst "graphst-modern==1.1.1.post3" "scikit-misc" ;;
    # stagate-modern does not depend on scanpy; run_peer.py needs it for the tutorial preprocessing
    stagate) make_env stagate "stagate-modern==1.0.0.post1" "scanpy==1.11.5" "scikit-misc" ;;
    spagcn) make_env spagcn "SpaGCN==1.2.7" "setuptools<81" "scikit-misc" ;;
    banksy) make_env banksy "pybanksy==1.3.5" "scikit-misc" ;;
    *) echo "unknown environment $w" >&2; exit 2 ;;
  esac
done
