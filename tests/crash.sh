#!/usr/bin/env bash
# Crash test: a tiny-model run (`make train ITERS=2`, PPO with a critic)
# killed with SIGKILL at a random point, then resumed with the same
# command, must end with the same artifacts as an uninterrupted run: the
# same rows (rollouts, scored), metrics (every step, every value but wall
# time), weights and optimizer state (byte for byte), progress in
# state.json, and no temporaries left. CRASH_SEEDS (default 20) kills.
# Run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
SEEDS=${CRASH_SEEDS:-20}
work=$(mktemp -d)
tag=crash-test-$$
trap 'rm -rf "$work" runs/$tag-run' EXIT
fail() { echo "crash test (CRASH_SEED=${seed:-}): $*" >&2; exit 1; }
# The same package set as `make build`: nothing is rebuilt with other features.
cargo build --quiet --release --workspace --bins --examples
target/release/examples/write_tiny "$work/tiny" 32 2 0
dump=target/release/examples/metrics_dump
$BIN/prep-math synth --count 12 --difficulty easy --template plain -o "$work/train.parquet" 2>/dev/null
vars=(ALGO=ppo POLICY0=$work/tiny TRAIN_PROMPTS=$work/train.parquet SHARDS=3 SAMPLES=2
      MAX_NEW_TOKENS=6 TRAIN_BATCH=8 MICRO_BATCH=4 CARGO=true BIN=$BIN ITERS=2
      KEEP= EVAL_EVERY=0)

# What a run leaves, minus wall-clock values (and the Parquet footers'
# provenance, which has them).
fingerprint() {
  local d=runs/$1
  cat "$d/state.json" | sed 's/, "updated": "[^"]*"//; s|runs/[^/]*/|RUN/|'
  $dump "$d/metrics.parquet"
  for i in 0000 0001; do
    for f in rollouts.parquet scored.parquet policy/model.safetensors policy/optimizer.safetensors \
             critic/model.safetensors critic/optimizer.safetensors policy/config.json; do
      # A Parquet's rows (its footer holds the run's wall times).
      case $f in
        *.parquet) echo "iter-$i/$f $(target/release/examples/table_dump "$d/iter-$i/$f" | sha256sum | cut -c1-16)" ;;
        *) echo "iter-$i/$f $(sha256sum < "$d/iter-$i/$f" | cut -c1-16)" ;;
      esac
    done
  done
  # Temporaries of killed writers: none may survive a completed resume.
  find "$d" -name '.*.tmp-*' -o -name '.*.old-*' | sed 's/^/left: /'
}

# Every run has the same name (rollouts record their policy's path).
run=$tag-run
start=$(date +%s%N)
make --no-print-directory -s train RUN=$run "${vars[@]}" >/dev/null 2>&1 || fail "uninterrupted run failed"
span_ms=$(( ($(date +%s%N) - start) / 1000000 ))
ref=$(fingerprint $run)
rm -rf runs/$run
# The run is deterministic: a second uninterrupted run matches.
make --no-print-directory -s train RUN=$run "${vars[@]}" >/dev/null 2>&1 || fail "second run failed"
[ "$(fingerprint $run)" = "$ref" ] || fail "two uninterrupted runs differ: $(diff <(echo "$ref") <(fingerprint $run))"
rm -rf runs/$run

seed=${CRASH_SEED:-$$}
RANDOM=$seed
for s in $(seq 1 "$SEEDS"); do
  delay_ms=$(( RANDOM * 32768 + RANDOM ))
  delay_ms=$(( delay_ms % (span_ms + 1) ))
  setsid make --no-print-directory -s train RUN=$run "${vars[@]}" >/dev/null 2>&1 &
  pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -KILL -- -"$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # SIGKILL is delivered asynchronously: let the group's processes finish
  # dying (a rerun a moment later finds the lock still held, correctly).
  for _ in $(seq 100); do kill -0 -- -"$pid" 2>/dev/null || break; sleep 0.05; done
  state=$(sed -n 's/.*"iterations_done": *\([0-9]*\).*/\1/p' runs/$run/state.json 2>/dev/null || true)
  out=$(make --no-print-directory train RUN=$run "${vars[@]}" 2>&1) \
    || fail "kill $s at ${delay_ms} ms (progress ${state:-none}): resume failed: $(tail -3 <<<"$out")"
  got=$(fingerprint $run)
  [ "$got" = "$ref" ] || fail "kill $s at ${delay_ms} ms (progress ${state:-none}): artifacts differ from the uninterrupted run:
$(diff <(echo "$ref") <(echo "$got"))"
  echo "kill $s at ${delay_ms} of ${span_ms} ms (progress ${state:-none}): resumed, same artifacts" >&2
  rm -rf runs/$run
done
echo "crash test: ok (CRASH_SEED=$seed: $SEEDS kills at random points of a ${span_ms} ms run, each resumed to the same artifacts)"
