# llhttp (Node.js's HTTP/1.1 parser) as a static library, built from the C
# sources Debian's node-llhttp ships, for src/services/http.
#   make fuzz-http [FUZZ_SECONDS=60]   libFuzzer run of the HTTP request parser
#                                       (clang, ASan+UBSan)
#
# Third-party code: compiled with plain gcc -O2, without our -Werror, into
# $(BUILD)/third_party/llhttp/ and archived as $(BUILD)/libllhttp.a, which the
# Makefile links into every program and the test binary through EXTRA_LIBS.

DEB_PACKAGES += node-llhttp

LLHTTP_SRC_DIR ?= /usr/share/llhttp
LLHTTP_INC_DIR ?= /usr/share/include/llhttp
LLHTTP_CC ?= gcc
# LLHTTP_STRICT_MODE=1: llhttp 8's compile-time strict parser. The default
# (loose) build takes CR followed by any byte as a line end and tolerates
# more in chunk lines, which lets a front proxy and us disagree on message
# boundaries (request smuggling); the strict one wants CR LF.
LLHTTP_CFLAGS ?= -O2 -DLLHTTP_STRICT_MODE=1
LLHTTP_NAMES := llhttp api http
LLHTTP_OBJ_DIR := $(BUILD)/third_party/llhttp
LLHTTP_OBJS := $(LLHTTP_NAMES:%=$(LLHTTP_OBJ_DIR)/%.o)
LLHTTP_LIB := $(BUILD)/libllhttp.a

# -isystem: the header is not ours, so our -Wall -Wextra -Werror skip it.
CPPFLAGS += -isystem $(LLHTTP_INC_DIR)
EXTRA_LIBS += $(LLHTTP_LIB)

$(LLHTTP_OBJ_DIR)/%.o: $(LLHTTP_SRC_DIR)/%.c mk/llhttp.mk
	@mkdir -p $(@D)
	$(call say,CC,$<)$(LLHTTP_CC) $(LLHTTP_CFLAGS) -I$(LLHTTP_INC_DIR) -c $< -o $@

$(LLHTTP_LIB): $(LLHTTP_OBJS)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

# The fuzzer: the parser, its helpers and llhttp built by clang with
# -fsanitize=fuzzer,address,undefined (llhttp's C files get fuzzer-no-link
# coverage so libFuzzer can steer through its states).
HTTP_FUZZ_LLHTTP_OBJS := $(LLHTTP_NAMES:%=$(FUZZ_DIR)/llhttp/%.o)

$(FUZZ_DIR)/llhttp/%.o: $(LLHTTP_SRC_DIR)/%.c mk/llhttp.mk
	@mkdir -p $(@D)
	$(call say,CC,$<)$(FUZZ_CC) -O1 -g -DLLHTTP_STRICT_MODE=1 -fsanitize=fuzzer-no-link $(FUZZ_SAN) \
	  -I$(LLHTTP_INC_DIR) -c $< -o $@

# The parser and its helpers only: the service itself needs the reactor.
# libsodium: http_util's Basic credentials decoder.
$(eval $(call fuzz_target,http,test/fuzz/http_request_fuzz.cpp src/services/http/request_parser.cpp \
  src/services/http/http_util.cpp src/services/http/http_form.cpp \
  src/services/http/multipart_reader.cpp,-lsodium,test/fuzz/corpus/http,-isystem $(LLHTTP_INC_DIR),\
  $(HTTP_FUZZ_LLHTTP_OBJS)))
