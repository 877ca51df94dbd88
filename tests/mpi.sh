#!/usr/bin/env bash
# More than one process, on the real binaries built with MPI (make
# build-mpi) and a tiny model, under `mpirun -np 2` (and 3):
#   - the collectives agree across ranks;
#   - rollout, verify and evaluate as 2-rank jobs write dataset directories
#     (part-00000.parquet, part-00001.parquet) whose rows are the
#     one-process output's, sample for sample (--filter-groups too);
#   - data-parallel ppo-step (PPO with a critic) and sft-step, with and
#     without --shard-optimizer, end with the one-process weights within
#     1e-5 after several optimizer steps, and a sharded state resumes;
#   - `make iteration NP=2` runs every stage (and the evaluation) under
#     mpirun;
#   - a rank that fails, or is killed mid-step, stops the job with a
#     non-zero exit, the failing rank's error on one line, and the
#     previous checkpoint intact.
# Skipped without mpirun unless SIMPLERL_REQUIRE_MPI=1 (CI sets it).
# Run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "mpi test: $*" >&2; exit 1; }
if ! command -v mpirun >/dev/null; then
  [ "${SIMPLERL_REQUIRE_MPI:-0}" = 1 ] && fail "no mpirun (apt-get install openmpi-bin libopenmpi-dev libclang-dev)"
  echo "mpi test: skipped (no mpirun; apt-get install openmpi-bin libopenmpi-dev libclang-dev)" >&2
  exit 0
fi
# OpenMPI refuses to start as root unless told (containers, CI).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Its shared-memory transport warns in small containers; TCP on loopback is enough here.
export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
MPIRUN=(mpirun --oversubscribe)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
B=target/release
EX=$B/examples
np() { local n=$1; shift; "${MPIRUN[@]}" -np "$n" "$@"; }

# A launcher's ranks with a build without MPI (make build's): refused,
# not the whole job run N times.
cargo build --quiet --release --workspace --bins --examples
if out=$(OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=2 $B/verify /dev/null -o "$work/x.parquet" 2>&1); then
  fail "a build without MPI ran as rank 1 of 2"
fi
grep -q "this build has no MPI" <<<"$out" || fail "no clear refusal without MPI: $out"

# The binaries with MPI (make build-mpi): the same package set plus the
# feature, so only the crates above dist rebuild (make build rebuilds
# them without it).
cargo build --quiet --release --workspace --bins --examples --features dist/mpi

np 3 $EX/collectives >"$work/coll.log" 2>&1 || fail "collectives disagree: $(cat "$work/coll.log")"
[ "$(grep -c 'collectives agree' "$work/coll.log")" = 3 ] || fail "not every rank reported: $(cat "$work/coll.log")"

$EX/write_tiny "$work/tiny" 32 2 0
$B/prep-math synth --count 12 --difficulty easy --template plain -o "$work/train.parquet" 2>/dev/null

