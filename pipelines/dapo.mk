# DAPO's changes to GRPO (Yu et al. 2025) on the default run: clip-higher
# (upper clip 0.28), the token-level loss, dynamic sampling (uniform
# groups dropped, further prompts sampled until the batch is informative)
# and the soft overlong penalty; no KL term.
ALGO             ?= grpo
SAMPLES          ?= 8
# Batches of 16 prompts from a shuffling loader (dynamic sampling needs
# the batch size), up to 16 more per iteration to fill it.
PROMPTS_PER_ROLLOUT ?= 16
FILTER_GROUPS    ?= 1
MAX_EXTRA_PROMPTS ?= 16
CLIP_RATIO_HIGH  ?= 0.28
LOSS_AGG         ?= token-mean
KL_COEF          ?= 0
# The last 16 of the 64 new tokens are the penalty's buffer.
OVERLONG_PENALTY ?= 64:16
include pipelines/default.mk
