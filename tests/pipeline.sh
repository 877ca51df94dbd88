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
# ALGO=ppo: the actor-critic, whose critic the checks below follow
# (whatever the default config's algorithm; the configs' loop runs others).
vars=(RUN=$run ALGO=ppo POLICY0=$work/tiny TRAIN_PROMPTS=$work/train.parquet SHARDS=3 SAMPLES=2
      MAX_NEW_TOKENS=6 TRAIN_BATCH=8 MICRO_BATCH=4 EVAL_SETS=holdout=$work/holdout.parquet
      EVAL_MAX_NEW_TOKENS=6 KEEP= EVAL_EVERY=0 CARGO=true BIN=$BIN)
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
grep -q "/rollout " <<<"$out" && fail "rollout reran"
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
# Runs that last: KEEP=1 EVAL_EVERY=2 keeps the latest iteration whole,
# the policy (without optimizer state) of every 2nd, nothing else; it
# evaluates after iteration 2 and prints the disk use.
run2=$run-keep
vars2=("${vars[@]/#RUN=*/RUN=$run2}")
trap 'rm -rf "$work" runs/$run runs/$run2' EXIT
out=$(make --no-print-directory train ITERS=3 "${vars2[@]}" KEEP=1 EVAL_EVERY=2 2>&1) || fail "make train KEEP=1 EVAL_EVERY=2 failed: $out"
grep -Eq "disk: runs/$run2 uses [0-9.]+[KMGT]?B after 3 iterations \(the latest, iter-0002: [0-9.]+[KMGT]?B; policies kept: iter-0001 iter-0002\)" <<<"$out" ||
  fail "no disk use line naming the kept policies: $out"
test ! -e runs/$run2/iter-0000/policy && test ! -e runs/$run2/iter-0000/critic || fail "iter-0000's checkpoints were kept"
test -f runs/$run2/iter-0001/policy/model.safetensors || fail "the EVAL_EVERY-th policy was deleted"
test ! -e runs/$run2/iter-0001/policy/optimizer.safetensors && test ! -e runs/$run2/iter-0001/critic ||
  fail "iter-0001 kept its optimizer state or critic"
for f in policy/model.safetensors policy/optimizer.safetensors critic/model.safetensors; do
  test -f runs/$run2/iter-0002/$f || fail "the latest iteration lacks $f"
done
test -f runs/$run2/iter-0000/scored.parquet || fail "the rollouts of a pruned iteration were deleted"
test -f runs/$run2/eval/base.summary.json && test -f runs/$run2/eval/iter-0001.summary.json ||
  fail "no evaluation of the initial policy and after iteration 2"
test ! -e runs/$run2/eval/iter-0000.summary.json || fail "evaluated off the EVAL_EVERY beat"
grep -qx "ACTOR_LR=2e-5" runs/$run2/config.txt || fail "the run's configuration was not saved: $(cat runs/$run2/config.txt)"
# A changed configuration is refused (ITERS may change), unless allowed.
out=$(make --no-print-directory train ITERS=4 ACTOR_LR=1e-3 "${vars2[@]}" 2>&1) && fail "a changed ACTOR_LR was accepted"
grep -q "was run with another configuration (was ACTOR_LR=2e-5; now ACTOR_LR=1e-3)" <<<"$out" || fail "the refusal does not name the change: $out"
test ! -e runs/$run2/iter-0003 || fail "the refused run wrote an iteration"
make --no-print-directory -s train ITERS=4 ACTOR_LR=1e-3 ALLOW_CONFIG_CHANGE=1 "${vars2[@]}" >/dev/null 2>&1 || fail "ALLOW_CONFIG_CHANGE=1 did not continue"
grep -qx "ACTOR_LR=1e-3" runs/$run2/config.txt && ls runs/$run2/config-*.txt >/dev/null || fail "the new configuration was not recorded"
make --no-print-directory -s report "${vars2[@]}" >/dev/null 2>&1 || fail "make report failed"
grep -q "Evaluation accuracy by iterations done" runs/$run2/report.html || fail "the report has no evaluation curve"
# The variants' configs run end to end: one iteration each (reinforce-pp
# two), their metrics in the row (dapo: dynamic sampling over batches of 4
# prompts, up to 2 more, and the overlong penalty; reinforce-pp: no critic
# written or read).
trap 'rm -rf "$work" runs/$run runs/$run-*' EXIT
cfgvars=()
for v in "${vars[@]}"; do [[ $v == ALGO=* ]] || cfgvars+=("$v"); done
for cfg in dapo reinforce-pp; do
  r=$run-$cfg
  iter=(make --no-print-directory iteration CONFIG=$cfg "${cfgvars[@]/#RUN=*/RUN=$r}" PROMPTS_PER_ROLLOUT=4 MAX_EXTRA_PROMPTS=2 OVERLONG_PENALTY=6:2)
  out=$("${iter[@]}" 2>&1) ||
    fail "make iteration CONFIG=$cfg failed: $out"
  row=$(target/release/examples/metrics_dump runs/$r/metrics.parquet)
  case $cfg in
    dapo)
      grep -q -- "--filter-groups --max-extra-prompts 2" <<<"$out" || fail "dapo's rollout did not sample dynamically: $out"
      for m in filtered_group_ratio extra_prompts overlong_penalty_mean; do
        grep -q " $m=" <<<"$row" || fail "dapo's metrics lack $m: $row"
      done
      grep -q " kl_coef=0e0" <<<"$row" || fail "dapo trained with a KL term: $row" ;;
    reinforce-pp)
      test ! -e runs/$r/iter-0000/critic || fail "reinforce-pp wrote a critic"
      # Its next iteration reads no critic either.
      out=$("${iter[@]}" 2>&1) || fail "reinforce-pp's second iteration failed: $out"
      grep -q -- "--critic " <<<"$out" && fail "reinforce-pp's second iteration passed a critic: $out"
      test -f runs/$r/iter-0001/policy/model.safetensors || fail "reinforce-pp's second iteration wrote no policy"
      grep -q " advantage_std=" <<<"$row" || fail "reinforce-pp's metrics: $row" ;;
  esac