# 1. Stages as MPI jobs: dataset directories with the one-process rows.
sorted() { $EX/table_dump --sort-by prompt_id,sample_index "$1" | sha256sum; }
R=(--policy "$work/tiny" --samples 2 --max-new-tokens 6 --shard 1/2)
$B/rollout "$work/train.parquet" "${R[@]}" -o "$work/r1.parquet" 2>/dev/null
np 2 $B/rollout "$work/train.parquet" "${R[@]}" -o "$work/r2.parquet" 2>"$work/log" || fail "rollout -np 2: $(cat "$work/log")"
for k in 0 1; do test -f "$work/r2.parquet/part-0000$k.parquet" || fail "rollout -np 2 wrote no part $k: $(ls -la "$work/r2.parquet")"; done
[ "$(ls -A "$work/r2.parquet" | wc -l)" = 2 ] || fail "rollout's dataset holds more than its parts: $(ls -A "$work/r2.parquet")"
[ "$(sorted "$work/r1.parquet")" = "$(sorted "$work/r2.parquet")" ] || fail "rollout -np 2's parts are not the one-process rows"
[ -z "$(ls -A "$work" | grep '^\.')" ] || fail "temporaries left: $(ls -A "$work")"
# --filter-groups: the ranks top up as one process (the tiny model's
# groups are all uninformative, so it samples every extra prompt it may:
# 4 then 1, dealt over the ranks).
F=(--policy "$work/tiny" --samples 2 --max-new-tokens 6 --prompt-batch 0:4 --filter-groups --max-extra-prompts 5)
$B/rollout "$work/train.parquet" "${F[@]}" -o "$work/f1.parquet" 2>"$work/log"
grep -q "18 responses.*after 5 extra prompts" "$work/log" || fail "rollout --filter-groups did not sample 4 + 5 prompts: $(cat "$work/log")"
np 2 $B/rollout "$work/train.parquet" "${F[@]}" -o "$work/f2.parquet" 2>"$work/log" || fail "rollout --filter-groups -np 2: $(cat "$work/log")"
[ "$(sorted "$work/f1.parquet")" = "$(sorted "$work/f2.parquet")" ] || fail "rollout --filter-groups -np 2's parts are not the one-process rows"
# verify reads the directory; its parts are the one-process grades.
$B/verify "$work/r1.parquet" -o "$work/s1.parquet" 2>/dev/null
np 2 $B/verify "$work/r2.parquet" -o "$work/s2.parquet" 2>"$work/log" || fail "verify -np 2: $(cat "$work/log")"
test -f "$work/s2.parquet/part-00001.parquet" || fail "verify -np 2 wrote no dataset"
[ "$(sorted "$work/s1.parquet")" = "$(sorted "$work/s2.parquet")" ] || fail "verify -np 2's parts are not the one-process rows"
# A rerun replaces the dataset whole; a one-process run replaces it by a file.
np 2 $B/verify "$work/r2.parquet" -o "$work/s2.parquet" 2>/dev/null || fail "verify -np 2 over its own output failed"
$B/verify "$work/r2.parquet" -o "$work/s3.parquet" 2>/dev/null
np 2 $B/verify "$work/r1.parquet" -o "$work/s3.parquet" 2>/dev/null || fail "verify -np 2 over a one-file output failed"
test -d "$work/s3.parquet" || fail "a one-file output was not replaced by the dataset"
$B/verify "$work/r1.parquet" -o "$work/s3.parquet" 2>/dev/null || fail "one process over a dataset failed"
test -f "$work/s3.parquet" || fail "a dataset was not replaced by one file"
# evaluate: the rows and the summary of one process.
E=(--policy "$work/tiny" --max-new-tokens 6 "holdout=$work/train.parquet")
$B/evaluate "${E[@]}" -o "$work/e1.parquet" >/dev/null 2>&1
np 2 $B/evaluate "${E[@]}" -o "$work/e2.parquet" >/dev/null 2>"$work/log" || fail "evaluate -np 2: $(cat "$work/log")"
test -f "$work/e2.parquet/part-00001.parquet" || fail "evaluate -np 2 wrote no dataset"
[ "$($EX/table_dump --sort-by id,sample_index "$work/e1.parquet" | sha256sum)" = "$($EX/table_dump --sort-by id,sample_index "$work/e2.parquet" | sha256sum)" ] ||
  fail "evaluate -np 2's rows are not the one-process rows"
cmp -s "$work/e1.summary.json" "$work/e2.summary.json" || fail "evaluate -np 2's summary differs: $(diff "$work/e1.summary.json" "$work/e2.summary.json")"
[ -z "$(ls -A "$work" | grep -e '\.tmp' -e '^\.')" ] || fail "temporaries left: $(ls -A "$work")"

# 2. Data-parallel ppo-step: PPO with a critic, 3 mini-batches x 2 epochs
# = 6 optimizer steps, micro-batches of 2 dealt over the ranks.
$EX/synthetic_scored "$work/sc.parquet" 24 8 12 259
P=(--algo ppo --policy "$work/tiny" --reference "$work/tiny" --train-batch-size 8 --micro-batch-size 2
   --ppo-epochs 2 --lr 1e-3 --critic-lr 1e-3 --seed 3 --step 0)
# ppo TAG LAUNCHER [FLAGS...]: ppo-step on sc.parquet into p$TAG, c$TAG
# (LAUNCHER: "" for one process, "np 2").
ppo() { local tag=$1 launch=$2; shift 2; $launch $B/ppo-step "$work/sc.parquet" "${P[@]}" "$@" -o "$work/p$tag" --critic-out "$work/c$tag" \
  --metrics "$work/m$tag.parquet" 2>"$work/log-$tag" || fail "ppo-step $tag: $(tail -5 "$work/log-$tag")"; }
same() { $EX/weights_diff "$1" "$2" 1e-5 >"$work/diff" || fail "$3: $(cat "$work/diff")"; }
ppo 1 ""
ppo 2 "np 2"
ppo 2s "np 2" --shard-optimizer
ppo 3s "np 3" --shard-optimizer
$EX/weights_diff "$work/tiny" "$work/p1" 1e-3 >/dev/null && fail "the one-process step did not move the weights"
for t in 2 2s 3s; do
  same "$work/p1" "$work/p$t" "the policy of ppo-step ($t) differs from one process"
  same "$work/c1" "$work/c$t" "the critic of ppo-step ($t) differs from one process"
