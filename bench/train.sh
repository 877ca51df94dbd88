#!/usr/bin/env bash
# Training tokens/s and peak RSS, ours vs PyTorch + transformers, in the
# same run, on the same checkpoint (SmolLM2-135M-Instruct as `make setup`
# imports it from the GGUF) and the same batch shapes (SHAPES, ROWSxSEQ:
# 8x256 and 4x1024): forward + backward (the mean next-token loss over
# every position of random token ids) + gradient clipping + AdamW, f32,
# STEPS steps of which the first WARMUP are not timed (both sides), the
# same thread count (THREADS, default: every core). Ours is
# examples/train_bench on the CPU training pass (no activation
# checkpointing, as PyTorch here), which also prints the share of a step
# the clipping and the optimizer take and the time of one checkpoint
# save; PyTorch runs with OMP_WAIT_POLICY=PASSIVE (DESIGN.md). Makes its
# own venv (.venv-torch) with pip. Needs `make setup`. Run it on an idle
# machine: anything else running halves both figures.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-$(nproc)}
SHAPES=${SHAPES:-"8x256 4x1024"}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-2}
MODEL=${MODEL:-models/smollm2-135m-instruct}
cargo build --release -q --workspace --bins --examples
if [ ! -x .venv-torch/bin/python ]; then
  python3 -m venv .venv-torch
  .venv-torch/bin/pip install -q "torch==2.9.1" "transformers==4.57.1" "gguf>=0.10" "accelerate==1.11.0" "numpy<3"
fi
field() { echo "$1" | grep -oE "$2=[0-9.]+" | cut -d= -f2; }
for shape in $SHAPES; do
  rows=${shape%x*}; seq=${shape#*x}
  echo "== $rows x $seq, $STEPS steps ($WARMUP warm-up), $THREADS threads"
  ours=$(RAYON_NUM_THREADS=$THREADS target/release/examples/train_bench "$MODEL" "$rows" "$seq" "$STEPS" "$WARMUP" 2>/dev/null)
  echo "$ours"
  theirs=$(OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS TORCH_THREADS=$THREADS \
    .venv-torch/bin/python bench/train.py "$MODEL" "$rows" "$seq" "$STEPS" "$WARMUP" 2>/dev/null)
  echo "$theirs"
  o=$(field "$ours" tokens_per_s); t=$(field "$theirs" tokens_per_s)
  om=$(field "$ours" peak_rss_gb); tm=$(field "$theirs" peak_rss_gb)
  echo "$rows x $seq: ours / PyTorch: $o vs $t tokens/s = $(python3 -c "print(f'{$o / $t:.2f}x')"), peak RSS $om vs $tm GB = $(python3 -c "print(f'{$om / $tm:.2f}x')")"
done
