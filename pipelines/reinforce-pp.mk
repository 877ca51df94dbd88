# REINFORCE++ (Hu 2025) with 8 samples of 8 prompts per iteration (the
# default config is REINFORCE++ with 2 samples of 32): each token's return
# (the reward to come, the KL to the reference in it), whitened over the
# batch; no critic. ALGO=reinforce-pp-baseline subtracts each prompt's group mean
# first (and puts the KL in the loss).
ALGO             ?= reinforce-pp
SAMPLES          ?= 8
SHARDS           ?= 100
include pipelines/default.mk