done
# Micro-batches of 4: two per mini-batch over three ranks, so one rank has
# none (it joins the sums with zeros).
P0=("${P[@]}")
P=(--algo ppo --policy "$work/tiny" --reference "$work/tiny" --train-batch-size 8 --micro-batch-size 4
   --ppo-epochs 2 --lr 1e-3 --critic-lr 1e-3 --seed 3 --step 0)
ppo 1-m4 ""
ppo 3-m4 "np 3" --shard-optimizer
same "$work/p1-m4" "$work/p3-m4" "ppo-step -np 3 with an idle rank differs from one process"
same "$work/c1-m4" "$work/c3-m4" "ppo-step -np 3's critic with an idle rank differs from one process"
P=("${P0[@]}")
grep -q "AdamW state per rank: policy [0-9.]*/[0-9.]* GB" "$work/log-2s" || fail "no optimizer state line: $(cat "$work/log-2s")"
test -f "$work/p2s/optimizer.rank-00001.safetensors" || fail "rank 1's share of the state is not in the checkpoint"
test ! -e "$work/p2/optimizer.rank-00001.safetensors" || fail "an unsharded job wrote a rank's state file"
# Metrics are reduced over the ranks: the one-process row, within rounding.
$EX/metrics_dump "$work/m1.parquet" | tr ' ' '\n' >"$work/m1" ; $EX/metrics_dump "$work/m2.parquet" | tr ' ' '\n' >"$work/m2"
paste -d' ' "$work/m1" "$work/m2" | awk '{ split($1,a,"="); split($2,b,"="); if (a[1] != b[1]) { print "names " $0; exit 1 }
  if (a[1] ~ /tokens_per_s|elapsed_s|timestamp/) next; d = a[2] - b[2]; if (d < 0) d = -d; s = (a[2] < 0 ? -a[2] : a[2]);
  if (d > 1e-6 + 1e-5 * s) { print "values " $0; exit 1 } }' >"$work/mdiff" || fail "ppo-step -np 2's metrics differ: $(cat "$work/mdiff")"
# Resuming: the next step from the sharded checkpoint (one process reads
# both state files; two sharded ranks read each its share) is the next
# step from the one-process checkpoint.
P=(--algo ppo --policy "$work/p1" --reference "$work/tiny" --critic "$work/c1" --train-batch-size 8 --micro-batch-size 2
   --ppo-epochs 2 --lr 1e-3 --critic-lr 1e-3 --seed 4 --step 1)
ppo 1-next ""
P=(--algo ppo --policy "$work/p2s" --reference "$work/tiny" --critic "$work/c2s" --train-batch-size 8 --micro-batch-size 2
   --ppo-epochs 2 --lr 1e-3 --critic-lr 1e-3 --seed 4 --step 1)
ppo 2s-next-1 ""
ppo 2s-next-2 "np 2" --shard-optimizer
same "$work/p1-next" "$work/p2s-next-1" "one process resuming a sharded state differs"
same "$work/p1-next" "$work/p2s-next-2" "two sharded ranks resuming differ"

# 3. Data-parallel sft-step: 4 steps of 6 examples in micro-batches of 2.
$EX/synthetic_sft "$work/sft.parquet" 12 3 5 2>/dev/null
S=(--policy "$work/tiny" --train-batch-size 6 --micro-batch-size 2 --epochs 2 --lr 1e-3 --seed 1)
sft() { local tag=$1 launch=$2; shift 2; $launch $B/sft-step "$work/sft.parquet" "${S[@]}" "$@" -o "$work/f$tag" 2>"$work/log-f$tag" ||
  fail "sft-step $tag: $(tail -5 "$work/log-f$tag")"; }
sft 1 ""
sft 2 "np 2"
sft 2s "np 2" --shard-optimizer
$EX/weights_diff "$work/tiny" "$work/f1" 1e-3 >/dev/null && fail "sft-step did not move the weights"
same "$work/f1" "$work/f2" "sft-step -np 2 differs from one process"
same "$work/f1" "$work/f2s" "sft-step -np 2 --shard-optimizer differs from one process"

