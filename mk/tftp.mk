# The tftp service: its packet-layer fuzzer,
# make fuzz-tftp [FUZZ_SECONDS=60] (src/services/tftp/tftp_packet.cpp, pure
# functions; see test/fuzz/tftp_packet_fuzz.cpp for the properties).
TFTP_FUZZ_BIN := $(CHAT_FUZZ_DIR)/tftp_packet_fuzz
TFTP_FUZZ_SRCS := test/fuzz/tftp_packet_fuzz.cpp src/services/tftp/tftp_packet.cpp

.PHONY: fuzz-tftp

$(TFTP_FUZZ_BIN): $(TFTP_FUZZ_SRCS) include/fsrv/services/tftp/tftp_packet.hpp
	@mkdir -p $(@D)
	$(call say,FUZZ,$@)$(CHAT_FUZZ_CXX) $(CHAT_FUZZ_FLAGS) $(TFTP_FUZZ_SRCS) -o $@

FUZZ_TARGETS += fuzz-tftp
fuzz-tftp: $(TFTP_FUZZ_BIN)
	@mkdir -p $(CHAT_FUZZ_DIR)/tftp-corpus
	$(TFTP_FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  $(CHAT_FUZZ_DIR)/tftp-corpus test/fuzz/corpus/tftp
