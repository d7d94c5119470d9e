# KeyMeld developer entry points. CMake does the building; this file only
# strings the steps together so the README's two commands work on a fresh
# Debian 12 machine.
#
#   make            build (build/)
#   make test       install deps if missing, build with -Werror, run every
#                   test; then the same under ASan+UBSan (build-asan/)
#   make demo       start the dev stack and run the demo
#   make fuzz       build the libFuzzer targets (build-fuzz/); run them with
#                   make fuzz-run FUZZ_SECONDS=60
#   make bench      build with optimizations and run the benchmarks
#   make install    build, then install the binaries and libkeymeld-client
#                   under PREFIX (/usr/local; DESTDIR is honoured)
#   make format     clang-format every C file;  make lint: style checks

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE ?= cmake
CTEST ?= ctest
CTEST_ARGS ?= --output-on-failure -j$(JOBS)
BUILD_TYPE ?= RelWithDebInfo
FUZZ_SECONDS ?= 30
PREFIX ?= /usr/local

export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1

C_SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

.PHONY: all build deps test test-release test-asan fuzz fuzz-run bench demo \
        format format-check lint clean start stop restart status install

all: build

deps:
	@scripts/install-deps --check >/dev/null 2>&1 || scripts/install-deps

build:
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@$(CMAKE) --build build -j$(JOBS)

test: deps lint test-release test-asan
	@echo "make test: all suites passed (release -Werror and ASan+UBSan)"

test-release:
	$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DKM_WERROR=ON
	$(CMAKE) --build build -j$(JOBS)
	$(CTEST) --test-dir build $(CTEST_ARGS)

test-asan:
	$(CMAKE) -S . -B build-asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	    -DKM_SANITIZE=ON -DKM_WERROR=ON -DKM_BUILD_BENCH=OFF
	$(CMAKE) --build build-asan -j$(JOBS)
	$(CTEST) --test-dir build-asan $(CTEST_ARGS)

fuzz:
	$(CMAKE) -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	    -DKM_SANITIZE=ON -DKM_BUILD_FUZZERS=ON -DKM_BUILD_BENCH=OFF
	$(CMAKE) --build build-fuzz -j$(JOBS)

fuzz-run: fuzz
	@for f in build-fuzz/fuzz/fuzz_*; do \
	    case $$f in *replay*) continue;; esac; \
	    name=$${f##*/fuzz_}; \
	    echo "== $$name ($(FUZZ_SECONDS)s)"; \
	    mkdir -p build-fuzz/corpus/$$name; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        build-fuzz/corpus/$$name fuzz/corpus/$$name || exit 1; \
	done

# docs/INTEGRATION.md "Using the C library"; Debian packages: cd build && cpack -G DEB
install: build
	DESTDIR=$(DESTDIR) $(CMAKE) --install build --prefix $(PREFIX)

bench:
	$(CMAKE) -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DKM_BUILD_TESTS=OFF
	$(CMAKE) --build build-bench -j$(JOBS)
	@for b in build-bench/bench/*/bench_*; do echo "== $$b"; $$b || exit 1; done

# The seed's `just` recipes: the dev stack (3 enclaves, socat debug proxies,
# gateway) run by scripts/keymeld-dev, which picks VSock or TCP by itself.
# `make start DB=postgres` (or KEYMELD_DEV_DB=postgres): a local PostgreSQL
# cluster and two gateways on it; status shows the database and both
# gateways, stop stops the cluster too (docs/SCALING.md).
DEV_ENV = $(if $(DB),KEYMELD_DEV_DB=$(DB) )

start: build
	@$(DEV_ENV)scripts/keymeld-dev start

stop:
	@scripts/keymeld-dev stop

restart: build
	@$(DEV_ENV)scripts/keymeld-dev restart

status:
	@scripts/keymeld-dev status

# Install, build, start (or reuse) the stack, run the demo; the stack keeps
# running afterwards.
demo: deps build
	@scripts/keymeld-dev start
	@scripts/keymeld-dev demo
	@echo
	@echo "The stack is still running: scripts/keymeld-dev status | logs gateway; stop it with: make stop"

format:
	clang-format -i $(C_SOURCES)

format-check:
	clang-format --dry-run --Werror $(C_SOURCES)

lint: format-check
	tools/checksrc.sh

clean:
	rm -rf build build-asan build-fuzz build-bench
