#!/usr/bin/env bash
# One default ppo-step (SmolLM2-135M, PPO with a critic and the reference,
# 64 rows of PROMPT + 64 response tokens, train batch 32, micro-batch 16,
# no activation checkpointing: the default run's shapes) as one process
# and as `mpirun -np 2` jobs, with and without --shard-optimizer, on this
# machine: wall time, each rank's peak RSS (/usr/bin/time) and the AdamW
# state per rank the step prints. The ranks share the machine's cores
# (each gets cores / 2 threads). Needs `make setup` and OpenMPI.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/smollm2-135m-instruct}
ROWS=${ROWS:-64}
PROMPT=${PROMPT:-80}
RESPONSE=${RESPONSE:-64}
W=${WORK:-.cache/bench-mpi}
mkdir -p "$W"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
cargo build --release -q --workspace --bins --examples --features dist/mpi
B=target/release
vocab=$(grep -oE '"vocab_size": *[0-9]+' "$MODEL/config.json" | grep -oE '[0-9]+$')
$B/examples/synthetic_scored "$W/scored.parquet" "$ROWS" "$PROMPT" "$RESPONSE" "$vocab"
P=(--algo ppo --policy "$MODEL" --reference "$MODEL" --train-batch-size 32 --micro-batch-size 16
   --ppo-epochs 1 --lr 2e-5 --critic-lr 1e-5 --kl-coef 0.01 --seed 0 --step 0 --grad-checkpointing false)

# case NAME NP [FLAGS...]: wall seconds, peak RSS of each rank (GB).
case_() {
  local name=$1 np=$2; shift 2
  rm -rf "$W/$name"-*.rss "$W/policy-$name" "$W/critic-$name"
  local t0 t1
  t0=$(date +%s.%N)
  if [ "$np" = 1 ]; then
    /usr/bin/time -f %M -o "$W/$name-0.rss" $B/ppo-step "$W/scored.parquet" "${P[@]}" "$@" \
      -o "$W/policy-$name" --critic-out "$W/critic-$name" >"$W/$name.log" 2>&1
  else
    mpirun --oversubscribe -np "$np" bash -c '/usr/bin/time -f %M -o "$0-$OMPI_COMM_WORLD_RANK.rss" "$@"' "$W/$name" \
      $B/ppo-step "$W/scored.parquet" "${P[@]}" "$@" -o "$W/policy-$name" --critic-out "$W/critic-$name" >"$W/$name.log" 2>&1
  fi
  t1=$(date +%s.%N)
  local rss
  rss=$(for f in "$W/$name"-*.rss; do awk '{printf "%.2f ", $1 * 1024 / 1e9}' "$f"; done)
  printf "%-28s %6.1f s   peak RSS per rank (GB): %s\n" "$name" "$(echo "$t1 - $t0" | bc)" "$rss"
  grep -o "AdamW state per rank: .*" "$W/$name.log" | sed 's/^/                             /'
}

echo "ppo-step, $MODEL, $ROWS rows x ($PROMPT + $RESPONSE) tokens, $(nproc) cores"
case_ one-process 1
case_ np2 2
case_ np2-shard-optimizer 2 --shard-optimizer
$B/examples/weights_diff "$W/policy-one-process" "$W/policy-np2" 1e-5 | sed 's/^/np2 vs one process: /'
$B/examples/weights_diff "$W/policy-one-process" "$W/policy-np2-shard-optimizer" 1e-5 | sed 's/^/np2 --shard-optimizer vs one process: /'
