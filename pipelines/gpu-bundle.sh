#!/usr/bin/env bash
# make gpu-bundle: the GPU check as one folder to ship to a GPU node with
# no network, no cargo and no pip (bundle/run.sh there; see its header).
# Built here, on a machine without a GPU (this one, CI):
#   bin.tar.xz     bin/simplerl: every stage and the bench programs, one
#                  multi-call binary (tools/simplerl), so candle's kernels
#                  are in it once; bin/gpu-tests: the GPU tests
#                  (crates/ppo/tests/gpu.rs), compiled
#   configs/       SmolLM2 and Qwen2.5-0.5B / 1.5B / 7B config.json files
#   tokenizer/     SmolLM2's tokenizer (the shapes' prompts)
#   peer/          decode_gpu.py, transformers' generate on the same GPU
#   run.sh
# stripped, at most 48 MiB (it fails above). Kernels for CUDA_COMPUTE_CAP
# (default 90: H100, H200); 80 (A100), 89 (L4, L40S) or 100 (B200) build a
# bundle for those cards: CUDA_COMPUTE_CAP=80 make gpu-bundle.
#
# CPU=1: the same bundle without CUDA (target/release), for the dry run
# `bundle/run.sh OUT --cpu` that CI runs on every change.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${BUNDLE_DIR:-dist/gpu-bundle}
MODEL=${MODEL:-models/smollm2-135m-instruct}
MAX_MIB=48
say() { echo "gpu-bundle: $*" >&2; }
test -f "$MODEL/tokenizer.json" || { say "no $MODEL/tokenizer.json: run make setup first"; exit 1; }

t0=$SECONDS
if [ "${CPU:-0}" = 1 ]; then
  dir=target/release
  cargo build --release -p simplerl -p ppo --bin simplerl --test gpu
else
  dir=target/cuda/release
  # The two targets only; no MPI (a GPU node may lack libmpi).
  CUDA_CARGO_ARGS="-p simplerl -p ppo --bin simplerl --test gpu" MPI=0 bash pipelines/build-cuda.sh
fi
# The test binary: the newest build of crates/ppo/tests/gpu.rs.
tests=$(find "$dir/deps" -maxdepth 1 -type f -executable -name 'gpu-*' -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2)
test -n "$tests" || { say "no gpu test binary in $dir/deps"; exit 1; }

tmp=$OUT.tmp
rm -rf "$tmp"
mkdir -p "$tmp/bin" "$tmp/configs" "$tmp/tokenizer" "$tmp/peer"
cp "$dir/simplerl" "$tmp/bin/simplerl"
cp "$tests" "$tmp/bin/gpu-tests"
strip "$tmp/bin/simplerl" "$tmp/bin/gpu-tests"
# Packed: the two binaries share most of their code, and machine code and
# PTX compress 4-7x (run.sh unpacks them with python3 or tar).
python3 - "$tmp" <<'PY'
import sys, tarfile
root = sys.argv[1]
with tarfile.open(f"{root}/bin.tar.xz", "w:xz", preset=9) as t:
    t.add(f"{root}/bin", arcname="bin")
PY
raw=$(du -sb "$tmp/bin" | cut -f1)
rm -rf "${tmp:?}/bin"
cp "$MODEL/config.json" "$tmp/configs/smollm2-135m.json"
cp data/configs/qwen2.5-0.5b.json data/configs/qwen2.5-1.5b.json data/configs/qwen2.5-7b.json "$tmp/configs/"
cp "$MODEL/tokenizer.json" "$MODEL/tokenizer_config.json" "$tmp/tokenizer/"
cp "$MODEL/config.json" "$tmp/tokenizer/config.json"
cp bench/decode_gpu.py "$tmp/peer/"
cp pipelines/bundle/run.sh "$tmp/run.sh"
chmod +x "$tmp/run.sh"
bytes=$(du -sb "$tmp" | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
if [ "$bytes" -gt $((MAX_MIB * 1048576)) ]; then
  say "the bundle is $mib MiB, over the $MAX_MIB MiB limit:"
  du -ab "$tmp" | sort -n | tail -5 >&2
  exit 1
fi
rm -rf "$OUT"
mv "$tmp" "$OUT"
say "$OUT: $mib MiB (limit $MAX_MIB; the binaries $((raw / 1048576)) MiB unpacked), $(if [ "${CPU:-0}" = 1 ]; then echo "CPU build (the dry run: bash $OUT/run.sh RESULTS --cpu)"; else echo "CUDA, compute capability ${CUDA_COMPUTE_CAP:-90}"; fi), built in $((SECONDS - t0))s"
say "ship it: tar czf gpu-bundle.tgz -C $(dirname "$OUT") $(basename "$OUT"); on the node: bash gpu-bundle/run.sh results"
