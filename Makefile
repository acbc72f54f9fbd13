# Build, test and run the file server. `make help` lists the targets.
#
# Layout: src/<concern>/*.cpp -> build/<variant>/libfsrv.a; programs in
# src/main (server), tools/ (filecli), bench/ (stress); tests in test/.
# Variants: plain (bin/), SAN=asan (ASan+UBSan), SAN=tsan; each variant builds
# in its own folder so switching never mixes objects.

SHELL := /bin/bash
CXX ?= g++
SAN ?=
V ?= 0

ifeq ($(SAN),)
  BUILD := build/release
  BIN := bin
  SANFLAGS :=
else ifeq ($(SAN),asan)
  BUILD := build/asan
  BIN := build/asan/bin
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  # clang compiles this variant in about 30% less CPU time than g++
  # (connection_test.cpp 10.6 -> 7.4 s, http_routes.cpp 8.4 -> 4.3 s of user
  # time under ASan+UBSan), and its -Wall catches a few more things (an
  # unused constant, once). The plain build and TSan stay on g++.
  ifeq ($(origin CXX),default)
    CXX := clang++
  endif
else ifeq ($(SAN),tsan)
  BUILD := build/tsan
  BIN := build/tsan/bin
  SANFLAGS := -fsanitize=thread
else
  $(error SAN must be empty, asan or tsan)
endif

ifeq ($(SAN),)
  # -g1 (line tables: perf and gdb backtraces keep function:line) compiles
  # about a third faster than -g (http_routes.cpp: 4.3 -> 2.9 s of user
  # time); `make OPT='-O2 -g'` for variable-level debug info.
  OPT ?= -O2 -g1
else
  # -O1 keeps sanitizer builds quick to compile and their stacks readable;
  # -g1 (line tables only) compiles about a quarter faster than -g (measured
  # on http_routes.cpp under ASan: 19.7 -> 14.4 s) and every sanitizer
  # report keeps its function:line frames.
  OPT ?= -O1 -g1
endif
NPROC := $(shell nproc 2>/dev/null || echo 2)
CXXFLAGS := -std=c++20 $(OPT) -Wall -Wextra -Werror -pthread $(SANFLAGS)
CPPFLAGS := -Iinclude -MMD -MP
LDFLAGS := -pthread $(SANFLAGS)
LDLIBS := -luv -lcjson -lb64 -lxxhash

ifeq ($(V),0)
  Q := @
  say = @printf '  %-7s %s\n' $(1) $(2);
else
  Q :=
  say =
endif

# Debian packages the build, tests, benches and tools need; `make deps`
# installs whichever are missing (apt-get; we run as root on CI).
DEB_PACKAGES := g++ make pkg-config libuv1-dev libcjson-dev libb64-dev libcli11-dev \
  libgtest-dev libxxhash-dev libbenchmark-dev libssl-dev python3 clang \
  libclang-rt-14-dev clang-format hyperfine gnuplot-nox iperf3 procps netcat-openbsd \
  iproute2

LIB_SRCS := $(shell find src -name '*.cpp' -not -path 'src/main/*' | sort)
LIB_OBJS := $(LIB_SRCS:%.cpp=$(BUILD)/%.o)
LIB := $(BUILD)/libfsrv.a

TEST_SRCS := $(shell find test -name '*.cpp' -not -path 'test/fuzz/*' | sort)
TEST_OBJS := $(TEST_SRCS:%.cpp=$(BUILD)/%.o)
# Test objects: in the plain variant clang++ at -O0 when CXX is the
# default (the sanitizer variants keep one compiler for everything). The
# tests were almost half of the build's CPU, mostly GoogleTest's templates
# and headers; the code they test, libfsrv.a and the programs, keeps the
# programs' compiler and flags. clang at -O1 compiled them in about 30%
# less time than g++ at -O2 (connection_test.cpp 7.2 -> 3.8 s of user
# time), and -O0 about halves that again on top of the precompiled header
# below (storage_test.cpp 2.4-3.2 -> 1.0-1.4 s, chat_protocol_test.cpp
# 2.8-5.4 -> 1.1-2.0 s). The test code itself does little work: the
# heaviest on the CPU, the every-split and two-way-split base64 tests
# (libfsrv's decoder does the work), went from 12.6 to 15.4 s. clang's
# warnings do not depend on the optimisation level (g++'s
# -Wmaybe-uninitialized does, so test objects made by g++ stay at -O1).
# Both use libstdc++, so the objects link together (the ASan variant
# builds everything with clang already, so the tests are clang-clean).
TEST_CXX := $(CXX)
TEST_OPT := $(OPT)
ifeq ($(SAN),)
  TEST_OPT := -O1 -g1
  ifeq ($(origin CXX),default)
    ifneq ($(shell command -v clang++),)
      TEST_CXX := clang++
      TEST_OPT := -O0 -g1
    endif
  endif
