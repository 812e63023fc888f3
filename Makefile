# keymesh: the two commands are `make run` and `make test`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= 2
CONFIG     ?=
GENERATOR  := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

.PHONY: all setup build build-asan run test test-unit test-asan bench clean

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

# Starts a single node on the embedded default (127.0.0.1:8080, ./data).
run: build
	$(BUILD)/keymesh serve $(if $(CONFIG),--config $(CONFIG))

# Every test: unit + integration on the release build, then the unit suites
# again under AddressSanitizer + UBSan.
test: build test-asan
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)

test-unit: build
	ctest --test-dir $(BUILD) --output-on-failure -L unit

test-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -L unit

bench: build
	@KEYMESH_SETUP_BENCH=1 scripts/setup
	bench/run-all $(BUILD)/keymesh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
