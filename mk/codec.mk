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

# Its own sources only: test/fuzz holds other modules' targets too.
$(eval $(call fuzz_target,codec,test/fuzz/base64_fuzz.cpp $(CODEC_SRCS),$(CODEC_LDLIBS),))
# `make fuzz`: the codec's, under its old name.
fuzz: fuzz-codec

.PHONY: codec-test bench-codec fuzz

$(CODEC_TEST_BIN): $(CODEC_TEST_OBJS) $(CODEC_OBJS)
	$(call say,LINK,$@)$(CXX) $(LDFLAGS) $^ -o $@ $(CODEC_LDLIBS) -lgtest -lgtest_main

codec-test: $(CODEC_TEST_BIN)
	$(CODEC_TEST_BIN) $(GTEST_ARGS)

$(CODEC_BENCH_BIN): $(CODEC_BENCH_OBJS) $(CODEC_OBJS)
	$(call say,LINK,$@)$(CXX) $(LDFLAGS) $^ -o $@ $(CODEC_LDLIBS) -lbenchmark -lpthread

bench-codec: $(CODEC_BENCH_BIN)
	$(CODEC_BENCH_BIN) $(CODEC_BENCH_ARGS)

-include $(CODEC_TEST_OBJS:.o=.d) $(CODEC_BENCH_OBJS:.o=.d)
