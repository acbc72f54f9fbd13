# Stress table and whole-tool benchmarks (docs/STRESS.md).
#   make stress [CLIENT_POOL=thread|process] [STRESS_ARGS=...]
#                           full grid: 54 rows per server mode (thread, process)
#                           into results/stress-<timestamp>/ (long: see docs/STRESS.md)
#   make stress-quick       reduced grid (1 and 5 MB, pools {1, 5}), under a minute
#   make stress-dry-run     lists the full grid's rows without running anything
#   make bench              hyperfine: filecli get/upload of 10 and 100 MB, into
#                           results/bench-<timestamp>/
#   make bench-test         GoogleTest suite of test/bench (runs stress against
#                           a live server; its own binary, so other suites'
#                           breakage does not block it)

PROGRAMS += stress stress-grid echo-bench
echo-bench_SRCS := bench/echo_bench.cpp
stress_SRCS := bench/stress.cpp
stress-grid_SRCS := bench/stress_grid.cpp
# echo-bench is run by bench/transfer.sh only: `make test` does not build it.
BENCH_ONLY_PROGRAMS += echo-bench

CLIENT_POOL ?= thread
STRESS_ARGS ?=
# hyperfine settings: 3 timed runs after 1 warm-up keep `make bench` to a few
# minutes on 2 shared cores.
BENCH_RUNS ?= 3
BENCH_WARMUP ?= 1
BENCH_WORKERS ?= 4

BENCH_TEST_SRCS := $(sort $(wildcard test/bench/*.cpp))
BENCH_TEST_OBJS := $(BENCH_TEST_SRCS:%.cpp=$(BUILD)/%.o)
BENCH_TEST_BIN := $(BUILD)/bench_tests
STRESS_TOOLS := $(BIN)/stress $(BIN)/stress-grid $(BIN)/fileserver

.PHONY: stress stress-quick stress-dry-run bench bench-test

stress: $(STRESS_TOOLS)
	$(BIN)/stress-grid --bin $(abspath $(BIN)) --client-pool $(CLIENT_POOL) $(STRESS_ARGS)

stress-quick: $(STRESS_TOOLS)
	$(BIN)/stress-grid --quick --bin $(abspath $(BIN)) --client-pool $(CLIENT_POOL) $(STRESS_ARGS)

stress-dry-run: $(BIN)/stress-grid
	$(BIN)/stress-grid --dry-run --client-pool $(CLIENT_POOL) $(STRESS_ARGS)

bench: $(BIN)/filecli $(BIN)/fileserver $(BIN)/stress
	BENCH_RUNS=$(BENCH_RUNS) BENCH_WARMUP=$(BENCH_WARMUP) BENCH_WORKERS=$(BENCH_WORKERS) \
	  bench/bench.sh $(abspath $(BIN))

# The tests drive the programs through FSRV_BIN; they link no library code.
$(BENCH_TEST_BIN): $(BENCH_TEST_OBJS)
	$(call say,LINK,$@)$(CXX) $(LDFLAGS) $^ -o $@ -lgtest -lgtest_main

bench-test: $(BENCH_TEST_BIN) $(STRESS_TOOLS)
	FSRV_BIN=$(abspath $(BIN)) $(BENCH_TEST_BIN) $(GTEST_ARGS)

-include $(BENCH_TEST_OBJS:.o=.d)
