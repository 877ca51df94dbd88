# REINFORCE++ (Hu 2025) on the default run: each token's return (the
# reward to come, the KL to the reference in it), whitened over the batch;
# no critic. ALGO=reinforce-pp-baseline subtracts each prompt's group mean
# first (and puts the KL in the loss).
ALGO             ?= reinforce-pp
SAMPLES          ?= 8
SHARDS           ?= 100
include pipelines/default.mk
