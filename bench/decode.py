"""Decode throughput of PyTorch + transformers generate on the same GGUF
that `make setup` imports: `decode.py GGUF PROMPT BATCH...` prints one line
per batch size, `pytorch batch=B new_tokens=N seconds=S tok_per_s=R`.
Greedy, 128 new tokens (NEW_TOKENS), no early stop, f32, torch's thread
count from TORCH_THREADS (run with OMP_WAIT_POLICY=PASSIVE, DESIGN.md)."""
import copy
import os
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

gguf, prompt, *batches = sys.argv[1:]
new_tokens = int(os.environ.get("NEW_TOKENS", "128"))
torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
folder, name = os.path.split(os.path.abspath(gguf))
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32)
model.eval()
ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids


def config(n):
    # No end-of-sequence token, so every row generates n tokens as ours
    # does (min_new_tokens would instead forbid EOS and change the text).
    c = copy.deepcopy(model.generation_config)
    c.eos_token_id = []  # None would fall back to the model's EOS
    c.pad_token_id = 0
    c.max_new_tokens = n
    c.do_sample = False
    return c


def run(b, n):
    x = ids.repeat(b, 1)
    with torch.inference_mode():
        t0 = time.perf_counter()
        out = model.generate(x, attention_mask=torch.ones_like(x), generation_config=config(n))
        secs = time.perf_counter() - t0
        return out[0, x.shape[1]:].tolist(), secs


run(1, 4)  # warm-up
for b in map(int, batches):
    first, secs = run(b, new_tokens)
    n = len(first)
    print(
        f"pytorch batch={b} prompt_tokens={ids.shape[1]} new_tokens={n * b} "
        f"seconds={secs:.2f} tok_per_s={n * b / secs:.1f} first_ids={','.join(map(str, first[:16]))} "
        f"(torch {torch.__version__}, {torch.get_num_threads()} threads)",
        flush=True,
    )
