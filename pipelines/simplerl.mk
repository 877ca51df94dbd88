# SimpleRL: long-CoT SFT on the recipe's questions first (`make sft`), then
# the same RL from the SFT checkpoint (which is also the KL reference).
# `make train CONFIG=simplerl` runs the SFT stage first when it is not done.
# The SFT targets here are the MATH solutions of the 8K questions (the
# seed's "8K MATH SFT" baseline); point SFT_DATA at a long-CoT set to
# reproduce SimpleRL proper.
SFT_DATA   ?= $(DATA)/sft-math.parquet
SFT_OUT    ?= runs/$(RUN)/sft
SFT_FLAGS  ?= --epochs 1 --train-batch-size 32 --micro-batch-size 2 --lr 1e-5 --lr-warmup-steps 10 --save-every 20
POLICY0    ?= $(SFT_OUT)
PRE_TRAIN  ?= sft
# The RL stage's configuration: the recipe's (simplerl-zero) by default;
# `make compare` runs SFT-then-RL at CPU scale with RL_CONFIG=default.
RL_CONFIG  ?= simplerl-zero
include pipelines/$(RL_CONFIG).mk
