# The default run: PPO on SmolLM2-135M-Instruct with the built-in
# arithmetic set, sized so one iteration takes a few minutes on 2 cores.
# Every variable can be overridden on the command line (make train ACTOR_LR=...).

ALGO             ?= ppo
POLICY0          ?= $(MODEL)
TRAIN_PROMPTS    ?= $(DATA)/prompts.parquet
# Each iteration samples one shard of the training prompts (rows i with
# i % SHARDS == iteration % SHARDS): 800 prompts / 50 = 16 per iteration.
SHARDS           ?= 50
SAMPLES          ?= 4
MAX_NEW_TOKENS   ?= 64
TEMPERATURE      ?= 0.6
TOP_P            ?= 1.0
ROLLOUT_BATCH    ?= 64
# A 135M model with 64 samples a step needs a larger step than the 7B
# recipe's 5e-7 to move within an hour; at 4e-5 it learned to box the
# instruction's example answer (3.5) before any arithmetic.
ACTOR_LR         ?= 2e-5
CRITIC_LR        ?= 1e-5
KL_COEF          ?= 0.01
TRAIN_BATCH      ?= 32
MICRO_BATCH      ?= 16
PPO_EPOCHS       ?= 1
PPO_FLAGS        ?=
# SmolLM2's activations for a micro-batch of 16 fit in a few GB, so the
# default run keeps them instead of recomputing each layer in the backward
# pass (a quarter of the training compute; ppo-step's own default is on).
GRAD_CHECKPOINTING ?= false
# The rollout samples unfiltered (TOP_P 1) in f32 like the step, so its
# log-probs are the policy's: ppo-step takes them as the PPO ratio's old
# log-probs instead of a scoring pass (a third of the scoring; it checks
# the gap on the first mini-batch and stops above 1e-3).
OLD_LOGPROBS     ?= $(if $(filter f32,$(DTYPE)),rollout,recompute)
# Keep the policies of the last 2 iterations and of every 5th (each
# iteration writes about 3 GB: policy, critic and their AdamW states), and
# evaluate every 5 iterations.
KEEP             ?= 2
EVAL_EVERY       ?= 5
# Benchmarks for `make eval` (NAME=prompts.parquet ...), greedy.
EVAL_SETS        ?= holdout=$(DATA)/holdout.parquet
EVAL_MAX_NEW_TOKENS ?= 64
EVAL_FLAGS       ?=
