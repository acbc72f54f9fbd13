# Base64 codec module: its own test binary, fuzzer and benchmark, so the
# codec can be built and checked while other modules are mid-edit.
#   make codec-test            GoogleTest suite of test/codec (any SAN=)
#   make fuzz [FUZZ_SECONDS=60] libFuzzer run (clang, ASan+UBSan)
#   make bench-codec [CODEC_BENCH_ARGS=...]  Google Benchmark, MB/s

CODEC_SRCS := $(sort $(wildcard src/codec/*.cpp))
CODEC_OBJS := $(CODEC_SRCS:%.cpp=$(BUILD)/%.o)
CODEC_TEST_SRCS := $(sort $(wildcard test/codec/*.cpp))
CODEC_TEST_OBJS := $(CODEC_TEST_SRCS:%.cpp=$(BUILD)/%.o)
CODEC_TEST_BIN := $(BUILD)/codec_tests
CODEC_LDLIBS := -lb64 -lcrypto

CODEC_BENCH_SRCS := $(sort $(wildcard bench/codec/*.cpp))
CODEC_BENCH_OBJS := $(CODEC_BENCH_SRCS:%.cpp=$(BUILD)/%.o)
CODEC_BENCH_BIN := $(BUILD)/codec_bench
# Short runs: the machine has 2 shared cores.
CODEC_BENCH_ARGS ?= --benchmark_min_time=0.3

FUZZ_SECONDS ?= 60
CODEC_FUZZ_CXX ?= clang++
CODEC_FUZZ_DIR := $(BUILD)/fuzz
CODEC_FUZZ_BIN := $(CODEC_FUZZ_DIR)/base64_fuzz
# Its own target only: test/fuzz holds other modules' targets too (chat.mk, llhttp.mk).
CODEC_FUZZ_SRCS := test/fuzz/base64_fuzz.cpp $(CODEC_SRCS)
CODEC_FUZZ_FLAGS := -std=c++20 -O1 -g -Iinclude -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -fno-omit-frame-pointer

.PHONY: codec-test bench-codec fuzz

$(CODEC_TEST_BIN): $(CODEC_TEST_OBJS) $(CODEC_OBJS)
	$(call say,LINK,$@)$(CXX) $(LDFLAGS) $^ -o $@ $(CODEC_LDLIBS) -lgtest -lgtest_main

codec-test: $(CODEC_TEST_BIN)
	$(CODEC_TEST_BIN) $(GTEST_ARGS)

$(CODEC_BENCH_BIN): $(CODEC_BENCH_OBJS) $(CODEC_OBJS)
	$(call say,LINK,$@)$(CXX) $(LDFLAGS) $^ -o $@ $(CODEC_LDLIBS) -lbenchmark -lpthread

bench-codec: $(CODEC_BENCH_BIN)
	$(CODEC_BENCH_BIN) $(CODEC_BENCH_ARGS)

$(CODEC_FUZZ_BIN): $(CODEC_FUZZ_SRCS) $(wildcard include/fsrv/codec/*.hpp)
	@mkdir -p $(@D)
	$(call say,FUZZ,$@)$(CODEC_FUZZ_CXX) $(CODEC_FUZZ_FLAGS) $(CODEC_FUZZ_SRCS) -o $@ $(CODEC_LDLIBS)

fuzz: $(CODEC_FUZZ_BIN)
	@mkdir -p $(CODEC_FUZZ_DIR)/corpus
	$(CODEC_FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(CODEC_FUZZ_DIR)/corpus

-include $(CODEC_TEST_OBJS:.o=.d) $(CODEC_BENCH_OBJS:.o=.d)
