# The tftp service: its packet-layer fuzzer,
# make fuzz-tftp [FUZZ_SECONDS=60] (src/services/tftp/tftp_packet.cpp, pure
# functions; see test/fuzz/tftp_packet_fuzz.cpp for the properties).
$(eval $(call fuzz_target,tftp,test/fuzz/tftp_packet_fuzz.cpp src/services/tftp/tftp_packet.cpp,,\
  test/fuzz/corpus/tftp))
