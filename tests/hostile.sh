#!/usr/bin/env bash
# Issue 42's findings, tried as a hostile user would, on the real binaries
# and a tiny model: each numbered case must be refused in one line, with
# what the user had left exactly as it was. Run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
EX=target/release/examples
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# KEEP_GOING=1 runs every case and lists each that fails (how the cases
# were shown to fail on the main before the fixes).
failed=0
fail() {
  echo "hostile test: $*" >&2
  [ "${KEEP_GOING:-0}" = 1 ] || exit 1
  failed=$((failed + 1))
}
cargo build --quiet --release --workspace --bins --examples
$EX/write_tiny "$work/tiny" 32 2 0
cp -r "$work/tiny" "$work/ref"
$BIN/prep-math synth --count 8 --difficulty easy --template plain -o "$work/p.parquet" 2>/dev/null
$BIN/rollout "$work/p.parquet" --policy "$work/tiny" -o "$work/r.parquet" --samples 2 --max-new-tokens 4 2>/dev/null
$BIN/verify "$work/r.parquet" -o "$work/s.parquet" 2>/dev/null
$EX/synthetic_sft "$work/sft.parquet" 4 3 3 2>/dev/null
mkdir -p "$work/run"
$BIN/ppo-step "$work/s.parquet" --policy "$work/tiny" --reference "$work/ref" --algo grpo -o "$work/run/iter-0000/policy" \
  --metrics "$work/run/metrics.parquet" 2>/dev/null
n=0
# What a case must leave as it was: every file under $work, by checksum.
snapshot() { (cd "$work" && find . -path ./out -prune -o -print0 | sort -z | xargs -0 stat -c '%n %F %i' && find . -type f -print0 | sort -z | xargs -0 md5sum) ; }
expect_fail() {
  local what=$1 text=$2; shift 2
  local out before
  before=$(snapshot)
  if out=$("$@" 2>&1); then fail "$what: exit 0 (expected an error)"; return 0; fi
  grep -qF -- "$text" <<<"$out" || { fail "$what: the error does not say \`$text\`: $(head -c 300 <<<"$out")"; return 0; }
  [ "$(grep -v "^For more information" <<<"$out" | grep -c .)" -eq 1 ] || { fail "$what: not one line: $(head -c 300 <<<"$out")"; return 0; }
  [ "$(snapshot)" = "$before" ] || { fail "$what: something under the work folder changed"; return 0; }
  n=$((n + 1))
}
ppo=("$BIN/ppo-step" "$work/s.parquet" --algo grpo --policy "$work/tiny" --reference "$work/ref")

# 1. A destination that exists and is not a regular file is not replaced.
mkfifo "$work/fifo"
echo mine >"$work/keep.txt"
ln -s "$work/keep.txt" "$work/link"
expect_fail "1: verify -o a FIFO" "not a regular file" $BIN/verify "$work/r.parquet" -o "$work/fifo"
expect_fail "1: verify -o a symlink" "not a regular file" $BIN/verify "$work/r.parquet" -o "$work/link"
expect_fail "1: rollout -o a symlink" "not a regular file" \
  $BIN/rollout "$work/p.parquet" --policy "$work/tiny" -o "$work/link" --max-new-tokens 2
if mknod "$work/null" c 1 3 2>/dev/null; then
  expect_fail "1: verify -o a device node" "not a regular file" $BIN/verify "$work/r.parquet" -o "$work/null"
fi

# 2. A checkpoint writer's output is never one of its inputs: the same
# path, through a symlink, or through `..`.
ln -s "$work/ref" "$work/ref-link"
mkdir -p "$work/sub"
expect_fail "2: ppo-step -o REF" "is an input" "${ppo[@]}" -o "$work/ref"
expect_fail "2: ppo-step -o REF through a symlink" "is an input" "${ppo[@]}" -o "$work/ref-link"
expect_fail "2: ppo-step -o REF through .." "is an input" "${ppo[@]}" -o "$work/sub/../ref"
expect_fail "2: ppo-step -o POLICY" "is an input" "${ppo[@]}" -o "$work/tiny"
expect_fail "2: ppo-step --critic-out REF" "is an input" "${ppo[@]/grpo/ppo}" -o "$work/out" --critic-out "$work/ref"
expect_fail "2: sft-step -o POLICY" "is an input" \
  $BIN/sft-step "$work/sft.parquet" --policy "$work/tiny" -o "$work/tiny" --train-batch-size 2 --micro-batch-size 2
expect_fail "2: init-model -o its tokenizer's checkpoint" "is an input" \
  $BIN/init-model --config "$work/tiny/config.json" --tokenizer "$work/tiny" -o "$work/tiny"
