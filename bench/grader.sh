#!/usr/bin/env bash
# Grader throughput and acceptance rates, ours vs math-verify 0.9.0, on the
# same cases (../shared/verifier-cases/variants.jsonl), in the same run,
# each single-threaded. Makes its own venv (.venv-bench) with pip.
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${CASES:-../shared/verifier-cases}
cargo build --release -q --workspace --bins --examples
if [ ! -x .venv-bench/bin/python ]; then
  python3 -m venv .venv-bench
  .venv-bench/bin/pip install -q "math-verify==0.9.0"
fi
echo "== ours (grader-check, one thread)"
ours=$(target/release/grader-check --cases "$CASES" | grep -E "^(same|equivalent|equivalent_with_unit|approx_numeric|ambiguous|wrong):|pairs/s")
echo "$ours"
echo "== math-verify 0.9.0 (one process)"
theirs=$(.venv-bench/bin/python bench/grader_vs_mathverify.py "$CASES/variants.jsonl")
echo "$theirs"
o=$(echo "$ours" | grep -oE '[0-9]+ pairs/s' | grep -oE '^[0-9]+')
t=$(echo "$theirs" | grep -oE '[0-9]+ pairs/s' | grep -oE '^[0-9]+')
echo "== speed-up: $(( o / (t > 0 ? t : 1) ))x ($o vs $t pairs/s)"
