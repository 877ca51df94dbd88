#!/usr/bin/env bash
# make gpu-check: the one command to run on a machine with an NVIDIA GPU.
#   1. builds the workspace with CUDA (pipelines/build-cuda.sh, for the
#      card's compute capability) into target/cuda;
#   2. runs the GPU tests (`cargo test -- --ignored gpu`): the training
#      forward's log-probs and gradients, greedy and sampled generation,
#      one ppo-step and sft-steps, each against the CPU;
#   3. runs one rollout -> verify -> ppo-step iteration with DEVICE=cuda:0
#      on a tiny model (`make iteration`);
#   4. measures decode tokens/s of SmolLM2 (bf16, greedy, 128 new tokens)
#      at batch 64 and 256 against the memory-bandwidth floor of the card
#      (the weights read once per step: batch x bandwidth / weight bytes);
#   5. runs one bf16 PPO step of the Qwen2.5-0.5B architecture (random
#      weights, 16 x 1,024 tokens) and reports its tokens/s and the peak
#      GPU memory;
#   6. with two or more GPUs and mpirun (the build then has MPI and NCCL):
#      NCCL's collectives on two ranks (examples/collectives cuda), and a
#      data-parallel ppo-step, plain and --shard-optimizer, on two GPUs
#      against one GPU (weights within 1e-4).
# Without a GPU it stops at once with one line.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  echo "gpu-check: no NVIDIA GPU on this machine (nvidia-smi lists none): run it where there is one" >&2
  exit 1
fi
say() { echo "gpu-check: $*"; }
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-$cap}
say "$gpu, compute capability $CUDA_COMPUTE_CAP"
MODEL=${MODEL:-models/smollm2-135m-instruct}
test -f "$MODEL/model.safetensors" || { echo "gpu-check: no $MODEL: run make setup first" >&2; exit 1; }

# 1. The build, and the GPU libraries it loads: the driver's libcuda.so.1,
# and cuBLAS, cuRAND, NVRTC and the runtime from the toolkit or, when the
# loader cannot find them, from NVIDIA's PyPI wheels (~700 MB, once).
bash pipelines/build-cuda.sh
B=target/cuda/release
export CUDA_HOME=${CUDA_HOME:-$(pwd)/.cache/cuda/toolkit/nvidia/cu13}
export PATH=$CUDA_HOME/bin:$PATH
export LD_LIBRARY_PATH=$CUDA_HOME/lib:$CUDA_HOME/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if ldd $B/rollout | grep -q "not found"; then
  rt=.cache/cuda/runtime
  if [ ! -d $rt/nvidia ]; then
    say "fetching cuBLAS, cuRAND, NVRTC and the CUDA runtime from PyPI into $rt"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --target $rt \
      nvidia-cublas==13.0.2.14 nvidia-curand==10.4.4.72 nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-runtime==13.0.96
  fi
  export LD_LIBRARY_PATH=$(pwd)/$rt/nvidia/cu13/lib:$LD_LIBRARY_PATH
fi
if ldd $B/ppo-step | grep -q "libnccl.so.2 => not found"; then
  nccl=.cache/cuda/nccl
  if [ ! -d $nccl/nvidia ]; then
    say "fetching NCCL from PyPI into $nccl"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --target $nccl nvidia-nccl-cu13==2.30.7
  fi
  export LD_LIBRARY_PATH=$(pwd)/$nccl/nvidia/nccl/lib:$(pwd)/$nccl/nvidia/cu13/lib:$LD_LIBRARY_PATH
fi
missing=$(ldd $B/rollout $B/ppo-step | grep "not found" || true)
if [ -n "$missing" ]; then
  echo "gpu-check: the CUDA build cannot find $(awk '{print $1}' <<<"$missing" | tr '\n' ' ')(libcuda.so.1 is the driver's; CUDA 13 needs driver >= 580)" >&2
  exit 1
fi

# 2. The GPU tests.
cargo test --release --workspace --features model/cuda --target-dir target/cuda -- --ignored gpu

# 3. One iteration on the GPU.
work=$(mktemp -d)
run=gpu-check-$$
trap 'rm -rf "$work" runs/$run' EXIT
$B/examples/write_tiny "$work/tiny" 32 2 0
$B/prep-math synth --count 12 --difficulty easy --template plain -o "$work/train.parquet" 2>/dev/null
make --no-print-directory -s iteration RUN=$run POLICY0="$work/tiny" TRAIN_PROMPTS="$work/train.parquet" \
  SAMPLES=2 MAX_NEW_TOKENS=8 TRAIN_BATCH=8 MICRO_BATCH=4 KEEP= EVAL_EVERY=0 CARGO=true BIN=$B DEVICE=cuda:0 >"$work/iteration.log" 2>&1 ||
  { tail -5 "$work/iteration.log"; echo "gpu-check: make iteration DEVICE=cuda:0 failed" >&2; exit 1; }
say "rollout -> verify -> ppo-step with DEVICE=cuda:0: ok ($(target/cuda/release/examples/metrics_dump runs/$run/metrics.parquet | cut -c1-80)...)"

