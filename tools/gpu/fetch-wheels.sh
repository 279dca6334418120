#!/usr/bin/env bash
# Run HERE (with network to the package mirrors), before a session's device call: downloads the
# wheels that the lent GPU machine's image lacks (it has torch, torchvision, onnx, onnxruntime,
# OpenCV, typer, rich, PyYAML, scipy; not pydantic or albumentations, and pydantic-core needs a newer
# typing-extensions than it may have) for its Python 3.12 on x86-64,
# at the versions this checkout's .venv runs, into .gpu/wheels (git-ignored; carry it: carry=[".gpu"]).
#   tools/gpu/fetch-wheels.sh [PIP]        # PIP: default .venv/bin/pip
set -euo pipefail
cd "$(dirname "$0")/../.."  # the checkout's root: .venv and .gpu are there
PIP=${1:-.venv/bin/pip}
PKGS=(pydantic pydantic-core annotated-types typing-inspection typing-extensions albumentations albucore simsimd stringzilla)
pins=()
for p in "${PKGS[@]}"; do
  v=$("$PIP" show "$p" 2>/dev/null | awk '/^Version:/{print $2}') || v=""
  [ -n "$v" ] || { echo "error: $p is not installed in $PIP's environment (pip install -e '.[train]' first)" >&2; exit 2; }
  pins+=("$p==$v")
done
mkdir -p .gpu/wheels
"$PIP" download --quiet --no-deps --only-binary=:all: --implementation cp --python-version 3.12 \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  -d .gpu/wheels "${pins[@]}"
ls -1 .gpu/wheels
du -sh .gpu/wheels
