# File protocol interop: libFuzzer targets for the file
# protocol's request side and for the two other file dialects' pure parsers
# (file-marker, file-raw), built like fuzz-chat (mk/chat.mk).
#   make fuzz-file [FUZZ_SECONDS=60]      next_frame, parse_line, on_silence,
#                                         ascii_json (whole and split inputs)
#   make fuzz-dialects [FUZZ_SECONDS=60]  segmented base64, file-raw line
#                                         framing and parsing, file-marker commands
# Seeds: test/fuzz/corpus/file, test/fuzz/corpus/dialects (read only); new
# inputs go to the build folder.

$(eval $(call fuzz_target,file,test/fuzz/file_request_fuzz.cpp src/services/file/request.cpp \
  src/services/file/reply.cpp src/codec/json_py.cpp src/codec/utf8.cpp src/core/result.cpp,-lcjson,test/fuzz/corpus/file))
$(eval $(call fuzz_target,dialects,test/fuzz/dialects_fuzz.cpp $(sort $(wildcard \
  src/services/file_marker/*_protocol.cpp src/services/file_raw/*_protocol.cpp src/codec/*.cpp)),\
  -lb64,test/fuzz/corpus/dialects))
