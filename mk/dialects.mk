# File protocol interop: libFuzzer targets for the file
# protocol's request side and for the two other file dialects' pure parsers
# (file-marker, file-raw), built like fuzz-chat (mk/chat.mk).
#   make fuzz-file [FUZZ_SECONDS=60]      next_frame, parse_line, on_silence,
#                                         ascii_json (whole and split inputs)
#   make fuzz-dialects [FUZZ_SECONDS=60]  segmented base64, __END__ matching,
#                                         file-raw line framing and parsing
# Seeds: test/fuzz/corpus/file, test/fuzz/corpus/dialects (read only); new
# inputs go to the build folder.

FUZZ_SECONDS ?= 60
DIALECT_FUZZ_CXX ?= clang++
DIALECT_FUZZ_DIR := $(BUILD)/fuzz
DIALECT_FUZZ_FLAGS := -std=c++20 -O1 -g -Iinclude -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -fno-omit-frame-pointer

FILE_FUZZ_BIN := $(DIALECT_FUZZ_DIR)/file_request_fuzz
FILE_FUZZ_SRCS := test/fuzz/file_request_fuzz.cpp src/services/file/request.cpp \
  src/services/file/reply.cpp src/core/result.cpp
FILE_FUZZ_SEED := test/fuzz/corpus/file

DIALECTS_FUZZ_BIN := $(DIALECT_FUZZ_DIR)/dialects_fuzz
DIALECTS_FUZZ_SRCS := test/fuzz/dialects_fuzz.cpp $(sort $(wildcard src/services/file_marker/*_protocol.cpp \
  src/services/file_raw/*_protocol.cpp src/codec/*.cpp))
DIALECTS_FUZZ_SEED := test/fuzz/corpus/dialects

.PHONY: fuzz-file fuzz-dialects

$(FILE_FUZZ_BIN): $(FILE_FUZZ_SRCS) $(wildcard include/fsrv/services/file/*.hpp)
	@mkdir -p $(@D)
	$(call say,FUZZ,$@)$(DIALECT_FUZZ_CXX) $(DIALECT_FUZZ_FLAGS) $(FILE_FUZZ_SRCS) -o $@ -lcjson

$(DIALECTS_FUZZ_BIN): $(DIALECTS_FUZZ_SRCS) $(wildcard include/fsrv/services/file_marker/*.hpp \
    include/fsrv/services/file_raw/*.hpp include/fsrv/codec/*.hpp)
	@mkdir -p $(@D)
	$(call say,FUZZ,$@)$(DIALECT_FUZZ_CXX) $(DIALECT_FUZZ_FLAGS) $(DIALECTS_FUZZ_SRCS) -o $@ -lb64

FUZZ_TARGETS += fuzz-file
fuzz-file: $(FILE_FUZZ_BIN)
	@mkdir -p $(DIALECT_FUZZ_DIR)/file-corpus
	$(FILE_FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=$(DIALECT_FUZZ_DIR)/file- $(DIALECT_FUZZ_DIR)/file-corpus $(FILE_FUZZ_SEED)

FUZZ_TARGETS += fuzz-dialects
fuzz-dialects: $(DIALECTS_FUZZ_BIN)
	@mkdir -p $(DIALECT_FUZZ_DIR)/dialects-corpus
	$(DIALECTS_FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=$(DIALECT_FUZZ_DIR)/dialects- $(DIALECT_FUZZ_DIR)/dialects-corpus $(DIALECTS_FUZZ_SEED)
