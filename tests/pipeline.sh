#!/usr/bin/env bash
# End-to-end check of the make pipeline on a tiny random model: two
# `make iteration` calls give iterations 0 and 1; an interrupted iteration
# resumes without redoing a finished stage; `make train` continues; eval
# and report produce their files. Run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The same package set as `make build`: nothing is rebuilt with other features.
cargo build --quiet --release --workspace --bins --examples
target/release/examples/write_tiny "$work/tiny" 32 2 0
$BIN/prep-math synth --count 12 --difficulty easy --template plain -o "$work/train.parquet" 2>/dev/null
$BIN/prep-math synth --count 6 --seed 1 --difficulty easy --template plain -o "$work/holdout.parquet" 2>/dev/null
run=pipeline-test-$$
vars=(RUN=$run POLICY0=$work/tiny TRAIN_PROMPTS=$work/train.parquet SHARDS=3 SAMPLES=2
      MAX_NEW_TOKENS=6 TRAIN_BATCH=8 MICRO_BATCH=4 EVAL_SETS=holdout=$work/holdout.parquet
      EVAL_MAX_NEW_TOKENS=6 CARGO=true BIN=$BIN)
trap 'rm -rf "$work" runs/$run' EXIT
fail() { echo "pipeline test: $*" >&2; exit 1; }

make --no-print-directory -s iteration "${vars[@]}" >/dev/null 2>&1 || fail "first make iteration failed"
make --no-print-directory -s iteration "${vars[@]}" >/dev/null 2>&1 || fail "second make iteration failed"
for i in 0000 0001; do
  for f in rollouts.parquet scored.parquet policy/model.safetensors policy/optimizer.safetensors critic/model.safetensors; do
    test -f runs/$run/iter-$i/$f || fail "missing iter-$i/$f"
  done
done
test ! -e runs/$run/iter-0002 || fail "a third iteration appeared"

grep -q '"iterations_done": 2' runs/$run/state.json || fail "state.json does not say 2 iterations: $(cat runs/$run/state.json)"

# Interrupt iteration 1 after its rollout and verify (what a kill leaves:
# no policy, progress still 1): only ppo-step reruns.
rm -rf runs/$run/iter-0001/policy runs/$run/iter-0001/critic
bash pipelines/run.sh commit runs/$run 1
before=$(stat -c %Y.%s runs/$run/iter-0001/rollouts.parquet runs/$run/iter-0001/scored.parquet)
sleep 1
out=$(make --no-print-directory iteration "${vars[@]}" 2>&1) || fail "resume failed: $out"
after=$(stat -c %Y.%s runs/$run/iter-0001/rollouts.parquet runs/$run/iter-0001/scored.parquet)
test "$before" = "$after" || fail "a finished stage was redone"
grep -q "rollout --prompts" <<<"$out" && fail "rollout reran"
test -f runs/$run/iter-0001/policy/model.safetensors || fail "iteration 1 not completed on resume"

make --no-print-directory -s train ITERS=3 "${vars[@]}" >/dev/null 2>&1 || fail "make train failed"
test -f runs/$run/iter-0002/policy/model.safetensors || fail "make train did not add iteration 2"
# Pruning old iterations' checkpoints is safe: progress is state.json.
rm -rf runs/$run/iter-0000 runs/$run/iter-0001/policy runs/$run/iter-0001/critic
timeout 300 make --no-print-directory -s train ITERS=4 "${vars[@]}" >/dev/null 2>&1 || fail "make train after pruning failed or did not end"
test -f runs/$run/iter-0003/policy/model.safetensors || fail "make train after pruning did not add iteration 3"
test ! -e runs/$run/iter-0004 || fail "make train after pruning went past ITERS"
out=$(make --no-print-directory iteration "${vars[@]}" 2>&1) || fail "make iteration after pruning failed: $out"
test -f runs/$run/iter-0004/policy/model.safetensors || fail "make iteration after pruning did nothing"

# One run, one writer: a second make on a locked run exits at once.
bash pipelines/run.sh locked runs/$run sleep 60 &
holder=$!
for _ in $(seq 50); do grep -q "^pid" runs/$run/.lock 2>/dev/null && break; sleep 0.1; done
if out=$(timeout 30 make --no-print-directory train ITERS=6 "${vars[@]}" 2>&1); then
  kill $holder; fail "a second make train ran while the run was locked"
fi
kill $holder; wait $holder 2>/dev/null || true
grep -q "runs/$run is in use by pid $holder" <<<"$out" || fail "the lock message does not name the holder: $out"
test ! -e runs/$run/iter-0005 || fail "the locked-out make train wrote an iteration"

make --no-print-directory -s eval "${vars[@]}" >/dev/null 2>&1 || fail "make eval failed"
test -f runs/$run/eval/iter-0004.summary.json || fail "no eval summary for iter-0004"
make --no-print-directory -s report "${vars[@]}" >/dev/null 2>&1 || fail "make report failed"
grep -q "<svg" runs/$run/report.html || fail "report has no charts"
# make config: the resolved configuration, overrides applied.
cfg=$(make --no-print-directory -s config CONFIG=simplerl-zero ACTOR_LR=1e-6)
for want in CONFIG=simplerl-zero ACTOR_LR=1e-6 CRITIC_LR=9e-6 MAX_NEW_TOKENS=3000 TEMPLATE=qwen-math-cot SAMPLES=8; do
  grep -qx "$want" <<<"$cfg" || fail "make config does not print $want: $cfg"
done
echo "pipeline test: ok (iterations 0-4, resume, pruning, lock, eval, report, config)"
