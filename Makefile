# keymesh: the two commands are `make run` and `make test`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
# make fuzz: seconds per target; make test runs each target for FUZZ_SMOKE.
FUZZ_SECONDS ?= 300
FUZZ_SMOKE ?= 10
JOBS       ?= 2
CONFIG     ?=
GENERATOR  := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

.PHONY: all setup build build-asan build-fuzz run test test-unit test-asan fuzz fuzz-smoke faults bench clean

all: build

setup:
	@scripts/setup

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: setup $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DKEYMESH_SANITIZE=ON

build-asan: setup $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j$(JOBS) --target keymesh_unit_tests

# The libFuzzer targets (clang, ASan + UBSan): tests/fuzz.
$(FUZZ_BUILD)/CMakeCache.txt:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) $(GENERATOR) \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEYMESH_FUZZ=ON -DKEYMESH_WERROR=OFF

build-fuzz: setup $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j$(JOBS)

# Starts a single node on the embedded default (127.0.0.1:8080, ./data).
run: build
	$(BUILD)/keymesh serve $(if $(CONFIG),--config $(CONFIG))

# Every test: unit + integration on the release build, the unit suites
# again under AddressSanitizer + UBSan, and each fuzz target for a moment.
test: build test-asan fuzz-smoke
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)

test-unit: build
	ctest --test-dir $(BUILD) --output-on-failure -L unit

test-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -L unit

# Each fuzz target for FUZZ_SECONDS (results: docs/security.md).
fuzz: build-fuzz
	scripts/fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS)

fuzz-smoke: build-fuzz
	scripts/fuzz $(FUZZ_BUILD) $(FUZZ_SMOKE)

# Every fault-injection scenario on a real 3-node cluster in network
# namespaces (needs root); make test runs a short version (ctest faults.short).
faults: build
	tests/faults/faults.py --bin $(BUILD)/keymesh --json $(BUILD)/faults.json

bench: build
	@KEYMESH_SETUP_BENCH=1 scripts/setup
	bench/run-all $(BUILD)/keymesh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
