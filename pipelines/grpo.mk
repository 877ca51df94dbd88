# The default run with GRPO: group-normalised advantages over each
# prompt's samples, no critic, KL (k3) as a loss term.
ALGO     ?= grpo
SAMPLES  ?= 8
SHARDS   ?= 100
KL_COEF  ?= 0.001
include pipelines/default.mk
