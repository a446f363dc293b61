#!/usr/bin/env bash
# GPU figures in one run (at most 5 minutes on one H200): the step-vs-FFT-bound benchmark, the scale table and a
# `paper` preset training stopped after 140 s, everything written under the folder $1. On one H200 (torch
# 2.11.0+cu130) the step benchmark took 10 s and the scale table 27 s of compute (benchmarks/results/
# step_cuda_h200.json, scale_cuda_h200.json). The paper training must have the GPU to itself to give a time per
# epoch: run alongside other GPU jobs it finished 411 of epoch 1's 1,688 steps in 140 s
# (benchmarks/results/paper_train_cuda_h200.json).
#
#   bash benchmarks/gpu.sh OUT_DIR            # on a CUDA machine
#   QUATON_GPU_SMOKE=1 bash benchmarks/gpu.sh OUT_DIR   # seconds-long check of the same steps (CPU is fine)
#
# Writes OUT_DIR/{env.txt, step.json, step.log, scale.json, scale.md, scale.log, paper_train.log,
# paper_run/ (the run directory), paper_summary.json}. The paper-training time for 50 epochs in
# paper_summary.json is an extrapolation from the measured epochs and says so; when no epoch completed it holds the
# steps done in the unfinished epoch, the training seconds and the samples/s instead.
set -uo pipefail
OUT=${1:?usage: bash benchmarks/gpu.sh OUT_DIR}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
SMOKE=${QUATON_GPU_SMOKE:-0}
if [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
PY=${PYTHON:-python}

if [ "$SMOKE" = 1 ]; then
    DEVICE=${QUATON_GPU_DEVICE:-cpu}
    STEP_ARGS=(--presets tiny --repeats 1 --batch 8)
    SCALE_ARGS=(--neurons 32 --layers 2 --batch 2 --timeout 120)
    TRAIN_ARGS=(--train-samples 64 --val-samples 16 --test-samples 16 --batch-size 16)
    EPOCHS=2; TRAIN_BUDGET_S=60; STEP_T=300; SCALE_T=300  # a loaded CPU: generous
else
    DEVICE=${QUATON_GPU_DEVICE:-cuda}
    STEP_ARGS=(--presets quickstart,paper --repeats 5)
    SCALE_ARGS=(--neurons 64,128,256,512,1024 --layers 3,8 --batch 32 --repeats 3)
    TRAIN_ARGS=()
    EPOCHS=50; TRAIN_BUDGET_S=140; STEP_T=70; SCALE_T=60
fi

{
    date -u
    $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda); print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no cuda')"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
    nproc
} > "$OUT/env.txt" 2>&1

# 1. the training step against its FFT bound (library and textbook), under a minute
timeout "$STEP_T" $PY benchmarks/bench_step.py --device "$DEVICE" "${STEP_ARGS[@]}" --out "$OUT/step.json" \
    > "$OUT/step.log" 2>&1 || echo "bench_step failed or timed out (exit $?)" >> "$OUT/step.log"

# 2. scale table: peak memory (CUDA allocator) and samples/s, with and without recompute; the results file is
#    rewritten after every point, so a timeout keeps what was measured
timeout "$SCALE_T" $PY benchmarks/bench_scale.py --device "$DEVICE" "${SCALE_ARGS[@]}" --out "$OUT/scale.json" \
    > "$OUT/scale.log" 2>&1 || echo "bench_scale failed or timed out (exit $?)" >> "$OUT/scale.log"

# 3. paper preset: train for up to TRAIN_BUDGET_S seconds, then stop cleanly (SIGINT = Ctrl-C: checkpoint kept);
#    worst case of the whole script: 70 + 60 + 140 + 20 s (+ start-up) < 5 minutes
rm -rf "$OUT/paper_run"
START=$(date +%s.%N)
timeout --signal=INT --kill-after=20 "$TRAIN_BUDGET_S" $PY -m quaton_fab.cli train --preset paper --device "$DEVICE" \
    --epochs "$EPOCHS" "${TRAIN_ARGS[@]}" --out "$OUT/paper_run" > "$OUT/paper_train.log" 2>&1
CODE=$?
END=$(date +%s.%N)
$PY - "$OUT" "$START" "$END" "$CODE" "$EPOCHS" <<'EOF'
import json, sys, torch
from pathlib import Path
out, start, end, code, epochs = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
summary = {"exit_code": code, "wall_s_including_startup": round(end - start, 1), "epochs_planned": epochs}
ckpt = out / "paper_run" / "checkpoint.pt"
if ckpt.is_file():
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    history = state["history"]
    summary["epochs_done"] = len(history)
    summary["history"] = history
    summary["steps_done"] = int(state["step"])  # in the epoch the run stopped in
    summary["training_elapsed_s"] = round(float(state["elapsed_s"]), 1)
    if not history and state["step"]:
        batch = int(state["config"]["batch_size"])
        summary["samples_per_s"] = round(int(state["step"]) * batch / float(state["elapsed_s"]), 1)
    if history:
        per_epoch = history[-1]["time_s"] / len(history)
        summary["time_per_epoch_s"] = round(per_epoch, 2)
        summary["extrapolated_50_epochs_s"] = round(50 * per_epoch, 1)
        summary["note"] = ("extrapolated_50_epochs_s is time_per_epoch_s x 50 (training + validation per epoch, "
                           "measured over epochs_done epochs), not a measured 50-epoch run")
(out / "paper_summary.json").write_text(json.dumps(summary, indent=1))
print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=1))
EOF
echo "done: results in $OUT"
