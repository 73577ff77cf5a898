# memwall — the two set-up commands are `make demo` and `make test`.
# Both install what they need (scripts/setup), build, and fetch the default model.

BUILD ?= build
JOBS ?= $(shell nproc)
PY := .venv/bin/python
MODEL := models/SmolLM2-135M-Instruct.Q4_1.gguf
FUZZ_SECONDS ?= 60
DEMO_PROMPT ?= What is the capital of France? Answer in one sentence.
# Below the default model's 92 MiB of weights: memwall streams them.
DEMO_MEM ?= 64MiB

.PHONY: all setup build model demo test test-unit test-python test-asan test-fuzz bench format clean

all: build

setup:
	@scripts/setup

$(BUILD)/build.ninja: CMakeLists.txt | setup
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: setup $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

model: setup
	@scripts/fetch-model

demo: build model
	@echo "memwall: $(MODEL) (92 MiB of weights) answering under --mem $(DEMO_MEM)"
	$(BUILD)/memwall chat --once "$(DEMO_PROMPT)" -n 96 --mem $(DEMO_MEM) --ctx 512

test: build model
	$(MAKE) --no-print-directory test-unit test-python test-fuzz test-asan

test-unit:
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-python:
	MEMWALL_BIN=$(CURDIR)/$(BUILD)/memwall MEMWALL_MODEL=$(CURDIR)/$(MODEL) \
	  $(PY) -m pytest -q tests

test-fuzz:
	scripts/run-fuzz $(FUZZ_SECONDS)

# Unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: setup
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMWALL_SANITIZE=ON
	cmake --build build-asan -j $(JOBS) --target memwall_tests memwall
	MEMWALL_BIN=$(CURDIR)/build-asan/memwall build-asan/memwall_tests --gtest_brief=1

bench: build model
	scripts/setup-bench
	$(PY) bench/e2e_kernels.py --memwall $(BUILD)/memwall --micro $(BUILD)/memwall_micro
	$(PY) bench/budget.py --memwall $(BUILD)/memwall
	$(PY) bench/attention.py --memwall $(BUILD)/memwall --kvbench $(BUILD)/memwall_kv_attention_bench
	$(PY) bench/quant.py --memwall $(BUILD)/memwall

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) build-asan build-fuzz
