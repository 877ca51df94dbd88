# The published SimpleRL-Zero recipe (Zeng et al. 2025): PPO from the base
# model on the MATH level 3-5 questions with the Qwen2.5-Math CoT
# template. Every value below is the published launch script's (or the
# default of its PPO entry point); docs/recipe.md lists each one beside
# ours, and where ours differs, why (a test keeps the two equal).
# Bring the base model (e.g. Qwen2.5-Math-7B in HF layout) with MODEL=...;
# make the prompts with `make data-simplerl` (reads $(RAW)).

ALGO             ?= ppo
# The recipe's template for its prompts and the evaluation suite
# (`make data-simplerl data-eval CONFIG=simplerl-zero`).
TEMPLATE         = qwen-math-cot
INSTRUCTION      =
POLICY0          ?= $(MODEL)
TRAIN_PROMPTS    ?= $(DATA)/simplerl-zero.parquet
# Rollout: 1,024 prompts per rollout from a shuffling loader (a new order
# each pass, the partial batch dropped), 8 samples each.
PROMPTS_PER_ROLLOUT ?= 1024
SHUFFLE_SEED     ?= 42
SAMPLES          ?= 8
TEMPERATURE      ?= 0.6
TOP_P            ?= 1.0
MAX_NEW_TOKENS   ?= 3000
MAX_PROMPT_TOKENS ?= 1024
# bf16 compute over f32 master weights (on the CPU, DTYPE=f32 is faster).
DTYPE            ?= bf16
# Sequences decoded together (a systems choice).
ROLLOUT_BATCH    ?= 64
# 20 episodes x floor(8,884 prompts / 1,024) = 8 rollouts each.
ITERS            ?= 160
# Update: train batch 128 (64 optimizer steps per rollout), micro-batch
# 2, one epoch.
TRAIN_BATCH      ?= 128
MICRO_BATCH      ?= 2
PPO_EPOCHS       ?= 1
CLIP_RATIO       ?= 0.2
VALUE_CLIP       ?= 0.2
LAM              ?= 0.95
GAMMA            ?= 1.0
KL_COEF          ?= 0.01
GRAD_CLIP        ?= 1.0
REWARD_CLIP      ?= 10
REWARD_NORM      ?= false
LOSS_AGG         ?= seq-mean-token-mean
# AdamW; both rates cosine to 0.1x after a linear warmup over 3% of the
# run's optimizer steps (TOTAL_STEPS, from ITERS and the batch sizes).
ADAM_BETAS       ?= 0.9,0.95
WEIGHT_DECAY     ?= 0
ACTOR_LR         ?= 5e-7
CRITIC_LR        ?= 9e-6
LR_SCHEDULE      ?= cosine
LR_WARMUP_RATIO  ?= 0.03
MIN_LR_RATIO     ?= 0.1
PPO_FLAGS        ?=
EVAL_SETS        ?= $(foreach b,aime24 amc23 math500 minerva_math olympiadbench gsm8k,$(b)=$(DATA)/eval/$(b).parquet)
EVAL_MAX_NEW_TOKENS ?= 3000
EVAL_FLAGS       ?=
