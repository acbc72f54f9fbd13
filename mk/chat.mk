# Chat service core (course "tugas 5" protocol; src/services/chat): SQLite
# state shared by prefork workers, libsodium password hashes and tokens.
#   make fuzz-chat [FUZZ_SECONDS=60]  libFuzzer on the chat line parser and
#                                     the Python-json writer (no database)
#
# The chat objects live in libfsrv.a like every other module, so the
# programs and the test binary link its two libraries. LDLIBS is only
# appended to here (this fragment is included after the Makefile sets it,
# and LDLIBS is part of the flags stamp, so the change triggers a rebuild).

DEB_PACKAGES += libsqlite3-dev libsodium-dev
LDLIBS += -lsqlite3 -lsodium

# PostgreSQL backend of the chat store (--chat-db postgresql://...): libpq,
# PostgreSQL's own C client. The server package runs the throwaway database
# of the PostgreSQL chat tests (test/support/pg_instance.hpp).
DEB_PACKAGES += libpq-dev postgresql
PQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
CPPFLAGS += $(PQ_CFLAGS)
LDLIBS += -lpq

FUZZ_SECONDS ?= 60
CHAT_FUZZ_CXX ?= clang++
CHAT_FUZZ_DIR := $(BUILD)/fuzz
CHAT_FUZZ_BIN := $(CHAT_FUZZ_DIR)/chat_line_fuzz
# The target calls only parse_line, find_line_end and the JSON writer (no
# database); the protocol file also names the store, so the store and users
# files link in too. Not chat_service.cpp: it needs the whole library (the
# reactor), which a clean clone has not built for clang.
CHAT_FUZZ_SRCS := test/fuzz/chat_line_fuzz.cpp $(addprefix src/services/chat/,chat_protocol.cpp \
  json_py.cpp chat_store.cpp sqlite_chat_store.cpp pg_chat_store.cpp chat_users.cpp) \
  src/auth/password.cpp
CHAT_FUZZ_LDLIBS := -lsqlite3 -lsodium -lcjson -lpq
CHAT_FUZZ_FLAGS := -std=c++20 -O1 -g -Iinclude $(PQ_CFLAGS) -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -fno-omit-frame-pointer
CHAT_FUZZ_SEED := test/fuzz/corpus/chat

.PHONY: fuzz-chat

$(CHAT_FUZZ_BIN): $(CHAT_FUZZ_SRCS) $(wildcard include/fsrv/services/chat/*.hpp include/fsrv/auth/*.hpp)
	@mkdir -p $(@D)
	$(call say,FUZZ,$@)$(CHAT_FUZZ_CXX) $(CHAT_FUZZ_FLAGS) $(CHAT_FUZZ_SRCS) -o $@ $(CHAT_FUZZ_LDLIBS)

# New inputs go to the build folder; the committed seeds are read only.
FUZZ_TARGETS += fuzz-chat
fuzz-chat: $(CHAT_FUZZ_BIN)
	@mkdir -p $(CHAT_FUZZ_DIR)/chat-corpus
	$(CHAT_FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  $(CHAT_FUZZ_DIR)/chat-corpus $(CHAT_FUZZ_SEED)

# chatcli: interactive chat client (tools/chatcli.cpp). Line editing and
# history from libedit's readline interface, linked into chatcli only.
DEB_PACKAGES += libedit-dev
PROGRAMS += chatcli
chatcli_SRCS := tools/chatcli.cpp
chatcli_LDLIBS := -ledit

# Session service framer fuzzer (src/services/session/session_framer.cpp, a
# pure function): make fuzz-session [FUZZ_SECONDS=60].
SESSION_FUZZ_BIN := $(CHAT_FUZZ_DIR)/session_frame_fuzz
SESSION_FUZZ_SRCS := test/fuzz/session_frame_fuzz.cpp src/services/session/session_framer.cpp

.PHONY: fuzz-session

$(SESSION_FUZZ_BIN): $(SESSION_FUZZ_SRCS) include/fsrv/services/session/session_framer.hpp
	@mkdir -p $(@D)
	$(call say,FUZZ,$@)$(CHAT_FUZZ_CXX) $(CHAT_FUZZ_FLAGS) $(SESSION_FUZZ_SRCS) -o $@

FUZZ_TARGETS += fuzz-session
fuzz-session: $(SESSION_FUZZ_BIN)
	@mkdir -p $(CHAT_FUZZ_DIR)/session-corpus
	$(SESSION_FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  $(CHAT_FUZZ_DIR)/session-corpus test/fuzz/corpus/session

# filecli's `shell` subcommand uses libedit too.
filecli_LDLIBS += -ledit
