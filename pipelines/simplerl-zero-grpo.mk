# The recipe's data and sampling with GRPO instead of PPO.
ALGO     ?= grpo
KL_COEF  ?= 0.001
include pipelines/simplerl-zero.mk