# The pipeline: make iteration NP=2 runs each stage as a 2-rank job.
vars=(RUN=mpi-test-$$ POLICY0=$work/tiny TRAIN_PROMPTS=$work/train.parquet SHARDS=3 SAMPLES=2 MAX_NEW_TOKENS=6
      TRAIN_BATCH=8 MICRO_BATCH=2 EVAL_SETS=holdout=$work/train.parquet EVAL_MAX_NEW_TOKENS=6 KEEP= EVAL_EVERY=1
      CARGO=true BIN=$B NP=2)
trap 'rm -rf "$work" runs/mpi-test-$$' EXIT
make --no-print-directory iteration "${vars[@]}" >"$work/make.log" 2>&1 || fail "make iteration NP=2: $(tail -20 "$work/make.log")"
it=runs/mpi-test-$$/iter-0000
for f in rollouts scored; do test -f $it/$f.parquet/part-00001.parquet || fail "make iteration NP=2 wrote no $f dataset: $(ls -R $it)"; done
test -f $it/policy/model.safetensors && test -f runs/mpi-test-$$/eval/iter-0000.summary.json || fail "make iteration NP=2 did not finish: $(ls -R runs/mpi-test-$$)"
[ "$(grep -c "^mpirun --oversubscribe -np 2 $B/" "$work/make.log")" = 4 ] || fail "not every stage ran under mpirun: $(grep "$B/" "$work/make.log")"

# 4. Failures. A rank that errors (rank 1 reads a missing file): the job
# exits non-zero, the error on one line naming the rank, and the previous
# checkpoint is untouched.
before=$(cat "$work/p2/model.safetensors" "$work/c2/model.safetensors" | sha256sum)
P=(--algo ppo --policy "$work/tiny" --reference "$work/tiny" --train-batch-size 8 --micro-batch-size 2
   --ppo-epochs 2 --lr 1e-3 --critic-lr 1e-3 --seed 3 --step 0 -o "$work/p2" --critic-out "$work/c2")
if np 2 bash -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then s="$0.missing"; else s="$0"; fi; exec '"$B"'/ppo-step "$s" "$@"' \
    "$work/sc.parquet" "${P[@]}" >"$work/log" 2>&1; then
  fail "a job with a failing rank exited 0"
fi
grep -q "^ppo-step: error (rank 1 of 2): .*sc.parquet.missing" "$work/log" || fail "no one-line error from rank 1: $(cat "$work/log")"
[ "$(cat "$work/p2/model.safetensors" "$work/c2/model.safetensors" | sha256sum)" = "$before" ] || fail "the failed job changed the previous checkpoint"
# A rank killed mid-step (SIGKILL, after rank 0 has logged a micro-batch):
# every rank stops, mpirun exits non-zero, the previous checkpoint stands.
$EX/write_tiny "$work/wide" 96 2 0
$EX/synthetic_scored "$work/big.parquet" 64 32 160 259
P=(--algo ppo --policy "$work/wide" --reference "$work/wide" --train-batch-size 16 --micro-batch-size 2
   --ppo-epochs 4 --seed 3 --step 0 -o "$work/p2" --critic-out "$work/c2")
np 2 $B/ppo-step "$work/big.parquet" "${P[@]}" >"$work/kill.log" 2>&1 &
job=$!
for _ in $(seq 600); do grep -q "micro 1/" "$work/kill.log" 2>/dev/null && break; sleep 0.05; done
grep -q "micro 1/" "$work/kill.log" || { kill $job; fail "the step never started: $(cat "$work/kill.log")"; }
victim=""
for p in $(pgrep -f "$B/ppo-step $work/big.parquet"); do
  grep -qz "^OMPI_COMM_WORLD_RANK=1$" /proc/$p/environ 2>/dev/null && victim=$p
done
[ -n "$victim" ] || { kill $job; fail "no rank 1 process to kill"; }
kill -9 "$victim"
if wait $job; then fail "mpirun exited 0 after a rank was killed"; fi
sleep 0.5
pgrep -f "$B/ppo-step $work/big.parquet" >/dev/null && fail "ranks outlived the killed one: $(pgrep -af ppo-step)"
grep -q "^ppo-step: step 0: reward_mean" "$work/kill.log" && fail "the job reported success: $(cat "$work/kill.log")"
[ "$(cat "$work/p2/model.safetensors" "$work/c2/model.safetensors" | sha256sum)" = "$before" ] || fail "the killed job changed the previous checkpoint"
[ -z "$(ls "$work" | grep -v '^\.' | grep -e tmp -e old)" ] || fail "visible temporaries: $(ls "$work")"
cat "$work/kill.log" | head -5 >&2
echo "mpi test: ok (dataset stages, data-parallel ppo-step and sft-step with and without --shard-optimizer, make iteration NP=2, failures)"
