"""The GPU bundle's peer: decode throughput of PyTorch + transformers
`generate` on the GPU, for a model shape with random weights, as
`decode_bench --config` measures ours: `decode_gpu.py CONFIG.json BATCH...`
prints one line per batch size, `pytorch batch=B new_tokens=N seconds=S
tok_per_s=R`. bf16, greedy, 128 new tokens (NEW_TOKENS), no early stop,
a 12-token prompt; the KV cache is transformers' default."""
import copy
import os
import sys
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM

config_path, *batches = sys.argv[1:]
new_tokens = int(os.environ.get("NEW_TOKENS", "128"))
cfg = AutoConfig.from_pretrained(config_path)  # a config.json file
torch.manual_seed(0)
with torch.device("cuda"):
    model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16)
model.eval()
ids = torch.tensor([[1, 3838, 374, 220, 16, 17, 488, 220, 18, 15, 30, 21149]], device="cuda") % cfg.vocab_size


def gen_config(n):
    c = copy.deepcopy(model.generation_config)
    c.eos_token_id = []  # None would fall back to the model's EOS
    c.pad_token_id = 0
    c.max_new_tokens = n
    c.do_sample = False
    return c


def run(b, n):
    x = ids.repeat(b, 1)
    with torch.inference_mode():
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model.generate(x, attention_mask=torch.ones_like(x), generation_config=gen_config(n))
        torch.cuda.synchronize()
        return out.shape[1] - x.shape[1], time.perf_counter() - t0


run(1, 4)  # warm-up
for b in map(int, batches):
    n, secs = run(b, new_tokens)
    print(
        f"pytorch batch={b} prompt_tokens={ids.shape[1]} new_tokens={n * b} seconds={secs:.2f} "
        f"tok_per_s={n * b / secs:.1f} (torch {torch.__version__}, {torch.cuda.get_device_name()})",
        flush=True,
    )