endif
TEST_BIN := $(BUILD)/fsrv_tests

# Programs: name -> main source. Fragments in mk/*.mk add more with
# `PROGRAMS += name` and `name_SRCS := ...`.
PROGRAMS := fileserver filecli
fileserver_SRCS := src/main/fileserver.cpp
filecli_SRCS := tools/filecli.cpp

# Programs only the benches run, not the tests (mk/bench.mk adds
# echo-bench): `make test` builds every program but these (test-build).
BENCH_ONLY_PROGRAMS :=

# Static libraries built by fragments (mk/llhttp.mk: libllhttp.a) and linked
# after libfsrv.a into every program and the test binary.
EXTRA_LIBS :=

# libFuzzer targets: one rule for all. A fragment declares one with
#   $(eval $(call fuzz_target,NAME,SOURCES,LIBS,SEEDS[,FLAGS,OBJECTS]))
# which builds $(FUZZ_DIR)/NAME_fuzz with clang (libFuzzer, ASan, UBSan),
# adds `make fuzz-NAME` (a run of FUZZ_SECONDS: new inputs go to
# $(FUZZ_DIR)/NAME-corpus, crashes to $(FUZZ_DIR)/NAME-*, the committed seeds
# in SEEDS are only read) and puts it in FUZZ_TARGETS for `make fuzz-all`.
FUZZ_SECONDS ?= 60
FUZZ_CXX ?= clang++
FUZZ_CC ?= clang
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_FLAGS := -std=c++20 -O1 -g -Iinclude -fsanitize=fuzzer $(FUZZ_SAN)
FUZZ_TARGETS :=
define fuzz_target
FUZZ_TARGETS += fuzz-$(1)
.PHONY: fuzz-$(1)
$(FUZZ_DIR)/$(1)_fuzz: $(2) $(6) $$(wildcard include/fsrv/*/*.hpp include/fsrv/services/*/*.hpp)
	@mkdir -p $$(@D)
	$$(call say,FUZZ,$$@)$$(FUZZ_CXX) $$(FUZZ_FLAGS) $(5) $(2) $(6) -o $$@ $(3)
fuzz-$(1): $(FUZZ_DIR)/$(1)_fuzz
	@mkdir -p $(FUZZ_DIR)/$(1)-corpus
	$(FUZZ_DIR)/$(1)_fuzz -max_total_time=$$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=$(FUZZ_DIR)/$(1)- $(FUZZ_DIR)/$(1)-corpus $(4)
endef