done
# Shell pipes: rollout | verify | ppo-step through stdout/stdin (Parquet,
# buffered), a pipe read as /dev/stdin, and the same bytes as through files.
$BIN/rollout $work/train.parquet --policy $work/tiny -o - --samples 2 --max-new-tokens 6 --limit 4 2>/dev/null |
  $BIN/verify - -o - 2>/dev/null |
  $BIN/ppo-step - --policy $work/tiny --reference $work/tiny -o $work/piped \
    --critic-out $work/piped-critic --train-batch-size 8 --micro-batch-size 4 2>$work/pipe.log ||
  fail "the three-stage pipe failed: $(tail -3 $work/pipe.log)"
test -f $work/piped/model.safetensors || fail "the pipe wrote no policy"
$BIN/rollout $work/train.parquet --policy $work/tiny -o $work/r.parquet --samples 2 --max-new-tokens 6 --limit 4 2>/dev/null
$BIN/verify $work/r.parquet -o $work/s-file.parquet 2>/dev/null
cat $work/r.parquet | $BIN/verify /dev/stdin -o $work/s-devstdin.parquet 2>/dev/null || fail "verify /dev/stdin failed"
cat $work/r.parquet | $BIN/verify - -o - 2>/dev/null >$work/s-pipe.parquet || fail "verify - -o - failed"
dump=target/release/examples/table_dump
for f in file pipe devstdin; do $dump $work/s-$f.parquet >$work/s-$f.rows || fail "s-$f.parquet does not read back"; done
cmp -s $work/s-file.rows $work/s-pipe.rows && cmp -s $work/s-file.rows $work/s-devstdin.rows ||
  fail "piped and file outputs differ"
out=$(echo "not parquet" | $BIN/verify - -o $work/x.parquet 2>&1) && fail "verify accepted a non-Parquet stdin"
grep -q "<stdin>: .*neither Parquet nor an Arrow IPC stream" <<<"$out" || fail "the stdin error does not say what it got: $out"
# Provenance: the commit in --version, the `format: pt` metadata in checkpoints.
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
$BIN/rollout --version | grep -q "(commit $commit)" || fail "rollout --version lacks the commit $commit: $($BIN/rollout --version)"
head -c 4096 $work/piped/model.safetensors | grep -aq '"format":"pt"' || fail "the checkpoint lacks the format: pt metadata"
# Every Parquet output says what made it: tool, version, command line,
# inputs, and the time of each stage so far; the metrics row carries them.
kv=$($dump --kv runs/$run/iter-0001/scored.parquet)
for want in "simplerl.tool=verify" "simplerl.version=.*(commit $commit)" 'simplerl.command=.*/verify .*iter-0001/rollouts.parquet -o .*' \
            'simplerl.inputs=\[".*iter-0001/rollouts.parquet"\]' 'simplerl.timings={.*"rollout":[0-9.]*,"verify":[0-9.]*}'; do
  grep -qx "$want" <<<"$kv" || fail "scored.parquet's metadata lacks $want: $kv"
done
$dump --kv $work/s-pipe.parquet | grep -qx 'simplerl.inputs=\["-"\]' || fail "a piped input is not named -"
row=$(target/release/examples/metrics_dump --all runs/$run/metrics.parquet | tail -1)
for m in rollout_s verify_s elapsed_s timestamp; do grep -q " $m=[0-9]" <<<"$row" || fail "the metrics row has no $m: $row"; done
# make -n run prints the plan and ends, touching nothing.
out=$(timeout 60 make --no-print-directory -n run "${vars[@]/#RUN=*/RUN=$run-dry}" 2>&1) || fail "make -n run failed or did not end: $(tail -3 <<<"$out")"
grep -q "ppo-step .*--algo ppo" <<<"$out" || fail "make -n run did not show the iteration"
test ! -e runs/$run-dry || fail "make -n run wrote runs/$run-dry"
# SEED moves every stage's seed: iteration i takes i + 1000 x SEED.
out=$(make --no-print-directory -n iteration "${vars[@]/#RUN=*/RUN=$run-dry}" SEED=2 2>&1)
[ "$(grep -c -- '--seed 2000 ' <<<"$out")" = 2 ] || fail "SEED=2 did not give rollout and ppo-step seed 2000: $out"
# make config: the resolved configuration, overrides applied.
cfg=$(make --no-print-directory -s config CONFIG=simplerl-zero ACTOR_LR=1e-6)
for want in CONFIG=simplerl-zero ACTOR_LR=1e-6 CRITIC_LR=9e-6 MAX_NEW_TOKENS=3000 TEMPLATE=qwen-math-cot SAMPLES=8; do
  grep -qx "$want" <<<"$cfg" || fail "make config does not print $want: $cfg"
done
echo "pipeline test: ok (iterations 0-4, resume, pruning, lock, eval, report, KEEP/EVAL_EVERY, run configuration, dapo, reinforce-pp, pipes, provenance, make -n, config)"
