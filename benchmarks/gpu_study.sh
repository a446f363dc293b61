#!/usr/bin/env bash
# The QuATON study with run-length-free schedules (benchmarks/quaton_study.toml) and, in parallel on the same GPU,
# a first slice of the paper setting (MNIST, 4 levels, PSQ vs PSQ-LT, thin masks, the lab geometry, Adam lr 0.01
# constant, batch 32, seed 10). Everything is written under OUT_DIR:
#   OUT_DIR/sweep/              the study's sweep folder (one run directory per cell, cell.json records)
#   OUT_DIR/RESULTS.md (+ .json, RESULTS_figures/)   `quaton-fab report` of the study, with the notes
#   OUT_DIR/method_question.md  PSQ-LT − PSQ per grid and level count against the seed spread
#   OUT_DIR/paper/psq, paper/psq-lt                  the two paper-setting runs (design, metrics, figures)
#   OUT_DIR/paper_slice.md (+ .json)                 their summary (test accuracy, validation per epoch, k·Δ, |κ|)
#   OUT_DIR/logs/               the output of every command; OUT_DIR/timing.txt  wall times
#
# Usage (one H200, 16 CPU cores; about 6 minutes):
#   bash benchmarks/gpu_study.sh OUT_DIR
# Settings (environment):
#   QF_DEVICE=cuda  QF_WORKERS=12  QF_STUDY_TIMEOUT=300  QF_PAPER_EPOCHS=4  QF_PAPER_TIMEOUT=330  QF_PYTHON=python
#   QF_TINY=1       a drastically reduced check of the same commands (benchmarks/shrink_spec.py; seconds per
#                   cell on a CPU): QF_TINY=1 QF_DEVICE=cpu QF_WORKERS=2 bash benchmarks/gpu_study.sh /tmp/check
# A time limit stops the sweep (SIGINT: running cells save checkpoints) and the report covers the finished cells;
# the same command with the same OUT_DIR continues the sweep. A paper run stopped by its limit is summarised from
# its checkpoint's history.
set -u -o pipefail

OUT=${1:?usage: bash benchmarks/gpu_study.sh OUT_DIR}
REPO=$(cd "$(dirname "$0")/.." && pwd)
DEVICE=${QF_DEVICE:-cuda}
WORKERS=${QF_WORKERS:-12}
STUDY_TIMEOUT=${QF_STUDY_TIMEOUT:-300}
PAPER_EPOCHS=${QF_PAPER_EPOCHS:-4}
PAPER_TIMEOUT=${QF_PAPER_TIMEOUT:-330}
TINY=${QF_TINY:-0}
PY=${QF_PYTHON:-$(command -v python || command -v python3)}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

mkdir -p "$OUT/logs" "$OUT/paper"
OUT=$(cd "$OUT" && pwd)
cd "$REPO"
T0=$(date +%s)
stamp() { echo "$(($(date +%s) - T0)) s  $*" | tee -a "$OUT/timing.txt"; }

# The command-line app: installed (quaton_fab.cli), else straight from the checkout (cli/ as a package).
if "$PY" -c "import quaton_fab.cli.app" 2>/dev/null; then
    QF=("$PY" -m quaton_fab.cli)
else
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
    QF=("$PY" -c "from cli.app import main; main()")
fi
"$PY" - "$DEVICE" <<'EOF' || { echo "preflight failed: see above" >&2; exit 2; }
import importlib, sys
missing = [m for m in ("torch", "numpy", "typer", "rich", "matplotlib", "gdstk", "trimesh", "stl", "yaml",
                       "scipy", "manifold3d", "PIL", "numcodecs", "pureml") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing Python packages: {', '.join(missing)} (pip install -e . in the checkout)")
import torch
from quaton_fab.simulate import resolve_device
print("torch", torch.__version__, "device", resolve_device(sys.argv[1]),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF

SPEC=benchmarks/quaton_study.toml
PAPER_SIZE=()
if [ "$TINY" = 1 ]; then
    SPEC="$OUT/quaton_study_tiny.yaml"
    "$PY" benchmarks/shrink_spec.py benchmarks/quaton_study.toml "$SPEC" || exit 2
    PAPER_EPOCHS=1
    PAPER_SIZE=(--train-samples 64 --val-samples 16 --test-samples 32 --neurons 48 --layers 2)
fi
stamp "start: device $DEVICE, $WORKERS workers, spec $SPEC, paper slice $PAPER_EPOCHS epochs"

# --- the paper-setting slice: two runs in the background, sharing the GPU with the study
PAPER_PIDS=()
for METHOD in psq psq-lt; do
    timeout -s INT -k 30 "$PAPER_TIMEOUT" "${QF[@]}" train --preset paper-classify --model thin --method "$METHOD" \
        --levels 4 --epochs "$PAPER_EPOCHS" --lr 0.01 --batch-size 32 --seed 10 --device "$DEVICE" \
        "${PAPER_SIZE[@]}" --out "$OUT/paper/$METHOD" --force > "$OUT/logs/paper_$METHOD.log" 2>&1 &
    PAPER_PIDS+=($!)
done

# --- the study
timeout -s INT -k 30 "$STUDY_TIMEOUT" "${QF[@]}" sweep "$SPEC" --out "$OUT/sweep" --device "$DEVICE" \
    --workers "$WORKERS" --threads 1 > "$OUT/logs/sweep.log" 2>&1
STATUS=$?
stamp "sweep exit $STATUS ($(grep -l '"status": "done"' "$OUT"/sweep/*/*/cell.json 2>/dev/null | wc -l) cells done)"
"${QF[@]}" report "$OUT/sweep" --out "$OUT/RESULTS.md" --notes benchmarks/quaton_study_notes.md \
    --spec benchmarks/quaton_study.toml > "$OUT/logs/report.log" 2>&1
stamp "report exit $?"
"$PY" benchmarks/method_question.py "$OUT/RESULTS.json" --out "$OUT/method_question.md" > "$OUT/logs/method_question.log" 2>&1
stamp "method question exit $?"

for i in "${!PAPER_PIDS[@]}"; do
    wait "${PAPER_PIDS[$i]}"
    stamp "paper run $i exit $?"
done
"$PY" benchmarks/paper_slice_summary.py "$OUT/paper" --out "$OUT/paper_slice.md" > "$OUT/logs/paper_summary.log" 2>&1
stamp "paper summary exit $?"
# Checkpoints are not needed to read the results: drop them so the folder stays small.
find "$OUT/sweep" -name checkpoint.pt -delete 2>/dev/null
stamp "done"