-include mk/*.mk

PROGRAM_BINS := $(PROGRAMS:%=$(BIN)/%)

.PHONY: all test-build deps test test-run check-layers list-fuzz-targets fuzz-build sanitize tsan run-server fmt clean help
.DEFAULT_GOAL := all

all: $(PROGRAM_BINS) $(TEST_BIN)

# What the suites need: `all` but the bench-only programs (echo-bench, 9 s
# of CPU that no test runs; `make all` and the CI's sanitizer builds still
# compile it). The certificates come from mk/tls.mk.
test-build: $(filter-out $(BENCH_ONLY_PROGRAMS:%=$(BIN)/%),$(PROGRAM_BINS)) $(TEST_BIN) certs

help:
	@echo "make deps        install missing Debian packages"
	@echo "make all         build bin/fileserver, bin/filecli and the tests"
	@echo "make test        deps + layer check + build + all tests (reactor, unit, integration,"
	@echo "                 Python clients); .ci/run adds sanitize, tsan, fuzz, soak, browser"
	@echo "make run-server  every service on its course port (fileserver --services), ./files"
	@echo "make sanitize    ASan+UBSan build and test run;  make tsan  TSan build and test run"
	@echo "make fmt         clang-format every C++ file"
	@echo "make bench-transfer  100 MB GET/UPLOAD figures through filecli"
	@echo "make test-hostile    attacks by one client on every service (figures printed)"
	@echo "make bench-http, bench-codec, soak, test-browser, stress, stress-quick, bench: see README.md"
	@echo "make list-fuzz-targets; each runs libFuzzer for FUZZ_SECONDS"

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Recompile everything when the flags change (Redis habit).
FLAGS_STAMP := $(BUILD)/.flags
$(FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(CXX) $(CXXFLAGS) $(CPPFLAGS) $(LDFLAGS) $(LDLIBS) $(TEST_CXX) $(TEST_OPT)' | cmp -s - $@ || echo '$(CXX) $(CXXFLAGS) $(CPPFLAGS) $(LDFLAGS) $(LDLIBS) $(TEST_CXX) $(TEST_OPT)' > $@
FORCE:

$(BUILD)/%.o: %.cpp $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call say,CXX,$<)$(CXX) $(CXXFLAGS) $(CPPFLAGS) -c $< -o $@

# The test objects' precompiled header, TEST_PCH: GoogleTest and the
# standard headers most test files include (test/support/test_pch.hpp),
# parsed once per build by the test objects' compiler with their flags and
# force-included (-include) into every test object, instead of parsed again
# by each of the ~57 test files: about 1.5-2 s of CPU less per test object
# (storage_test.cpp 4.7 -> 2.8 s, json_py_test.cpp 3.0 -> 1.1 s of user
# time), for a header that takes about 3 s once.
# g++ and clang++ both read `-include H` as H.gch when that file is beside
# H, so the header is copied into the build folder and compiled there. It
# is remade when the header, a header of ours it includes (its .d file) or
# the flags (the flags stamp) change, so it is always made with the objects'
# own flags (g++ does not check them all itself: a PCH made at -O1 and used
# at -O2 crashed it); a .gch clang cannot use is an error, and g++ warns of
# one under -Winvalid-pch (an error with -Werror) rather than silently
# reparsing the header. clang also instantiates the header's pending
# templates once, in the PCH (-fpch-instantiate-templates), not in every
# object.
TEST_CXXFLAGS = $(filter-out $(OPT),$(CXXFLAGS)) $(TEST_OPT)
TEST_PCH := $(BUILD)/test/test_pch.hpp
ifneq ($(findstring clang,$(TEST_CXX)),)
  TEST_PCH_MAKE := -fpch-instantiate-templates
  TEST_PCH_USE :=
else
  TEST_PCH_MAKE := -Winvalid-pch
  TEST_PCH_USE := -Winvalid-pch
endif

$(TEST_PCH): test/support/test_pch.hpp
	@mkdir -p $(@D)
	@cp $< $@

$(TEST_PCH).gch: $(TEST_PCH) $(FLAGS_STAMP)
	$(call say,PCH,$@)$(TEST_CXX) $(TEST_CXXFLAGS) $(CPPFLAGS) $(TEST_PCH_MAKE) -x c++-header $< -o $@

$(BUILD)/test/%.o: test/%.cpp $(TEST_PCH).gch $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call say,CXX,$<)$(TEST_CXX) $(TEST_CXXFLAGS) $(CPPFLAGS) -include $(TEST_PCH) $(TEST_PCH_USE) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

# One rule per program: its objects plus the library.
define PROGRAM_RULE
$(BIN)/$(1): $$($(1)_SRCS:%.cpp=$(BUILD)/%.o) $(LIB) $(EXTRA_LIBS)
	@mkdir -p $$(@D)
	$$(call say,LINK,$$@)$(CXX) $(LDFLAGS) $$^ -o $$@ $(LDLIBS) $$($(1)_LDLIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call PROGRAM_RULE,$(p))))

$(TEST_BIN): $(TEST_OBJS) $(LIB) $(EXTRA_LIBS)
	$(call say,LINK,$@)$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lgtest -lgtest_main -lcrypto

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(TEST_PCH).d $(foreach p,$(PROGRAMS),$($(p)_SRCS:%.cpp=$(BUILD)/%.d))

# The test command of README.md and .ci/run: from a fresh machine, check the
# layer rules, build in parallel and run every suite. The sanitizer runs
# (`make sanitize`, `make tsan`), the fuzzers, the stress grid, the soak and
# the browser test run in .ci/run after it: with seven services, the ASan
# build and run alone would push `make test` past ten minutes on 2 cores.
test: deps
	tools/check-layers.sh
	$(MAKE) --no-print-directory test-run

# Runs the suites of one variant. The integration tests find the programs
# through FSRV_BIN. Most tests wait on sockets, timers and child servers
# rather than the CPU, so the GoogleTest binary runs as TEST_SHARDS shards
# (GTEST_TOTAL_SHARDS / GTEST_SHARD_INDEX) beside the Python suite, each
# target's output kept together (--output-sync); TEST_SHARDS=1 runs the
# GoogleTest suite in one process as before.
# The Python suite runs likewise as PY_SOLO's modules (the longest, ~40-50 s
# each) one per process and every other module together.
# The Python suite needs only the programs in PY_NEEDS, so it starts as soon
# as they are built, and the GoogleTest binary (and stress, stress-grid,
# which only its tests run) compiles beside it in the job slots the shards
# are not using yet: the suites have about a core idle between them, waiting
# on sockets and timers, and the test objects' minute of CPU fills it
# instead of running before the suites. --keep-going: a suite that fails
# does not stop the others from running (or the shards from being built).
TEST_SHARDS ?= 2
SHARD_TARGETS := $(addprefix gtest-shard-,$(shell seq 0 $$(($(TEST_SHARDS) - 1))))
PY_MODULES := $(basename $(notdir $(wildcard test/python/test_*.py)))
PY_SOLO := test_dialect_pools test_tftp
PY_TARGETS := $(PY_SOLO:%=py-%) py-rest
PY_NEEDS := $(BIN)/fileserver $(BIN)/filecli $(BIN)/chatcli $(BIN)/udpsend certs
.PHONY: test-python $(SHARD_TARGETS) $(PY_TARGETS)
test-run:
	$(MAKE) --no-print-directory -j$(NPROC) $(PY_NEEDS)
	$(MAKE) --no-print-directory -j$(words $(SHARD_TARGETS) $(PY_TARGETS)) --output-sync=target \
	  --keep-going $(PY_TARGETS) $(SHARD_TARGETS)

$(SHARD_TARGETS): gtest-shard-%: test-build
	FSRV_BIN=$(abspath $(BIN)) GTEST_TOTAL_SHARDS=$(TEST_SHARDS) GTEST_SHARD_INDEX=$* \
	  $(SAN_TEST_ENV) $(TEST_BIN) $(GTEST_ARGS)

# The Python suite alone, its three processes side by side.
test-python: $(PY_NEEDS)
	$(MAKE) --no-print-directory -j$(words $(PY_TARGETS)) --output-sync=target $(PY_TARGETS)

# py-MODULE runs that module; py-rest every module not in PY_SOLO.
$(PY_TARGETS): py-%: $(PY_NEEDS)
	cd test/python && FSRV_BIN=$(abspath $(BIN)) python3 -m unittest -v \
	  $(if $(filter rest,$*),$(filter-out $(PY_SOLO),$(PY_MODULES)),$*)

# Every libFuzzer target (mk/*.mk add theirs to FUZZ_TARGETS); .ci/run runs
# each for a bounded time.
list-fuzz-targets:
	@echo $(FUZZ_TARGETS)

# Every fuzz target for FUZZ_SECONDS, two at a time (each libFuzzer run is
# one busy process; this machine class has 2 cores), output kept per target.
.PHONY: fuzz-all
# Builds every fuzz target without running it (.ci/run compiles them in the
# background before the fuzz stage).
fuzz-build:
	$(MAKE) --no-print-directory $(FUZZ_TARGETS:fuzz-%=$(FUZZ_DIR)/%_fuzz)

fuzz-all:
	$(MAKE) --no-print-directory -j$(NPROC) --output-sync=target $(FUZZ_TARGETS)

# The layer rules of docs/ARCHITECTURE.md, checked on #include lines.
check-layers:
	tools/check-layers.sh

sanitize: deps
	$(MAKE) -j$(NPROC) SAN=asan all
	$(MAKE) SAN=asan test-san

tsan: deps
	$(MAKE) -j$(NPROC) SAN=tsan all
	$(MAKE) SAN=tsan test-san

# Sanitizer variants skip the 100 MiB transfers (10x slower under ASan) and
# run the GoogleTest shards only.
SAN_TEST_ENV := $(if $(SAN),FSRV_SMALL=1 TSAN_OPTIONS="suppressions=$(abspath tools/tsan.supp)")
test-san: all
	$(MAKE) --no-print-directory -j$(words $(SHARD_TARGETS)) --output-sync=target $(SHARD_TARGETS)

run-server: deps
	@$(MAKE) --no-print-directory -s -j$(NPROC) all
	@tools/run-server.sh $(BIN)

fmt:
	clang-format -i $$(find src include test tools bench -name '*.cpp' -o -name '*.hpp' | sort)

clean:
	rm -rf build bin
