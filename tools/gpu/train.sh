#!/usr/bin/env bash
# Run ON THE LENT GPU MACHINE, in one device call (a command may run 10 minutes; keep the config's
# optim.time_budget_min near 6.5 for the data rendering and the copy-back to fit):
#   run(command="tools/gpu/train.sh configs/default-model-gpu-ft3.yaml", carry=[".gpu"], timeout_s=600)
# Installs .gpu/wheels (tools/gpu/fetch-wheels.sh) where the image lacks them, trains with
# `magspect train` from this source tree (the image's Python is 3.12, outside the package's pin, so
# it runs from src/ rather than being installed), and copies what the run wrote (last.pt, best.pt,
# summary.json, metrics.jsonl, curves.png) to $OUT. Export, INT8 and every accuracy figure are then
# made HERE on the CPU from the copied last.pt (`magspect export`, docs/retraining.md).
# Environment: PY (default python3), OUT (default ./gpu-out), DEPS (default /tmp/magspect-deps).
set -euo pipefail
CONFIG=${1:?usage: tools/gpu/train.sh CONFIG.yaml [extra magspect train options]}
shift
PY=${PY:-python3}
OUT=${OUT:-gpu-out}
DEPS=${DEPS:-/tmp/magspect-deps}
mkdir -p "$OUT"
if ! "$PY" -c "import pydantic, albumentations" 2>/dev/null; then
  ls .gpu/wheels/*.whl >/dev/null 2>&1 || { echo "error: no .gpu/wheels: run tools/gpu/fetch-wheels.sh here and carry .gpu" >&2; exit 2; }
  "$PY" -m pip install --quiet --no-index --no-deps --target "$DEPS" .gpu/wheels/*.whl
fi
export PYTHONPATH="$PWD/src:$DEPS${PYTHONPATH:+:$PYTHONPATH}" NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1
"$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
RUN_DIR=$("$PY" -c "import sys; from magspect.training.config import TrainConfig; print(TrainConfig.from_yaml(sys.argv[1]).out_dir)" "$CONFIG")
rc=0
"$PY" -m magspect train --config "$CONFIG" --no-progress "$@" 2>&1 | tee "$OUT/train.log" || rc=$?
for f in last.pt best.pt summary.json metrics.jsonl curves.png; do
  [ -f "$RUN_DIR/$f" ] && cp "$RUN_DIR/$f" "$OUT/"
done
ls -la "$OUT"
exit $rc