# 4. Decode throughput against the bandwidth floor.
declare -A GBPS=(["H100 80GB HBM3"]=3350 ["H100 PCIe"]=2000 ["H100 NVL"]=3900 ["H200"]=4800 ["H200 NVL"]=4800
                 ["A100-SXM4-80GB"]=2039 ["A100-SXM4-40GB"]=1555 ["A100-PCIE-40GB"]=1555 ["A100 80GB PCIe"]=1935
                 ["L4"]=300 ["L40S"]=864 ["NVIDIA GeForce RTX 4090"]=1008)
bw=""
for k in "${!GBPS[@]}"; do [[ "$gpu" == *"$k"* ]] && bw=${GBPS[$k]}; done
params=$(( $(stat -c %s "$MODEL/model.safetensors") / 4 ))   # the f32 checkpoint
out=$($B/examples/decode_bench "$MODEL" "What is 12 + 30? Think step by step." 64 256 --device cuda:0 --dtype bf16)
echo "$out"
while read -r line; do
  b=$(sed 's/.*batch=\([0-9]*\).*/\1/' <<<"$line"); tps=$(sed 's/.*tok_per_s=\([0-9.]*\).*/\1/' <<<"$line")
  if [ -n "$bw" ]; then
    floor=$(python3 -c "print(f'{$b * $bw * 1e9 / ($params * 2):.0f}')")
    say "decode batch $b: $tps tokens/s; the bandwidth floor ($bw GB/s, $((params * 2 / 1000000)) MB of bf16 weights per step) allows $floor ($(python3 -c "print(f'{100 * $tps / $floor:.1f}')")%)"
  else
    say "decode batch $b: $tps tokens/s (no bandwidth figure for '$gpu': add it to pipelines/gpu-check.sh)"
  fi
done < <(grep '^ours' <<<"$out")

# 5. One bf16 PPO step of the 0.5B architecture.
$B/init-model --config data/configs/qwen2.5-0.5b.json --tokenizer "$MODEL" -o "$work/qwen" --dtype bf16 2>/dev/null
$B/examples/synthetic_scored "$work/scored.parquet" 16 24 1000 151936
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$work/mem.log" &
smi=$!
base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
$B/ppo-step "$work/scored.parquet" --policy "$work/qwen" --reference "$work/qwen" -o "$work/qwen-out" \
  --critic-out "$work/qwen-critic" --micro-batch-size 4 --device cuda:0 --dtype bf16 \
  --metrics "$work/metrics.parquet" 2>"$work/ppo.log" || { tail -3 "$work/ppo.log"; kill $smi; exit 1; }
kill $smi
peak=$(sort -n "$work/mem.log" | tail -1)
row=$($B/examples/metrics_dump --all "$work/metrics.parquet")
tps=$(grep -o 'tokens_per_s=[0-9.e+-]*' <<<"$row" | cut -d= -f2)
say "bf16 PPO step, Qwen2.5-0.5B shape, 16 x 1,024 tokens (actor + critic + reference): $(python3 -c "print(f'{$tps:.0f}')") tokens/s, peak GPU memory $((peak - base)) MiB above the $base MiB in use before"

# 6. Two ranks on two GPUs: NCCL.
gpus=$(nvidia-smi -L | grep -c '^GPU ')
if [ "$gpus" -lt 2 ] || ! command -v mpirun >/dev/null || ! ldd $B/ppo-step | grep -q libnccl; then
  say "NCCL not checked: it needs two GPUs (this machine has $gpus), mpirun, and the build with MPI (apt-get install openmpi-bin libopenmpi-dev libclang-dev)"
else
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  np2() { mpirun --oversubscribe -np 2 -x LD_LIBRARY_PATH "$@"; }
  np2 $B/examples/collectives cuda >"$work/coll.log" 2>&1 || { cat "$work/coll.log"; exit 1; }
  say "NCCL collectives on 2 GPUs: $(grep -c 'collectives agree' "$work/coll.log") ranks agree"
  $B/examples/synthetic_scored "$work/sc.parquet" 24 8 12 259
  P=(--algo ppo --policy "$work/tiny" --reference "$work/tiny" --train-batch-size 8 --micro-batch-size 2
     --ppo-epochs 2 --lr 1e-3 --critic-lr 1e-3 --seed 3 --step 0 --device cuda)
  $B/ppo-step "$work/sc.parquet" "${P[@]}" -o "$work/p1" --critic-out "$work/c1" 2>"$work/p1.log" || { tail -3 "$work/p1.log"; exit 1; }
  for flag in "" --shard-optimizer; do
    np2 $B/ppo-step "$work/sc.parquet" "${P[@]}" $flag -o "$work/p2" --critic-out "$work/c2" 2>"$work/p2.log" || { tail -3 "$work/p2.log"; exit 1; }
    $B/examples/weights_diff "$work/p1" "$work/p2" 1e-4 || { echo "gpu-check: ppo-step on 2 GPUs ${flag:-(plain)} differs from 1 GPU" >&2; exit 1; }
    $B/examples/weights_diff "$work/c1" "$work/c2" 1e-4 || { echo "gpu-check: the critic on 2 GPUs ${flag:-(plain)} differs from 1 GPU" >&2; exit 1; }
    say "data-parallel ppo-step on 2 GPUs (NCCL) ${flag:-(plain)}: the weights of 1 GPU within 1e-4"
  done
fi
say "ok"
