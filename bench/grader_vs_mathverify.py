"""math-verify on the same labelled cases grader-check grades; prints its
acceptance rates and single-process pairs/s. Run by bench/grader.sh."""
import json
import sys
import time
from collections import defaultdict

from math_verify import parse, verify

path = sys.argv[1]
rows = [json.loads(l) for l in open(path)]
accepted = defaultdict(lambda: [0, 0])
start = time.perf_counter()
for r in rows:
    try:
        gold = parse("\\boxed{" + r["gold_answer"] + "}")
        pred = parse(r["model_output"])
        ok = bool(verify(gold, pred))
    except Exception:
        ok = False
    a = accepted[r["construction_intent"]]
    a[1] += 1
    a[0] += ok
secs = time.perf_counter() - start
for intent in ["same", "equivalent", "equivalent_with_unit", "approx_numeric", "ambiguous", "wrong"]:
    a, t = accepted[intent]
    if t:
        print(f"math-verify {intent}: accepted {a} of {t} ({100 * a / t:.2f}%)")
print(f"math-verify: graded {len(rows)} responses in {secs:.2f}s single-process: {len(rows) / secs:.0f} pairs/s")
