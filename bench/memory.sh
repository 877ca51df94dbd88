#!/usr/bin/env bash
# Peak memory of ppo-step and sft-step: each case's peak RSS (measured by
# /usr/bin/time) next to the memory plan's estimate the step printed
# before loading anything, with its training tokens/s; sft-step on
# SmolLM2 next to PyTorch + transformers (fwd + bwd + AdamW, f32) on the
# same checkpoint and batch shape, in the same run. Cases (CASES):
#   smol-ppo   SmolLM2-135M, PPO (policy + critic + reference), micro-batch 8 x 256
#   smol-sft   SmolLM2-135M, sft-step 8 x 256, vs PyTorch
#   qwen-sft   Qwen2.5-0.5B's shape (random weights), sft-step 2 x 1,024
#   qwen-ppo   the same, full PPO ppo-step, micro-batch 2 x 1,024
#   qwen-limit the same with --max-memory 4: must stop at once
# for each dtype of DTYPES (f32 bf16; the SmolLM2 cases in f32 only
# unless SMOL_DTYPES says otherwise). Needs `make setup`; makes
# .venv-torch with pip for the PyTorch figure.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-$(nproc)}
CASES=${CASES:-"smol-ppo smol-sft qwen-sft qwen-ppo qwen-limit"}
DTYPES=${DTYPES:-"f32 bf16"}
SMOL_DTYPES=${SMOL_DTYPES:-f32}
MODEL=${MODEL:-models/smollm2-135m-instruct}
W=${WORK:-.cache/bench-memory}
export RAYON_NUM_THREADS=$THREADS
mkdir -p "$W"
# One build of the whole workspace (tools and examples), so the features
# of shared dependencies do not differ between builds.
cargo build --release -q --workspace --bins --examples
B=target/release

gb() { awk '{printf "%.2f", $1 * 1024 / 1e9}' "$1"; }

# run NAME CMD...: peak RSS and the plan's estimate of one step.
run() {
  local name=$1; shift
  local rc=0
  /usr/bin/time -f "%M" -o "$W/$name.rss" "$@" > "$W/$name.log" 2>&1 || rc=$?
  local est peak tps
  est=$(grep -oE 'memory plan: peak [0-9.]+' "$W/$name.log" | head -1 | awk '{print $4}')
  peak=$(gb "$W/$name.rss")
  tps=$(grep -oE '[0-9.]+ tokens/s' "$W/$name.log" | tail -1 | awk '{print $1}')
  rm -rf "${W:?}/$name"  # the step's checkpoints: gigabytes each, not needed
  if [ $rc -ne 0 ]; then
    echo "$name: FAILED (exit $rc), see $W/$name.log"; tail -2 "$W/$name.log"; return 1
  fi
  echo "$name: peak RSS $peak GB, plan $est GB (plan/peak $(python3 -c "print(f'{$est / $peak:.2f}')")), training ${tps:-?} tokens/s"
}

[ -f "$W/scored-8x256.parquet" ] || $B/examples/synthetic_scored "$W/scored-8x256.parquet" 8 64 192 49152
[ -f "$W/scored-2x1024.parquet" ] || $B/examples/synthetic_scored "$W/scored-2x1024.parquet" 2 24 1000 49152
[ -f "$W/sft-8x256.parquet" ] || $B/examples/synthetic_sft "$W/sft-8x256.parquet" 24 32 223
[ -f "$W/sft-2x1024.parquet" ] || $B/examples/synthetic_sft "$W/sft-2x1024.parquet" 2 24 999
for c in $CASES; do
  case $c in
  smol-ppo)
    for d in $SMOL_DTYPES; do
      rm -rf "$W/smol-ppo-$d"
      run "smol-ppo-$d" $B/ppo-step "$W/scored-8x256.parquet" --policy "$MODEL" --reference "$MODEL" \
        -o "$W/smol-ppo-$d/policy" --critic-out "$W/smol-ppo-$d/critic" --micro-batch-size 8 --dtype "$d"
    done ;;
  smol-sft)
    for d in $SMOL_DTYPES; do
      rm -rf "$W/smol-sft-$d"
      run "smol-sft-$d" $B/sft-step "$W/sft-8x256.parquet" --policy "$MODEL" -o "$W/smol-sft-$d" \
        --train-batch-size 8 --micro-batch-size 8 --max-steps 3 --dtype "$d"
    done
    if [ ! -x .venv-torch/bin/python ]; then
      python3 -m venv .venv-torch
      .venv-torch/bin/pip install -q "torch==2.9.1" "transformers==4.57.1" "gguf>=0.10" "accelerate==1.11.0" "numpy<3"
    fi
    echo -n "smol-sft PyTorch 2.9 + transformers ($THREADS threads, OMP_WAIT_POLICY=PASSIVE): "
    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS TORCH_THREADS=$THREADS \
      .venv-torch/bin/python bench/train.py "$MODEL" 8 256 3 2>/dev/null ;;
  qwen-*)
    [ -f "$W/qwen2.5-0.5b/model.safetensors" ] || $B/init-model --config data/configs/qwen2.5-0.5b.json \
      --tokenizer "$MODEL" -o "$W/qwen2.5-0.5b"
    Q="$W/qwen2.5-0.5b"
    for d in $DTYPES; do
      rm -rf "$W/$c-$d"
      case $c in
      qwen-sft) run "qwen-sft-$d" $B/sft-step "$W/sft-2x1024.parquet" --policy "$Q" -o "$W/qwen-sft-$d" \
          --train-batch-size 2 --micro-batch-size 2 --max-steps 1 --dtype "$d" ;;
      qwen-ppo) run "qwen-ppo-$d" $B/ppo-step "$W/scored-2x1024.parquet" --policy "$Q" --reference "$Q" \
          -o "$W/qwen-ppo-$d/policy" --critic-out "$W/qwen-ppo-$d/critic" --micro-batch-size 2 --dtype "$d" ;;
      qwen-limit)
        start=$(date +%s.%N)
        if $B/ppo-step "$W/scored-2x1024.parquet" --policy "$Q" --reference "$Q" -o "$W/qwen-limit-$d/policy" \
            --critic-out "$W/qwen-limit-$d/critic" --micro-batch-size 2 --dtype "$d" --max-memory 4 > "$W/qwen-limit-$d.log" 2>&1; then
          echo "qwen-limit-$d: NOT STOPPED"; exit 1
        fi
        echo "qwen-limit-$d: stopped after $(python3 -c "print(f'{$(date +%s.%N) - $start:.2f}')") s: $(tail -1 "$W/qwen-limit-$d.log" | cut -c1-200)" ;;
      esac
    done ;;
  *) echo "unknown case $c"; exit 2 ;;
  esac
done
