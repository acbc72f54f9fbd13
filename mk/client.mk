# Client library + filecli: a test binary of its own, so the client can be
# built and checked while other modules are mid-edit, and the transfer bench.
#   make client-test [GTEST_ARGS=...]  GoogleTest suite of test/client (any SAN=);
#                                     the filecli/fileserver cases skip when
#                                     $(BIN)/fileserver does not exist yet
#   make bench-transfer               100 MB GET/UPLOAD through filecli vs iperf3/dd
#   make bench-get-ceiling            the GET taken apart: each end's ceiling vs iperf3

CLIENT_LIB_SRCS := $(sort $(wildcard src/client/*.cpp src/codec/*.cpp))
CLIENT_LIB_OBJS := $(CLIENT_LIB_SRCS:%.cpp=$(BUILD)/%.o)
CLIENT_TEST_SRCS := $(sort $(wildcard test/client/*.cpp))
CLIENT_TEST_OBJS := $(CLIENT_TEST_SRCS:%.cpp=$(BUILD)/%.o)
CLIENT_TEST_BIN := $(BUILD)/client_tests
CLIENT_LDLIBS := -lcjson -lb64

.PHONY: client-test bench-transfer bench-get-ceiling

# Only the client and codec objects: other modules may be mid-edit.
$(CLIENT_TEST_BIN): $(CLIENT_TEST_OBJS) $(CLIENT_LIB_OBJS)
	$(call say,LINK,$@)$(CXX) $(LDFLAGS) $^ -o $@ $(CLIENT_LDLIBS) -lgtest -lgtest_main

# filecli is built with the whole library; if another module does not build
# right now the filecli end-to-end cases skip instead of failing the target.
client-test: $(CLIENT_TEST_BIN)
	-@$(MAKE) -k --no-print-directory $(BIN)/filecli $(BIN)/fileserver >/dev/null 2>&1 || \
	  echo "client-test: could not build $(BIN)/filecli or $(BIN)/fileserver; their cases may skip"
	FSRV_BIN=$(abspath $(BIN)) $(CLIENT_TEST_BIN) $(GTEST_ARGS)

bench-transfer: $(BIN)/filecli $(BIN)/fileserver
	bench/transfer.sh $(BIN)

bench-get-ceiling: $(BIN)/filecli $(BIN)/fileserver
	python3 bench/get_ceiling.py $(BIN)

-include $(CLIENT_TEST_OBJS:.o=.d)