# ... unless the user says so: --in-place (the README names it).
cp -r "$work/tiny" "$work/inplace"
$BIN/sft-step "$work/sft.parquet" --policy "$work/inplace" -o "$work/inplace" --in-place \
  --train-batch-size 2 --micro-batch-size 2 2>/dev/null || fail "2: sft-step --in-place refused"
cmp -s "$work/inplace/model.safetensors" "$work/tiny/model.safetensors" && fail "2: sft-step --in-place changed nothing"
expect_fail "2: --in-place never covers the reference" "is an input" "${ppo[@]}" -o "$work/ref" --in-place

# 3. A file writer's output is none of its inputs, nor inside one, nor a
# hard link to one.
ln "$work/r.parquet" "$work/r-hard.parquet"
expect_fail "3: rollout -o POLICY/model.safetensors" "is an input" \
  $BIN/rollout "$work/p.parquet" --policy "$work/tiny" -o "$work/tiny/model.safetensors" --max-new-tokens 2
expect_fail "3: evaluate -o MODEL/model.safetensors" "is an input" \
  $BIN/evaluate --policy "$work/tiny" "$work/p.parquet" -o "$work/tiny/model.safetensors" --max-new-tokens 2
expect_fail "3: report -o RUN/metrics.parquet" "is an input" $BIN/report "$work/run" -o "$work/run/metrics.parquet"
expect_fail "3: verify -o a hard link of its input" "is an input" $BIN/verify "$work/r-hard.parquet" -o "$work/r.parquet"
expect_fail "3: ppo-step --metrics = its scored file" "is an input" "${ppo[@]}" -o "$work/out" --metrics "$work/s.parquet"

# 4. "A checkpoint folder of ours" is decided by type and content, not by
# file names: a folder named like a weights file, or a file named like one
# that is not one, makes the folder not ours.
mkdir -p "$work/named/model-00001.safetensors" && echo mine >"$work/named/model-00001.safetensors/keep.txt"
cp "$work/tiny/config.json" "$work/named/"
mkdir -p "$work/named2/generation_config.json" && echo mine >"$work/named2/generation_config.json/keep.txt"
mkdir -p "$work/junk" && echo "my notes" >"$work/junk/model.safetensors"
expect_fail "4: ppo-step -o a folder holding a folder named model-00001.safetensors" "not a checkpoint folder" \
  "${ppo[@]}" -o "$work/named"
expect_fail "4: sft-step -o a folder holding a folder named generation_config.json" "not a checkpoint folder" \
  $BIN/sft-step "$work/sft.parquet" --policy "$work/tiny" -o "$work/named2" --train-batch-size 2 --micro-batch-size 2
expect_fail "4: init-model -o a folder whose model.safetensors is not one" "not a checkpoint folder" \
  $BIN/init-model --config "$work/tiny/config.json" --tokenizer "$work/tiny" -o "$work/junk"

# 5. Two ppo-steps at once on one metrics file, neither with --step: no
# row is lost (each that succeeds has its row; a step number taken by the
# other is an error).
ok=0
for i in 1 2 3 4; do
  "${ppo[@]}" -o "$work/conc$i" --metrics "$work/conc.parquet" >/dev/null 2>"$work/conc$i.log" &
done
for job in $(jobs -p); do wait "$job" && ok=$((ok + 1)); done
rows=$($EX/metrics_dump --all "$work/conc.parquet" | grep -c '^step')
[ "$rows" = "$ok" ] || fail "5: $ok concurrent ppo-steps succeeded but the metrics file has $rows rows"
[ "$ok" -ge 1 ] || fail "5: no concurrent ppo-step succeeded: $(cat "$work"/conc*.log)"
for i in 1 2 3 4; do
  grep -q "error" "$work/conc$i.log" && { grep -q "is already there" "$work/conc$i.log" || fail "5: $(cat "$work/conc$i.log")"; }
done
rm -rf "$work"/conc*
n=$((n + 1))

# 7. A config the model code does not implement is refused.
sed 's/"model_type": *"llama"/"model_type": "gpt2"/' "$work/tiny/config.json" >"$work/gpt2.json"
sed 's/"hidden_act": *"silu"/"hidden_act": "relu6"/' "$work/tiny/config.json" >"$work/relu6.json"
grep -q gpt2 "$work/gpt2.json" && grep -q relu6 "$work/relu6.json" || fail "7: the configs were not edited"
expect_fail "7: init-model with model_type gpt2" "model_type" \
  $BIN/init-model --config "$work/gpt2.json" --tokenizer "$work/tiny" -o "$work/out"
