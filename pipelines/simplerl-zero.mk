# The published SimpleRL-Zero recipe (Zeng et al. 2025): PPO on the
# 8,523-problem MATH level 3-5 set with the Qwen2.5-Math CoT template.
# Bring the base model (e.g. Qwen2.5-Math-7B in HF layout) with MODEL=...;
# make the prompts with `make data-simplerl` (reads $(RAW)).
# The recipe: rollout batch 1024 prompts' worth of samples (128 prompts x 8),
# temperature 0.6, max 3000 new tokens, train batch 128... as below.

ALGO             ?= ppo
# The recipe's template for its prompts and the evaluation suite
# (`make data-simplerl data-eval CONFIG=simplerl-zero`).
TEMPLATE         = qwen-math-cot
INSTRUCTION      =
POLICY0          ?= $(MODEL)
TRAIN_PROMPTS    ?= $(DATA)/simplerl-zero.parquet
# 8,884 prompts / 128 per iteration.
SHARDS           ?= 69
SAMPLES          ?= 8
MAX_NEW_TOKENS   ?= 3000
TEMPERATURE      ?= 0.6
TOP_P            ?= 1.0
ROLLOUT_BATCH    ?= 64
ACTOR_LR         ?= 5e-7
CRITIC_LR        ?= 9e-6
KL_COEF          ?= 0.01
TRAIN_BATCH      ?= 128
MICRO_BATCH      ?= 2
PPO_EPOCHS       ?= 1
PPO_FLAGS        ?=
EVAL_SETS        ?= $(foreach b,aime24 amc23 math500 minerva_math olympiadbench gsm8k,$(b)=$(DATA)/eval/$(b).parquet)
EVAL_MAX_NEW_TOKENS ?= 3000
EVAL_FLAGS       ?=
