"""Training step of PyTorch + transformers on an HF-layout checkpoint (the
one `make setup` imports from the GGUF): `train.py MODEL ROWS SEQ STEPS
[WARMUP]` runs STEPS steps of forward + backward + AdamW on ROWS x SEQ random token
ids (labels = inputs, the mean next-token loss), f32, torch's thread count
from TORCH_THREADS (run with OMP_WAIT_POLICY=PASSIVE, DESIGN.md), with
gradient clipping to norm 1 as the trainers do. The first WARMUP steps
(default 1) are not timed; prints
`pytorch rows=R seq=T steps=S warmup=W tokens_per_s=X peak_rss_gb=Y`."""
import os
import resource
import sys
import time

import torch
from transformers import AutoModelForCausalLM

path, rows, seq, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
warmup = int(sys.argv[5]) if len(sys.argv) > 5 else 1
torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.95), weight_decay=0.0)
ids = torch.randint(0, model.config.vocab_size, (rows, seq))
times = []
for s in range(steps):
    t0 = time.perf_counter()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    times.append(time.perf_counter() - t0)
steady = times[warmup:]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB -> GB (approx.)
print(
    f"pytorch rows={rows} seq={seq} steps={steps} warmup={warmup} "
    f"tokens_per_s={rows * seq / (sum(steady) / len(steady)):.1f} peak_rss_gb={peak * 1.024:.2f}"
)