expect_fail "7: init-model with hidden_act relu6" "hidden_act" \
  $BIN/init-model --config "$work/relu6.json" --tokenizer "$work/tiny" -o "$work/out"
cp -r "$work/tiny" "$work/relu6" && cp "$work/relu6.json" "$work/relu6/config.json"
expect_fail "7: rollout from a relu6 checkpoint" "hidden_act" \
  $BIN/rollout "$work/p.parquet" --policy "$work/relu6" -o "$work/out.parquet" --max-new-tokens 2

# 8. Sizes are bounded before they are allocated, by the machine's
# memory, the kernel's limits and the model's context. (A small Parquet
# file that decodes to gigabytes: crates/artifacts/tests/roundtrip.rs.)
for kv in "vocab_size 1000000000000" "num_hidden_layers 1000000000" "max_position_embeddings 1000000000000000"; do
  read -r key value <<<"$kv"
  sed "s/\"$key\": *[0-9]*/\"$key\": $value/" "$work/tiny/config.json" >"$work/huge.json"
  grep -q "$value" "$work/huge.json" || fail "8: $key was not edited"
  expect_fail "8: init-model with $key $value" "more than the memory available" \
    $BIN/init-model --config "$work/huge.json" --tokenizer "$work/tiny" -o "$work/out"
done
cp -r "$work/tiny" "$work/huge" && cp "$work/huge.json" "$work/huge/config.json"
expect_fail "8: rollout from a checkpoint with max_position_embeddings 1e15" "more than the memory available" \
  $BIN/rollout "$work/p.parquet" --policy "$work/huge" -o "$work/out.parquet" --max-new-tokens 2
expect_fail "8: rollout --samples 1000000000" "more than the memory available" \
  $BIN/rollout "$work/p.parquet" --policy "$work/tiny" -o "$work/out.parquet" --samples 1000000000
expect_fail "8: verify --threads 1000000000" "more than this machine can start" \
  $BIN/verify "$work/r.parquet" -o "$work/out.parquet" --threads 1000000000
python3 -c 'import json; print(json.dumps({"problem": "1+" * 10_000_000 + "1", "answer": "2"}))' >"$work/long.jsonl"
$BIN/prep-math convert "$work/long.jsonl" --template plain -o "$work/long.parquet" 2>/dev/null
expect_fail "8: rollout of a 20 MB prompt" "cannot fit the model's context" \
  $BIN/rollout "$work/long.parquet" --policy "$work/tiny" -o "$work/out.parquet" --max-new-tokens 2

# 9. A path that is not UTF-8 works, or is a clear error.
odd=$work/$'\xff'.parquet
cp "$work/r.parquet" "$odd"
$BIN/verify "$odd" -o "$work/odd-s.parquet" 2>/dev/null || fail "9: verify of a non-UTF-8 path failed"
rm "$work/odd-s.parquet"
expect_fail "9: a missing non-UTF-8 path" "No such file" $BIN/verify "$work/$'\xfe'.parquet" -o "$work/x.parquet"

# 10. Messages that say what is wrong.
$EX/synthetic_scored "$work/empty-responses.parquet" 4 4 0 259 2>/dev/null
expect_fail "10: ppo-step when every response is empty" "every response is empty" \
  "$BIN/ppo-step" "$work/empty-responses.parquet" --algo grpo --policy "$work/tiny" --reference "$work/ref" -o "$work/out"
expect_fail "10: rollout --temperature 1e-300" "must be 0 (greedy) or >= 0.0001" \
  $BIN/rollout "$work/p.parquet" --policy "$work/tiny" -o "$work/out.parquet" --temperature 1e-300
expect_fail "10: evaluate --temperature 1e-300" "must be 0 (greedy) or >= 0.0001" \
  $BIN/evaluate --policy "$work/tiny" "$work/p.parquet" -o "$work/out.parquet" --temperature 1e-300
cp -r "$work/tiny" "$work/badtok" && echo "{not json" >"$work/badtok/tokenizer.json"
expect_fail "10: ppo-step from a policy with a broken tokenizer" "badtok/tokenizer.json" \
  "$BIN/ppo-step" "$work/s.parquet" --algo grpo --policy "$work/badtok" --reference "$work/ref" -o "$work/out"
# (A NaN temperature in a scored file: crates/artifacts/tests/roundtrip.rs.)

test ! -e "$work/out" && test ! -e "$work/out.parquet" || fail "a refused stage wrote its output"
[ "$failed" = 0 ] || { echo "hostile test: $failed cases failed" >&2; exit 1; }
echo "hostile test: ok ($n cases refused with one line, nothing changed)"
