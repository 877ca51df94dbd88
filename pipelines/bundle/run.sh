#!/usr/bin/env bash
# The GPU bundle's check (made by `make gpu-bundle`): run.sh OUT_DIR [--cpu]
#
# On a GPU node with no network, no cargo and no pip, in under 10 minutes:
#   1. the GPU tests (bin/gpu-tests: log-probs, gradients, generation, a
#      ppo-step and sft-steps on the GPU against the CPU);
#   2. one rollout -> verify -> ppo-step iteration on cuda:0, tiny model;
#   3. decode tokens/s at batch 64 and 256 for the SmolLM2 and Qwen2.5
#      0.5B / 1.5B / 7B shapes (random weights, bf16, 128 new tokens),
#      each beside the card's HBM-bandwidth floor and, when python3 has
#      torch and transformers, beside transformers' generate (peer/);
#   4. one bf16 PPO step of the 0.5B and 1.5B shapes: tokens/s, MFU
#      against the card's bf16 peak, peak GPU memory.
# A failed part is recorded and the next part runs. OUT_DIR gets
# results.json and log.txt. It finds libcuda (the driver's) and cuBLAS,
# cuRAND and NVRTC in a system CUDA or in the nvidia/*/lib folders of a
# Python's site-packages, and says which it uses.
#
# --cpu: the dry run (CI): the same parts on the CPU, small (the tests
# with SIMPLERL_GPU_TESTS_DEVICE=cpu, the SmolLM2 shape at batch 2 with 8
# tokens, a PPO step of a tiny model), from a bundle built without CUDA.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: run.sh OUT_DIR [--cpu]}
mode=gpu
[ "${2:-}" = --cpu ] && mode=cpu
mkdir -p "$out" && out=$(cd "$out" && pwd)
exec > >(tee "$out/log.txt") 2>&1
say() { echo "run.sh: $*"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The binaries, unpacked into the scratch folder.
if ! python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$here/bin.tar.xz" "$work" 2>/dev/null; then
  tar -xJf "$here/bin.tar.xz" -C "$work" || { say "cannot unpack $here/bin.tar.xz (needs python3 or tar with xz)"; exit 1; }
fi
S=$work/bin/simplerl
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1" 2>/dev/null || printf '"%s"' "${1//\"/\'}"; }

# The libraries: the driver's libcuda.so.1, and cuBLAS, cuRAND, NVRTC and
# the CUDA runtime.
libs_note="none (CPU dry run)"
if [ $mode = gpu ]; then
  libcuda=$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 /{print $NF; exit}')
  for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/lib/wsl/lib; do
    [ -z "$libcuda" ] && [ -e "$d/libcuda.so.1" ] && libcuda=$d/libcuda.so.1
  done
  dirs=()
  for d in "${CUDA_HOME:-/nonexistent}"/lib64 "${CUDA_HOME:-/nonexistent}"/lib /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64; do
    [ -d "$d" ] && dirs+=("$d")
  done
  for py in python3 python /opt/conda/bin/python3 /usr/bin/python3; do
    command -v "$py" >/dev/null || continue
    while read -r sp; do
      for d in "$sp"/nvidia/*/lib "$sp"/nvidia/cu13/lib "$sp"/torch/lib; do [ -d "$d" ] && dirs+=("$d"); done
    done < <("$py" -c 'import site, sys; print("\n".join(site.getsitepackages() + [site.getusersitepackages()] + sys.path))' 2>/dev/null | sort -u)
  done
  ld=""
  libs_note="libcuda: ${libcuda:-NOT FOUND}"
  for lib in libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13 libcudart.so.13; do
    found=""
    for d in "${dirs[@]}"; do [ -e "$d/$lib" ] && { found=$d; break; }; done
    libs_note="$libs_note; $lib: ${found:-NOT FOUND}"
    [ -n "$found" ] && case ":$ld:" in *":$found:"*) ;; *) ld=$ld:$found ;; esac
  done
  [ -n "$libcuda" ] && ld=$(dirname "$libcuda")$ld
  export LD_LIBRARY_PATH=${ld#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  say "libraries: $libs_note"
  missing=$(ldd "$S" | grep "not found" || true)
  [ -n "$missing" ] && say "the loader cannot find: $(awk '{print $1}' <<<"$missing" | tr '\n' ' ')(libcuda.so.1 is the driver's, CUDA 13 needs driver >= 580; the others are NVIDIA's CUDA 13 wheels, nvidia/cu13/lib in a Python's site-packages, or a CUDA 13 toolkit)"
fi

# The card: its name, HBM bandwidth (GB/s) and dense bf16 peak (TFLOP/s).
gpu="cpu"; bw=""; peak=""
[ $mode = gpu ] && gpu="unknown (no nvidia-smi)"
if [ $mode = gpu ] && command -v nvidia-smi >/dev/null; then
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
  while read -r key b p; do
    [[ "$gpu" == *"$key"* ]] && { bw=$b; peak=$p; }
  done <<'CARDS'
A100 1555 312
A100-SXM4-80GB 2039 312
A100 80GB PCIe 1935 312
L4 300 121
L40S 864 362
RTX 4090 1008 165
H100 PCIe 2000 756
H100 80GB HBM3 3350 989
H100 NVL 3900 835
H200 4800 989
CARDS
fi
say "mode $mode, device: $gpu${bw:+ ($bw GB/s, $peak bf16 TFLOP/s)}"
dev=cuda:0; dtype=bf16
[ $mode = cpu ] && { dev=cpu; dtype=f32; }

# Each part runs in its own shell under a time limit; `fig KEY VALUE`
# records a figure of the part, the part's status is its exit code.
parts=()
fig() { echo "$1=$2" >>"$work/figures"; echo "  $1 = $2"; }
part() {
  local name=$1 limit=$2; shift 2
  say "part $name (limit ${limit}s)"
  : >"$work/figures"
  local t0=$SECONDS status
  ( "$@" ) && status=ok || status=failed
  local figs="" k v
  while IFS='=' read -r k v; do
    [[ "$v" =~ ^-?[0-9.]+(e[-+]?[0-9]+)?$ ]] || v=$(json_str "$v")
    figs="$figs${figs:+, }\"$k\": $v"
  done <"$work/figures"
  parts+=("    {\"part\": \"$name\", \"status\": \"$status\", \"seconds\": $((SECONDS - t0)), \"figures\": {$figs}}")
  say "part $name: $status in $((SECONDS - t0))s"
  write_results
}
write_results() {
  local IFS=$'\n'
  {
    echo "{"
    echo "  \"mode\": \"$mode\", \"device\": $(json_str "$gpu"), \"libraries\": $(json_str "$libs_note"),"
    echo "  \"bundle\": $(json_str "$("$S" rollout --version 2>&1 | head -1)"),"
    echo "  \"parts\": ["
    local n=${#parts[@]} i
    for ((i = 0; i < n; i++)); do echo "${parts[$i]}$([ $((i + 1)) -lt $n ] && echo ,)"; done
    echo "  ]"
    echo "}"
  } >"$out/results.json"
}
limit() { timeout --kill-after=10 "$@"; }

# 1. The GPU tests.
tests() {
  local t=$work/tests.log
  [ $mode = cpu ] && export SIMPLERL_GPU_TESTS_DEVICE=cpu
  limit 240 "$work/bin/gpu-tests" --ignored --test-threads 1 gpu 2>&1 | tee "$t"
  local rc=${PIPESTATUS[0]}
  fig passed "$(grep -c '\.\.\. ok$' "$t")"
  fig failed "$(grep -c '\.\.\. FAILED$' "$t")"
  return "$rc"
}
part gpu-tests 240 tests

# 2. One iteration on the device.
iteration() {
  local w=$work/it
  mkdir -p "$w"
  "$S" write_tiny "$w/tiny" 32 2 0 &&
  "$S" prep-math synth --count 12 --difficulty easy --template plain -o "$w/train.parquet" &&
  limit 120 "$S" rollout "$w/train.parquet" --policy "$w/tiny" -o "$w/rollouts.parquet" --samples 2 \
    --max-new-tokens 8 --temperature 1.0 --seed 0 --device $dev &&
  limit 60 "$S" verify "$w/rollouts.parquet" -o "$w/scored.parquet" &&
  limit 120 "$S" ppo-step "$w/scored.parquet" --policy "$w/tiny" --reference "$w/tiny" -o "$w/policy" \
    --critic-out "$w/critic" --metrics "$w/metrics.parquet" --train-batch-size 8 --micro-batch-size 4 \
    --device $dev || return 1
  fig metrics "$("$S" metrics_dump "$w/metrics.parquet" | head -1 | cut -c1-200)"
}
part iteration 300 iteration

# 3. Decode throughput beside the bandwidth floor and the peer.
has_peer=0
[ $mode = gpu ] && python3 -c 'import torch, transformers; assert torch.cuda.is_available()' 2>/dev/null && has_peer=1
decode() {
  local shapes=(smollm2-135m qwen2.5-0.5b qwen2.5-1.5b qwen2.5-7b) batches=(64 256) rc=0
  [ $mode = cpu ] && { shapes=(smollm2-135m); batches=(2); export NEW_TOKENS=8; }
  local prompt="What is 12 + 30? Think step by step."
  for shape in "${shapes[@]}"; do
    local line
    "$S" decode_bench "$here/tokenizer" "$prompt" "${batches[@]}" --config "$here/configs/$shape.json" \
      --device $dev --dtype $dtype >"$work/decode.out" 2>&1 || { tail -3 "$work/decode.out"; rc=1; continue; }
    while read -r line; do
      local b tps params
      b=$(grep -o 'batch=[0-9]*' <<<"$line" | cut -d= -f2)
      tps=$(grep -o 'tok_per_s=[0-9.]*' <<<"$line" | cut -d= -f2)
      params=$(grep -o 'params=[0-9]*' <<<"$line" | cut -d= -f2)
      fig "$shape.batch$b.tok_per_s" "$tps"
      if [ -n "$bw" ]; then
        # Each step reads every weight once: batch x bandwidth / weight bytes.
        local floor
        floor=$(awk -v b="$b" -v bw="$bw" -v p="$params" 'BEGIN { printf "%.0f", b * bw * 1e9 / (2 * p) }')
        fig "$shape.batch$b.bandwidth_floor_tok_per_s" "$floor"
        fig "$shape.batch$b.share_of_floor" "$(awk -v t="$tps" -v f="$floor" 'BEGIN { printf "%.3f", t / f }')"
      fi
    done < <(grep '^ours' "$work/decode.out")
    if [ $has_peer = 1 ]; then
      python3 "$here/peer/decode_gpu.py" "$here/configs/$shape.json" "${batches[@]}" >"$work/peer.out" 2>&1 ||
        tail -3 "$work/peer.out"
      while read -r line; do
        b=$(grep -o 'batch=[0-9]*' <<<"$line" | cut -d= -f2)
        fig "$shape.batch$b.pytorch_tok_per_s" "$(grep -o 'tok_per_s=[0-9.]*' <<<"$line" | cut -d= -f2)"
      done < <(grep '^pytorch' "$work/peer.out")
    fi
  done
  [ $has_peer = 1 ] || fig peer "not run: python3 here has no torch + transformers with CUDA"
  return $rc
}
part decode 300 decode

# 4. One bf16 PPO step per shape: tokens/s, MFU, peak memory.
ppo() {
  local shapes=(qwen2.5-0.5b qwen2.5-1.5b) rows=16 plen=24 rlen=1000 rc=0
  [ $mode = cpu ] && { shapes=(tiny); rows=4; plen=4; rlen=8; }
  for shape in "${shapes[@]}"; do
    local m=$work/$shape vocab
    if [ "$shape" = tiny ]; then
      "$S" write_tiny "$m" 32 2 0 || return 1
    else
      "$S" init-model --config "$here/configs/$shape.json" --tokenizer "$here/tokenizer" -o "$m" --dtype $dtype || return 1
    fi
    vocab=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$m/config.json" 2>/dev/null ||
            grep -o '"vocab_size": *[0-9]*' "$m/config.json" | grep -o '[0-9]*$')
    "$S" synthetic_scored "$work/scored-$shape.parquet" $rows $plen $rlen "$vocab" || return 1
    local smi=""
    if [ $mode = gpu ] && command -v nvidia-smi >/dev/null; then
      nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$work/mem-$shape" &
      smi=$!
    fi
    local base=0
    [ -n "$smi" ] && base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
    limit 240 "$S" ppo-step "$work/scored-$shape.parquet" --policy "$m" --reference "$m" -o "$m-out" \
      --critic-out "$m-critic" --micro-batch-size 4 --device $dev --dtype $dtype \
      --metrics "$work/metrics-$shape.parquet" 2>"$work/ppo-$shape.log" || { tail -3 "$work/ppo-$shape.log"; rc=1; }
    [ -n "$smi" ] && { kill "$smi"; wait "$smi" 2>/dev/null; }
    [ -f "$work/metrics-$shape.parquet" ] || continue
    local tps n
    tps=$("$S" metrics_dump --all "$work/metrics-$shape.parquet" | grep -o 'tokens_per_s=[0-9.e+-]*' | cut -d= -f2)
    fig "$shape.tokens_per_s" "$tps"
    # N from the checkpoint's size (2 bytes a weight in bf16, 4 in f32).
    local bytes=4
    [ $dtype = bf16 ] && bytes=2
    n=$(( $(stat -c %s "$m/model.safetensors") / bytes ))
    fig "$shape.params" "$n"
    if [ -n "$peak" ]; then
      # Actor and critic forward + backward, 6 N FLOPs per trained token
      # each (scoring passes and attention not counted; the step's load
      # time included): a lower bound on the step's MFU.
      fig "$shape.mfu" "$(awk -v t="$tps" -v n="$n" -v p="$peak" 'BEGIN { printf "%.4f", 12 * n * t / (p * 1e12) }')"
    fi
    [ -n "$smi" ] && fig "$shape.peak_gpu_memory_mib" "$(( $(sort -n "$work/mem-$shape" | tail -1) - base ))"
  done
  return $rc
}
part ppo-step 540 ppo

failed=$(grep -c '"status": "failed"' "$out/results.json")
say "done: ${#parts[@]} parts, $failed failed; results in $out/results.json"
[ "$failed" = 0 ]
