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

# The target calls only parse_line, find_line_end and the JSON writer (no
# database); the protocol file also names the store, so the store and users
# files link in too. Not chat_service.cpp: it needs the whole library (the
# reactor), which a clean clone has not built for clang.
$(eval $(call fuzz_target,chat,test/fuzz/chat_line_fuzz.cpp $(addprefix src/services/chat/,\
  chat_protocol.cpp chat_store.cpp sqlite_chat_store.cpp pg_chat_store.cpp \
  chat_users.cpp) src/codec/json_py.cpp src/codec/utf8.cpp src/auth/password.cpp,-lsqlite3 -lsodium -lcjson -lpq,test/fuzz/corpus/chat,$(PQ_CFLAGS)))

# chatcli: interactive chat client (tools/chatcli.cpp). Line editing and
# history from libedit's readline interface, linked into chatcli only.
DEB_PACKAGES += libedit-dev
PROGRAMS += chatcli
chatcli_SRCS := tools/chatcli.cpp
chatcli_LDLIBS := -ledit

# Session service framer fuzzer (src/services/session/session_framer.cpp, a
# pure function): make fuzz-session [FUZZ_SECONDS=60].
$(eval $(call fuzz_target,session,test/fuzz/session_frame_fuzz.cpp \
  src/services/session/session_framer.cpp,,test/fuzz/corpus/session))

# filecli's `shell` subcommand uses libedit too.
filecli_LDLIBS += -ledit
